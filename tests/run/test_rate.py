"""Against the emulator's limit: no 1-second window above --rate, and throttling adapts."""

from __future__ import annotations

import bisect
import time
from pathlib import Path

from aiohttp import web

from bulkresign.config import Credentials, Secret, Timeouts
from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    serve,
    synthetic_user_id,
)
from bulkresign.inputspec import InputSpec
from bulkresign.job import JobConfig, JobOutcome, run_job


def busiest_window(times: list[float], width: float = 1.0) -> int:
    """The most arrivals in any sliding window of ``width`` seconds."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + width) - i for i, t in enumerate(times))


async def resign_all(
    tmp_path: Path, n: int, *, limit: float, rate: float
) -> tuple[JobOutcome, list[float], Emulator]:
    arrivals: list[float] = []

    async def record(path: str, ids: list[str], request: web.Request) -> None:
        arrivals.append(time.monotonic())

    emu = Emulator(EmulatorConfig(rate_limit=limit, latency_ms=20.0), on_resign=record)
    emu.generate(n)
    source = tmp_path / "ids.txt"
    source.write_text("".join(f"{synthetic_user_id(i)}\n" for i in range(n)))
    async with serve(emu) as server:
        cfg = JobConfig(
            spec=InputSpec(str(source)),
            host=server.url,
            credentials=Credentials(DEMO_ACCESS_KEY_ID, Secret(DEMO_ACCESS_KEY_SECRET)),
            state=tmp_path / "run.state",
            rate=rate,
            concurrency=8,
            timeouts=Timeouts(read=5.0, total=10.0),
            signals=False,
        )
        outcome = await run_job(cfg)
    assert outcome is not None
    return outcome, arrivals, emu


class TestRate:
    async def test_no_one_second_window_exceeds_the_rate(self, tmp_path: Path) -> None:
        """At --rate 60 for ~2.5 s, sliding 1-s windows of server arrivals hold about 60.

        The limiter's own grants are exact (tests/limiter, controlled clock); between a grant and
        the server's arrival stamp lie the event loop and the socket, whose jitter on a loaded CI
        machine can exceed the limiter's 5 ms margin. Here the emulator shares the client's loop,
        and the slots go out in pairs (20 ms of send-ahead at 16.7 ms a slot), so one late stamp
        can move a pair: two extra arrivals are tolerated (62 was seen under the full suite's
        load), and the strict figure is measured by benchmarks/rate.py.
        """
        outcome, arrivals, emu = await resign_all(tmp_path, 150 * 50, limit=1000, rate=60)
        assert outcome.result.finished
        assert len(arrivals) == 150
        assert busiest_window(arrivals) <= 62
        assert emu.oracle(summary=True)["throttled"] == 0

    async def test_asking_twice_the_limit_adapts_and_loses_nothing(self, tmp_path: Path) -> None:
        """Asked for 2x the server's limit, the run is throttled, backs off, and finishes."""
        outcome, arrivals, emu = await resign_all(tmp_path, 200 * 50, limit=50, rate=100)
        oracle = emu.oracle()
        assert outcome.result.finished
        assert oracle["max_resign_count"] == 1 and oracle["resigned_total"] == 200 * 50
        assert 0 < outcome.stats.throttled < 0.5 * outcome.stats.requests
        assert busiest_window(arrivals) <= 51  # one extra for send jitter, as above
