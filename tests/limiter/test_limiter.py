"""RateLimiter on a virtual clock: even slots, no bursts, FIFO, a global pause, cancellation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable, Sequence

import anyio
import pytest

from bulkresign.clock import FakeClock
from bulkresign.errors import ConfigError
from bulkresign.limiter import LimiterStats, RateLimiter

NS = 1_000_000_000
QueueUp = Callable[[anyio.abc.TaskGroup, RateLimiter, int], Awaitable[list[tuple[int, float]]]]


def ns(seconds: float) -> int:
    """Clock seconds as integer nanoseconds, the limiter's own unit (exact for virtual times)."""
    return round(seconds * NS)


def interval(rate: float) -> int:
    """The limiter's slot spacing at ``rate``: 1/rate in nanoseconds, rounded up."""
    return math.ceil(NS / rate)


async def crowd(clock: FakeClock, limiter: RateLimiter, seconds: float) -> list[int]:
    """500 acquirers taking slots in a loop until ``seconds``; the grant times, in ns."""
    grants: list[int] = []

    async def acquirer() -> None:
        while (granted := await limiter.acquire()) < seconds:
            grants.append(ns(granted))

    async with clock.autojump(), anyio.create_task_group() as tg:
        for _ in range(500):
            tg.start_soon(acquirer)
    return grants


async def grants_after_reports(clock: FakeClock, *report_after: float) -> list[float]:
    """At 10/s: take a slot, report it sent after each delay in turn, then take ten more slots."""
    limiter = RateLimiter(10, clock=clock, window_margin=0.0)
    first = await limiter.acquire()
    for delay in report_after:
        await clock.advance(delay)
        limiter.sent(first)
    async with clock.autojump():
        return [await limiter.acquire() for _ in range(10)]


class TestSpacing:
    async def test_first_slot_is_immediate(self, clock: FakeClock) -> None:
        """A limiter that has handed out nothing grants the first slot at once."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.0)
        assert await limiter.acquire() == 0.0

    async def test_slots_are_exactly_one_interval_apart(self, clock: FakeClock) -> None:
        """Back-to-back acquires are granted exactly 1/rate apart."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0)
        async with clock.autojump():
            grants = [ns(await limiter.acquire()) for _ in range(50)]
        assert grants == [k * 10_000_000 for k in range(50)]

    async def test_interval_rounds_up_so_the_rate_is_never_exceeded(
        self, clock: FakeClock, window_count: Callable[[Sequence[int]], int]
    ) -> None:
        """At a rate whose interval is not whole nanoseconds, no window holds one slot too many."""
        limiter = RateLimiter(3, clock=clock, window_margin=0.0)
        async with clock.autojump():
            grants = [ns(await limiter.acquire()) for _ in range(30)]
        assert grants[1] == 333_333_334
        assert window_count(grants) == 3

    @pytest.mark.parametrize(("rate", "seconds"), [(300, 10), (1000, 10), (3000, 3)])
    async def test_many_acquirers_never_exceed_the_rate(
        self,
        clock: FakeClock,
        window_count: Callable[[Sequence[int]], int],
        rate: int,
        seconds: int,
    ) -> None:
        """500 acquirers in a loop get every slot: none above the rate, none lost (goodput 100%)."""
        limiter = RateLimiter(rate, clock=clock, window_margin=0.0)
        grants = await crowd(clock, limiter, seconds)
        assert window_count(grants) <= rate
        assert len(grants) >= 0.99 * rate * seconds
        assert sorted(grants) == [k * interval(rate) for k in range(len(grants))]


class TestIdle:
    async def test_no_burst_after_idle(self, clock: FakeClock, queue_up: QueueUp) -> None:
        """After a long idle spell, a crowd of acquirers still gets one slot per interval."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.0)
        await limiter.acquire()
        await clock.advance(60.0)
        async with anyio.create_task_group() as tg:
            grants = await queue_up(tg, limiter, 20)
            await clock.advance(3.0)
        assert [ns(t) for _, t in grants] == [ns(60.0) + k * ns(0.1) for k in range(20)]

    async def test_slow_demand_earns_no_credit(self, clock: FakeClock, queue_up: QueueUp) -> None:
        """Acquires spaced wider than the interval are granted on arrival and bank nothing."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.0)
        for k in range(5):
            await clock.advance_to(k * 0.25)
            assert await limiter.acquire() == k * 0.25
        async with anyio.create_task_group() as tg:
            grants = await queue_up(tg, limiter, 3)
            await clock.advance(1.0)
        assert [ns(t) for _, t in grants] == [ns(1.1), ns(1.2), ns(1.3)]


