"""Ingest benchmark: `bulkresign plan` against `LC_ALL=C sort -u` on the same generated file.

Generates N lines of 24-hex ObjectIds with 10% duplicates and 0.1% junk (10M by default, 100M
with ``--big``), then runs both commands alternately, each in its own process, measuring wall
time and peak RSS (``wait4``'s ``ru_maxrss``), and writes the figures with the command, machine
and date to ``benchmarks/RESULTS.md`` (its ingest section only). Targets: plan's wall time at most
1.0× sort's, at most half its peak memory; the exit code is 1 when one is missed.

    python -m benchmarks.ingest            # 10M lines
    python -m benchmarks.ingest --big      # 100M lines (a 2.5 GB file; sort spills to TMPDIR)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks.common import high_water

__all__ = ["generate", "main", "measure"]

RESULTS = Path(__file__).with_name("RESULTS.md")
DUPLICATES = 0.10
JUNK = 0.001
CHUNK = 1_000_000
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_JUNK = [
    b"not-an-id",
    b"0123456789abcdef012345",
    b"zzzzzzzzzzzzzzzzzzzzzzzz",
    b"",
    b"# note",
    b"  5f0c5d6f1d2e3f4a5b6c7d8e  x",
    b"5F0C5D6F1D2E3F4A5B6C7D8E0",
]


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64: distinct inputs give distinct, random-looking outputs."""
    z = x * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _rows(index: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """The ObjectId text of unique ID number ``index``, one 25-byte row each (with \\n)."""
    raw = np.empty((len(index), 16), np.uint8)
    raw[:, :8] = _mix(index).view(np.uint8).reshape(-1, 8)
    raw[:, 8:] = _mix(index + np.uint64(1 << 63)).view(np.uint8).reshape(-1, 8)
    key = raw[:, :12]
    out = np.empty((len(index), 25), np.uint8)
    out[:, 0:24:2] = _HEX[key >> 4]
    out[:, 1:24:2] = _HEX[key & 15]
    out[:, 24] = ord("\n")
    return out


def generate(path: Path, lines: int, seed: int = 20261128) -> None:
    """Write ``lines`` lines: new IDs, repeats of earlier ones (10%), junk (0.1%)."""
    rng = np.random.default_rng(seed)
    unique = 0
    with path.open("wb") as out:
        for start in range(0, lines, CHUNK):
            n = min(CHUNK, lines - start)
            repeat = rng.random(n) < DUPLICATES
            fresh = np.cumsum(~repeat) - 1 + unique
            if unique == 0:
                repeat[: np.argmax(~repeat)] = False  # nothing to repeat before the first ID
            earlier = (rng.random(n) * np.maximum(fresh, 1)).astype(np.uint64)
            index = np.where(repeat, earlier, fresh).astype(np.uint64)
            unique = int(fresh[-1]) + 1
            block = bytearray(_rows(index).tobytes())
            junk = np.flatnonzero(rng.random(n) < JUNK)
            if junk.size:
                parts: list[bytes | bytearray] = []
                last = 0
                for i in junk.tolist():
                    parts += [block[last : i * 25], _JUNK[i % len(_JUNK)] + b"\n"]
                    last = i * 25 + 25
                parts.append(block[last:])
                block = bytearray(b"".join(parts))
            out.write(block)


@dataclass(frozen=True)
class Run:
    """One measured process."""

    wall: float
    peak_rss: int
    output: str


def measure(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run a command to completion; its wall time and peak resident memory.

    The peak is ``VmHWM``, read every 5 ms (:func:`~benchmarks.common.high_water`): ``wait4``'s
    ``ru_maxrss`` would report this process's own peak for a child smaller than it (vfork).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    stdout = proc.stdout
    assert stdout is not None
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(stdout.read()), daemon=True)
    reader.start()
    peak = 0
    while True:
        peak = max(peak, high_water(proc.pid))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.005)
    wall = time.perf_counter() - started
    reader.join()
    stdout.close()
    output = b"".join(out).decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{shlex.join(argv)} failed with exit code {proc.returncode}")
    return Run(wall, peak, output)


