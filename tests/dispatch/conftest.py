"""Fixtures for the dispatcher tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dispatch.harness import Harness


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    """A fresh ledger file and the pipeline around it."""
    return Harness(tmp_path / "run.state")
