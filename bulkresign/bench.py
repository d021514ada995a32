"""Measure a run against a local emulator: the figures behind ``bulkresign bench`` and benchmarks/.

The emulator runs in a thread of this process, in implicit mode (every 24-hex ``user_id``
exists). A :class:`Probe` swaps its rate window for one that also logs every API call's arrival,
admitted or throttled, on the emulator's own clock: "no 1-second window above R" is checked
against what the server saw, over true sliding windows, not against what the client believes.
The targets (docs/benchmarks.md) are stated once here, in :func:`rate_checks` and
:func:`end_to_end_checks`, and both the command and the benchmarks apply them.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
import numpy.typing as npt

from bulkresign.config import Credentials, Secret
from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    RunningServer,
    serve_in_thread,
)
from bulkresign.emulator.ratelimit import SlidingWindow
from bulkresign.inputspec import Format, InputSpec
from bulkresign.job import JobConfig, run_job
from bulkresign.limiter import LimiterStats
from bulkresign.models import MAX_BATCH
from bulkresign.stats import RunStats

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "Check",
    "Probe",
    "RunReport",
    "Second",
    "busiest_window",
    "demo_credentials",
    "end_to_end_bound",
    "end_to_end_checks",
    "measure_run",
    "rate_checks",
    "summarize",
    "write_ids",
]

Times = npt.NDArray[np.float64]
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


class _LoggingWindow(SlidingWindow):
    """The emulator's sliding window, also logging each call's arrival on the emulator's clock."""

    __slots__ = ("admitted", "refused")

    def __init__(self, limit: float | None) -> None:
        super().__init__(limit)
        self.admitted = array("d")
        self.refused = array("d")

    def admit(self, now: float) -> bool:
        ok = super().admit(now)
        (self.admitted if ok else self.refused).append(now)
        return ok


class Probe:
    """An implicit-mode emulator that logs when every API call and every resign call arrived.

    Args:
        limit: accepted calls per sliding second; ``None`` for unlimited.
        latency_ms: delay before each call is handled.
    """

    def __init__(self, *, limit: float | None, latency_ms: float = 0.0) -> None:
        self.emulator = Emulator(
            EmulatorConfig(rate_limit=limit, latency_ms=latency_ms, implicit=True),
            on_resign=self._on_resign,
        )
        self._window = _LoggingWindow(self.emulator.config.rate_limit)
        self.emulator.window = self._window
        self._resigns = array("d")

    async def _on_resign(self, path: str, user_ids: list[str], request: web.Request) -> None:
        self._resigns.append(self.emulator.clock())

    @contextmanager
    def serving(self) -> Iterator[RunningServer]:
        """Serve on 127.0.0.1 from a thread for the duration of the block."""
        with serve_in_thread(self.emulator) as server:
            yield server

    @property
    def limit(self) -> float | None:
        """The emulator's rate limit."""
        return self.emulator.config.rate_limit

    def calls(self) -> int:
        """API calls that have reached the rate limit so far, admitted or not."""
        return len(self._window.admitted) + len(self._window.refused)

    def admitted(self) -> Times:
        """Arrival times of the calls the rate limit admitted, in order."""
        return np.array(self._window.admitted[:], dtype=np.float64)

    def refused(self) -> Times:
        """Arrival times of the calls answered 429, in order."""
        return np.array(self._window.refused[:], dtype=np.float64)

    def resigns(self) -> Times:
        """Times resign calls reached the handler (after the latency), in order."""
        return np.array(self._resigns[:], dtype=np.float64)


def busiest_window(times: Times, width: float = 1.0) -> int:
    """The most ``times`` in any window ``(t - width, t]``: the emulator's own sliding rule."""
    if len(times) == 0:
        return 0
    t = np.sort(times)
    first = np.searchsorted(t, t - width, side="right")
    return int((np.arange(len(t)) - first + 1).max())


@dataclass(frozen=True, slots=True)
class Second:
    """One whole second of a run, counted from its first call."""

    t: int
    admitted: int
    throttled: int
    paced: float | None
    """The client's paced rate (requests/s) at the end of that second, when it was sampled."""


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one run did, as the emulator saw it."""

    ids: int
    rate: float
    """The client's ``--rate``."""
    limit: float | None
    """The emulator's limit."""
    latency_ms: float
    admitted: int
    throttled: int
    goodput: float
    """Admitted calls per second between the first and the last admitted call."""
    busiest_offered: int
    """The most calls, admitted or not, in any sliding 1-s window: what the client sent."""
    busiest_admitted: int
    first_request: float
    """Seconds from the start of the run to the first call reaching the emulator."""
    wall: float
    """Seconds from the start of the run to its end."""
    finished: bool
    timeline: tuple[Second, ...]

    @property
    def requests(self) -> int:
        """Calls that reached the emulator."""
        return self.admitted + self.throttled

    @property
    def throttled_share(self) -> float:
        """Throttled calls as a share of all calls."""
        return self.throttled / self.requests if self.requests else 0.0


