"""Benchmark 3, raw ceiling: how fast can bulkresign go when nothing but this machine limits it?

The emulator runs unlimited, without latency, in its own process on 127.0.0.1; each client runs
in this process, so its CPU time is measured alone. The same input is resigned, alternately, by
bulkresign (the whole run: ingest, durable ledger, pacing at an unreachable rate), the naive SDK
baseline, and bare aiohttp (the HTTP floor); medians over the repetitions. Then bulkresign runs
at ``--rate 300`` (20 ms latency) to measure what a real run costs the machine. Targets:
≥ 3,000 req/s on 2 cores, and ≤ 25 % of one core at 300 req/s.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from benchmarks.clients import (
    THREADS,
    ClientRun,
    run_bare_aiohttp,
    run_bulkresign,
    run_sdk,
)
from benchmarks.common import (
    HERE,
    EmulatorProcess,
    Section,
    image_name,
    median,
    scratch,
    standalone,
    table,
)
from benchmarks.plots import plot_bars
from bulkresign.bench import Check, write_ids
from bulkresign.models import MAX_BATCH

__all__ = ["NAME", "main", "run"]

IMAGE = "raw-ceiling.png"
NAME = "Raw ceiling"
TARGET_RPS = 3000.0
PACED_RATE = 300.0
#: Paced runs of each client; the figure is the median run.
PACED_REPS = 3
TARGET_CORE_SHARE = 0.25


def run(big: bool, command: str) -> Section:
    """Alternate the three clients over 200k IDs (1M with ``big``), then pace at 300/s."""
    ids, reps, paced_seconds = (1_000_000, 5, 30) if big else (200_000, 3, 10)
    runs: dict[str, list[ClientRun]] = {"bulkresign": [], "sdk": [], "aiohttp": []}
    with scratch() as work:
        source = write_ids(work / "ids", ids)
        with EmulatorProcess(rate_limit=0) as emu:
            clients: dict[str, Callable[[int], ClientRun]] = {
                "bulkresign": lambda i: run_bulkresign(
                    emu.url, source, work / f"state-{i}", timeout=300
                ),
                "sdk": lambda i: run_sdk(emu.url, source, timeout=300),
                "aiohttp": lambda i: run_bare_aiohttp(emu.url, source, timeout=300),
            }
            for i in range(reps):
                for name, client in clients.items():
                    runs[name].append(client(i))
                    print(f"ceiling: rep {i + 1} {name}: {_brief(runs[name][-1])}", flush=True)
        paced_source = write_ids(
            work / "paced", int(PACED_RATE * paced_seconds * MAX_BATCH), seed=1
        )
        paced_runs: list[ClientRun] = []
        floor_runs: list[ClientRun] = []
        with EmulatorProcess(rate_limit=0, latency_ms=20) as emu:
            for i in range(PACED_REPS):
                paced_runs.append(
                    run_bulkresign(
                        emu.url, paced_source, work / f"state-paced-{i}", rate=PACED_RATE,
                        timeout=120,
                    )
                )  # fmt: skip
                floor_runs.append(
                    run_bare_aiohttp(emu.url, paced_source, timeout=120, rate=PACED_RATE)
                )
                print(f"ceiling: paced rep {i + 1}: {_brief(paced_runs[-1])}; "
                      f"bare aiohttp {_brief(floor_runs[-1])}", flush=True)  # fmt: skip
        paced = sorted(paced_runs, key=lambda r: r.cpu / r.wall)[len(paced_runs) // 2]
    ours, sdk, bare = (median([r.per_second for r in runs[k]]) for k in runs)
    share = paced.cpu / paced.wall
    floor_share = median([r.cpu / r.wall for r in floor_runs])
    rows = [
        _row(
            "bulkresign (`run_job`: ingest, durable ledger, pacing, event log, audit journal)",
            runs["bulkresign"],
        ),
        _row(
            f"authing SDK, {THREADS} threads, no ledger (naive baseline)", runs["sdk"], loop=False
        ),
        _row(f"bare aiohttp, {THREADS} connections (HTTP alone, no tool)", runs["aiohttp"]),
    ]
    body = (
        f"{ids:,} IDs ({ids // MAX_BATCH:,} requests of 50) per run, {reps} alternating runs of "
        "each client against one unlimited emulator process (no latency); medians. CPU is this "
        "process's, all threads; the emulator's is not counted. The event loop's share is the "
        "thread that ran it: the GIL lets one thread run Python at a time, so a client whose "
        "loop needs L CPU s per 1,000 requests cannot exceed 1,000 / L requests a second.\n\n"
        + table(
            [
                "client",
                "requests/s",
                "users/s",
                "CPU s / 1,000 requests",
                "of which the event loop's",
                "cores busy",
                "every run, req/s",
            ],
            rows,
        )
        + f"\n\nbulkresign / SDK: **{ours / sdk:.2f}×** the requests per second; bulkresign / "
        f"bare aiohttp: {ours / bare:.2f}×.\n\n"
        f"Paced at {PACED_RATE:g} req/s (unlimited emulator, 20 ms latency), {PACED_REPS} "
        "alternating runs each, the median run by CPU share: bulkresign "
        f"{paced.requests:,} requests in {paced.wall:.1f} s ({paced.per_second:,.1f} req/s), "
        f"{paced.cpu:.2f} CPU s = **{share:.1%} of one core** "
        f"({paced.cpu_per_1000:.2f} CPU s per 1,000 requests; every run "
        f"{', '.join(f'{r.cpu / r.wall:.1%}' for r in paced_runs)}). The same requests from bare "
        f"aiohttp on a fixed schedule (no ingest, ledger, logs or classification): "
        f"{floor_share:.1%} of one core ({median([r.cpu_per_1000 for r in floor_runs]):.2f} CPU s "
        "per 1,000 requests): a reference, not a floor — it wakes once a slot, and a client "
        "that sends several slots a wake-up can go below it (docs/benchmarks.md)."
    )
    every = [r for rs in runs.values() for r in rs] + paced_runs + floor_runs
    failed = sum(r.failed for r in every)
    body += f"\n\nCalls that failed, over every run of every client: {failed:,}."
    all_done = all(r.finished for r in every) and failed == 0
    checks = (
        Check(
            "requests/s, unlimited",
            f"{ours:,.0f} req/s ({ours * MAX_BATCH:,.0f} users/s)",
            f"≥ {TARGET_RPS:,.0f}",
            ours >= TARGET_RPS and all_done,
        ),
        Check(
            f"CPU at {PACED_RATE:g} req/s",
            f"{share:.1%} of one core",
            f"≤ {TARGET_CORE_SHARE:.0%}",
            share <= TARGET_CORE_SHARE and paced.finished,
        ),
    )
    image = image_name(IMAGE, big)
    bars = [
        ("bulkresign, unlimited", [r.per_second for r in runs["bulkresign"]]),
        (f"authing SDK, {THREADS} threads", [r.per_second for r in runs["sdk"]]),
        ("bare aiohttp", [r.per_second for r in runs["aiohttp"]]),
    ]
    drawn = plot_bars(HERE / image, NAME, "requests/s", bars, target=TARGET_RPS)
    return Section(NAME, command, body, checks, (image,) if drawn else (), big=big)


def _row(label: str, runs: Sequence[ClientRun], *, loop: bool = True) -> tuple[str, ...]:
    rps = median([r.per_second for r in runs])
    return (
        label,
        f"{rps:,.0f}",
        f"{rps * MAX_BATCH:,.0f}",
        f"{median([r.cpu_per_1000 for r in runs]):.2f}",
        f"{median([r.loop_cpu_per_1000 for r in runs]):.2f}" if loop else "— (no event loop)",
        f"{median([r.cpu / r.wall for r in runs]):.2f}",
        ", ".join(f"{r.per_second:,.0f}" + ("" if r.finished else " (timed out)") for r in runs),
    )


def _brief(r: ClientRun) -> str:
    return f"{r.per_second:,.0f} req/s, {r.cpu_per_1000:.2f} CPU s/1k, failed {r.failed}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.ceiling [--big]``."""
    return standalone("ceiling", run, argv)


if __name__ == "__main__":
    sys.exit(main())
