"""The window guard: at most ``limit`` requests in any second, as the server counts them.

A GenAuth userpool admits at most its limit in any sliding second, counted as requests arrive
(:mod:`bulkresign.emulator.ratelimit`). The limiter's evenly spaced slots keep a second's worth
under the limit on average; this log keeps every window under it: it holds the instant each of
the last window's requests counts from, and a slot that would be the ``limit + 1``-th inside one
second plus a margin waits until the oldest has left that span.

A request reaches the server a little after its slot, and by different amounts, so the log makes
three allowances (each measured on a 2-core VM, docs/pacing.md):

* **Margin.** The span is one second plus 5 ms of arrival jitter; each congestion event widens it
  by as much again, up to a cap, and 30 s without one narrow it back.
* **Cold connections.** The first requests of a run open the pool's connections and count as
  leaving ``lag`` later.
* **Sent.** A request counts from when it was written to the socket, once the caller reports that.
"""

from __future__ import annotations

import bisect
from collections import deque

__all__ = ["NEVER", "SendWindow"]

_NS = 1_000_000_000
#: "Long ago", in nanoseconds: the instant that has always passed.
NEVER = -(1 << 62)
#: Nanoseconds a grant's time may be off after a round trip through a float.
_ROUNDING = 2
#: A widened margin returns to its base after this long without a congestion event.
_NARROW_AFTER = 30 * _NS


class SendWindow:
    """The instants the last window's requests count from, and when the next may go.

    Args:
        limit: requests allowed in any window.
        margin: seconds added to the one-second window (the base margin, and each widening).
        max_margin: the widest the margin grows.

    All instants are integer nanoseconds of the limiter's clock.
    """

    def __init__(self, limit: int, margin: float, max_margin: float) -> None:
        self._limit = limit
        self._step = round(margin * _NS)
        self._base = _NS + self._step
        self._widest = _NS + max(self._step, round(max_margin * _NS))
        self._span = self._base
        self._widened_at = NEVER
        self._log: deque[int] = deque()
        self._cold = 0
        self._cold_lag = 0

    @property
    def span(self) -> int:
        """The window's length now, in nanoseconds: one second plus the current margin."""
        return self._span

    def opens_at(self, now: int) -> int:
        """The first instant a request may count without overfilling a window (``NEVER``: now)."""
        log = self._log
        while log and log[0] <= now - self._span:
            log.popleft()
        return log[0] + self._span if len(log) >= self._limit else NEVER

    def count(self, now: int) -> None:
        """Count a request granted at ``now`` (later, if it is expected to open a connection)."""
        counted = now
        if self._cold:
            self._cold -= 1
            counted += self._cold_lag
        self._insert(counted)

    def sent(self, granted: int, now: int) -> None:
        """Count the request granted at ``granted`` from ``now``, when it was written.

        Requests already out of the window, counted later anyway (a cold connection's), or moved
        once already are left as they are.
        """
        if not now - self._span < granted < now:
            return
        log = self._log
        i = bisect.bisect_left(log, granted - _ROUNDING)
        if i == len(log) or log[i] > granted + _ROUNDING:
            return
        del log[i]
        self._insert(now)

    def expect_new_connections(self, count: int, lag: int) -> None:
        """Count the next ``count`` requests as leaving ``lag`` nanoseconds after their grant."""
        self._cold = max(0, count)
        self._cold_lag = max(0, lag)

    def widen(self, now: int) -> None:
        """A congestion event: widen the margin by one step, up to its cap."""
        self._span = min(self._span + self._step, self._widest)
        self._widened_at = now

    def relax(self, now: int) -> None:
        """A clean response: back to the base margin once 30 s have passed without an event."""
        if self._span > self._base and now - self._widened_at > _NARROW_AFTER:
            self._span = self._base

    def _insert(self, at: int) -> None:
        log = self._log
        if log and log[-1] > at:
            bisect.insort(log, at)
        else:
            log.append(at)