def summarize(
    probe: Probe,
    *,
    ids: int,
    rate: float,
    started: float,
    ended: float,
    finished: bool,
    paced: list[tuple[float, float]] | None = None,
    since: float | None = None,
    until: float | None = None,
) -> RunReport:
    """Build the report of the run that went from ``started`` to ``ended`` (emulator clock).

    Only calls in ``[since, until)`` count, when given (one run of a resume); ``paced`` is the
    client's sampled ``(time, rate)``.
    """
    admitted, refused = probe.admitted(), probe.refused()
    lo, hi = since if since is not None else -np.inf, until if until is not None else np.inf
    admitted = admitted[(admitted >= lo) & (admitted < hi)]
    refused = refused[(refused >= lo) & (refused < hi)]
    both = np.sort(np.concatenate([admitted, refused]))
    origin = float(both[0]) if len(both) else started
    span = float(admitted[-1] - admitted[0]) if len(admitted) > 1 else 0.0
    return RunReport(
        ids=ids,
        rate=rate,
        limit=probe.limit,
        latency_ms=probe.emulator.config.latency_ms,
        admitted=len(admitted),
        throttled=len(refused),
        goodput=(len(admitted) - 1) / span if span > 0 else 0.0,
        busiest_offered=busiest_window(both),
        busiest_admitted=busiest_window(admitted),
        first_request=origin - started,
        wall=ended - started,
        finished=finished,
        timeline=_timeline(admitted, refused, origin, paced or []),
    )


def _timeline(
    admitted: Times, refused: Times, origin: float, paced: list[tuple[float, float]]
) -> tuple[Second, ...]:
    ends = [a[-1] for a in (admitted, refused) if len(a)]
    if not ends:
        return ()
    seconds = int(max(ends) - origin) + 1
    ok = np.bincount((admitted - origin).astype(np.int64), minlength=seconds)
    bad = np.bincount((refused - origin).astype(np.int64), minlength=seconds)
    rates: dict[int, float] = {}
    for at, r in paced:
        if at >= origin:
            rates[int(at - origin)] = r
    return tuple(Second(s, int(ok[s]), int(bad[s]), rates.get(s)) for s in range(seconds))


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
        probe, ids=ids, rate=rate, started=started, ended=ended, finished=finished, paced=paced
    )


def end_to_end_bound(ids: int, rate: float) -> float:
    """The wall-time target: 2 % over the time the rate alone needs, plus a second."""
    return 1.02 * ids / (MAX_BATCH * rate) + 1.0


@dataclass(frozen=True, slots=True)
class Check:
    """One figure against its target."""

    name: str
    value: str
    target: str
    ok: bool


def rate_checks(report: RunReport) -> list[Check]:
    """Rate accuracy: goodput ≥ 99 % of ``--rate``, no window above it, ≤ 1 % throttled."""
    r = report.rate
    return [
        Check(
            "goodput",
            f"{report.goodput:,.1f} req/s ({report.goodput / r:.1%} of {r:g})",
            "≥ 99 %",
            report.goodput >= 0.99 * r,
        ),
        Check(
            "busiest 1-s window (sent)",
            f"{report.busiest_offered:,} calls",
            f"≤ {r:g}",
            report.busiest_offered <= r,
        ),
        Check(
            "throttled",
            f"{report.throttled:,} of {report.requests:,} ({report.throttled_share:.2%})",
            "≤ 1 %",
            report.throttled_share <= 0.01,
        ),
    ]


def end_to_end_checks(report: RunReport) -> list[Check]:
    """End to end: finished within the wall-time bound, first request in under a second."""
    bound = end_to_end_bound(report.ids, report.rate)
    return [
        Check(
            "wall time",
            f"{report.wall:,.1f} s ({report.ids / report.wall:,.0f} users/s)",
            f"≤ {bound:,.1f} s",
            report.finished and report.wall <= bound,
        ),
        Check(
            "time to first request",
            f"{report.first_request:.2f} s",
            "< 1 s",
            report.first_request < 1.0,
        ),
    ]
