"""RateLimiter against timers that fire late, as a busy event loop's do, and on the real clock."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.abc
import pytest

from bulkresign.clock import FakeClock, MonotonicClock
from bulkresign.limiter import RateLimiter

NS = 1_000_000_000
QueueUp = Callable[[anyio.abc.TaskGroup, RateLimiter, int], Awaitable[list[tuple[int, float]]]]


def ns(seconds: float) -> int:
    """Clock seconds as integer nanoseconds, the limiter's own unit (exact for virtual times)."""
    return round(seconds * NS)


class LateClock:
    """A virtual clock whose timers fire late, like a busy event loop's.

    ``lateness`` is either fixed, or a sequence used one per sleep (then on time).
    """

    def __init__(self, inner: FakeClock, lateness: float | Sequence[float]) -> None:
        self.inner = inner
        self.lateness = iter(
            itertools.repeat(lateness) if isinstance(lateness, float) else lateness
        )

    def now(self) -> float:
        return self.inner.now()

    async def sleep_until(self, deadline: float) -> None:
        await self.inner.sleep_until(deadline + next(self.lateness, 0.0))


class TestLateTimers:
    @pytest.mark.parametrize(("rate", "lateness"), [(300, 0.001), (1000, 0.0015), (3000, 0.001)])
    async def test_late_timers_cost_no_throughput(
        self,
        clock: FakeClock,
        window_count: Callable[[Sequence[int]], int],
        rate: int,
        lateness: float,
    ) -> None:
        """Timers that fire up to a few intervals late still deliver 99 % of the rate, no more."""
        limiter = RateLimiter(rate, clock=LateClock(clock, lateness), window_margin=0.0)
        grants: list[int] = []

        async def acquirer() -> None:
            while (granted := await limiter.acquire()) < 3:
                grants.append(ns(granted))

        async with clock.autojump(), anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(acquirer)
        assert len(grants) >= 0.99 * rate * 3
        assert window_count(grants) <= rate

    async def test_one_late_timer_does_not_let_an_extra_slot_into_a_window(
        self, clock: FakeClock, queue_up: QueueUp, window_count: Callable[[Sequence[int]], int]
    ) -> None:
        """One slot granted late, then on-time ones: the sliding log still caps the window."""
        limiter = RateLimiter(10, clock=LateClock(clock, [0.09]), window_margin=0.0)
        async with anyio.create_task_group() as tg:
            grants = await queue_up(tg, limiter, 30)
            await clock.advance(5.0)
        times = [ns(t) for _, t in grants]
        assert times[1] == ns(0.19)
        assert window_count(times) == 10
        assert times[11] == ns(1.19)

    async def test_catch_up_is_bounded_by_the_slack(
        self, clock: FakeClock, queue_up: QueueUp
    ) -> None:
        """After a long stall, the queue gets a couple of milliseconds' worth at once, not more."""
        limiter = RateLimiter(1000, clock=LateClock(clock, 0.5))
        async with anyio.create_task_group() as tg:
            grants = await queue_up(tg, limiter, 10)
            await clock.advance(5.0)
        # 2 ms of slack at 1 ms spacing: the slot that was due, and the two after it.
        assert [t for _, t in grants].count(grants[1][1]) == 3

    async def test_sending_ahead_widens_the_slack_as_much(
        self, clock: FakeClock, queue_up: QueueUp
    ) -> None:
        """With 5 ms sent ahead, a stalled queue keeps 5 ms of slots behind and takes 5 ahead."""
        limiter = RateLimiter(1000, clock=LateClock(clock, 0.5), send_ahead=0.005)
        async with anyio.create_task_group() as tg:
            grants = await queue_up(tg, limiter, 20)
            await clock.advance(5.0)
        # The first wake-up hands out 0-5 ms. The next, 500 ms late, keeps the slots of the
        # last 5 ms (six, up to now) and sends five ahead: 11 at 1 ms spacing.
        assert [t for _, t in grants].count(grants[6][1]) == 11


class TestRealClock:
    async def test_monotonic_clock_paces_roughly_right(self) -> None:
        """On the real clock, 20 slots at 50/s span at least 19 intervals and finish promptly."""
        limiter = RateLimiter(50, clock=MonotonicClock())
        grants: list[float] = []

        async def one() -> None:
            grants.append(await limiter.acquire())

        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
        assert grants[-1] - grants[0] >= 19 * 0.02 - 1e-6
        assert anyio.current_time() - start < 5.0