class TestFairness:
    async def test_waiters_are_served_in_arrival_order(
        self, clock: FakeClock, queue_up: QueueUp
    ) -> None:
        """Slots go to waiters first come, first served."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0)
        async with anyio.create_task_group() as tg:
            grants = await queue_up(tg, limiter, 50)
            await clock.advance(1.0)
        assert [k for k, _ in grants] == list(range(50))
        assert [t for _, t in grants] == sorted(t for _, t in grants)

    async def test_newcomer_does_not_jump_the_queue(
        self, clock: FakeClock, queue_up: QueueUp
    ) -> None:
        """A slot that comes due while others wait goes to the queue's head, not to a newcomer."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.0)
        async with anyio.create_task_group() as tg:
            grants = await queue_up(tg, limiter, 3)
            await clock.advance(0.1)
            tg.start_soon(limiter.acquire)
            await clock.advance(1.0)
        assert [k for k, _ in grants] == [0, 1, 2]
        assert limiter.stats.granted == 4


class TestPause:
    async def test_throttling_pauses_every_waiter_until_the_deadline(
        self, clock: FakeClock, queue_up: QueueUp
    ) -> None:
        """Retry-After holds back the sleeping head and everyone behind it until the deadline."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0, quiet=math.inf)
        await limiter.acquire()
        async with anyio.create_task_group() as tg:
            grants = await queue_up(tg, limiter, 10)
            assert limiter.on_throttled(2.0) == 2.0
            await clock.advance(1.999)
            assert grants == []
            await clock.advance(1.0)
        assert [ns(t) for _, t in grants][:2] == [ns(2.0), ns(2.0) + interval(70)]

    async def test_newcomer_waits_out_the_pause(self, clock: FakeClock) -> None:
        """An acquire during a pause, with nobody queued, waits for the pause to end."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0, quiet=math.inf)
        limiter.on_throttled(1.5)
        async with clock.autojump():
            assert await limiter.acquire() == 1.5

    async def test_shorter_retry_after_does_not_shorten_the_pause(self, clock: FakeClock) -> None:
        """A later, shorter Retry-After leaves the longer pause in force."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0, quiet=math.inf)
        limiter.on_throttled(5.0)
        assert limiter.on_throttled(1.0) == 5.0
        assert limiter.paused_until == 5.0

    async def test_retry_after_is_capped(self, clock: FakeClock) -> None:
        """A huge Retry-After pauses for at most max_pause."""
        limiter = RateLimiter(100, clock=clock, max_pause=30.0, window_margin=0.0, quiet=math.inf)
        assert limiter.on_throttled(86_400.0) == 30.0

    async def test_computed_pause_doubles_per_congestion_event(self, clock: FakeClock) -> None:
        """Without Retry-After, each event since the last success pauses twice as long."""
        limiter = RateLimiter(
            100, clock=clock, pause_base=0.1, cooldown=0.5, window_margin=0.0, quiet=math.inf
        )
        pauses = []
        for _ in range(3):
            pauses.append(limiter.on_throttled(None))
            await clock.advance(1.0)
        assert pauses == [0.1, 0.2, 0.4]

    async def test_in_flight_throttles_do_not_extend_the_pause(self, clock: FakeClock) -> None:
        """429s arriving within the cooldown of a cut neither cut again nor pause longer."""
        limiter = RateLimiter(
            100, clock=clock, pause_base=0.1, cooldown=0.5, window_margin=0.0, quiet=math.inf
        )
        limiter.on_throttled(None)
        await clock.advance(0.05)
        assert limiter.on_throttled(None) == pytest.approx(0.05)
        assert limiter.current_rate == 70.0

    async def test_pause_ends_by_itself(self, clock: FakeClock) -> None:
        """Once the deadline passes, the limiter reports no pause."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0, quiet=math.inf)
        limiter.on_throttled(1.0)
        await clock.advance(1.0)
        assert limiter.paused_until is None
        assert not limiter.stats.paused

    async def test_stats_count_throttling_and_paused_time(self, clock: FakeClock) -> None:
        """Stats report the rate, the pause in force, and what throttling has cost so far."""
        limiter = RateLimiter(100, clock=clock, cooldown=0.5, window_margin=0.0, quiet=math.inf)
        limiter.on_throttled(2.0)
        await clock.advance(0.1)
        limiter.on_throttled(None)
        await clock.advance(0.4)
        stats = limiter.stats
        assert stats.paused_seconds == pytest.approx(0.5)
        assert dataclasses.replace(stats, paused_seconds=0.5) == LimiterStats(
            current_rate=70.0,
            max_rate=100.0,
            paused_until=2.0,
            granted=0,
            waiting=0,
            throttled=2,
            throttle_events=1,
            paused_seconds=0.5,
        )


