"""The rate limiter: evenly spaced send slots, a global pause on throttling, and AIMD.

Slots follow GCRA's virtual-scheduling form
(https://en.wikipedia.org/wiki/Generic_cell_rate_algorithm), as aiometer's ``max_per_second``
does: a slot is due one interval after the previous one and is never handed out before it is due.
Time is kept in integer nanoseconds with the interval rounded up, so under a virtual clock the
spacing is exact. A token bucket would instead let a whole second's worth through at once after an
idle spell (aiolimiter measured 1,999 in one window at 1,000/s), and the server answers that burst
with 429s.

Idle time earns no credit: a slot that came due while nobody was waiting is gone. A slot that came
due while a waiter was already queued keeps its place in the schedule for a short slack, though,
because event-loop timers fire late (epoll counts whole milliseconds): without that, every late
wake-up would push the schedule back and the rate would fall short (aiolimiter's one-token form
delivers 858/s when asked for 1,000/s). A limiter that sends ahead keeps a slot's place for as
long as it sends ahead: at 300 req/s that took goodput from 98.4-99.1 % to 99.4 % and the 429s
from 3-6 to none in 30-s runs (docs/pacing.md). The slack can hand out a few slots together; a
sliding log of the last second's requests (:mod:`bulkresign.window`) still keeps every 1-second
window at or under ``max_rate`` (its ceiling, for a fractional rate), on a real clock too.

A limiter may also hand slots out a little ahead of schedule (``send_ahead``): the head waiter
sleeps until its slot is due, then it and the waiters behind it take every slot due within the
next ``send_ahead``, so one timer wake-up sends a few requests together. At 300 req/s and 20 ms
that is six requests a wake-up instead of one; an idle event loop costs far more per wake-up
than per request, so this cuts the client's CPU by about a fifth (docs/benchmarks.md). The
schedule itself does not move: the long-run rate is unchanged, a pause is never entered early,
and the sliding log still bounds every 1-second window.

Waiters queue first in, first out. Only the head of the queue holds a timer, and it takes its slot
when it wakes, so the schedule always follows the current rate and pause, a cancelled waiter hands
its turn on without losing or duplicating a slot, and each slot costs one timer wake-up.

The sliding log counts each request from when it was written to the socket, once the caller
reports that (:meth:`RateLimiter.sent`), and from its grant until then: aiohttp on Python 3.11
writes a request from a task of its own, which a busy event loop runs up to 15 ms after the slot,
and the server counts a request when it arrives (docs/pacing.md).

A throttled response pauses every waiter, not just the one that saw it (Retry-After is a statement
about the whole client), and the rate adapts by AIMD (:mod:`bulkresign.aimd`).
"""

from __future__ import annotations

import math
from collections import deque

import anyio
import anyio.lowlevel

from bulkresign.aimd import RateControl
from bulkresign.clock import Clock, FakeClock, MonotonicClock
from bulkresign.stats import LimiterStats
from bulkresign.window import NEVER, SendWindow

__all__ = ["SEND_AHEAD", "Clock", "FakeClock", "LimiterStats", "MonotonicClock", "RateLimiter"]

_NS = 1_000_000_000
#: How far behind schedule a queued slot may be handed out: a little over epoll's 1 ms timeout
#: granularity, so a late timer costs no throughput.
_TIMER_SLACK = 2_000_000
#: How far ahead of schedule a run hands out slots: six requests a wake-up at 300 req/s, far
#: inside any server's one-second window.
SEND_AHEAD = 0.02


class _Waiter:
    __slots__ = ("arrived", "event")

    def __init__(self, arrived: int) -> None:
        self.arrived = arrived
        self.event = anyio.Event()


