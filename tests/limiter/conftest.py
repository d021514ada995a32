"""Fixtures for the pacing tests: a virtual clock, queued acquirers, window counting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio.abc
import pytest

from bulkresign.clock import FakeClock
from bulkresign.limiter import RateLimiter

NS = 1_000_000_000


def busiest_window(times_ns: Sequence[int]) -> int:
    """The most timestamps (integer nanoseconds) in any half-open window ``[t, t + 1 s)``."""
    ordered = sorted(times_ns)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - NS:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.fixture
def clock() -> FakeClock:
    """A virtual clock starting at 0."""
    return FakeClock()


@pytest.fixture
def window_count() -> Callable[[Sequence[int]], int]:
    """:func:`busiest_window`: the most timestamps in any 1-s window."""
    return busiest_window


QueueUp = Callable[[anyio.abc.TaskGroup, RateLimiter, int], Awaitable[list[tuple[int, float]]]]


@pytest.fixture
def queue_up(clock: FakeClock) -> QueueUp:
    """Queue ``n`` acquirers in order at the current instant; return where grants get recorded.

    Time must stand still meanwhile (no autojump): the test advances it afterwards.
    """

    async def queue(
        tg: anyio.abc.TaskGroup, limiter: RateLimiter, n: int
    ) -> list[tuple[int, float]]:
        grants: list[tuple[int, float]] = []

        async def one(k: int) -> None:
            grants.append((k, await limiter.acquire()))

        for k in range(n):
            tg.start_soon(one, k)
            await clock.settle()
        return grants

    return queue
