"""A ledger that lost commits — its -wal deleted, an older copy put back — beside a journal that
recorded the calls after them: the resume reads those batches back, never resends them blind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bulkresign.cli import main
from bulkresign.emulator import RunningServer
from tests.crash.conftest import Runner, assert_exactly_once, write_workload


def copy_ledger(state: Path, to: Path) -> None:
    """A consistent copy of the ledger, its WAL included, as one file (mode 0600)."""
    source, target = sqlite3.connect(state), sqlite3.connect(to)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    to.chmod(0o600)


def put_back(copy: Path, state: Path) -> None:
    """Replace the ledger and its -wal/-shm with the older copy."""
    for leftover in (state, Path(f"{state}-wal"), Path(f"{state}-shm")):
        leftover.unlink(missing_ok=True)
    state.write_bytes(copy.read_bytes())
    state.chmod(0o600)


@pytest.mark.parametrize("loss", ["older copy put back", "wal deleted"])
@pytest.mark.timeout(120)
def test_a_ledger_behind_its_journal_resigns_no_one_twice(
    tmp_path: Path, emulator_server: RunningServer, loss: str
) -> None:
    """Killed twice; the ledger then loses what the second run committed: the batches the
    journal records sent after its anchor are read back first, and each user is resigned once
    (it resent them blind: hundreds resigned twice)."""
    workload = write_workload(tmp_path / "ids.txt", 2_000, seed=5)
    state = tmp_path / "run.state"
    runner = Runner(emulator_server, workload, state, rate=400.0)
    assert runner.run(crash_at="after_batch_insert:1") == -9  # the ledger holds 4 batches
    if loss == "wal deleted":
        with sqlite3.connect(state) as conn:  # what the WAL held so far is in the file itself
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        copy_ledger(state, tmp_path / "copy.state")
    assert runner.run(crash_at="after_outcome_commit:12") == -9
    if loss == "wal deleted":
        for sidecar in (Path(f"{state}-wal"), Path(f"{state}-shm")):
            sidecar.unlink()
    else:
        put_back(tmp_path / "copy.state", state)
    assert runner.run() == 0
    assert_exactly_once(emulator_server, workload)


def test_a_journal_of_a_run_whose_state_file_is_gone_is_refused(
    tmp_path: Path, emulator_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state file deleted, its journal kept: a new run on that journal is refused before
    anything is created or sent (it began afresh and resigned the recorded users again)."""
    workload = write_workload(tmp_path / "ids.txt", 200, seed=6)
    state = tmp_path / "run.state"
    runner = Runner(emulator_server, workload, state)
    assert runner.run(crash_at="after_outcome_commit:2") == -9
    sent = emulator_server.oracle(summary=True)["resign_requests"]
    for leftover in (state, Path(f"{state}-wal"), Path(f"{state}-shm")):
        leftover.unlink(missing_ok=True)
    argv = runner.argv()[3:]
    capsys.readouterr()
    monkey_env = runner.env()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in monkey_env.items():
            mp.setenv(key, value)
        assert main(argv) == 2
    assert "the audit journal of an earlier run" in capsys.readouterr().err
    assert not state.exists()
    assert emulator_server.oracle(summary=True)["resign_requests"] == sent
