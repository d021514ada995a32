"""What to do after a failed call: back off, spend from budgets, or stop the run.

* :class:`RetryPolicy` spaces the retries of a call that was certainly not applied: capped
  exponential backoff with full jitter, never sooner than the server's Retry-After.
* :class:`RetryBudget` caps retries across the whole run, so a sick server costs a bounded number
  of extra requests before the run stops (resumably).
* :class:`ErrorBudget` is ``--max-errors``: how many IDs may fail before the run stops.
* :class:`CircuitBreaker` stops the run on any fatal outcome, or when too many calls in a row may
  have been applied without the server saying so.

All four are plain state: no clock, no I/O. The dispatcher feeds them outcomes and acts on the
answers.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from enum import StrEnum

from bulkresign.errors import ApiError, ConfigError, InDoubt, NotApplied, Rejected

__all__ = ["CircuitBreaker", "ErrorBudget", "OutcomeKind", "RetryBudget", "RetryPolicy"]


class OutcomeKind(StrEnum):
    """How one call ended, as the ledger records it (see :mod:`bulkresign.errors`)."""

    OK = "ok"
    NOT_APPLIED = "not_applied"
    REJECTED = "rejected"
    IN_DOUBT = "in_doubt"
    FATAL = "fatal"

    @classmethod
    def of(cls, error: ApiError | None) -> OutcomeKind:
        """The kind of a call that raised ``error`` (``None``: it succeeded)."""
        if error is None:
            return cls.OK
        if isinstance(error, NotApplied):
            return cls.NOT_APPLIED
        if isinstance(error, Rejected):
            return cls.REJECTED
        if isinstance(error, InDoubt):
            return cls.IN_DOUBT
        return cls.FATAL


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for retrying a call that was not applied.

    Args:
        base: seconds; the backoff ceiling is ``base * 2**attempt``.
        cap: seconds; the ceiling never exceeds it.
        max_attempts: attempts of one batch, in a row without success, before the run stops.

    Raises:
        ConfigError: a setting is out of range.
    """

    base: float = 0.5
    cap: float = 60.0
    max_attempts: int = 10

    def __post_init__(self) -> None:
        if not (0 < self.base <= self.cap < math.inf):
            raise ConfigError(
                f"retry backoff needs 0 < base <= cap < inf, not base={self.base} cap={self.cap}"
            )
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {self.max_attempts}")

    def ceiling(self, attempt: int) -> float:
        """The largest delay for ``attempt``: ``min(cap, base * 2**attempt)``."""
        if attempt < 0:
            raise ValueError(f"attempt must not be negative, not {attempt}")
        if attempt >= math.log2(self.cap / self.base):
            return self.cap
        # ldexp scales by 2**attempt without an intermediate power that could overflow.
        return min(self.cap, math.ldexp(self.base, attempt))

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before sending again after ``attempt`` failed attempts.

        Full jitter, ``uniform(0, min(cap, base * 2**attempt))``, spreads the retries of many
        workers that failed together instead of sending them back in step
        (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/). A server's
        ``retry_after`` is a floor: the delay is never shorter.

        Args:
            attempt: how many attempts have failed so far (0 for "before the first retry").
            rng: the source of jitter; seed it in tests.
            retry_after: the server's Retry-After in seconds, if it sent one.
        """
        wait = rng.uniform(0.0, self.ceiling(attempt))
        if retry_after is not None and math.isfinite(retry_after):
            wait = max(wait, retry_after)
        return wait


class RetryBudget:
    """A run-wide cap on retries: at most ``ratio`` of first attempts, plus ``floor``.

    A per-client retry ratio is the Google SRE book's defence against retries amplifying an
    outage (https://sre.google/sre-book/handling-overload/); ``floor`` lets a short run retry too.
    Call :meth:`record_first_attempt` for every first send and :meth:`try_spend` before each
    retry; when it answers ``False`` the run should stop, resumably.

    Args:
        ratio: retries allowed per first attempt.
        floor: retries allowed however few first attempts there were.
    """

    def __init__(self, ratio: float = 0.1, floor: int = 100) -> None:
        if not (0 <= ratio < math.inf) or floor < 0:
            raise ConfigError(f"retry budget needs ratio >= 0 and floor >= 0, not {ratio}, {floor}")
        self._ratio = ratio
        self._floor = floor
        self.first_attempts = 0
        """First attempts recorded."""
        self.spent = 0
        """Retries granted."""

    @property
    def allowed(self) -> int:
        """Retries the run may make, given the first attempts so far."""
        return self._floor + math.floor(self._ratio * self.first_attempts)

    @property
    def remaining(self) -> int:
        """Retries left before the budget is exhausted."""
        return max(0, self.allowed - self.spent)

    def record_first_attempt(self, count: int = 1) -> None:
        """Count ``count`` first attempts, each of which earns ``ratio`` of a retry."""
        self.first_attempts += count

    def try_spend(self) -> bool:
        """Take one retry from the budget; ``False`` (and nothing taken) if it is exhausted."""
        if self.spent >= self.allowed:
            return False
        self.spent += 1
        return True


_COUNT = re.compile(r"\s*(\d+)\s*")
_PERCENT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*")


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    """``--max-errors``: the failed IDs a run tolerates, as a count or a percentage.

    Exactly one of ``count`` and ``percent`` is set. A percentage is judged only once
    ``min_processed`` IDs have been processed, so the first few failures of a run cannot stop it
    on their own.
    """

    count: int | None = None
    percent: float | None = None
    min_processed: int = 100

    def __post_init__(self) -> None:
        if (self.count is None) == (self.percent is None):
            raise ConfigError("--max-errors: give either a count or a percentage")
        if self.count is not None and self.count < 0:
            raise ConfigError(f"--max-errors must not be negative, not {self.count}")
        if self.percent is not None and not 0 <= self.percent <= 100:
            raise ConfigError(f"--max-errors must be between 0% and 100%, not {self.percent}%")

    @classmethod
    def parse(cls, text: str, *, min_processed: int = 100) -> ErrorBudget:
        """Read ``N`` (a count of IDs) or ``P%`` (a percentage of processed IDs).

        Raises:
            ConfigError: ``text`` is neither, with a hint at the accepted forms.
        """
        if match := _COUNT.fullmatch(text):
            return cls(count=int(match[1]), min_processed=min_processed)
        if match := _PERCENT.fullmatch(text):
            return cls(percent=float(match[1]), min_processed=min_processed)
        raise ConfigError(
            f"--max-errors {text!r} is not a number of IDs or a percentage "
            "(HINT: --max-errors 100 or --max-errors 0.5%)"
        )

    def exceeded(self, errors: int, processed: int) -> bool:
        """Whether ``errors`` failed IDs out of ``processed`` are more than the budget allows."""
        if self.count is not None:
            return errors > self.count
        assert self.percent is not None
        return processed >= self.min_processed and errors * 100 > self.percent * processed

    def __str__(self) -> str:
        return f"{self.count} IDs" if self.count is not None else f"{self.percent:g}%"


class CircuitBreaker:
    """Opens, for good, on a fatal outcome or on ``max_in_doubt`` in-doubt outcomes in a row.

    An open breaker means: send nothing new, record what is in flight, stop (exit 3). It never
    closes again within a run, unlike Fowler's half-open breaker
    (https://martinfowler.com/bliki/CircuitBreaker.html): a call that may have been applied is
    not something to probe with. A success or a rejection (the server answered coherently) ends
    an in-doubt streak; a not-applied outcome (no connection, throttled) neither ends nor extends
    it, as it says nothing about what the server does with requests it receives.

    Args:
        max_in_doubt: consecutive in-doubt outcomes that open the breaker.
    """

    def __init__(self, max_in_doubt: int = 5) -> None:
        if max_in_doubt < 1:
            raise ConfigError(f"max_in_doubt must be at least 1, not {max_in_doubt}")
        self._max_in_doubt = max_in_doubt
        self.in_doubt_streak = 0
        """In-doubt outcomes since the last success or rejection."""
        self.reason: str | None = None
        """Why the breaker opened; ``None`` while it is closed."""

    @property
    def is_open(self) -> bool:
        """Whether the run must stop sending."""
        return self.reason is not None

    def record(self, kind: OutcomeKind | str, detail: str | None = None) -> None:
        """Feed one call's outcome; ``detail`` (an error message) ends up in :attr:`reason`."""
        kind = OutcomeKind(kind)
        if self.is_open:
            return
        suffix = f": {detail}" if detail else ""
        if kind is OutcomeKind.FATAL:
            self.reason = f"circuit breaker open: fatal error{suffix}"
        elif kind is OutcomeKind.IN_DOUBT:
            self.in_doubt_streak += 1
            if self.in_doubt_streak >= self._max_in_doubt:
                self.reason = (
                    f"circuit breaker open: {self.in_doubt_streak} calls in a row may have been "
                    f"applied without a clear answer{suffix}"
                )
        elif kind in (OutcomeKind.OK, OutcomeKind.REJECTED):
            self.in_doubt_streak = 0
