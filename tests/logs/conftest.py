"""Fixtures for the logging tests: a clean structlog configuration and a permissive umask."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from bulkresign.logs import reset_logging


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Every test starts and ends with structlog's defaults and no registered secrets."""
    reset_logging()
    yield
    reset_logging()


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, under which a careless open() makes world-readable files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """Where the test's log file goes."""
    return tmp_path / "run.log"


@pytest.fixture
def read_events(log_path: Path) -> Callable[[], list[dict[str, object]]]:
    """Close the log, then parse it into one dict per line."""

    def read() -> list[dict[str, object]]:
        reset_logging()
        return [orjson.loads(line) for line in log_path.read_bytes().splitlines()]

    return read
