"""What the operator sees while a run goes: a live panel on a terminal, a log line elsewhere.

Both read the same :class:`Snapshot`, computed from the run's counters and the limiter, so the
figures a script logs are the figures a person watches.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import anyio
import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from bulkresign.limiter import LimiterStats
from bulkresign.stats import RunStats

__all__ = ["Snapshot", "show_progress", "snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The figures of one progress update."""

    elapsed: float
    done: int
    total: int | None
    batches_per_s: float
    ids_per_s: float
    rate: float
    rate_limit: float
    paused: bool
    eta: float | None
    resigned: int
    not_found: int
    failed: int
    in_doubt: int
    retries: int
    throttled: int

    def as_dict(self) -> dict[str, object]:
        """The snapshot as a JSON-ready dict (rounded)."""
        return {
            k: round(v, 2) if isinstance(v, float) else v
            for k, v in ((s, getattr(self, s)) for s in self.__slots__)
        }


def snapshot(stats: RunStats, limiter: LimiterStats, total: int | None) -> Snapshot:
    """Derive the displayed figures from the live counters."""
    elapsed = max(stats.elapsed, 1e-9)
    resigned = stats.resigned + stats.resigned_by_readback
    done = stats.ids_processed + stats.skipped_done
    if total is None and stats.ingest_done:
        total = stats.accepted
    ids_per_s = stats.ids_processed / elapsed
    eta = (total - done) / ids_per_s if total is not None and ids_per_s > 0 else None
    return Snapshot(
        elapsed=elapsed,
        done=done,
        total=total,
        batches_per_s=stats.batches_done / elapsed,
        ids_per_s=ids_per_s,
        rate=limiter.current_rate,
        rate_limit=limiter.max_rate,
        paused=limiter.paused_until is not None,
        eta=eta,
        resigned=resigned,
        not_found=stats.not_found,
        failed=stats.failed,
        in_doubt=stats.in_doubt,
        retries=stats.retries,
        throttled=stats.throttled,
    )


def _table(s: Snapshot) -> Table:
    table = Table(title="bulkresign", show_header=False, box=None)
    total = "?" if s.total is None else f"{s.total:,}"
    pct = f" ({100 * s.done / s.total:.1f}%)" if s.total else ""
    eta = "—" if s.eta is None else f"{s.eta:,.0f} s"
    pause = "  [bold yellow]throttled: paused[/]" if s.paused else ""
    table.add_row("IDs", f"{s.done:,} / {total}{pct}   ETA {eta}")
    table.add_row("speed", f"{s.ids_per_s:,.0f} IDs/s, {s.batches_per_s:,.1f} batches/s")
    table.add_row("rate", f"{s.rate:,.1f} of {s.rate_limit:,.1f} req/s{pause}")
    table.add_row(
        "outcomes",
        f"resigned {s.resigned:,}  not found {s.not_found:,}  failed {s.failed:,}  "
        f"in doubt {s.in_doubt:,}",
    )
    table.add_row("retries", f"{s.retries:,}  throttled {s.throttled:,}")
    return table


async def show_progress(
    stats: RunStats,
    limiter: Callable[[], LimiterStats],
    *,
    total: int | None = None,
    tty: bool | None = None,
    interval: float | None = None,
    stream: TextIO | None = None,
) -> None:
    """Update the display until cancelled (the caller cancels it when the run ends)."""
    out = stream if stream is not None else sys.stderr
    if tty is None:
        tty = out.isatty()
    if tty:
        console = Console(file=out)
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while True:
                live.update(_table(snapshot(stats, limiter(), total)))
                await anyio.sleep(interval or 0.5)
    while True:
        await anyio.sleep(interval or 5.0)
        line = {"event": "progress", **snapshot(stats, limiter(), total).as_dict()}
        out.write(orjson.dumps(line).decode() + "\n")
        out.flush()
