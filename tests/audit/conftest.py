"""Fixtures for the audit journal tests: a fixed clock, a small journal, a hermetic CLI."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bulkresign.cli
from bulkresign.audit import AuditJournal
from bulkresign.logs import reset_logging

FIXED = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    """No test sees secrets another test registered for redaction."""
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
def clock() -> Callable[[], datetime]:
    """A clock that always reads the same instant."""
    return lambda: FIXED


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """Where the test's journal goes."""
    return tmp_path / "run.audit.jsonl"


@pytest.fixture
def written(journal_path: Path, clock: Callable[[], datetime]) -> Path:
    """A closed journal of five entries: a run start, two batches sent and answered."""
    with AuditJournal.open(journal_path, now=clock) as journal:
        journal.append("run_started", reason="TICKET-1", host="https://127.0.0.1")
        for seq in (0, 1):
            journal.append("batch_sent", batch=seq, attempt=1, ids=[f"u{seq}a", f"u{seq}b"])
        journal.append("batch_outcome", batch=0, attempt=1, outcome="done", request_id="r0")
        journal.append("batch_outcome", batch=1, attempt=1, outcome="in_doubt", status=502)
    return journal_path


@pytest.fixture
def only_audit_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load only the ``audit`` sub-command, so these tests do not depend on the others."""
    monkeypatch.setattr(bulkresign.cli, "_COMMANDS", ("audit",))
