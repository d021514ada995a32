"""Fixtures for the ingest tests: input files written under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ingest.helpers import Write


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write bytes (or text, as UTF-8) to a file under tmp_path and return its path."""

    def _write(content: bytes | str, name: str = "input.txt") -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return _write
