"""RateControl: multiplicative decrease once per congestion event, additive increase to the max."""

from __future__ import annotations

import math

import pytest

from bulkresign.aimd import RateControl
from bulkresign.errors import ConfigError


def succeed_for(control: RateControl, start: float, seconds: float) -> float:
    """Feed successes at the current rate for ``seconds``; return the time reached."""
    now = start
    while now < start + seconds:
        control.on_success(now)
        now += 1 / control.rate
    return now


class TestDecrease:
    def test_throttle_cuts_the_rate(self) -> None:
        """The first throttled response multiplies the rate by ``decrease``."""
        control = RateControl(100, decrease=0.7, quiet=math.inf)
        control.on_throttled(0.0)
        assert control.rate == 70.0
        assert control.events == 1

    def test_throttles_within_the_cooldown_are_one_event(self) -> None:
        """A flurry of 429s from requests already in flight cuts the rate once."""
        control = RateControl(100, cooldown=0.5, quiet=math.inf)
        for k in range(20):
            control.on_throttled(k * 0.02)
        assert control.rate == 70.0
        assert (control.throttled, control.events) == (20, 1)

    def test_throttle_after_the_cooldown_cuts_again(self) -> None:
        """Once the cooldown has passed, throttling is a new congestion event."""
        control = RateControl(100, cooldown=0.5, quiet=math.inf)
        control.on_throttled(0.0)
        control.on_throttled(0.5)
        assert control.rate == pytest.approx(49.0)

    def test_request_sent_before_the_cut_does_not_cut_again(self) -> None:
        """With sent_at, a throttled request that left before the last cut is part of that event."""
        control = RateControl(100, cooldown=0.5, quiet=math.inf)
        control.on_throttled(1.0, sent_at=0.9)
        control.on_throttled(5.0, sent_at=0.95)
        assert control.events == 1

    def test_request_sent_after_the_cut_cuts_at_once(self) -> None:
        """With sent_at, a 429 for a request that left after the cut is a new event at once."""
        control = RateControl(100, cooldown=10.0, quiet=math.inf)
        control.on_throttled(1.0, sent_at=0.9)
        control.on_throttled(1.2, sent_at=1.1)
        assert control.events == 2

    def test_rate_never_falls_below_min_rate(self) -> None:
        """Cuts stop at ``min_rate``."""
        control = RateControl(10, min_rate=2.0, cooldown=0.0, quiet=math.inf)
        for k in range(50):
            control.on_throttled(float(k))
        assert control.rate == 2.0

    def test_min_rate_above_max_is_clamped(self) -> None:
        """A ``min_rate`` above the maximum means "never cut"."""
        control = RateControl(0.5, min_rate=1.0, quiet=math.inf)
        control.on_throttled(0.0)
        assert control.rate == 0.5


class TestIncrease:
    def test_success_within_the_cooldown_does_not_raise(self) -> None:
        """Successes of requests sent before the cut settle in without raising the rate."""
        control = RateControl(100, cooldown=0.5, quiet=math.inf)
        control.on_throttled(0.0)
        control.on_success(0.3)
        assert control.rate == 70.0

    def test_success_sent_before_the_cut_does_not_raise(self) -> None:
        """With sent_at, a success of a request that left before the cut says nothing new."""
        control = RateControl(100, cooldown=0.0, quiet=math.inf)
        control.on_throttled(1.0)
        control.on_success(2.0, sent_at=0.5)
        assert control.rate == 70.0

    def test_a_second_of_clean_sending_adds_increase(self) -> None:
        """Sending at the current rate for one second raises it by about ``increase``."""
        control = RateControl(100, increase=5.0, cooldown=0.0, quiet=math.inf)
        control.on_throttled(0.0)
        succeed_for(control, 1.0, 1.0)
        assert control.rate == pytest.approx(75.0, abs=0.2)

    def test_rate_recovers_to_max_and_stops_there(self) -> None:
        """Clean sending brings the rate back to the maximum, never above it."""
        control = RateControl(100, cooldown=0.0, quiet=math.inf)
        control.on_throttled(0.0)
        control.on_throttled(1.0)
        succeed_for(control, 2.0, 60.0)
        assert control.rate == 100.0

    @pytest.mark.parametrize(("max_rate", "increase"), [(10, 1.0), (300, 6.0), (3000, 60.0)])
    def test_default_increase_is_two_percent_of_max_at_least_one(
        self, max_rate: float, increase: float
    ) -> None:
        """By default each success adds max(1, 2 % of the maximum) / rate: that much a second."""
        control = RateControl(max_rate, cooldown=0.0, quiet=math.inf)
        control.on_throttled(0.0)
        cut = control.rate
        control.on_success(1.0)
        assert control.rate == pytest.approx(cut + increase / cut)


