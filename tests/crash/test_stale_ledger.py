"""A ledger that lost commits — its -wal deleted, an older copy put back — beside a journal that
recorded the calls after them: the resume reads those batches back, never resends them blind."""

from __future__ import annotations

import sqlite3
import subprocess
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
    assert "the audit journal of another run" in capsys.readouterr().err
    assert not state.exists()
    assert emulator_server.oracle(summary=True)["resign_requests"] == sent


def lose_what_follows(state: Path, runner: Runner) -> None:
    """Kill a run, then a resume of it, and put back the ledger as the first left it."""
    with sqlite3.connect(state) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy_ledger(state, state.with_name("copy.state"))
    assert runner.run(crash_at="after_outcome_commit:12") == -9
    put_back(state.with_name("copy.state"), state)


@pytest.mark.timeout(120)
def test_a_refused_resume_keeps_what_the_journal_says_for_the_next(
    tmp_path: Path, emulator_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The -wal lost before any checkpoint; a resume with other options is refused after it
    read the journal, and moved the anchor past the calls the ledger lacks: the next resume
    still reads them back (it resent them: 300 users twice)."""
    workload = write_workload(tmp_path / "ids.txt", 2_000, seed=7)
    state = tmp_path / "run.state"
    runner = Runner(emulator_server, workload, state, rate=400.0)
    assert runner.run(crash_at="after_outcome_commit:12") == -9
    for sidecar in (Path(f"{state}-wal"), Path(f"{state}-shm")):
        sidecar.unlink()  # never checkpointed: the state file is left without a table
    other = [*runner.argv()[3:], "--batch-size", "40"]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in runner.env().items():
            mp.setenv(key, value)
        assert main(other) == 2
    assert "differ from the run that sent it" in capsys.readouterr().err
    assert runner.run() == 0
    assert_exactly_once(emulator_server, workload)


@pytest.mark.timeout(120)
def test_a_hand_off_from_a_ledger_behind_its_journal_is_refused(
    tmp_path: Path, emulator_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """report --abandon-run on a ledger that lost commits: refused (it handed off rows the
    journal records sent, and their users were resigned twice); the resume then finishes."""
    workload = write_workload(tmp_path / "ids.txt", 2_000, seed=8)
    state = tmp_path / "run.state"
    runner = Runner(emulator_server, workload, state, rate=400.0)
    assert runner.run(crash_at="after_batch_insert:1") == -9
    lose_what_follows(state, runner)
    out = tmp_path / "handoff.csv"
    report = ["report", "--state", str(state), "--outcome", "unprocessed"]
    capsys.readouterr()
    assert main([*report, "--abandon-run", "--output", str(out)]) == 2
    assert "its audit journal records calls" in capsys.readouterr().err
    assert not out.exists()
    assert runner.run() == 0
    assert_exactly_once(emulator_server, workload)


def test_an_empty_state_file_does_not_adopt_another_runs_journal(
    tmp_path: Path, emulator_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty --state beside --journal of another, finished run: refused, and that journal
    is left as it was (it took the new run's entries)."""
    first = write_workload(tmp_path / "a.txt", 100, seed=9)
    Runner(emulator_server, first, tmp_path / "a.state").run()
    journal = tmp_path / "a.state.journal"
    kept = journal.read_bytes()
    blank = tmp_path / "b.state"
    blank.touch(mode=0o600)
    argv = ["run", str(first.path), "--yes", "--state", str(blank), "--journal", str(journal)]
    argv += ["--host", emulator_server.url]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in Runner(emulator_server, first, blank).env().items():
            mp.setenv(key, value)
        assert main(argv) == 2
    assert "the audit journal of another run" in capsys.readouterr().err
    assert journal.read_bytes() == kept


@pytest.mark.timeout(120)
def test_a_state_file_that_lost_its_wal_is_held_to_its_journals_options(
    tmp_path: Path, emulator_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Left empty by a lost -wal, the state file binds nothing: its journal's first entry does
    (another --endpoint went ahead, and bound the ledger to it)."""
    workload = write_workload(tmp_path / "ids.txt", 2_000, seed=10)
    state = tmp_path / "run.state"
    runner = Runner(emulator_server, workload, state, rate=400.0)
    assert runner.run(crash_at="after_outcome_commit:12") == -9
    for sidecar in (Path(f"{state}-wal"), Path(f"{state}-shm")):
        sidecar.unlink()
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in runner.env().items():
            mp.setenv(key, value)
        assert main([*runner.argv()[3:], "--endpoint", "user"]) == 2
    assert "began with endpoint 'public-account', not 'user'" in capsys.readouterr().err
    assert runner.run() == 0
    assert_exactly_once(emulator_server, workload)


@pytest.mark.timeout(120)
def test_a_lost_wal_resumes_from_another_folder(
    tmp_path: Path, emulator_server: RunningServer
) -> None:
    """Begun with a relative --state, the wal lost, resumed from elsewhere with the absolute
    path: the journal names the state file absolutely, so the run is its own (refused)."""
    workload = write_workload(tmp_path / "ids.txt", 1_000, seed=11)
    runner = Runner(emulator_server, workload, tmp_path / "run.state", rate=400.0)
    relative = [*runner.argv()[:4], "ids.txt", "--yes", "--state", "run.state", "--rate", "400"]
    relative += ["--host", emulator_server.url]
    env = runner.env("after_outcome_commit:6")
    assert subprocess.run(relative, cwd=tmp_path, env=env, timeout=60).returncode == -9
    for sidecar in ("run.state-wal", "run.state-shm"):
        (tmp_path / sidecar).unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    absolute = [*runner.argv()[:4], str(workload.path), "--yes", "--state", str(runner.state)]
    absolute += ["--rate", "400", "--host", emulator_server.url]
    done = subprocess.run(absolute, cwd=elsewhere, env=runner.env(), timeout=60)
    assert done.returncode == 0
    assert_exactly_once(emulator_server, workload)
