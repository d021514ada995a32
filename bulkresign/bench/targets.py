"""The targets of docs/benchmarks.md, stated once: ``bench`` and benchmarks/ share them."""

from __future__ import annotations

from dataclasses import dataclass

from bulkresign.bench.probe import RunReport
from bulkresign.models import MAX_BATCH

__all__ = ["Check", "end_to_end_bound", "end_to_end_checks", "rate_checks"]


def end_to_end_bound(ids: int, rate: float) -> float:
    """The wall-time target: 2 % over the time the rate alone needs, plus a second."""
    return 1.02 * ids / (MAX_BATCH * rate) + 1.0


@dataclass(frozen=True, slots=True)
class Check:
    """One figure against its target."""

    name: str
    value: str
    target: str
    ok: bool


def rate_checks(report: RunReport) -> list[Check]:
    """Rate accuracy: goodput ≥ 99 % of ``--rate`` (or of the emulator's limit, when lower), no
    window above it, ≤ 1 % throttled."""
    r = report.rate if report.limit is None else min(report.rate, report.limit)
    return [
        Check(
            "goodput",
            f"{report.goodput:,.1f} req/s ({report.goodput / r:.1%} of {r:g})",
            "≥ 99 %",
            report.goodput >= 0.99 * r,
        ),
        Check(
            "busiest 1-s window (sent)",
            f"{report.busiest_offered:,} calls",
            f"≤ {r:g}",
            report.busiest_offered <= r,
        ),
        Check(
            "throttled",
            f"{report.throttled:,} of {report.requests:,} ({report.throttled_share:.2%})",
            "≤ 1 %",
            report.throttled_share <= 0.01,
        ),
    ]


def end_to_end_checks(report: RunReport) -> list[Check]:
    """End to end: finished within the wall-time bound, first request in under a second."""
    bound = end_to_end_bound(report.ids, report.rate)
    return [
        Check(
            "wall time",
            f"{report.wall:,.1f} s ({report.ids / report.wall:,.0f} users/s)",
            f"≤ {bound:,.1f} s",
            report.finished and report.wall <= bound,
        ),
        Check(
            "time to first request",
            f"{report.first_request:.2f} s",
            "< 1 s",
            report.first_request < 1.0,
        ),
    ]
