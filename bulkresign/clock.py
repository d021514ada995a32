"""Clocks for pacing: the event loop's monotonic clock, and a virtual one for tests.

Everything timed in :mod:`bulkresign.limiter` reads time and sleeps through a :class:`Clock`, so
tests can run minutes of traffic in milliseconds and assert exact timestamps instead of sleeping
and hoping.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = ["Clock", "FakeClock", "MonotonicClock"]


class Clock(Protocol):
    """A monotonic clock in seconds, and a way to sleep until one of its instants."""

    def now(self) -> float:
        """The current time in seconds; only differences are meaningful."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (at once, after a checkpoint, if it already is)."""
        ...


class MonotonicClock:
    """``time.monotonic``, and sleeps for the time left until a deadline on it.

    Not ``anyio.current_time``: that looks the backend up on every call, and the limiter reads
    the clock several times a request (asyncio's loop clock is ``time.monotonic`` anyway).
    """

    def now(self) -> float:
        """Monotonic time in seconds."""
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until :meth:`now` reaches ``deadline``."""
        await anyio.sleep(max(0.0, deadline - time.monotonic()))


@dataclass(order=True)
class _Sleeper:
    deadline: float
    seq: int
    event: anyio.Event = field(compare=False)
    gone: bool = field(default=False, compare=False)


class FakeClock:
    """Virtual time: it moves only when a test advances it, or when every task is waiting.

    Sleepers wake in deadline order, and in the order they went to sleep when deadlines tie, so a
    run is deterministic. Two ways to move time:

    * ``await clock.advance(seconds)`` / ``await clock.advance_to(t)``: step to each sleeper's
      deadline in turn up to ``t`` (letting woken tasks run before the next step), then to ``t``;
    * ``async with clock.autojump():``: inside the block, whenever the tasks have settled, time
      jumps straight to the earliest sleeper's deadline, as trio's ``MockClock`` does with
      ``autojump_threshold=0``. This is discrete-event simulation: a minute of hundreds of tasks
      takes about a second.

    "Settled" means no task has used the clock during ``quiet_passes`` consecutive passes of the
    scheduler (each pass runs every task that was ready). Code under test that, after being woken,
    runs more than ``quiet_passes`` scheduler hops before touching the clock again should raise it.

    Args:
        start: the initial time in seconds.
        quiet_passes: scheduler passes without clock activity that count as settled.
    """

    def __init__(self, start: float = 0.0, *, quiet_passes: int = 3) -> None:
        if quiet_passes < 1:
            raise ValueError(f"quiet_passes must be at least 1, not {quiet_passes}")
        self._now = start
        self._quiet_passes = quiet_passes
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self._activity = 0
        self._registered: anyio.Event | None = None

    def now(self) -> float:
        """The virtual time in seconds."""
        self._activity += 1
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        """Wait until virtual time reaches ``deadline``."""
        self._activity += 1
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        sleeper = _Sleeper(deadline, next(self._seq), anyio.Event())
        heapq.heappush(self._sleepers, sleeper)
        if self._registered is not None:
            self._registered.set()
        try:
            await sleeper.event.wait()
        finally:
            # A cancelled sleeper stays in the heap, marked, and is skipped when it surfaces.
            sleeper.gone = True

    @property
    def next_deadline(self) -> float | None:
        """The earliest deadline anyone is sleeping until, or ``None``."""
        while self._sleepers and self._sleepers[0].gone:
            heapq.heappop(self._sleepers)
        return self._sleepers[0].deadline if self._sleepers else None

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock."""
        return sum(not s.gone for s in self._sleepers)

    async def settle(self) -> None:
        """Let the scheduler run until no task has used the clock for ``quiet_passes`` passes."""
        quiet = 0
        while quiet < self._quiet_passes:
            mark = self._activity
            await anyio.lowlevel.checkpoint()
            quiet = quiet + 1 if self._activity == mark else 0

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in order on the way."""
        if seconds < 0:
            raise ValueError(f"time cannot go backwards (advance by {seconds})")
        await self.advance_to(self._now + seconds)

    async def advance_to(self, instant: float) -> None:
        """Move time forward to ``instant``, waking sleepers in order on the way."""
        if instant < self._now:
            raise ValueError(f"time cannot go backwards (from {self._now} to {instant})")
        while True:
            await self.settle()
            deadline = self.next_deadline
            if deadline is None or deadline > instant:
                break
            self._wake(deadline)
        self._now = instant
        await self.settle()

    @asynccontextmanager
    async def autojump(self) -> AsyncIterator[FakeClock]:
        """Within the block, jump time to the next deadline whenever every task is waiting.

        An exception from the block propagates as itself, not wrapped in an exception group.
        """
        error: BaseException | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._drive)
            try:
                yield self
            except BaseException as exc:  # re-raised below, once the driver has stopped
                error = exc
            tg.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _drive(self) -> None:
        while True:
            await self.settle()
            deadline = self.next_deadline
            if deadline is None:
                self._registered = anyio.Event()
                await self._registered.wait()
                self._registered = None
            else:
                self._wake(deadline)

    def _wake(self, deadline: float) -> None:
        """Set the time to ``deadline`` and wake everyone sleeping until then."""
        self._now = max(self._now, deadline)
        self._activity += 1
        while self._sleepers and self._sleepers[0].deadline <= deadline:
            sleeper = heapq.heappop(self._sleepers)
            if not sleeper.gone:
                sleeper.gone = True
                sleeper.event.set()
