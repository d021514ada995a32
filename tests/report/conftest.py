"""Fixtures for status, report and verify: input files and an emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    RunningServer,
    serve_in_thread,
)
from bulkresign.inputspec import InputSpec
from bulkresign.ledger import IdOutcome, Ledger
from bulkresign.models import BatchState, LineOutcome
from tests.report.helpers import LINES, USERS, hex_id, make_ledger, resign_ok, settle


@pytest.fixture
def write_input(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write text to a file under tmp_path and return its path."""

    def write(text: str, name: str = "ids.txt") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """A clean emulator with 400 users; the GENAUTH_* credentials and host point at it."""
    emu = Emulator(EmulatorConfig(rate_limit=None))
    emu.generate(USERS)
    with serve_in_thread(emu) as running:
        monkeypatch.setenv("GENAUTH_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
        monkeypatch.setenv("GENAUTH_ACCESS_KEY_SECRET", DEMO_ACCESS_KEY_SECRET)
        monkeypatch.setenv("GENAUTH_HOST", running.url)
        yield running


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
