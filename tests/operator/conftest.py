"""A sample input (the emulator pool is the shared ``server`` fixture of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkresign.emulator import synthetic_user_id


@pytest.fixture
def ids_file(tmp_path: Path) -> Path:
    """300 known users, 2 unknown ones, a duplicate and a junk line."""
    ids = [synthetic_user_id(i) for i in range(300)]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join([*ids, "f" * 24, "e" * 24, ids[0], "junk"]) + "\n")
    return path
