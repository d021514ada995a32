"""Generated inputs, and one whole run through :func:`~bulkresign.job.run_job` against a probe."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from bulkresign.bench.probe import Probe, RunReport, summarize
from bulkresign.config import Credentials, Secret
from bulkresign.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
from bulkresign.inputspec import Format, InputSpec
from bulkresign.job import JobConfig, run_job
from bulkresign.limiter import LimiterStats
from bulkresign.models import MAX_BATCH
from bulkresign.stats import RunStats

__all__ = ["demo_credentials", "measure_run", "write_ids"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
#: An odd 64-bit constant: multiplying by it modulo 2^64 is a bijection, so IDs never repeat.
_SPREAD = np.uint64(0x9E3779B97F4A7C15)
_ROWS_PER_WRITE = 1 << 20
#: How often the client's paced rate is sampled for the timeline, in seconds.
_SAMPLE_EVERY = 0.1


def write_ids(path: Path, n: int, *, seed: int = 0) -> Path:
    """Write ``n`` distinct lowercase 24-hex user IDs, one a line (25 bytes each), to ``path``.

    ID ``i`` is ``seed`` as 8 hex digits, then ``i`` times an odd constant modulo 2^64 as 16:
    distinct within a file, disjoint between seeds, and spread over the key space like real
    ObjectIds. About 1 s per 10M IDs.
    """
    if not 0 <= seed < 1 << 32:
        raise ValueError(f"seed must fit in 32 bits, not {seed}")
    prefix = np.frombuffer(f"{seed:08x}".encode(), dtype=np.uint8)
    with path.open("wb") as f:
        for start in range(0, n, _ROWS_PER_WRITE):
            i = np.arange(start, min(n, start + _ROWS_PER_WRITE), dtype=np.uint64)
            raw = (i * _SPREAD).astype(">u8").view(np.uint8).reshape(-1, 8)
            rows = np.empty((len(i), 25), dtype=np.uint8)
            rows[:, :8] = prefix
            rows[:, 8:24:2] = _HEX[raw >> 4]
            rows[:, 9:24:2] = _HEX[raw & 15]
            rows[:, 24] = ord("\n")
            f.write(rows.tobytes())
    return path


def demo_credentials() -> Credentials:
    """The emulator's public demo access key."""
    return Credentials(DEMO_ACCESS_KEY_ID, Secret(DEMO_ACCESS_KEY_SECRET))


def _pace_sampler(
    into: list[tuple[float, float]], clock: Callable[[], float]
) -> Callable[[RunStats, Callable[[], LimiterStats]], Coroutine[Any, Any, None]]:
    """A ``watch`` for :func:`run_job` that samples the limiter's rate on ``clock``."""

    async def watch(_: RunStats, limiter: Callable[[], LimiterStats]) -> None:
        while True:
            into.append((clock(), limiter().current_rate))
            await anyio.sleep(_SAMPLE_EVERY)

    return watch


def measure_run(
    workdir: Path,
    *,
    ids: int,
    rate: float,
    limit: float | None,
    latency_ms: float = 20.0,
    concurrency: int = 16,
    timeout: float = 600.0,
    seed: int = 0,
) -> RunReport:
    """Resign ``ids`` generated IDs through :func:`run_job` at ``rate`` against a fresh emulator.

    The input and the ledger go to ``workdir`` and are deleted afterwards. The run stops by
    itself after ``timeout`` seconds (``finished`` is then false).
    """
    source = write_ids(workdir / f"bench-{seed}.ids", ids, seed=seed)
    state = workdir / f"bench-{seed}.state"
    probe = Probe(limit=limit, latency_ms=latency_ms)
    paced: list[tuple[float, float]] = []
    try:
        with probe.serving() as server:
            cfg = JobConfig(
                spec=InputSpec(str(source), format=Format.LINES, batch_size=MAX_BATCH),
                host=server.url,
                credentials=demo_credentials(),
                state=state,
                rate=rate,
                concurrency=concurrency,
                signals=False,
            )

            async def main() -> bool:
                watch = _pace_sampler(paced, probe.emulator.clock)
                with anyio.move_on_after(timeout):
                    outcome = await run_job(cfg, watch=watch)
                    return outcome is not None and outcome.result.finished
                return False

            started = probe.emulator.clock()
            finished = anyio.run(main)
            ended = probe.emulator.clock()
    finally:
        for leftover in (source, *workdir.glob(f"{state.name}*")):
            leftover.unlink(missing_ok=True)
    return summarize(
        probe,
        ids=ids,
        rate=rate,
        started=started,
        ended=ended,
        finished=finished,
        paced=paced,
    )
