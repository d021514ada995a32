"""The crash suite: `bulkresign run` as a subprocess, SIGKILLed and resumed against the emulator."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    Faults,
    RunningServer,
    serve_in_thread,
    synthetic_user_id,
)


@dataclass(frozen=True)
class Workload:
    """An input file and what the emulator knows."""

    path: Path
    known: frozenset[str]
    unknown: frozenset[str]


def write_workload(
    path: Path, known: int, *, unknown: int = 0, duplicates: int = 0, junk: int = 0, seed: int = 0
) -> Workload:
    """Known synthetic users, unknown valid IDs, repeated lines and junk, shuffled."""
    rng = random.Random(seed)
    known_ids = [synthetic_user_id(i) for i in range(known)]
    unknown_ids = [f"ffff{i:020x}" for i in range(unknown)]
    lines = known_ids + unknown_ids
    lines += rng.choices(lines, k=duplicates)
    lines += [f"junk-{i}" for i in range(junk)]
    rng.shuffle(lines)
    path.write_text("".join(f"{line}\n" for line in lines))
    return Workload(path, frozenset(known_ids), frozenset(unknown_ids))


def faulty_emulator(known: int, *, seed: int = 1, rate_limit: float = 600.0) -> Emulator:
    """Every fault on: 5xx before/after applying, resets and stalls after applying, 429s."""
    emu = Emulator(
        EmulatorConfig(
            rate_limit=rate_limit,
            token_ttl=3.0,
            seed=seed,
            faults=Faults(
                error_before=0.02,
                error_after=0.02,
                reset_after=0.02,
                stall_after=0.01,
                stall_seconds=1.5,
            ),
        )
    )
    emu.generate(known)
    return emu


@dataclass
class Runner:
    """Runs ``bulkresign run`` against one server and one state file."""

    server: RunningServer
    workload: Workload
    state: Path
    rate: float = 800.0
    timeout: float = 0.5
    grace: float = 2.0

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "bulkresign", "run", str(self.workload.path),
            "--yes", "--state", str(self.state), "--host", self.server.url,
            "--rate", str(self.rate), "--concurrency", "16", "--timeout", str(self.timeout),
            "--reconcile-delay", "0.05", "--grace", str(self.grace),
        ]  # fmt: skip

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BULKRESIGN_")}
        env["GENAUTH_ACCESS_KEY_ID"] = DEMO_ACCESS_KEY_ID
        env["GENAUTH_ACCESS_KEY_SECRET"] = DEMO_ACCESS_KEY_SECRET
        if crash_at:
            env["BULKRESIGN_CRASH_AT"] = crash_at
        return env

    def run(self, *, crash_at: str | None = None, timeout: float = 60.0) -> int:
        """Run to the end (or to a named crash point); return the exit code."""
        proc = subprocess.run(
            self.argv(), env=self.env(crash_at), capture_output=True, timeout=timeout, text=True
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode

    def kill_after(self, seconds: float) -> int | None:
        """Start a run, SIGKILL it after ``seconds``; ``None`` if it was killed."""
        proc = subprocess.Popen(
            self.argv(), env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        if proc.poll() is not None:
            _, err = proc.communicate()
            assert b"Traceback" not in err, err.decode()
            return proc.returncode
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return None


def assert_exactly_once(server: RunningServer, workload: Workload) -> None:
    """The emulator's own record: every known ID resigned once, nothing else, no bad request."""
    oracle = server.oracle()
    counts: dict[str, int] = oracle["resign_counts"]  # type: ignore[assignment]
    twice = {i: n for i, n in counts.items() if n != 1}
    assert not twice, f"resigned more than once: {list(twice.items())[:5]}"
    assert set(counts) == set(workload.known), (
        f"missing {len(workload.known - set(counts))}, extra {len(set(counts) - workload.known)}"
    )
    assert oracle["largest_batch"] <= 50  # type: ignore[operator]
    assert oracle["duplicate_id_requests"] == 0


@pytest.fixture
def emulator_server() -> Iterator[RunningServer]:
    """A clean emulator with 2,000 users and no faults, in a thread."""
    emu = Emulator(EmulatorConfig(rate_limit=None))
    emu.generate(2000)
    with serve_in_thread(emu) as server:
        yield server
