"""The instrumented emulator and what a run looked like from the server's side.

A :class:`Probe` is an implicit-mode emulator (every 24-hex ``user_id`` exists) whose rate window
also logs each API call's arrival, admitted or throttled, on the emulator's own clock, so "no
1-second window above R" is checked against what the server saw, over true sliding windows, not
against what the client believes it sent. :func:`summarize` turns those logs into a
:class:`RunReport`.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bulkresign.emulator import Emulator, EmulatorConfig, RunningServer, serve_in_thread
from bulkresign.emulator.ratelimit import SlidingWindow

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["Probe", "RunReport", "Second", "Times", "busiest_window", "summarize"]

Times = npt.NDArray[np.float64]


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
        self._watched: frozenset[str] = frozenset()
        self.first_watched: float | None = None
        """When the first resign call naming a watched ID arrived (:meth:`watch`)."""

    async def _on_resign(self, path: str, user_ids: list[str], request: web.Request) -> None:
        now = self.emulator.clock()
        self._resigns.append(now)
        if self.first_watched is None and not self._watched.isdisjoint(user_ids):
            self.first_watched = now

    def watch(self, user_ids: frozenset[str]) -> None:
        """Note when a resign call first names one of ``user_ids`` (:attr:`first_watched`)."""
        self._watched, self.first_watched = user_ids, None

    @contextmanager
    def serving(self) -> Iterator[RunningServer]:
        """Serve on 127.0.0.1 from a thread for the duration of the block."""
        # A full collection over everything this process has imported stops the emulator for
        # 15-25 ms; the requests that queue meanwhile would be stamped as one burst.
        gc.freeze()
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
    last_call: float
    """Seconds from the last call reaching the emulator to the end of the run: closing it."""
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
    lo, hi = (
        since if since is not None else -np.inf,
        until if until is not None else np.inf,
    )
    admitted = admitted[(admitted >= lo) & (admitted < hi)]
    refused = refused[(refused >= lo) & (refused < hi)]
    both = np.sort(np.concatenate([admitted, refused]))
    origin = float(both[0]) if len(both) else started
    last = float(both[-1]) if len(both) else ended
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
        last_call=ended - last,
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
