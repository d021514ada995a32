"""The clocks: virtual time that moves only when told (or when everyone waits), and the real one."""

from __future__ import annotations

import anyio
import pytest

from bulkresign.clock import FakeClock, MonotonicClock


class TestFakeClockManual:
    async def test_time_stands_still_until_advanced(self) -> None:
        """Without an advance, virtual time does not move, whatever the scheduler does."""
        clock = FakeClock(start=5.0)
        await clock.settle()
        assert clock.now() == 5.0

    async def test_advance_wakes_sleepers_in_deadline_order(self) -> None:
        """Sleepers wake in deadline order, each seeing its own deadline as the time."""
        clock = FakeClock()
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, deadline: float) -> None:
            await clock.sleep_until(deadline)
            woke.append((name, clock.now()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper, "late", 0.3)
            tg.start_soon(sleeper, "early", 0.1)
            tg.start_soon(sleeper, "middle", 0.2)
            await clock.advance(1.0)
        assert woke == [("early", 0.1), ("middle", 0.2), ("late", 0.3)]
        assert clock.now() == 1.0

    async def test_equal_deadlines_wake_in_arrival_order(self) -> None:
        """Sleepers with the same deadline wake in the order they went to sleep."""
        clock = FakeClock()
        woke: list[int] = []

        async def sleeper(n: int) -> None:
            await clock.sleep_until(1.0)
            woke.append(n)

        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(sleeper, n)
                await clock.settle()
            await clock.advance(1.0)
        assert woke == [0, 1, 2, 3, 4]

    async def test_sleepers_beyond_the_target_stay_asleep(self) -> None:
        """Advancing to t wakes nobody whose deadline is after t."""
        clock = FakeClock()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(clock.sleep_until, 2.0)
                await clock.advance_to(1.5)
                assert clock.sleepers == 1
                assert clock.next_deadline == 2.0
                scope.cancel()

    async def test_past_deadline_returns_at_once(self) -> None:
        """Sleeping until a time already reached does not wait."""
        clock = FakeClock(start=3.0)
        await clock.sleep_until(2.0)
        assert clock.sleepers == 0

    async def test_cancelled_sleeper_is_forgotten(self) -> None:
        """A cancelled sleep leaves no sleeper behind."""
        clock = FakeClock()
        with anyio.move_on_after(0):
            await clock.sleep_until(10.0)
        assert clock.sleepers == 0
        assert clock.next_deadline is None

    @pytest.mark.parametrize("step", [-1.0, -1e-9])
    async def test_time_cannot_go_backwards(self, step: float) -> None:
        """Advancing by a negative amount is refused."""
        clock = FakeClock()
        with pytest.raises(ValueError, match="backwards"):
            await clock.advance(step)


class TestFakeClockAutojump:
    async def test_long_sleep_finishes_at_once(self) -> None:
        """Inside autojump, an hour of sleep takes no real time and ends exactly on its deadline."""
        clock = FakeClock()
        async with clock.autojump():
            await clock.sleep_until(3600.0)
        assert clock.now() == 3600.0

    async def test_periodic_tasks_interleave_in_time_order(self) -> None:
        """Two periodic tasks see time advance in the merged order of their deadlines."""
        clock = FakeClock()
        ticks: list[tuple[float, str]] = []

        async def ticker(name: str, period: float, count: int) -> None:
            for k in range(1, count + 1):
                await clock.sleep_until(k * period)
                ticks.append((clock.now(), name))

        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(ticker, "a", 0.3, 4)
            tg.start_soon(ticker, "b", 0.5, 3)
        assert [t for t, _ in ticks] == sorted(t for t, _ in ticks)
        assert len(ticks) == 7

    async def test_body_error_propagates(self) -> None:
        """An exception in the autojump block reaches the caller."""
        clock = FakeClock()
        with pytest.raises(RuntimeError, match="boom"):
            async with clock.autojump():
                raise RuntimeError("boom")


class TestMonotonicClock:
    async def test_reads_the_event_loop_clock(self) -> None:
        """now() is anyio's current time."""
        before = anyio.current_time()
        now = MonotonicClock().now()
        assert before <= now <= anyio.current_time()

    async def test_sleep_until_waits_for_the_deadline(self) -> None:
        """sleep_until does not return before its deadline."""
        clock = MonotonicClock()
        deadline = clock.now() + 0.02
        await clock.sleep_until(deadline)
        assert clock.now() >= deadline
