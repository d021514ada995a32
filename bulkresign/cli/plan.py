"""``bulkresign plan``: read INPUT through the front half, offline, and say what `run` would do.

Prints the counts — lines, accepted, duplicates, rejected (by reason, with the first line
numbers), skipped, batches — and the SHA-256 of the ID type and the ordered accepted IDs, which
``run --plan-sha256`` checks so that what was reviewed is what gets resigned. Exit code 0 when
no line was rejected, 1 when some were, 2 when the input cannot be used.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

import orjson

from bulkresign.batching import Ingest
from bulkresign.cli import ExitCode
from bulkresign.cli.options import (
    RANGES,
    add_connection_options,
    add_input_options,
    check_endpoint,
    check_outputs,
    check_ranges,
    input_spec_from_args,
    load_exclude,
)
from bulkresign.files import open_private, refuse_replacing, run_files
from bulkresign.models import Endpoint
from bulkresign.tally import IngestStats, Reject

__all__ = ["register", "render"]

#: The rejects file's CSV header: a file that starts so is one ``plan`` wrote, and may be replaced.
_REJECTS_HEADER = b"line,reason,value"
#: The rejects file's reason for an ID a preflight found unknown to the userpool.
UNKNOWN = "unknown"
#: A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plan`` sub-command."""
    p = sub.add_parser(
        "plan",
        help="count, validate and deduplicate INPUT without sending anything",
        description="Read INPUT as `run` would — parse, validate, deduplicate, batch — without "
        "any network access, and print the counts and the SHA-256 of the accepted IDs.",
    )
    add_input_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--rejects",
        type=Path,
        metavar="FILE",
        help="write every rejected line to FILE (CSV: line,reason,value; mode 0600), and with "
        "--preflight every unknown ID after them (reason unknown)",
    )
    p.add_argument(
        "--exclude",
        type=Path,
        metavar="FILE",
        help="protected IDs (one per line, same --id-type), as `run --exclude` takes them",
    )
    p.add_argument(
        "--preflight",
        action="store_true",
        help="also read every planned ID back (read-only): unknown, already resigned, active",
    )
    p.add_argument(
        "--endpoint",
        choices=["public-account", "user"],
        default="public-account",
        help="the API the run will use, whose read-back --preflight uses (default public-account)",
    )
    p.add_argument(
        "--rate", type=float, default=100.0, help="read-back calls per second (default 100)"
    )
    add_connection_options(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the front half over the input and print its counts."""
    check_ranges(args, {k: RANGES[k] for k in ("rate", "timeout")})
    spec = input_spec_from_args(args)
    check_endpoint(Endpoint(args.endpoint), spec.id_type)
    check_outputs(spec, {"--rejects": args.rejects}, {"the --exclude file": args.exclude})
    if args.rejects is not None:
        state = None if spec.path == "-" else Path(f"{os.path.abspath(spec.path)}.bulkresign")
        refuse_replacing(args.rejects, run_files(state) if state else {}, (_REJECTS_HEADER,))
    with contextlib.ExitStack() as stack:
        on_reject: Callable[[Reject], None] | None = None
        on_unknown: Callable[[int, str], None] | None = None
        if args.rejects is not None:
            out = stack.enter_context(cast("IO[str]", open_private(args.rejects, "w")))
            writer = csv.writer(out)
            writer.writerow(_REJECTS_HEADER.decode().split(","))

            def on_reject(reject: Reject) -> None:
                writer.writerow([reject.line, reject.reason.value, _cell(reject.value)])

            def on_unknown(line: int, value: str) -> None:
                writer.writerow([line, UNKNOWN, _cell(value)])

        exclude = load_exclude(args.exclude, spec) if args.exclude else frozenset()
        stats = Ingest(spec, exclude=exclude, on_reject=on_reject).drain()
        report = stats.as_dict()
        lines = [render(stats, spec.batch_size)]
        if args.preflight:
            # Only a preflight loads the HTTP client; a plain plan stays offline by construction.
            from bulkresign.cli.preflight import render_preflight, run_preflight

            found = run_preflight(args, spec, exclude, on_unknown)
            report["preflight"] = found.as_dict()
            lines.append(render_preflight(found))
    print(orjson.dumps(report).decode() if args.json else "\n".join(lines))
    return ExitCode.PROBLEMS if stats.rejected else ExitCode.OK


def _cell(value: str) -> str:
    """Defuse a value a spreadsheet would run as a formula by quoting it with a leading '."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def render(stats: IngestStats, batch_size: int) -> str:
    """The counts as a short aligned table."""
    rows = [
        f"bulkresign plan: {stats.path}",
        f"  format      {stats.format} ({stats.format_note})",
        f"  id type     {stats.id_type}",
        f"  lines       {stats.lines:,}",
        f"  accepted    {stats.accepted:,} in {stats.batches:,} batches of up to {batch_size}",
        f"  duplicates  {stats.duplicates:,}",
        f"  rejected    {stats.rejected:,}",
    ]
    width = max((len(r) for r in stats.rejected_by_reason), default=0)
    for reason, count in sorted(stats.rejected_by_reason.items(), key=lambda kv: -kv[1]):
        lines = stats.reject_lines.get(reason, ())
        where = ("line " if len(lines) == 1 else "lines ") + ", ".join(map(str, lines))
        more = ", …" if count > len(lines) else ""
        rows.append(f"    {reason:<{width}}  {count:>9,}  {where}{more}")
    skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.skipped_by_reason.items()))
    rows.append(f"  skipped     {stats.skipped:,}" + (f" ({skipped})" if skipped else ""))
    if stats.excluded:
        rows.append(f"  excluded    {stats.excluded:,}")
    rows += [
        f"  sha256      {stats.sha256}  (the ID type, then the accepted IDs, one per line)",
        f"  input       {stats.bytes_read:,} bytes, sha256 {stats.input_sha256}",
    ]
    return "\n".join(rows)