class TestCancellation:
    async def test_cancelled_head_passes_its_turn(
        self, clock: FakeClock, queue_up: QueueUp
    ) -> None:
        """Cancelling the sleeping head hands its slot to the next waiter: no gap, no double."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.0)
        await limiter.acquire()
        async with anyio.create_task_group() as tg:
            head = anyio.CancelScope()

            async def cancellable() -> None:
                with head:
                    await limiter.acquire()

            tg.start_soon(cancellable)
            await clock.settle()
            grants = await queue_up(tg, limiter, 3)
            await clock.advance(0.05)
            head.cancel()
            await clock.advance(1.0)
        assert [ns(t) for _, t in grants] == [ns(0.1), ns(0.2), ns(0.3)]
        assert limiter.stats.granted == 4

    async def test_cancelled_middle_waiter_leaves_no_gap(self, clock: FakeClock) -> None:
        """Cancelling a waiter mid-queue keeps the others in order and evenly spaced."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.0)
        scopes = [anyio.CancelScope() for _ in range(5)]
        grants: list[tuple[int, float]] = []

        async def waiter(k: int) -> None:
            with scopes[k]:
                grants.append((k, await limiter.acquire()))

        async with anyio.create_task_group() as tg:
            for k in range(5):
                tg.start_soon(waiter, k)
                await clock.settle()
            scopes[2].cancel()
            await clock.advance(1.0)
        assert grants == [(0, 0.0), (1, 0.1), (3, 0.2), (4, 0.3)]
        assert limiter.stats.waiting == 0

    async def test_mass_cancellation_keeps_the_schedule(
        self, clock: FakeClock, window_count: Callable[[Sequence[int]], int]
    ) -> None:
        """Cancelling every third of 300 waiters mid-run loses and duplicates no slot."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0)
        scopes = [anyio.CancelScope() for _ in range(300)]
        grants: list[int] = []

        async def waiter(k: int) -> None:
            with scopes[k]:
                grants.append(ns(await limiter.acquire()))

        async with anyio.create_task_group() as tg:
            for k in range(300):
                tg.start_soon(waiter, k)
            await clock.advance(0.5)
            for scope in scopes[::3]:
                scope.cancel()
            await clock.advance(10.0)
        assert sorted(grants) == [k * ns(0.01) for k in range(len(grants))]
        assert 200 <= len(grants) <= 217
        assert window_count(grants) <= 100


class TestConfiguration:
    @pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
    def test_rate_must_be_positive_and_finite(self, rate: float) -> None:
        """A zero, negative or infinite rate is a configuration error naming --rate."""
        with pytest.raises(ConfigError, match="--rate"):
            RateLimiter(rate)


class TestWindowMargin:
    async def test_the_margin_delays_the_slot_that_would_fill_a_second(
        self, clock: FakeClock
    ) -> None:
        """With a margin, slot rate+1 waits until one second plus the margin after the first."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.005)
        async with clock.autojump():
            granted = [await limiter.acquire() for _ in range(11)]
        assert granted[10] - granted[0] == pytest.approx(1.005)
        assert granted[9] - granted[0] == pytest.approx(0.9, abs=1e-6)


