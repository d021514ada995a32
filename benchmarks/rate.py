"""Benchmark 1, rate accuracy: asked for the emulator's own limit, does the client deliver it?

For R in {100, 300} req/s the emulator (in this process's thread, strict sliding 1-s window,
20 ms latency) admits at most R calls a second, and ``run_job`` runs with ``rate=R``. Targets:
goodput ≥ 99 % of R, no sliding 1-s window with more than R calls sent (the emulator's own
arrival times), at most 1 % of calls throttled.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

from benchmarks.common import HERE, Section, image_name, scratch, standalone, table
from benchmarks.plots import plot_timelines
from bulkresign.bench import Check, RunReport, measure_run, rate_checks
from bulkresign.models import MAX_BATCH

__all__ = ["NAME", "main", "run"]

NAME = "Rate accuracy"
RATES = (100.0, 300.0)
LATENCY_MS = 20.0
IMAGE = "rate-accuracy.png"


def run(big: bool, command: str) -> Section:
    """Run each rate for 15 s (60 s with ``big``) and compare with the targets."""
    seconds = 60 if big else 15
    reports: list[RunReport] = []
    checks: list[Check] = []
    with scratch() as work:
        for rate in RATES:
            report = measure_run(
                work,
                ids=int(rate * seconds * MAX_BATCH),
                rate=rate,
                limit=rate,
                latency_ms=LATENCY_MS,
                timeout=3 * seconds + 30,
            )
            reports.append(report)
            checks += [
                dataclasses.replace(c, name=f"R={rate:g}: {c.name}") for c in rate_checks(report)
            ]
    rows = [
        (
            f"{r.rate:g}",
            f"{r.ids:,}",
            f"{r.requests:,}",
            f"{r.goodput:,.1f} ({r.goodput / r.rate:.1%})",
            r.busiest_offered,
            r.busiest_admitted,
            f"{r.throttled} ({r.throttled_share:.2%})",
            f"{min((s.paced for s in r.timeline if s.paced), default=r.rate):,.0f}",
            f"{r.wall:.1f}",
        )
        for r in reports
    ]
    body = (
        f"Emulator limit = client `--rate` = R, {LATENCY_MS:g} ms latency, 16 workers, "
        f"{seconds} s of calls each. Windows are sliding 1-s windows over the emulator's own "
        "arrival times (every call, admitted or throttled).\n\n"
        + table(
            [
                "R (req/s)",
                "IDs",
                "calls",
                "goodput req/s",
                "busiest 1-s window, sent",
                "busiest, admitted",
                "throttled",
                "lowest client pace",
                "wall s",
            ],
            rows,
        )
    )
    runs = [(f"--rate {r.rate:g} against a limit of {r.limit:g}/s", r) for r in reports]
    images = (
        (image_name(IMAGE, big),) if plot_timelines(HERE / image_name(IMAGE, big), runs) else ()
    )
    return Section(NAME, command, body, tuple(checks), images, big=big)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.rate [--big]``."""
    return standalone("rate", run, argv)


if __name__ == "__main__":
    sys.exit(main())
