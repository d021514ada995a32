"""Benchmark 5, checkpoint cost: what does a durable ledger cost in throughput?

The same input runs through :func:`run_job` at an unreachable rate against an unlimited emulator
process, alternately with the ledger as shipped (WAL, ``synchronous=FULL``, on the temp disk),
with fsync off (``JobConfig(durable=False)``, a benchmark-only switch), and durable on a RAM disk
(``/dev/shm``) when there is one; each variant goes first in turn. Unpaced is the hard case: at
a real run's 300 req/s the disk has a hundred times more slack. Targets: durable / fsync-off
throughput ≥ 0.95, and durable on disk / durable on the RAM disk ≥ 0.95, each taken as the
median of the ratios of runs made side by side (in the same round): on a shared machine the
throughput of one variant drifts ±20 % across a benchmark, and the ratio of two medians carries
that drift while the paired ratios cancel it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.clients import ClientRun, run_bulkresign
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

IMAGE = "checkpoint-cost.png"
NAME = "Checkpoint cost"
TARGET = 0.95
RAM_DISK = Path("/dev/shm")


def run(big: bool, command: str) -> Section:
    """Alternate the variants over 200k IDs (1M with ``big``), 5 (7) times each."""
    ids, reps = (1_000_000, 7) if big else (200_000, 5)
    variants = ["durable, disk", "fsync off, disk"]
    ram = RAM_DISK.is_dir() and _writable(RAM_DISK)
    if ram:
        variants.append(f"durable, RAM disk ({RAM_DISK})")
    runs: dict[str, list[ClientRun]] = {v: [] for v in variants}
    with scratch() as work, scratch(str(RAM_DISK) if ram else None) as ramdir:
        source = write_ids(work / "ids", ids)
        with EmulatorProcess(rate_limit=0) as emu:
            for i in range(reps):
                # Each variant goes first in turn: the first run of a round meets a cold cache.
                turn = i % len(variants)
                for v in variants[turn:] + variants[:turn]:
                    k = variants.index(v)
                    where = ramdir if "RAM" in v else work
                    state = where / f"state-{i}-{k}"
                    durable = not v.startswith("fsync off")
                    runs[v].append(
                        run_bulkresign(
                            emu.url, source, state, durable=durable, timeout=300, records=False
                        )
                    )
                    print(f"checkpoint: rep {i + 1} {v}: {runs[v][-1].per_second:,.0f} req/s")
    rps = {v: median([r.per_second for r in rs]) for v, rs in runs.items()}
    base = rps["fsync off, disk"]
    rows = [
        (
            v,
            f"{rps[v]:,.0f}",
            f"{rps[v] / base:.3f}",
            f"{median([r.cpu_per_1000 for r in runs[v]]):.2f}",
            ", ".join(f"{r.per_second:,.0f}" for r in runs[v]),
        )
        for v in variants
    ]
    pairs = [
        d.per_second / o.per_second
        for d, o in zip(runs["durable, disk"], runs["fsync off, disk"], strict=True)
    ]
    ratio = median(pairs)
    ram_variant = next((v for v in variants if "RAM" in v), None)
    ram_pairs = (
        [
            d.per_second / r.per_second
            for d, r in zip(runs["durable, disk"], runs[ram_variant], strict=True)
        ]
        if ram_variant
        else []
    )
    body = (
        f"{ids:,} IDs ({ids // MAX_BATCH:,} requests) per run, {reps} alternating runs of each "
        "variant, 16 workers, unlimited emulator process; medians.\n\n"
        + table(
            ["ledger", "requests/s", "of fsync off", "CPU s / 1,000 requests", "every run"], rows
        )
        + "\n\nDurable / fsync off, run by run: "
        + ", ".join(f"{p:.3f}" for p in pairs)
        + f"; median **{ratio:.3f}** (the ratio of the medians above: "
        + f"{rps['durable, disk'] / base:.3f})."
        + (
            "\n\nDurable on disk / durable on the RAM disk, run by run: "
            + ", ".join(f"{p:.3f}" for p in ram_pairs)
            + f"; median **{median(ram_pairs):.3f}**."
            if ram_pairs
            else ""
        )
        + "\n\nThe runs are `run_job` without the event log and audit journal (the journal's "
        "once-a-second fsync is the ledger's only companion on disk in a real run)."
    )
    finished = all(r.finished for rs in runs.values() for r in rs)
    checks = [
        Check(
            "durable / fsync off, median of side-by-side runs",
            f"{ratio:.3f} (medians {rps['durable, disk']:,.0f} vs {base:,.0f} req/s)",
            f"≥ {TARGET}",
            ratio >= TARGET and finished,
        )
    ]
    if ram_variant:
        on_ram = median(ram_pairs)
        checks.append(
            Check(
                "durable on disk / on a RAM disk, median of side-by-side runs",
                f"{on_ram:.3f} (medians {rps['durable, disk']:,.0f} vs "
                f"{rps[ram_variant]:,.0f} req/s)",
                f"≥ {TARGET}",
                on_ram >= TARGET and finished,
            )
        )
    image = image_name(IMAGE, big)
    bars = [(v, [r.per_second for r in rs]) for v, rs in runs.items()]
    drawn = plot_bars(HERE / image, NAME, "requests/s, unpaced", bars)
    return Section(NAME, command, body, tuple(checks), (image,) if drawn else (), big=big)


def _writable(path: Path) -> bool:
    try:
        with scratch(str(path)):
            return True
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.checkpoint [--big]``."""
    return standalone("checkpoint", run, argv)


if __name__ == "__main__":
    sys.exit(main())
