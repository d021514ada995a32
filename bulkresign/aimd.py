"""AIMD rate control: how fast to send, given which responses were throttled.

This is TCP's congestion-avoidance rule (RFC 5681 §3.1; Chiu and Jain, "Analysis of the increase
and decrease algorithms for congestion avoidance", 1989) applied to a request rate: multiply the
rate by ``decrease`` on a congestion event, add ``increase`` per second of clean sending, and
never exceed the configured maximum. Several throttled responses to requests that were already in
flight when the rate was cut are one congestion event, not several, as in TCP NewReno's recovery
(RFC 6582): a throttled request counts only if it left after the last cut, or, when the caller
cannot say when it left, only once ``cooldown`` seconds have passed since the cut.

The class is synchronous and takes time as an argument, so it is tested without an event loop;
:class:`bulkresign.limiter.RateLimiter` owns one and applies its pauses.
"""

from __future__ import annotations

import math

from bulkresign.errors import ConfigError

__all__ = ["RateControl"]

#: Seconds after an isolated event during which more 429s count as part of it.
_OVERFLOW_SPAN = 0.05


class RateControl:
    """The current rate and the pauses that throttling calls for.

    Args:
        max_rate: the configured ``--rate``; the rate starts here and never exceeds it.
        decrease: the factor applied on a congestion event (0 < decrease < 1).
        increase: requests per second added per second of clean sending; by default
            ``max(1, 2 %`` of ``max_rate)``, so recovering from any cut takes under a minute.
        min_rate: the floor for cuts (at most ``max_rate``).
        cooldown: seconds after a cut during which throttled responses that cannot say when they
            were sent do not cut again, and successes do not raise the rate.
        pause_base: the pause, in seconds, for a congestion event without ``retry_after``; it
            doubles for each further event without a clean success in between.
        max_pause: the cap on any pause, including a server's ``retry_after``.
        gentle: the factor for an *isolated* event — one after ``quiet`` seconds' worth of
            clean responses, while sending within one such step of the configured maximum.
            Pacing right at a server's limit draws a lone 429 now and then from arrival jitter
            alone (measured: one every 1-10 s on a loaded 2-core VM); cutting 30 % and pausing
            for each would cost seconds of throughput, so an isolated event cuts by ``gentle``
            without a pause, further 429s within 50 ms of it count as the same event, and
            only an event after fewer clean responses (real congestion refuses every call over
            the limit, so clean ones are few in between) cuts by ``decrease`` and pauses.
        quiet: how many seconds of clean responses, at the current rate, make the next congestion
            event isolated.
    """

    def __init__(
        self,
        max_rate: float,
        *,
        decrease: float = 0.7,
        increase: float | None = None,
        min_rate: float = 1.0,
        cooldown: float = 0.5,
        pause_base: float = 0.1,
        max_pause: float = 60.0,
        gentle: float = 0.99,
        quiet: float = 0.5,
    ) -> None:
        _check(0 < gentle < 1, f"gentle must be between 0 and 1 exclusive, not {gentle}")
        self._quiet = quiet
        _check(
            max_rate > 0 and math.isfinite(max_rate),
            f"--rate must be a positive number of requests per second, not {max_rate}",
        )
        _check(0 < decrease < 1, f"decrease must be between 0 and 1 exclusive, not {decrease}")
        _check(increase is None or increase > 0, f"increase must be positive, not {increase}")
        _check(min_rate > 0, f"min_rate must be positive, not {min_rate}")
        _check(cooldown >= 0, f"cooldown must not be negative, not {cooldown}")
        _check(0 <= pause_base <= max_pause, "pause_base must be between 0 and max_pause")
        self._max = float(max_rate)
        self._min = min(float(min_rate), self._max)
        self._decrease = decrease
        self._increase = increase if increase is not None else max(1.0, 0.02 * self._max)
        self._cooldown = cooldown
        self._pause_base = pause_base
        self._max_pause = max_pause
        self._rate = self._max
        self._cut_at = -math.inf
        self._isolated_until = -math.inf
        self._clean = math.inf  # clean responses since the last event: none has happened yet
        self._gentle = gentle
        self._streak = 0
        self.throttled = 0
        """Throttled responses reported."""
        self.events = 0
        """Congestion events: throttled responses that cut the rate."""

    @property
    def rate(self) -> float:
        """Requests per second to send at now."""
        return self._rate

    @property
    def max_rate(self) -> float:
        """The configured maximum."""
        return self._max

    def on_throttled(
        self, now: float, retry_after: float | None = None, sent_at: float | None = None
    ) -> float | None:
        """Record a throttled response; return the pause it calls for, in seconds, or ``None``.

        Args:
            now: the time the response arrived.
            retry_after: the server's Retry-After in seconds, if it sent one. It is always
                honoured (capped at ``max_pause``); without it only a new congestion event pauses.
            sent_at: when the throttled request was sent (what ``RateLimiter.acquire`` returned);
                it lets a slow round trip count as one congestion event whatever its length.
        """
        self.throttled += 1
        pause: float | None = None
        if self._is_fresh(now, sent_at) and now >= self._isolated_until:
            isolated = (
                self._clean > self._quiet * self._rate and self._rate >= self._max * self._gentle
            )
            self._cut_at = now
            self._clean = 0.0
            self.events += 1
            if isolated:
                # One server-side second held one call too many; the next slot is milliseconds
                # away and the window has slid by then, so a pause would only cost throughput.
                self._rate = max(self._min, self._rate * self._gentle)
                # One overflow often refuses two or three calls sent within a few milliseconds.
                self._isolated_until = now + _OVERFLOW_SPAN
            else:
                self._streak += 1
                self._rate = max(self._min, self._rate * self._decrease)
                pause = min(self._max_pause, self._pause_base * 2.0 ** min(self._streak - 1, 64))
        if retry_after is not None and math.isfinite(retry_after):
            pause = min(self._max_pause, max(0.0, retry_after))
        return pause

    def on_success(self, now: float, sent_at: float | None = None) -> None:
        """Record a clean response: raise the rate by ``increase / rate``.

        Sending at the current rate for a second thus adds ``increase``; sending slower (less
        demand) raises it more slowly. Responses to requests sent before the last cut (or within
        ``cooldown`` of it, when ``sent_at`` is unknown) say nothing about the new rate and count
        for nothing.
        """
        self._clean += 1
        if not self._is_fresh(now, sent_at):
            return
        self._streak = 0
        if self._rate < self._max:
            self._rate = min(self._max, self._rate + self._increase / self._rate)

    def _is_fresh(self, now: float, sent_at: float | None) -> bool:
        """Whether a response reflects the rate as it has been since the last cut."""
        if sent_at is not None:
            return sent_at > self._cut_at
        return now >= self._cut_at + self._cooldown


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
