"""Benchmark 6, resume: SIGKILL a run half way, start it again, and time the restart.

``bulkresign run`` (a child process, ``--rate 500 --concurrency 32``) resigns 1M IDs (10M with
``--big``) against an unlimited emulator in this process's thread (20 ms latency). Once half the
calls have reached the emulator the child is SIGKILLed; the same command then runs to the end.
Figures: time from the restart to its first request (any call: a read-back comes first when
batches were left SENDING), to its first resign call (a batch the kill left open), to its first
new request (a batch the ledger did not hold: the replay of the done ones comes before it) and
back to 90 % of the rate the first run reached; the read-back calls the restart needed; and the
emulator's verdict that every user was resigned exactly once. A PNG shows the calls per second
of both runs, and the restart's first seconds close up.
Targets: one read-back per batch the kill left SENDING or IN_DOUBT (no more, no fewer), and
exactly once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks.common import (
    HERE,
    Section,
    child_env,
    image_name,
    run_child,
    scratch,
    standalone,
    table,
)
from benchmarks.plots import plot_resume
from bulkresign.bench import Check, Probe, summarize, write_ids
from bulkresign.ledger import Ledger
from bulkresign.models import MAX_BATCH, BatchState
from bulkresign.pipeline import CHUNK

__all__ = ["NAME", "main", "run"]

NAME = "Resume"
RATE = 500.0
CONCURRENCY = 32
LATENCY_MS = 20.0
IMAGE = "resume.png"
#: "Full rate again": the first sliding second holding this share of the first run's goodput.
FULL = 0.9


def run(big: bool, command: str) -> Section:
    """Kill half way, restart, measure."""
    n = 10_000_000 if big else 1_000_000
    requests = n // MAX_BATCH
    timeout = 3 * requests / RATE + 60
    with scratch() as work:
        source = write_ids(work / "ids.txt", n, seed=6)
        state = work / "state"
        argv = [
            sys.executable, "-m", "bulkresign", "run", str(source), "--yes", "--no-progress",
            "--state", str(state), "--rate", f"{RATE:g}", "--concurrency", str(CONCURRENCY),
        ]  # fmt: skip
        probe = Probe(limit=None, latency_ms=LATENCY_MS)
        with probe.serving() as server:
            env = child_env(server.url)
            # The killed client's connections reset mid-request: aiohttp logs each one.
            logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
            first = run_child(
                argv, env=env, timeout=timeout, kill_when=lambda: probe.calls() >= requests // 2
            )
            before = server.oracle(summary=True)
            left, last_seq = _open_batches(state)
            # The batches the ledger did not hold at the kill: the restart's first call naming
            # one of the next CHUNK is its first new request (workers take them in order).
            probe.watch(_ids_of_batches(source, last_seq + 1, CHUNK))
            doubtful = left.get(BatchState.SENDING, 0) + left.get(BatchState.IN_DOUBT, 0)
            second = run_child(argv, env=env, timeout=timeout)
            after = server.oracle(summary=True)
    before_kill = summarize(
        probe,
        ids=n,
        rate=RATE,
        started=first.started,
        ended=second.started,
        finished=False,
        until=second.started,
    )
    report = summarize(
        probe,
        ids=n,
        rate=RATE,
        started=second.started,
        ended=second.started + second.wall,
        finished=second.returncode == 0,
        since=second.started,
    )
    resigns = probe.resigns()
    first_resign = float(resigns[resigns >= second.started][0]) - second.started
    first_new = None if probe.first_watched is None else probe.first_watched - second.started
    calls = probe.admitted()
    full = _full_rate_after(calls, second.started, FULL * before_kill.goodput)
    reads = _count(after, "read_requests") - _count(before, "read_requests")
    once = after["resigned_total"] == n and after["max_resign_count"] == 1
    rows = [
        ("calls before the kill", f"{before['resign_requests']:,} resign calls, "
         f"{before['resigned_total']:,} users resigned"),
        ("batches the kill left sending or in doubt / pending", f"{doubtful} / "
         f"{left.get(BatchState.PENDING, 0)}"),
        ("restart: first request", f"{report.first_request:.2f} s"),
        ("restart: first resign call (a batch left open)", f"{first_resign:.2f} s"),
        ("restart: first new request (a batch not yet in the ledger)",
         "never" if first_new is None else f"{first_new:.2f} s"),
        ("first run: goodput before the kill", f"{before_kill.goodput:,.0f} req/s"),
        (f"restart: back at {FULL:.0%} of that", "never" if full is None else f"{full:.2f} s"),
        ("restart: read-back calls", f"{reads:,}"),
        ("restart: wall time to the end", f"{second.wall:.1f} s"),
        ("every user resigned exactly once", "yes" if once else "**NO**"),
    ]  # fmt: skip
    body = (
        f"{n:,} IDs, `bulkresign run --rate {RATE:g} --concurrency {CONCURRENCY}` as a child "
        f"process, SIGKILLed after {requests // 2:,} calls and started again; unlimited emulator "
        f"in this process, {LATENCY_MS:g} ms latency. Times count from the restart's spawn.\n\n"
        + table(["figure", "value"], rows)
    )
    checks = (
        Check("restart: read-back calls", f"{reads:,}",
              f"one per batch left sending or in doubt ({doubtful})", reads == doubtful),
        Check("exactly once after the kill", "yes" if once else "no", "yes",
              once and report.finished and first.killed),
    )  # fmt: skip
    image = image_name(IMAGE, big)
    drawn = plot_resume(
        HERE / image,
        calls,
        resigns,
        started=first.started,
        killed=first.started + first.wall,
        restarted=second.started,
    )
    return Section(NAME, command, body, checks, (image,) if drawn else (), big=big)


def _open_batches(state: Path) -> tuple[dict[BatchState, int], int]:
    """How many batches the ledger holds in each state, and the last one's number, read after
    the kill."""
    ledger = Ledger.open(state)
    try:
        return ledger.state_counts(), ledger.last_seq()
    finally:
        ledger.close()


def _ids_of_batches(source: Path, first: int, count: int) -> frozenset[str]:
    """The IDs of batches ``first`` to ``first + count - 1`` of a :func:`write_ids` file (every
    line a distinct valid ID of 25 bytes, so batch ``k`` is lines ``50k`` to ``50k + 49``)."""
    with source.open("rb") as f:
        f.seek(first * MAX_BATCH * 25)
        return frozenset(f.read(count * MAX_BATCH * 25).decode().split())


def _count(oracle: dict[str, object], key: str) -> int:
    value = oracle[key]
    assert isinstance(value, int)
    return value


def _full_rate_after(admitted: npt.NDArray[np.float64], since: float, rate: float) -> float | None:
    """Seconds from ``since`` until some sliding second after it holds ``rate`` calls."""
    t = np.sort(admitted[admitted >= since])
    if len(t) == 0:
        return None
    counts = np.arange(len(t)) - np.searchsorted(t, t - 1.0, side="right") + 1
    hits = np.nonzero(counts >= rate)[0]
    return float(t[hits[0]]) - since if len(hits) else None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.resume [--big]``."""
    return standalone("resume", run, argv)


if __name__ == "__main__":
    sys.exit(main())