class TestSendAhead:
    async def test_one_wake_up_hands_out_the_slots_due_within_send_ahead(
        self, clock: FakeClock
    ) -> None:
        """At 100/s with 30 ms ahead, slots go out four at a time, each wake-up 40 ms apart."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0, send_ahead=0.03)
        async with clock.autojump():
            grants = [ns(await limiter.acquire()) for _ in range(20)]
        assert grants == [(k // 4) * 40_000_000 for k in range(20)]

    async def test_the_schedule_and_every_window_still_hold(
        self, clock: FakeClock, window_count: Callable[[Sequence[int]], int]
    ) -> None:
        """500 acquirers at 300/s, 20 ms ahead: no slot early by more, no window above the rate."""
        rate, seconds, ahead = 300, 10, 0.02
        limiter = RateLimiter(rate, clock=clock, window_margin=0.0, send_ahead=ahead)
        grants = sorted(await crowd(clock, limiter, seconds))
        assert window_count(grants) <= rate
        assert len(grants) >= 0.99 * rate * seconds
        assert all(t >= k * interval(rate) - ns(ahead) for k, t in enumerate(grants))

    async def test_a_pause_is_never_entered_early(self, clock: FakeClock) -> None:
        """Sending ahead of schedule does not send ahead of a throttling pause."""
        limiter = RateLimiter(100, clock=clock, window_margin=0.0, quiet=math.inf, send_ahead=0.5)
        limiter.on_throttled(1.5)
        async with clock.autojump():
            assert await limiter.acquire() == 1.5

    @pytest.mark.parametrize("ahead", [-0.01, 1.0, math.nan])
    def test_send_ahead_must_be_under_a_second(self, ahead: float) -> None:
        """A negative, NaN or whole-second send_ahead is refused."""
        with pytest.raises(ValueError, match="send_ahead"):
            RateLimiter(10, send_ahead=ahead)


class TestJitterAllowances:
    async def test_slots_on_new_connections_count_as_leaving_later(self, clock: FakeClock) -> None:
        """The first slots, expected to open connections, hold the window open ``lag`` longer."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.0)
        limiter.expect_new_connections(2, 0.05)
        async with clock.autojump():
            granted = [await limiter.acquire() for _ in range(11)]
        assert granted[9] == pytest.approx(0.9)
        assert granted[10] == pytest.approx(1.05)

    async def test_a_request_sent_late_holds_the_window_open_from_when_it_left(
        self, clock: FakeClock
    ) -> None:
        """A slot whose request left 30 ms after its grant counts in the window from then."""
        granted = await grants_after_reports(clock, 0.03)
        assert granted[8] == pytest.approx(0.9)
        assert granted[9] == pytest.approx(1.03)

    async def test_sent_on_time_changes_nothing(self, clock: FakeClock) -> None:
        """A request written at its grant's instant leaves the schedule exactly as it was."""
        limiter = RateLimiter(10, clock=clock, window_margin=0.0)
        async with clock.autojump():
            granted = []
            for _ in range(11):
                granted.append(await limiter.acquire())
                limiter.sent(granted[-1])
        assert granted[10] == pytest.approx(1.0)

    async def test_sent_counts_a_slot_once(self, clock: FakeClock) -> None:
        """Reporting the same request twice moves its slot once; the window holds one entry."""
        granted = await grants_after_reports(clock, 0.02, 0.02)
        assert granted[9] == pytest.approx(1.02)

    async def test_a_slot_already_out_of_the_window_is_ignored(self, clock: FakeClock) -> None:
        """A report that comes after its slot left the window neither fails nor counts."""
        granted = await grants_after_reports(clock, 2.0)
        assert granted[9] == pytest.approx(2.9)

    async def test_congestion_events_widen_the_margin_up_to_its_cap(self, clock: FakeClock) -> None:
        """Three congestion events widen a 5 ms margin by 5 ms each, but no further than 10 ms."""
        limiter = RateLimiter(
            10, clock=clock, window_margin=0.005, max_window_margin=0.010, pause_base=0.001,
            gentle=0.999_999, decrease=0.999_999, quiet=math.inf,
        )  # fmt: skip
        for _ in range(3):
            limiter.on_throttled(None)
            await clock.advance(1.0)
        async with clock.autojump():
            granted = [await limiter.acquire() for _ in range(11)]
        assert granted[10] - granted[0] == pytest.approx(1.010, abs=1e-4)

    async def test_a_quiet_spell_narrows_the_margin_back(self, clock: FakeClock) -> None:
        """A success 30 s after the last congestion event restores the base margin."""
        limiter = RateLimiter(
            10, clock=clock, window_margin=0.005, pause_base=0.001,
            gentle=0.999_999, decrease=0.999_999, quiet=math.inf,
        )  # fmt: skip
        limiter.on_throttled(None)
        await clock.advance(29.0)
        limiter.on_success()
        async with clock.autojump():
            widened = [await limiter.acquire() for _ in range(11)]
        await clock.advance(2.0)
        limiter.on_success()
        async with clock.autojump():
            narrowed = [await limiter.acquire() for _ in range(11)]
        assert widened[10] - widened[0] == pytest.approx(1.010, abs=1e-4)
        assert narrowed[10] - narrowed[0] == pytest.approx(1.005, abs=1e-4)
