"""``bulkresign report``: one row per input line with its outcome, as CSV or JSONL.

The ``failed`` and ``unprocessed`` rows of a CSV report are themselves an input for ``run``:
``bulkresign run retry.csv --column normalized --id-type <the run's>`` (see docs/report.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from bulkresign.binding import hand_off
from bulkresign.cli import ExitCode, printable
from bulkresign.cli.options import load_exclude
from bulkresign.errors import ConfigError
from bulkresign.ledger import Ledger
from bulkresign.models import LineOutcome
from bulkresign.report import ReportFormat, spec_from_manifest, write_report

__all__ = ["parse_outcomes", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` sub-command."""
    p = sub.add_parser(
        "report",
        help="one row per input line with its outcome (CSV or JSONL)",
        description="Re-read the run's input and join every line with the ledger: one row per "
        "line with its outcome, reason, apiCode, batch, requestId and time.",
    )
    p.add_argument("--state", type=Path, required=True, help="the run's ledger file")
    p.add_argument(
        "--format",
        choices=[f.value for f in ReportFormat],
        help="csv or jsonl (default: from the --output extension, else csv)",
    )
    p.add_argument(
        "--outcome",
        metavar="LIST",
        help="keep only these outcomes, comma-separated: " + ",".join(o.value for o in LineOutcome),
    )
    p.add_argument(
        "--output", type=Path, metavar="FILE", help="write here (mode 0600) instead of stdout"
    )
    p.add_argument(
        "--input",
        metavar="FILE",
        help="read the run's input from here (moved, or given on stdin); it must be the same bytes",
    )
    p.add_argument(
        "--exclude", type=Path, metavar="FILE", help="the --exclude FILE the run was given"
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="write over an existing report at --output (a retry file may be another run's input)",
    )
    p.add_argument(
        "--abandon-run",
        action="store_true",
        help="with --outcome …unprocessed on a resumable run: hand those rows to another run "
        "and close this one for good (it can no longer be resumed)",
    )
    p.set_defaults(func=handle)


def parse_outcomes(text: str) -> frozenset[LineOutcome]:
    """``failed,unprocessed`` → the outcomes; ``ConfigError`` naming any unknown one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = {o.value for o in LineOutcome}
    for name in names:
        if name not in known:
            raise ConfigError(f"--outcome {name!r}: not one of {', '.join(sorted(known))}")
    if not names:
        raise ConfigError("--outcome needs at least one outcome, e.g. failed,unprocessed")
    return frozenset(LineOutcome(n) for n in names)


def handle(args: argparse.Namespace) -> int:
    """Write the report; a summary goes to stderr when it goes to a file."""
    outcomes = parse_outcomes(args.outcome) if args.outcome is not None else None
    exclude: frozenset[str] = frozenset()
    if args.exclude is not None:
        ledger = Ledger.open(args.state)
        try:
            spec = spec_from_manifest(ledger.meta())
        finally:
            ledger.close()
        exclude = load_exclude(args.exclude, spec)
    out = args.output
    if out is not None and not args.replace and out.is_file() and out.stat().st_size:
        raise ConfigError(
            f"{out}: exists; pass --replace to write over it (a report used as a retry file is "
            "another run's input, which its run checks)"
        )
    # Unprocessed rows exported for another run must never also be sent by this one.
    handing_off = outcomes is not None and LineOutcome.UNPROCESSED in outcomes
    if handing_off and outcomes is not None and LineOutcome.IN_DOUBT in outcomes:
        raise ConfigError(
            "--outcome: in_doubt rows may have been resigned already, so they never go into a "
            "hand-off with unprocessed ones; report them on their own, to look at"
        )
    if args.abandon_run and not handing_off:
        raise ConfigError(
            "--abandon-run hands a run's unprocessed rows over: it goes with --outcome "
            "…unprocessed (nothing was abandoned)"
        )
    if handing_off and args.abandon_run and out is None:
        raise ConfigError("--abandon-run needs --output FILE: a hand-off must arrive whole")
    guard = (
        hand_off(args.state, abandon=args.abandon_run, to=str(out))
        if handing_off
        else contextlib.nullcontext()
    )
    try:
        with guard:
            summary = write_report(
                args.state,
                args.output,
                fmt=None if args.format is None else ReportFormat(args.format),
                outcomes=outcomes,
                input_path=args.input,
                exclude=exclude,
            )
    except BrokenPipeError:
        # Whoever read stdout stopped (`| head`): not an error. Point stdout at /dev/null so the
        # interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    if handing_off and args.abandon_run:
        print(f"bulkresign: {args.state} is closed for good: its unprocessed rows are handed "
              f"to {args.output}", file=sys.stderr)  # fmt: skip
    if args.output is not None:
        counts = ", ".join(f"{o} {n:,}" for o, n in sorted(summary.outcomes.items()))
        print(
            f"bulkresign: {summary.written:,} of {summary.lines:,} lines written to "
            f"{args.output} ({counts})",
            file=sys.stderr,
        )
    if summary.input_error is not None:
        print(
            f"bulkresign: the report ends after {summary.lines:,} lines: "
            f"{printable(summary.input_error)}",
            file=sys.stderr,
        )
        return ExitCode.PROBLEMS
    return ExitCode.OK
