"""Retry policy, retry budget, error budget and circuit breaker."""

from __future__ import annotations

import random
import statistics
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkresign.errors import ConfigError
from bulkresign.retry import CircuitBreaker, ErrorBudget, OutcomeKind, RetryBudget, RetryPolicy

policies = st.builds(
    lambda base, factor, attempts: RetryPolicy(base=base, cap=base * factor, max_attempts=attempts),
    st.floats(min_value=1e-3, max_value=10.0),
    st.floats(min_value=1.0, max_value=1e4),
    st.integers(min_value=1, max_value=50),
)
attempts = st.integers(min_value=0, max_value=1000)
seeds = st.integers(min_value=0, max_value=2**32)


class TestBackoff:
    @given(policies, attempts, seeds)
    def test_delay_is_within_the_full_jitter_range(
        self, policy: RetryPolicy, attempt: int, seed: int
    ) -> None:
        """Every delay lies in [0, min(cap, base * 2**attempt)]."""
        delay = policy.delay(attempt, random.Random(seed))
        assert 0.0 <= delay <= min(policy.cap, policy.base * 2**attempt)

    @given(policies, attempts, seeds, st.floats(min_value=0.0, max_value=1e5))
    def test_delay_is_never_shorter_than_retry_after(
        self, policy: RetryPolicy, attempt: int, seed: int, retry_after: float
    ) -> None:
        """A server's Retry-After is a floor on the delay, even beyond the cap."""
        delay = policy.delay(attempt, random.Random(seed), retry_after)
        assert retry_after <= delay <= max(retry_after, policy.ceiling(attempt))

    def test_jitter_is_uniform_over_the_range(self) -> None:
        """Delays spread evenly from 0 to the ceiling: mean about half of it, extremes reached."""
        policy = RetryPolicy(base=0.5, cap=60.0)
        rng = random.Random(1)
        delays = [policy.delay(3, rng) for _ in range(20_000)]
        assert statistics.fmean(delays) == pytest.approx(2.0, rel=0.02)
        assert min(delays) < 0.01
        assert max(delays) > 3.99

    def test_ceiling_doubles_up_to_the_cap(self) -> None:
        """The ceiling doubles with each attempt until it reaches the cap."""
        policy = RetryPolicy(base=0.5, cap=10.0)
        assert [policy.ceiling(a) for a in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]

    def test_huge_attempt_does_not_overflow(self) -> None:
        """An absurd attempt number gives the cap, not an OverflowError."""
        assert RetryPolicy(base=1e-300, cap=1.0).ceiling(100_000) == 1.0

    def test_negative_attempt_is_a_bug(self) -> None:
        """A negative attempt number is refused."""
        with pytest.raises(ValueError, match="attempt"):
            RetryPolicy().delay(-1, random.Random(0))

    @pytest.mark.parametrize(
        "settings",
        [{"base": 0.0}, {"base": 2.0, "cap": 1.0}, {"cap": float("inf")}, {"max_attempts": 0}],
    )
    def test_out_of_range_settings_are_refused(self, settings: dict[str, float]) -> None:
        """A non-positive base, a cap below it, an infinite cap or no attempts is refused."""
        with pytest.raises(ConfigError):
            RetryPolicy(**settings)  # type: ignore[arg-type]


