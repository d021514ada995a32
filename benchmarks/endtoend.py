"""Benchmark 4, end to end: ``bulkresign run`` on 100k and 1M IDs (1M and 10M with ``--big``).

Each size runs as a user would type it (``bulkresign run FILE --yes --rate 300``, a child
process) against an emulator in this process's thread that admits 300 calls per sliding second
with 20 ms latency. Targets: wall time ≤ 1.02 × N / (50 R) + 1 s, first request < 1 s after the
process starts whatever the file size, peak RSS flat across sizes (taken here as: the largest
input's peak within 10 % of the smallest's). The PNGs plot peak RSS against the input size,
and the largest run's requests and 429s per second.

Exactly-once needs the exact set of IDs accepted so far, so one structure must grow with the
input: the dedup table, 20–38 bytes an ID (docs/ingest.md). The run records its size in the
ledger; the flatness check is made on peak RSS less that table (everything the pipeline itself
holds), and the table's own growth is reported beside it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from benchmarks.common import (
    HERE,
    Child,
    Section,
    child_env,
    image_name,
    run_child,
    scratch,
    standalone,
    table,
)
from benchmarks.plots import plot_rss, plot_timelines
from bulkresign.bench import (
    Check,
    Probe,
    RunReport,
    end_to_end_bound,
    end_to_end_checks,
    summarize,
    write_ids,
)
from bulkresign.cli.records import read_ingest_stats

__all__ = ["NAME", "main", "run"]

NAME = "End to end"
RATE = 300.0
LATENCY_MS = 20.0
#: "Flat": the largest input's peak RSS at most this much above the smallest's.
FLAT = 1.10
IMAGE = "end-to-end-rss.png"
TIMELINE = "end-to-end-rate.png"


@dataclass(frozen=True, slots=True)
class _Size:
    report: RunReport
    child: Child
    exactly_once: bool
    dedup_bytes: int
    """The dedup table's size at the end of the run, as the ledger recorded it."""

    @property
    def pipeline_rss(self) -> int:
        """Peak RSS less the dedup table: what every other stage holds."""
        return self.child.max_rss - self.dedup_bytes


