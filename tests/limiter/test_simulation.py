"""Deterministic simulations: many virtual workers, one limiter, a server with a hard 1-s window.

The server accepts at most ``limit`` requests in any sliding second and answers the rest 429,
without Retry-After (GenAuth documents none). Each worker loops: take a slot, travel to the
server (10-50 ms), get an answer, travel back (10-50 ms), report the outcome to the limiter.
Virtual time and a seeded RNG make each run deterministic; a simulated minute takes under a
second. Goodput is measured after a 10-s warm-up, throttling over the whole run.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import pytest

from bulkresign.clock import FakeClock
from bulkresign.limiter import SEND_AHEAD, LimiterStats, RateLimiter

AHEAD = pytest.mark.parametrize("send_ahead", [0.0, SEND_AHEAD], ids=["exact", "ahead"])

LIMIT = 100


class SlidingWindowServer:
    """Accepts at most ``limit`` requests in any 1-s window (``None``: no limit); counts the rest.

    Only accepted requests fill the window, as with a QPS cap that answers the excess 429.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.window: deque[float] = deque()
        self.accepted: list[float] = []
        self.rejected: list[float] = []

    def call(self, at: float) -> bool:
        while self.window and self.window[0] <= at - 1.0:
            self.window.popleft()
        if self.limit is None or len(self.window) < self.limit:
            self.window.append(at)
            self.accepted.append(at)
            return True
        self.rejected.append(at)
        return False

    @property
    def throttled_share(self) -> float:
        return len(self.rejected) / max(1, len(self.accepted) + len(self.rejected))

    def goodput(self, start: float, end: float) -> float:
        """Accepted requests per second among those that arrived in ``[start, end)``."""
        return sum(start <= t < end for t in self.accepted) / (end - start)


@dataclass
class Run:
    stats: LimiterStats
    rates: list[tuple[float, float]] = field(default_factory=list)
    """(time, current_rate), once a simulated second."""


async def simulate(
    *,
    rate: float,
    server: SlidingWindowServer,
    duration: float = 60.0,
    workers: int = 200,
    pass_sent_at: bool = False,
    every_second: Callable[[float], None] | None = None,
    send_ahead: float = 0.0,
) -> Run:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, send_ahead=send_ahead)
    rng = random.Random(7)
    run = Run(limiter.stats)

    async def worker() -> None:
        while (sent := await limiter.acquire()) < duration:
            await clock.sleep_until(sent + rng.uniform(0.01, 0.05))
            ok = server.call(clock.now())
            await clock.sleep_until(clock.now() + rng.uniform(0.01, 0.05))
            hint = sent if pass_sent_at else None
            if ok:
                limiter.on_success(sent_at=hint)
            else:
                limiter.on_throttled(None, sent_at=hint)

    async def sampler() -> None:
        for second in range(int(duration)):
            await clock.sleep_until(float(second))
            if every_second is not None:
                every_second(float(second))
            run.rates.append((float(second), limiter.current_rate))

    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(sampler)
        for _ in range(workers):
            tg.start_soon(worker)
    run.stats = limiter.stats
    return run


class TestOverAsking:
    @AHEAD
    @pytest.mark.parametrize("pass_sent_at", [False, True], ids=["cooldown", "sent_at"])
    async def test_four_times_the_limit_converges_under_it(
        self, pass_sent_at: bool, send_ahead: float
    ) -> None:
        """Asked for 4x what the server allows: 80-100 % of the limit, at most 10 % throttled."""
        server = SlidingWindowServer(LIMIT)
        run = await simulate(
            rate=4 * LIMIT, server=server, pass_sent_at=pass_sent_at, send_ahead=send_ahead
        )
        assert 0.8 * LIMIT <= server.goodput(10.0, 60.0) <= LIMIT
        assert server.throttled_share <= 0.10
        assert max(rate for t, rate in run.rates if t >= 10.0) <= 1.1 * LIMIT

    async def test_in_flight_throttles_count_as_one_event(self) -> None:
        """Most 429s belong to a congestion event already counted, so the cuts are few."""
        server = SlidingWindowServer(LIMIT)
        run = await simulate(rate=4 * LIMIT, server=server)
        assert run.stats.throttle_events < len(server.rejected) / 5


class TestAtTheLimit:
    @AHEAD
    async def test_asking_exactly_the_limit_is_rarely_throttled(self, send_ahead: float) -> None:
        """Asked for exactly the server's limit, fewer than 1 % of requests are throttled."""
        server = SlidingWindowServer(LIMIT)
        await simulate(rate=LIMIT, server=server, send_ahead=send_ahead)
        assert server.throttled_share < 0.01

    async def test_below_the_limit_nothing_is_throttled(self) -> None:
        """Asked for less than the limit, nothing is throttled and the full rate gets through."""
        server = SlidingWindowServer(LIMIT)
        run = await simulate(rate=0.9 * LIMIT, server=server, duration=20.0)
        assert server.rejected == []
        assert server.goodput(0.0, 20.0) >= 0.99 * 0.9 * LIMIT
        assert run.stats.current_rate == 0.9 * LIMIT


class TestRecovery:
    async def test_rate_returns_to_max_once_throttling_stops(self) -> None:
        """When the server's limit lifts, the rate climbs back to --rate and goodput follows."""
        server = SlidingWindowServer(LIMIT)

        def lift_after_10s(now: float) -> None:
            if now >= 10.0:
                server.limit = None

        run = await simulate(rate=2 * LIMIT, server=server, every_second=lift_after_10s)
        assert min(rate for _, rate in run.rates) < LIMIT
        assert run.stats.current_rate == 2 * LIMIT
        assert server.goodput(55.0, 60.0) >= 0.99 * 2 * LIMIT
