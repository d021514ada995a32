"""Fixtures for status, report and verify: input files and ledgers (the emulator pool is the
shared ``server`` fixture of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bulkresign.inputspec import InputSpec
from bulkresign.ledger import IdOutcome, Ledger
from bulkresign.models import BatchState, LineOutcome
from tests.report.helpers import LINES, hex_id, make_ledger, resign_ok, settle


@pytest.fixture
def write_input(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write text to a file under tmp_path and return its path."""

    def write(text: str, name: str = "ids.txt") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def spec(write_input: Callable[..., Path]) -> InputSpec:
    return InputSpec(str(write_input("\n".join(LINES) + "\n")), batch_size=3)


@pytest.fixture
def ledger(tmp_path: Path, spec: InputSpec) -> Ledger:
    """Batch 0 done, batch 1 rejected with one of each per-ID outcome, batch 2 in doubt."""
    led = make_ledger(tmp_path / "run.state", spec)
    resign_ok(led, 0, "req-0")
    resign_ok(led, 1, "req-1", ids=(hex_id(5),))
    settle(
        led,
        1,
        BatchState.REJECTED,
        IdOutcome(hex_id(3), LineOutcome.NOT_FOUND, 2004, "user not found (read back)"),
        IdOutcome(hex_id(4), LineOutcome.FAILED, 4220, "refused", "req-f"),
        IdOutcome(hex_id(5), LineOutcome.RESIGNED, None, "partial send", "req-1"),
    )
    with led.transaction():
        led.begin_attempt(2, (hex_id(6),))
        led.set_state(2, BatchState.IN_DOUBT)
    return led