def run(big: bool, command: str) -> Section:
    """Run each size once, smallest first."""
    sizes = (1_000_000, 10_000_000) if big else (100_000, 1_000_000)
    done: list[_Size] = []
    for n in sizes:
        done.append(_one(n))
        r = done[-1].report
        print(
            f"end to end: {n:,} IDs in {r.wall:.1f} s, first request {r.first_request:.2f} s, "
            f"last call to exit {r.last_call:.2f} s"
        )
    rows = [
        (
            f"{s.report.ids:,}",
            f"{s.report.wall:,.1f}",
            f"{end_to_end_bound(s.report.ids, RATE):,.1f}",
            f"{s.report.ids / s.report.wall:,.0f}",
            f"{s.report.first_request:.2f}",
            f"{s.report.last_call:.2f}",
            f"{s.report.goodput:,.1f}",
            f"{s.report.throttled:,}",
            f"{s.child.max_rss / 2**20:,.0f}",
            f"{s.dedup_bytes / 2**20:,.0f}",
            f"{s.pipeline_rss / 2**20:,.0f}",
            f"{s.child.cpu:,.1f} ({s.child.cpu / s.child.wall:.0%})",
            "yes" if s.exactly_once else "**NO**",
        )
        for s in done
    ]
    small, large = done[0], done[-1]
    growth = large.child.max_rss / small.child.max_rss
    per_id = (large.child.max_rss - small.child.max_rss) / (large.report.ids - small.report.ids)
    flat = large.pipeline_rss / small.pipeline_rss
    table_per_id = (large.dedup_bytes - small.dedup_bytes) / (large.report.ids - small.report.ids)
    body = (
        f"`bulkresign run FILE --yes --no-progress --rate {RATE:g}` as a child process; emulator "
        f"limit {RATE:g}/s (strict sliding window), {LATENCY_MS:g} ms latency. Wall time and "
        "first request are counted from the moment the process is spawned; *last call → exit* is "
        "what closing the run costs, from its last call's arrival to the process's exit.\n\n"
        + table(
            [
                "IDs",
                "wall s",
                "bound s",
                "users/s",
                "first request s",
                "last call → exit s",
                "goodput req/s",
                "throttled",
                "peak RSS MiB",
                "dedup table MiB",
                "RSS less table MiB",
                "CPU s (of wall)",
                "each resigned once",
            ],
            rows,
        )
        + f"\n\nPeak RSS grew {growth:.2f}× from {small.report.ids:,} to {large.report.ids:,} "
        f"IDs, {per_id:.0f} bytes per extra ID, of which the dedup table {table_per_id:.0f}; "
        f"less the table, {flat:.2f}×."
        + (
            ""
            if big
            else " The flatness target is set between 1M and 10M IDs and checked by `--big`: "
            "below 1M the read-ahead and batch buffers are still filling up."
        )
    )
    checks = [
        Check(f"{s.report.ids:,} IDs: {c.name}", c.value, c.target, c.ok)
        for s in done
        for c in end_to_end_checks(s.report)
    ]
    if big:  # the target is set between 1M and 10M; below 1M the buffers are still filling up
        checks.append(
            Check(
                "peak RSS less the dedup table flat, 1M → 10M",
                f"{flat:.2f}× ({small.pipeline_rss / 2**20:,.0f} → "
                f"{large.pipeline_rss / 2**20:,.0f} MiB)",
                f"≤ {FLAT:.2f}×",
                flat <= FLAT,
            )
        )
        checks.append(
            Check(
                "peak RSS flat, dedup table included, 1M → 10M",
                f"{growth:.2f}× ({small.child.max_rss / 2**20:,.0f} → "
                f"{large.child.max_rss / 2**20:,.0f} MiB)",
                f"≤ {FLAT:.2f}×",
                growth <= FLAT,
            )
        )
    checks.append(
        Check(
            "every user resigned exactly once",
            "yes" if all(s.exactly_once for s in done) else "no",
            "yes",
            all(s.exactly_once for s in done),
        )
    )
    points = [(s.report.ids, s.child.max_rss / 2**20) for s in done]
    rss, timeline = image_name(IMAGE, big), image_name(TIMELINE, big)
    images: tuple[str, ...] = (rss,) if plot_rss(HERE / rss, points) else ()
    runs = [(f"bulkresign run, {large.report.ids:,} IDs at --rate {RATE:g}", large.report)]
    images += (timeline,) if plot_timelines(HERE / timeline, runs) else ()
    return Section(NAME, command, body, tuple(checks), images, big=big)


def _one(n: int) -> _Size:
    with scratch() as work:
        source = write_ids(work / "ids.txt", n, seed=n % (1 << 32))
        probe = Probe(limit=RATE, latency_ms=LATENCY_MS)
        with probe.serving() as server:
            argv = [
                sys.executable, "-m", "bulkresign", "run", str(source), "--yes", "--no-progress",
                "--state", str(work / "state"), "--rate", f"{RATE:g}",
            ]  # fmt: skip
            timeout = 2 * end_to_end_bound(n, RATE) + 60
            child = run_child(argv, env=child_env(server.url), timeout=timeout)
            oracle = server.oracle(summary=True)
        dedup = _dedup_bytes(work / "state")
    report = summarize(
        probe,
        ids=n,
        rate=RATE,
        started=child.started,
        ended=child.started + child.wall,
        finished=child.returncode == 0 and not child.killed,
    )
    once = oracle["resigned_total"] == n and oracle["max_resign_count"] == 1
    return _Size(report, child, once, dedup)


def _dedup_bytes(state: Path) -> int:
    """The dedup table's size the run recorded with its final ingest counts (0 if none)."""
    stats = read_ingest_stats(state) or {}
    return int(cast(int, stats.get("dedup_bytes", 0)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.endtoend [--big]``."""
    return standalone("endtoend", run, argv)


if __name__ == "__main__":
    sys.exit(main())