class TestRetryBudget:
    def test_floor_is_available_from_the_start(self) -> None:
        """Before any first attempt, ``floor`` retries are allowed, and no more."""
        budget = RetryBudget(ratio=0.1, floor=3)
        assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]

    def test_first_attempts_earn_retries(self) -> None:
        """Each first attempt earns ``ratio`` of a retry."""
        budget = RetryBudget(ratio=0.1, floor=100)
        budget.record_first_attempt(1000)
        assert budget.allowed == 200

    def test_exhausted_budget_takes_nothing(self) -> None:
        """A refused retry is not counted as spent."""
        budget = RetryBudget(ratio=0.0, floor=1)
        budget.try_spend()
        assert not budget.try_spend()
        assert (budget.spent, budget.remaining) == (1, 0)

    @given(st.lists(st.booleans(), max_size=500), st.floats(0.0, 1.0), st.integers(0, 20))
    def test_retries_never_exceed_the_budget(
        self, ops: list[bool], ratio: float, floor: int
    ) -> None:
        """Whatever the interleaving, retries stay within floor + ratio x first attempts."""
        budget = RetryBudget(ratio=ratio, floor=floor)
        for is_first in ops:
            if is_first:
                budget.record_first_attempt()
            else:
                budget.try_spend()
            assert budget.spent <= floor + ratio * budget.first_attempts

    @pytest.mark.parametrize(("ratio", "floor"), [(-0.1, 10), (0.1, -1), (float("inf"), 1)])
    def test_out_of_range_settings_are_refused(self, ratio: float, floor: int) -> None:
        """A negative or infinite ratio, or a negative floor, is refused."""
        with pytest.raises(ConfigError):
            RetryBudget(ratio=ratio, floor=floor)


class TestErrorBudgetParsing:
    @given(st.integers(min_value=0, max_value=10**12))
    def test_count_round_trips(self, count: int) -> None:
        """``N`` is a count of failed IDs."""
        assert ErrorBudget.parse(str(count)) == ErrorBudget(count=count)

    @given(st.decimals(min_value=0, max_value=100, places=3))
    def test_percentage_round_trips(self, percent: Decimal) -> None:
        """``P%`` is a percentage of processed IDs."""
        assert ErrorBudget.parse(f"{percent}%").percent == pytest.approx(float(str(percent)))

    @pytest.mark.parametrize("text", [" 25 ", "2.5 %", ".5%", "5.%"])
    def test_whitespace_and_decimal_forms_are_accepted(self, text: str) -> None:
        """Surrounding spaces and the usual decimal spellings parse."""
        ErrorBudget.parse(text)

    @pytest.mark.parametrize("text", ["", "abc", "-1", "1.5", "1e3", "10%%", "%", "nan%", "101%"])
    def test_garbage_is_a_config_error_with_a_hint(self, text: str) -> None:
        """Anything else is a one-line ConfigError that shows the accepted forms."""
        with pytest.raises(ConfigError, match="--max-errors"):
            ErrorBudget.parse(text)

    @given(st.text())
    def test_any_text_parses_or_raises_config_error(self, text: str) -> None:
        """No input makes parse raise anything but ConfigError."""
        try:
            ErrorBudget.parse(text)
        except ConfigError:
            pass

    def test_describes_itself(self) -> None:
        """str() reads as the operator wrote it."""
        assert [str(ErrorBudget.parse(t)) for t in ("7", "2.5%")] == ["7 IDs", "2.5%"]


class TestErrorBudgetJudging:
    def test_count_allows_exactly_n(self) -> None:
        """``N`` tolerates N failed IDs and is exceeded by the next one."""
        budget = ErrorBudget(count=3)
        assert not budget.exceeded(3, 10)
        assert budget.exceeded(4, 10)

    def test_percentage_waits_for_enough_ids(self) -> None:
        """A percentage is not judged before ``min_processed`` IDs."""
        budget = ErrorBudget(percent=1.0, min_processed=100)
        assert not budget.exceeded(50, 99)
        assert budget.exceeded(50, 100)

    def test_percentage_is_a_share_of_processed(self) -> None:
        """Once judged, a percentage is exceeded only when errors/processed is above it."""
        budget = ErrorBudget(percent=2.0)
        assert not budget.exceeded(20, 1000)
        assert budget.exceeded(21, 1000)

    @given(st.integers(0, 10**6), st.integers(0, 10**6), st.floats(0.0, 100.0))
    def test_more_errors_never_help(self, errors: int, processed: int, percent: float) -> None:
        """If a count of errors exceeds the budget, any larger count does too."""
        budget = ErrorBudget(percent=percent)
        if budget.exceeded(errors, processed):
            assert budget.exceeded(errors + 1, processed)

    def test_exactly_one_form_is_required(self) -> None:
        """A budget is a count or a percentage, not both or neither."""
        with pytest.raises(ConfigError):
            ErrorBudget(count=1, percent=1.0)
        with pytest.raises(ConfigError):
            ErrorBudget()