class RateLimiter:
    """Hands out send slots at most ``rate`` a second, pausing everyone when the server throttles.

    Args:
        rate: the configured maximum (``--rate``), in requests per second.
        clock: where time comes from; the event loop's monotonic clock by default.
        decrease, increase, min_rate, cooldown, pause_base, max_pause, gentle, quiet: the AIMD
            settings, as
            documented on :class:`bulkresign.aimd.RateControl`.
        window_margin: seconds added to the one-second window the grants are counted in. A
            request reaches the server a little after its slot (event loop, socket), and that
            jitter alone would put ``rate + 1`` arrivals in some server-side second; 5 ms of
            margin absorbs it for 0.5 % of throughput.
            Each congestion event widens the margin by as much again, up to
            ``max_window_margin``, and 30 s without one narrow it back: a lone 429 while
            pacing at the server's limit is most often arrival jitter larger than the margin,
            which only a wider margin prevents.
        max_window_margin: the widest the margin grows (1.5 % of throughput at 15 ms).
        send_ahead: how long before its due time a slot may be handed out, so that one
            timer wake-up serves several waiters; 0 spaces every slot exactly.

    Raises:
        ConfigError: a setting is out of range.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Clock | None = None,
        decrease: float = 0.7,
        increase: float | None = None,
        min_rate: float = 1.0,
        cooldown: float = 0.5,
        pause_base: float = 0.1,
        max_pause: float = 60.0,
        gentle: float = 0.99,
        quiet: float = 0.5,
        window_margin: float = 0.005,
        max_window_margin: float = 0.015,
        send_ahead: float = 0.0,
    ) -> None:
        if not 0.0 <= send_ahead < 1.0:
            raise ValueError(f"send_ahead must be in [0, 1) seconds, not {send_ahead}")
        self._ahead = round(send_ahead * _NS)
        self._slack = max(_TIMER_SLACK, self._ahead)
        self._control = RateControl(
            rate,
            decrease=decrease,
            increase=increase,
            min_rate=min_rate,
            cooldown=cooldown,
            pause_base=pause_base,
            max_pause=max_pause,
            gentle=gentle,
            quiet=quiet,
        )
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._interval = _interval_ns(self._control.rate)
        self._last: int | None = None
        self._paused_until = NEVER
        self._paused_ns = 0
        self._queue: deque[_Waiter] = deque()
        self._granted = 0
        self._window = SendWindow(
            math.ceil(self._control.max_rate), window_margin, max_window_margin
        )

    @property
    def current_rate(self) -> float:
        """Requests per second the limiter paces at now."""
        return self._control.rate

    @property
    def max_rate(self) -> float:
        """The configured maximum rate."""
        return self._control.max_rate

    @property
    def paused_until(self) -> float | None:
        """Clock time until which no slot is handed out, or ``None`` when not paused."""
        return self._paused_until / _NS if self._paused_until > self._now_ns() else None

    @property
    def stats(self) -> LimiterStats:
        """A consistent snapshot of rate, pause and counters."""
        ahead = max(0, self._paused_until - self._now_ns())
        return LimiterStats(
            current_rate=self._control.rate,
            max_rate=self._control.max_rate,
            paused_until=self._paused_until / _NS if ahead else None,
            granted=self._granted,
            waiting=len(self._queue),
            throttled=self._control.throttled,
            throttle_events=self._control.events,
            paused_seconds=(self._paused_ns - ahead) / _NS,
        )

    async def acquire(self) -> float:
        """Wait for the next send slot; return the clock time it was granted at.

        Waiters are served first come, first served, and no slot is handed out during a pause.
        Cancelling a waiter passes its turn to the next one. Pass the returned time as
        ``sent_at`` to :meth:`on_throttled` and :meth:`on_success`.
        """
        now = self._now_ns()
        if not self._queue and self._wait(now) is None:
            await anyio.lowlevel.checkpoint_if_cancelled()
            return self._grant(now, now)
        waiter = _Waiter(now)
        self._queue.append(waiter)
        try:
            if self._queue[0] is not waiter:
                await waiter.event.wait()
            while (until := self._wait(now := self._now_ns())) is not None:
                # The rate or the pause may change while we sleep; re-read both on waking.
                await self._clock.sleep_until(until / _NS)
            return self._grant(now, waiter.arrived)
        finally:
            if self._queue and self._queue[0] is waiter:
                self._queue.popleft()
                if self._queue:
                    self._queue[0].event.set()
            else:
                self._queue.remove(waiter)

    def expect_new_connections(self, count: int, lag: float) -> None:
        """Count the next ``count`` slots in the window as if their requests left ``lag`` later.

        A request that must open a connection (DNS, TCP, TLS) reaches the server later after its
        slot than one on a warm connection. The first requests of a run open the pool's
        connections; a second later, requests on warm connections arrive promptly, and without
        this the server could see both in one second.
        """
        self._window.expect_new_connections(count, round(lag * _NS))

    def sent(self, granted_at: float) -> None:
        """Count the request granted at ``granted_at`` in the window from now, when it leaves.

        The server counts a request when it arrives. A request the event loop held back after
        its slot (aiohttp on Python 3.11 writes it from a task of its own: up to 15 ms later on
        a busy 2-core VM) would otherwise be counted early, and a second later the server could
        see it in the same window as one sent on time. Call this as the request is written;
        slots already out of the window, counted later anyway (a cold connection's), or moved
        once already are left as they are.
        """
        self._window.sent(round(granted_at * _NS), self._now_ns())

    def on_throttled(
        self, retry_after: float | None = None, *, sent_at: float | None = None
    ) -> float:
        """Record a throttled response: pause every waiter and, once per congestion event, cut.

        Args:
            retry_after: the server's Retry-After in seconds, when it sent one; always honoured
                (up to ``max_pause``). Without it, a new congestion event pauses for
                ``pause_base``, doubled per event since the last clean success.
            sent_at: what :meth:`acquire` returned for the throttled request, when known.

        Returns:
            Seconds from now until slots are handed out again.
        """
        now = self._now_ns()
        events = self._control.events
        pause = self._control.on_throttled(now / _NS, retry_after, sent_at)
        if self._control.events > events:
            self._window.widen(now)
        self._interval = _interval_ns(self._control.rate)
        if pause is not None:
            until = now + round(pause * _NS)
            if until > self._paused_until:
                self._paused_ns += until - max(now, self._paused_until)
                self._paused_until = until
        return max(0, self._paused_until - now) / _NS

    def on_success(self, *, sent_at: float | None = None) -> None:
        """Record a clean response, which raises the rate back towards ``max_rate``."""
        now = self._clock.now()
        self._control.on_success(now, sent_at)
        self._window.relax(round(now * _NS))
        self._interval = _interval_ns(self._control.rate)

    def _due(self, now: int) -> int:
        """The instant (ns) the next slot is due, as seen at ``now``."""
        return max(self._scheduled(), self._hard(now))

    def _scheduled(self) -> int:
        """When the schedule says the next slot is due (``send_ahead`` may hand it out early)."""
        return NEVER if self._last is None else self._last + self._interval

    def _hard(self, now: int) -> int:
        """Before this instant (ns) no slot may be handed out at all: the pause, the window."""
        return max(self._paused_until, self._window.opens_at(now))

    def _wait(self, now: int) -> int | None:
        """``None`` if a slot may be handed out at ``now``, else the instant (ns) to sleep until.

        The sleep runs to the slot's due time, not to ``send_ahead`` before it: waking then lets
        the slots of the next ``send_ahead`` go out together.
        """
        scheduled, hard = self._scheduled(), self._hard(now)
        if now >= hard and now >= scheduled - self._ahead:
            return None
        return max(scheduled, hard)

    def _grant(self, now: int, arrived: int) -> float:
        """Hand out the slot that is due, to a waiter that arrived at ``arrived``."""
        # The schedule moves on from the slot's due time when the waiter was already there (a
        # late timer), but from the waiter's arrival when the slot went unused (idle time).
        self._last = max(self._due(now), arrived, now - max(self._interval, self._slack))
        self._window.count(now)
        self._granted += 1
        return now / _NS

    def _now_ns(self) -> int:
        return round(self._clock.now() * _NS)


def _interval_ns(rate: float) -> int:
    """Nanoseconds between slots, rounded up so that ``rate`` is never exceeded."""
    return math.ceil(_NS / rate)