def _machine() -> str:
    """`uname -a`, `nproc` and `free -g`, as the operator would type them."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()

    return f"`{run('uname', '-a')}`, nproc {run('nproc')}\n\n```\n{run('free', '-g')}\n```"


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def report(lines: int, size: int, plan: list[Run], sort: list[Run], plan_cmd: str) -> str:
    """The Markdown section for RESULTS.md."""
    pw, sw = statistics.median(r.wall for r in plan), statistics.median(r.wall for r in sort)
    pm, sm = max(r.peak_rss for r in plan), max(r.peak_rss for r in sort)
    stats = json.loads(plan[-1].output)
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    flag = " --big" if lines >= 10**8 else f" --lines {lines}" if lines != 10**7 else ""
    start, end = _markers(lines)
    return "\n".join(
        [
            start,
            f"## Ingest: {lines:,} lines of 24-hex IDs, 10% duplicates, 0.1% junk "
            f"({size / 1e6:,.0f} MB)",
            "",
            f"Measured {today} with `python -m benchmarks.ingest{flag}` ({len(plan)} alternating "
            "runs each; median wall, highest peak RSS).",
            "",
            "| command | wall | peak RSS |",
            "|---|---|---|",
            f"| `LC_ALL=C sort -u FILE -o /dev/null` | {sw:.2f} s | {_gb(sm)} |",
            f"| `{plan_cmd}` | {pw:.2f} s | {_gb(pm)} |",
            f"| ratio plan / sort | **{pw / sw:.2f}×** (target ≤ 1.0) "
            f"| **{pm / sm:.2f}×** (target ≤ 0.5) |",
            "",
            "plan's time includes about 0.6 s of start-up (the CLI imports every sub-command); "
            "this machine is shared, so single runs vary by ±30%.",
            "",
            f"Every run: plan {', '.join(f'{r.wall:.2f} s' for r in plan)}; "
            f"sort {', '.join(f'{r.wall:.2f} s' for r in sort)}.",
            f"plan counted {stats['lines']:,} lines: {stats['accepted']:,} accepted, "
            f"{stats['duplicates']:,} duplicates, {stats['rejected']:,} rejected, "
            f"{stats['skipped']:,} skipped, {stats['batches']:,} batches.",
            "",
            f"Machine: {_machine()}",
            end,
        ]
    )


def _markers(lines: int) -> tuple[str, str]:
    """The comments around the section for one input size (10M and 100M sit side by side)."""
    slug = "ingest" if lines == 10**7 else "ingest-big" if lines == 10**8 else f"ingest-{lines}"
    return f"<!-- bench:{slug}:start -->", f"<!-- bench:{slug}:end -->"


def write_results(section: str, lines: int) -> None:
    """Put ``section`` into RESULTS.md, replacing only an earlier one for the same size."""
    start, end = _markers(lines)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Generate, measure, report."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest", description=__doc__.split("\n")[0]
    )
    p.add_argument("--lines", type=int, default=10_000_000, help="lines to generate (default 10M)")
    p.add_argument("--big", action="store_true", help="100M lines")
    p.add_argument("--repeat", type=int, help="alternating runs of each (default 3; 1 with --big)")
    p.add_argument("--dir", type=Path, help="where to write the file (default: a temp dir)")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args(argv)
    lines = 100_000_000 if args.big else args.lines
    repeat = args.repeat or (1 if args.big else 3)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "ids.txt"
        started = time.perf_counter()
        generate(path, lines)
        size = path.stat().st_size
        print(
            f"generated {lines:,} lines, {size / 1e6:,.0f} MB "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        plan_argv = [sys.executable, "-m", "bulkresign", "plan", str(path), "--json"]
        sort_argv = ["sort", "-u", str(path), "-o", os.devnull]
        sort_env = {**os.environ, "LC_ALL": "C"}
        plan_runs: list[Run] = []
        sort_runs: list[Run] = []
        for i in range(repeat):
            sort_runs.append(measure(sort_argv, sort_env))
            plan_runs.append(measure(plan_argv))
            print(
                f"run {i + 1}: sort {sort_runs[-1].wall:.2f} s {_gb(sort_runs[-1].peak_rss)}, "
                f"plan {plan_runs[-1].wall:.2f} s {_gb(plan_runs[-1].peak_rss)}",
                file=sys.stderr,
            )
    section = report(lines, size, plan_runs, sort_runs, "bulkresign plan FILE --json")
    print(section)
    if not args.no_write:
        write_results(section, lines)
    wall = statistics.median(r.wall for r in plan_runs) / statistics.median(
        r.wall for r in sort_runs
    )
    memory = max(r.peak_rss for r in plan_runs) / max(r.peak_rss for r in sort_runs)
    return 0 if wall <= 1.0 and memory <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
