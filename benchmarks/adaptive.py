"""Benchmark 2, adaptive pacing: asked for 4× the emulator's limit, how much gets through?

The emulator admits 100 calls per sliding second (20 ms latency); ``run_job`` asks for 400/s.
The limiter must find the limit from the 429s alone (GenAuth sends no Retry-After). Targets:
goodput ≥ 80 % of the limit, at most 10 % of calls throttled. The PNG shows the admitted and
throttled calls per second and the client's paced rate.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from benchmarks.common import HERE, Section, image_name, scratch, standalone, table
from benchmarks.plots import plot_timelines
from bulkresign.bench import Check, RunReport, measure_run
from bulkresign.models import MAX_BATCH

__all__ = ["NAME", "main", "run"]

NAME = "Adaptive pacing"
LIMIT = 100.0
ASK = 4 * LIMIT
LATENCY_MS = 20.0
#: Seconds left out of the "settled" figures: the first cuts from 4× down to the limit.
SETTLE = 5
IMAGE = "adaptive-pacing.png"


def run(big: bool, command: str) -> Section:
    """Send the limit's worth of 20 s (60 s with ``big``) of calls at 4× the limit."""
    seconds = 60 if big else 20
    with scratch() as work:
        report = measure_run(
            work,
            ids=int(LIMIT * seconds * MAX_BATCH),
            rate=ASK,
            limit=LIMIT,
            latency_ms=LATENCY_MS,
            timeout=4 * seconds + 30,
        )
    settled = report.timeline[SETTLE:-1]
    ok = sum(s.admitted for s in settled)
    bad = sum(s.throttled for s in settled)
    rows = [
        _row("whole run", report.goodput, report.admitted, report.throttled),
        _row(f"after the first {SETTLE} s", ok / max(1, len(settled)), ok, bad),
    ]
    body = (
        f"Emulator limit {LIMIT:g}/s (strict sliding window), {LATENCY_MS:g} ms latency; client "
        f"`--rate {ASK:g}`, 16 workers; {report.ids:,} IDs. {len(report.timeline)} s of calls; "
        f"the client's pace ranged {_pace_range(report)} req/s.\n\n"
        + table(["span", "goodput req/s (of the limit)", "admitted", "throttled"], rows)
    )
    checks = (
        Check(
            "goodput",
            f"{report.goodput:,.1f} req/s ({report.goodput / LIMIT:.1%} of {LIMIT:g})",
            "≥ 80 %",
            report.goodput >= 0.8 * LIMIT,
        ),
        Check(
            "throttled",
            f"{report.throttled:,} of {report.requests:,} ({report.throttled_share:.2%})",
            "≤ 10 %",
            report.throttled_share <= 0.10,
        ),
    )
    runs = [(f"--rate {ASK:g} against a limit of {LIMIT:g}/s", report)]
    images = (
        (image_name(IMAGE, big),) if plot_timelines(HERE / image_name(IMAGE, big), runs) else ()
    )
    return Section(NAME, command, body, checks, images, big=big)


def _row(span: str, goodput: float, admitted: int, throttled: int) -> tuple[str, ...]:
    share = throttled / (admitted + throttled) if admitted + throttled else 0.0
    return (
        span,
        f"{goodput:,.1f} ({goodput / LIMIT:.1%})",
        f"{admitted:,}",
        f"{throttled:,} ({share:.2%})",
    )


def _pace_range(report: RunReport) -> str:
    paces = [s.paced for s in report.timeline if s.paced is not None]
    return f"{min(paces):,.0f}–{max(paces):,.0f}" if paces else "(not sampled)"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.adaptive [--big]``."""
    return standalone("adaptive", run, argv)


if __name__ == "__main__":
    sys.exit(main())
