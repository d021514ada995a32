"""``bulkresign bench``: what this machine does against a local emulator, before a real run.

Two measurements against an emulator in this process (implicit users, nothing leaves 127.0.0.1):
rate accuracy — ``--seconds`` of calls at ``--rate`` against a limit of ``--limit`` — and a whole
run end to end over ``--ids`` generated IDs. Each figure is printed beside its target
(docs/benchmarks.md); the exit code is 1 when any target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bulkresign.bench import Check, RunReport, end_to_end_checks, measure_run, rate_checks
from bulkresign.cli import ExitCode
from bulkresign.errors import ConfigError
from bulkresign.models import MAX_BATCH

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` sub-command."""
    p = sub.add_parser(
        "bench",
        help="measure rate accuracy and a whole run against a local emulator",
        description="Measure, on this machine and against an emulator in this process, how "
        "exactly bulkresign keeps to --rate and how long a whole run takes. Nothing leaves "
        "127.0.0.1.",
    )
    p.add_argument("--rate", type=float, default=300.0, help="client --rate (default 300)")
    p.add_argument(
        "--limit",
        type=float,
        help="the emulator's limit per sliding second (default: --rate; 0 = unlimited)",
    )
    p.add_argument(
        "--latency-ms", type=float, default=20.0, help="emulator latency per call (default 20)"
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="length of the rate-accuracy run (default 10)",
    )
    p.add_argument(
        "--ids", type=int, default=200_000, help="IDs in the end-to-end run (default 200,000)"
    )
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    p.add_argument(
        "--dir",
        type=Path,
        help="an existing folder for the generated input and ledger, deleted once measured "
        "(default: a temp dir)",
    )
    p.set_defaults(func=handle)


def _check(args: argparse.Namespace) -> float | None:
    """Validate the options; return the emulator's limit (``None``: unlimited)."""
    for name in ("rate", "seconds", "ids", "concurrency"):
        if not getattr(args, name) > 0:
            raise ConfigError(f"--{name} must be greater than 0, not {getattr(args, name):g}")
    if args.latency_ms < 0:
        raise ConfigError(f"--latency-ms must be 0 or more, not {args.latency_ms:g}")
    limit: float = args.rate if args.limit is None else args.limit
    if limit < 0 or 0 < limit < 1:
        raise ConfigError(f"--limit must be 0 (unlimited) or at least 1, not {limit:g}")
    if args.dir is not None and not args.dir.is_dir():
        raise ConfigError(f"--dir {args.dir}: not a directory")
    return limit or None


def handle(args: argparse.Namespace) -> int:
    """Run both measurements and print them beside their targets."""
    limit = _check(args)
    limit_text = "no limit" if limit is None else f"a limit of {limit:g}/s"
    common = {
        "rate": args.rate,
        "limit": limit,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
    }
    with tempfile.TemporaryDirectory(prefix="bulkresign-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        _say(f"rate accuracy: {args.seconds:g} s of calls at --rate {args.rate:g}, {limit_text}")
        rate = measure_run(
            work,
            ids=max(1, int(args.rate * args.seconds * MAX_BATCH)),
            timeout=3 * args.seconds + 30,
            seed=1,
            **common,
        )
        _say(f"end to end: {args.ids:,} IDs at --rate {args.rate:g}")
        whole = measure_run(
            work,
            ids=args.ids,
            timeout=3 * args.ids / (MAX_BATCH * args.rate) + 30,
            seed=2,
            **common,
        )
    print(
        f"bulkresign bench: --rate {args.rate:g} against an in-process emulator with "
        f"{limit_text} and {args.latency_ms:g} ms latency, {args.concurrency} in flight"
    )
    _print(f"rate accuracy ({rate.requests:,} calls)", rate_checks(rate))
    _print(f"end to end ({whole.ids:,} IDs)", end_to_end_checks(whole))
    print(_projection(whole))
    ok = all(c.ok for c in [*rate_checks(rate), *end_to_end_checks(whole)])
    return ExitCode.OK if ok else ExitCode.PROBLEMS


def _say(text: str) -> None:
    print(f"bulkresign bench: {text} …", file=sys.stderr, flush=True)


def _print(title: str, checks: list[Check]) -> None:
    print(f"\n{title}")
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok" if c.ok else "MISSED"
        print(f"  {c.name:<{width}}  {c.value:<40}  target {c.target:<8}  {mark}")


def _projection(report: RunReport) -> str:
    """What the measured pace means for the sizes users ask about: the start-up once, then the
    users at the steady rate of the calls (a short run's start-up would weigh on users/s)."""
    if not report.finished or report.goodput <= 0:
        return "\nthe end-to-end run did not finish: no projection"
    per_second = report.goodput * MAX_BATCH
    sizes = ", ".join(
        f"{n:,} users ≈ {_duration(report.first_request + n / per_second)}" for n in (10**6, 10**7)
    )
    return (
        f"\nat {per_second:,.0f} users/s after a start-up of {report.first_request:.1f} s: {sizes}"
    )


def _duration(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"