class TestPause:
    def test_congestion_event_pauses_for_pause_base(self) -> None:
        """A first congestion event without Retry-After asks for ``pause_base``."""
        assert RateControl(100, pause_base=0.1, quiet=math.inf).on_throttled(0.0) == 0.1

    def test_pause_doubles_until_a_clean_success(self) -> None:
        """Each event since the last success doubles the pause; a success resets it."""
        control = RateControl(100, pause_base=0.1, cooldown=0.5, quiet=math.inf)
        pauses = [control.on_throttled(float(k)) for k in range(3)]
        control.on_success(10.0)
        pauses.append(control.on_throttled(11.0))
        assert pauses == [0.1, 0.2, 0.4, 0.1]

    def test_pause_is_capped(self) -> None:
        """The doubling stops at ``max_pause``."""
        control = RateControl(100, pause_base=1.0, max_pause=5.0, cooldown=0.0, quiet=math.inf)
        pauses = [control.on_throttled(float(k)) for k in range(100)]
        assert max(p for p in pauses if p is not None) == 5.0

    def test_retry_after_replaces_the_computed_pause(self) -> None:
        """A server's Retry-After is the pause, even when shorter than the computed one."""
        assert (
            RateControl(100, pause_base=1.0, quiet=math.inf).on_throttled(0.0, retry_after=0.25)
            == 0.25
        )

    def test_retry_after_pauses_even_within_the_cooldown(self) -> None:
        """Every Retry-After is honoured, not only the one that cut the rate."""
        control = RateControl(100, cooldown=10.0, quiet=math.inf)
        control.on_throttled(0.0)
        assert control.on_throttled(0.1, retry_after=3.0) == 3.0

    def test_in_flight_throttle_without_retry_after_asks_no_pause(self) -> None:
        """A 429 that is part of an event already handled asks for nothing more."""
        control = RateControl(100, cooldown=10.0, quiet=math.inf)
        control.on_throttled(0.0)
        assert control.on_throttled(0.1) is None

    @pytest.mark.parametrize(("given", "pause"), [(-3.0, 0.0), (1e9, 60.0)])
    def test_retry_after_is_clamped(self, given: float, pause: float) -> None:
        """A negative Retry-After means no wait; a huge one is capped at ``max_pause``."""
        assert RateControl(100, quiet=math.inf).on_throttled(0.0, retry_after=given) == pause

    @pytest.mark.parametrize("garbage", [math.nan, math.inf])
    def test_non_finite_retry_after_is_ignored(self, garbage: float) -> None:
        """A NaN or infinite Retry-After counts as absent."""
        assert (
            RateControl(100, pause_base=0.1, quiet=math.inf).on_throttled(0.0, retry_after=garbage)
            == 0.1
        )


class TestConfiguration:
    @pytest.mark.parametrize(
        "settings",
        [
            {"decrease": 1.0},
            {"decrease": 0.0},
            {"increase": 0.0},
            {"min_rate": 0.0},
            {"cooldown": -1.0},
            {"pause_base": -0.1},
            {"pause_base": 2.0, "max_pause": 1.0},
        ],
    )
    def test_out_of_range_settings_are_refused(self, settings: dict[str, float]) -> None:
        """Each setting outside its range is a configuration error."""
        with pytest.raises(ConfigError):
            RateControl(100, **settings, quiet=math.inf)


class TestIsolatedEvents:
    def test_a_lone_throttle_at_full_rate_cuts_gently(self) -> None:
        """The first event after a quiet spell, at the configured rate, cuts by ``gentle``."""
        control = RateControl(100, gentle=0.95, quiet=10.0)
        control.on_throttled(100.0)
        assert control.rate == pytest.approx(95.0)

    def test_a_second_event_soon_after_cuts_by_decrease(self) -> None:
        """Another congestion event within ``quiet`` seconds is real congestion: ×decrease."""
        control = RateControl(100, decrease=0.7, gentle=0.95, quiet=10.0, cooldown=0.5)
        control.on_throttled(100.0)
        control.on_throttled(101.0)
        assert control.rate == pytest.approx(100 * 0.95 * 0.7)

    def test_a_lone_throttle_does_not_pause(self) -> None:
        """An isolated event asks for no pause; real congestion right after it does."""
        control = RateControl(100, gentle=0.99, quiet=2.0, cooldown=0.5, pause_base=0.1)
        assert control.on_throttled(100.0) is None
        assert control.on_throttled(101.0) == pytest.approx(0.1)

    @pytest.mark.parametrize(
        ("successes", "second_cut"), [(200, 0.99), (150, 0.7)], ids=["isolated", "congestion"]
    )
    def test_clean_responses_since_the_last_event_decide_the_next_cut(
        self, successes: int, second_cut: float
    ) -> None:
        """Over ``quiet`` s of successes make the next event isolated, soon or not; fewer, a cut."""
        control = RateControl(100, decrease=0.7, gentle=0.99, quiet=2.0, increase=0.000_001)
        control.on_throttled(100.0)
        for _ in range(successes):
            control.on_success(101.0)
        control.on_throttled(103.0 if successes > 150 else 500.0)
        assert control.rate == pytest.approx(100 * 0.99 * second_cut)

    def test_throttles_right_after_an_isolated_event_belong_to_it(self) -> None:
        """Within 50 ms of an isolated event, more 429s (even fresh ones) cut nothing."""
        control = RateControl(100, gentle=0.99, quiet=2.0, cooldown=0.5)
        control.on_throttled(100.0, sent_at=99.99)
        assert control.on_throttled(100.04, sent_at=100.01) is None
        assert control.rate == pytest.approx(99.0)
        assert control.events == 1
