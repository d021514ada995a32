"""The userpool's rate limit: at most ``limit`` accepted calls in any sliding 1-second window.

GenAuth documents "300 QPS / 用户池" on the free plan and answers excess calls with HTTP 429
(spec tag ``开发准备/接口限流``), but not how the window is measured. A strict sliding window of
the last second is the least forgiving reading: a client that bursts a whole second's quota at
once after idling (``aiolimiter``'s default form) is caught, where a fixed window or a token
bucket would let up to twice the limit through around a boundary. Only accepted calls occupy
the window, so a client hammering at 10x the limit still gets exactly ``limit`` through.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """Admits a call at ``now`` if fewer than ``limit`` were admitted in ``(now - 1, now]``.

    O(1) amortized per call: each admitted timestamp is appended once and popped once.
    ``limit=None`` admits everything and remembers nothing.
    """

    __slots__ = ("_admitted", "limit")

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> bool:
        """Record and admit a call at ``now``, or refuse it (and record nothing)."""
        limit = self.limit
        if limit is None:
            return True
        admitted = self._admitted
        horizon = now - 1.0
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        if len(admitted) >= limit:
            return False
        admitted.append(now)
        return True