def model_is_open(outcomes: list[OutcomeKind], limit: int) -> bool:
    """The breaker's rule stated directly: any fatal, or ``limit`` in-doubts without an answer."""
    streak = 0
    for kind in outcomes:
        if kind is OutcomeKind.FATAL:
            return True
        if kind is OutcomeKind.IN_DOUBT:
            streak += 1
            if streak >= limit:
                return True
        elif kind is not OutcomeKind.NOT_APPLIED:
            streak = 0
    return False


class TestCircuitBreaker:
    def test_starts_closed(self) -> None:
        """A new breaker lets the run proceed."""
        breaker = CircuitBreaker()
        assert (breaker.is_open, breaker.reason) == (False, None)

    def test_fatal_opens_at_once(self) -> None:
        """One fatal outcome opens the breaker, and the reason carries its detail."""
        breaker = CircuitBreaker()
        breaker.record("fatal", "401 credentials refused")
        assert breaker.is_open
        assert breaker.reason is not None and "401 credentials refused" in breaker.reason

    def test_consecutive_in_doubt_opens(self) -> None:
        """``max_in_doubt`` in-doubt outcomes in a row open it; one fewer does not."""
        breaker = CircuitBreaker(max_in_doubt=5)
        for _ in range(4):
            breaker.record(OutcomeKind.IN_DOUBT)
        assert not breaker.is_open
        breaker.record(OutcomeKind.IN_DOUBT)
        assert breaker.is_open
        assert breaker.reason is not None and "5 calls in a row" in breaker.reason

    @pytest.mark.parametrize("answer", [OutcomeKind.OK, OutcomeKind.REJECTED])
    def test_a_clear_answer_ends_the_streak(self, answer: OutcomeKind) -> None:
        """A success or a rejection between in-doubt outcomes resets the count."""
        breaker = CircuitBreaker(max_in_doubt=2)
        for kind in (OutcomeKind.IN_DOUBT, answer, OutcomeKind.IN_DOUBT):
            breaker.record(kind)
        assert not breaker.is_open

    def test_not_applied_neither_ends_nor_extends_the_streak(self) -> None:
        """Throttling or a refused connection in between does not reset the count."""
        breaker = CircuitBreaker(max_in_doubt=2)
        for kind in ("in_doubt", "not_applied", "in_doubt"):
            breaker.record(kind)
        assert breaker.is_open

    def test_stays_open(self) -> None:
        """Once open, later successes do not close it."""
        breaker = CircuitBreaker()
        breaker.record("fatal")
        reason = breaker.reason
        for _ in range(10):
            breaker.record("ok")
        assert (breaker.is_open, breaker.reason) == (True, reason)

    def test_unknown_outcome_kind_is_a_bug(self) -> None:
        """An outcome name the breaker does not know is refused."""
        with pytest.raises(ValueError):
            CircuitBreaker().record("maybe")

    @given(st.lists(st.sampled_from(OutcomeKind), max_size=60), st.integers(1, 6))
    def test_matches_its_rule_for_any_history(
        self, outcomes: list[OutcomeKind], limit: int
    ) -> None:
        """For any sequence of outcomes, the breaker is open exactly when its rule says so."""
        breaker = CircuitBreaker(max_in_doubt=limit)
        for kind in outcomes:
            breaker.record(kind)
        assert breaker.is_open == model_is_open(outcomes, limit)
