"""SIGKILL at random moments and at every named crash point: still exactly once."""

from __future__ import annotations

import json
import random
import shlex
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from aiohttp import web

from bulkresign.crashpoints import POINTS
from bulkresign.emulator import Emulator, EmulatorConfig, RunningServer, serve_in_thread
from bulkresign.ledger import Ledger
from bulkresign.models import BatchState, LineOutcome
from tests.crash.conftest import Runner, assert_exactly_once, faulty_emulator, write_workload

pytestmark = pytest.mark.crash


@pytest.mark.timeout(240)
def test_random_sigkills_with_every_fault_on(tmp_path: Path) -> None:
    """10k IDs, every fault, killed 6 times at random: each known ID resigned exactly once."""
    workload = write_workload(
        tmp_path / "ids.txt", 10_000, unknown=40, duplicates=1_000, junk=25, seed=7
    )
    emu = faulty_emulator(10_000)
    rng = random.Random(11)
    with serve_in_thread(emu) as server:
        runner = Runner(server, workload, tmp_path / "run.state", rate=150)
        code: int | None = None
        kills = 0
        for _ in range(6):
            code = runner.kill_after(rng.uniform(0.8, 1.4))
            if code is not None:
                break
            kills += 1
        assert kills >= 3, "the kills must land while batches are in flight"
        runner.rate = 800
        for _ in range(10):
            if code in (0, 1):
                break
            code = runner.run()
        assert code == 1, "finished, with rejected junk lines and unknown IDs"
        assert_exactly_once(server, workload)
    ledger = Ledger.open(tmp_path / "run.state")
    assert not ledger.open_batches()
    not_found = {
        i for r in ledger.iter_batches() for i, o in r.outcomes.items()
        if o.outcome is LineOutcome.NOT_FOUND
    }  # fmt: skip
    assert not_found == set(workload.unknown)


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.timeout(90)
def test_each_named_crash_point_recovers(
    tmp_path: Path, emulator_server: RunningServer, point: str
) -> None:
    """Killed at a named point in the protocol, the next run finishes without a double resign."""
    workload = write_workload(tmp_path / "ids.txt", 2_000, unknown=20, seed=3)
    runner = Runner(emulator_server, workload, tmp_path / "run.state")
    hits = 1 if point == "after_batch_insert" else 7  # one insert per 64 batches: all of them
    assert runner.run(crash_at=f"{point}:{hits}") == -9
    assert runner.run() == 1, "finished; the unknown IDs are reported not found"
    assert_exactly_once(emulator_server, workload)


@pytest.mark.timeout(90)
def test_intent_is_committed_before_each_request_arrives(tmp_path: Path) -> None:
    """For every resign request the emulator receives, the ledger already lists it as SENDING."""
    workload = write_workload(tmp_path / "ids.txt", 1_000, seed=5)
    state = tmp_path / "run.state"
    misses: list[list[str]] = []

    async def check(path: str, user_ids: list[str], request: web.Request) -> None:
        conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT a.ids FROM attempts a JOIN batches b USING (seq) "
                "WHERE a.finished IS NULL AND b.state = ?",
                (BatchState.SENDING.value,),
            ).fetchall()
        finally:
            conn.close()
        if "\n".join(user_ids) not in {r[0] for r in rows}:
            misses.append(user_ids)

    emu = Emulator(EmulatorConfig(rate_limit=None), on_resign=check)
    emu.generate(1_000)
    with serve_in_thread(emu) as server:
        assert Runner(server, workload, state, rate=500).run() == 0
        assert_exactly_once(server, workload)
    assert not misses


def wait_for_resigns(server: RunningServer, n: int, timeout: float = 20.0) -> None:
    """Block until the emulator has applied ``n`` resign calls (the run is under way)."""
    deadline = time.monotonic() + timeout
    while int(server.oracle(summary=True)["resign_requests"]) < n:  # type: ignore[call-overload]
        assert time.monotonic() < deadline, "the run never started sending"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.timeout(90)
def test_a_signal_stops_resumably_and_prints_the_resume_command(
    tmp_path: Path, emulator_server: RunningServer, signum: signal.Signals
) -> None:
    """SIGINT/SIGTERM: exit 3 with the exact resume command; running it finishes the job."""
    workload = write_workload(tmp_path / "ids.txt", 2_000, seed=9)
    runner = Runner(emulator_server, workload, tmp_path / "run.state", rate=15)
    proc = subprocess.Popen(
        runner.argv(), env=runner.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_resigns(emulator_server, 1)
    time.sleep(0.3)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    kinds = [
        json.loads(line)["kind"]
        for line in Path(f"{runner.state}.journal").read_text().splitlines()
    ]
    stopped = kinds.index("run_stopped")
    assert "batch_sent" not in kinds[stopped:], "a request left after the stop"
    resume = next(line for line in err.splitlines() if "resume with: bulkresign " in line)
    argv = shlex.split(resume.split("resume with: bulkresign ", 1)[1])
    assert argv[:2] == ["run", str(workload.path)] and "--state" in argv
    done = emulator_server.oracle(summary=True)["resigned_total"]
    assert 0 < done < 2_000  # type: ignore[operator]
    runner.rate = 2000
    assert runner.run() == 0
    assert_exactly_once(emulator_server, workload)


@pytest.mark.timeout(90)
def test_a_second_signal_stops_at_once_and_the_next_run_reads_back(
    tmp_path: Path, emulator_server: RunningServer
) -> None:
    """Two signals: the run exits without waiting; the next one reconciles and finishes."""
    workload = write_workload(tmp_path / "ids.txt", 2_000, seed=10)
    state = tmp_path / "run.state"
    runner = Runner(emulator_server, workload, state, rate=15, timeout=20, grace=30)
    proc = subprocess.Popen(
        runner.argv(), env=runner.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_resigns(emulator_server, 1)
    emulator_server.call(lambda: emulator_server.emulator.reconfigure(latency_ms=4000.0))
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    second = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - second < 2.0, "did not wait for the 4-s responses nor the grace"
    assert proc.returncode == 3, err
    ledger = Ledger.open(state)
    assert any(r.state is BatchState.SENDING for r in ledger.open_batches())
    ledger.close()
    emulator_server.call(lambda: emulator_server.emulator.reconfigure(latency_ms=0.0))
    runner.rate, runner.timeout = 2000, 0.5
    assert runner.run() == 0
    assert_exactly_once(emulator_server, workload)
