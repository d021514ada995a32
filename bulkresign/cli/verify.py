"""``bulkresign verify``: read back every ID a run reports resigned; exit 1 if any is not Resigned.

Read-only by construction (a :class:`~bulkresign.client.GenAuthReader` has no resign call), and
paced by ``--rate`` like a run, since read-backs count against the same userpool limit.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

import anyio

from bulkresign.cli import ExitCode
from bulkresign.cli.options import RANGES, add_connection_options, check_ranges
from bulkresign.cli.run import DEFAULT_RATE
from bulkresign.cli.status import run_status
from bulkresign.config import HOST_ENV, Timeouts, load_credentials, resolve_host
from bulkresign.errors import ConfigError
from bulkresign.ledger import Ledger
from bulkresign.models import LineOutcome, UserStatus
from bulkresign.validate import printable
from bulkresign.verify import Discrepancy, Finding, verify_ledger

__all__ = ["DEFAULT_CONCURRENCY", "register", "verify_host"]

#: Read-backs in flight: latency-bound calls, so a few keep the limiter busy.
DEFAULT_CONCURRENCY = 8


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` sub-command."""
    p = sub.add_parser(
        "verify",
        help="read back every ID reported resigned; exit 1 if any is not Resigned",
        description="Read back, through read-only calls, every ID the state file reports "
        "resigned, and list each one the server does not show as Resigned.",
    )
    p.add_argument("--state", type=Path, required=True, help="the run's ledger file")
    add_connection_options(p)
    p.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"read-back requests per second, never exceeded (default {DEFAULT_RATE:g})",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"read-backs in flight (default {DEFAULT_CONCURRENCY})",
    )
    p.set_defaults(func=handle)


def verify_host(cli_host: str | None, recorded: str, environ: Mapping[str, str]) -> str:
    """The host to read: ``--host`` when given, else the run's (``GENAUTH_HOST`` must agree)."""
    if cli_host is not None:
        return resolve_host(cli_host, environ)
    host = resolve_host(None, {HOST_ENV: recorded})
    if environ.get(HOST_ENV, "").strip() and resolve_host(None, environ) != host:
        raise ConfigError(
            f"{HOST_ENV} is {resolve_host(None, environ)}, but the run was against {host}; "
            "pass --host to read from another host anyway"
        )
    return host


#: The statuses the API lists; any other is the server's free text, never echoed.
_KNOWN = frozenset(s.value for s in UserStatus)


def _describe(d: Discrepancy) -> str:
    """What was found, as it reads after "line N: ID"."""
    if d.finding is Finding.NOT_FOUND:
        return "not found"
    if d.finding is Finding.UNREADABLE:
        return "cannot be read back (its ',' would split the read-back's list)"
    if d.status in _KNOWN:
        return f"is {d.status}, not Resigned"
    # A status outside the API's enum is the server's free text: never echoed (it could hold
    # anything, a secret included).
    return "is in a status the API does not list, not Resigned" if d.status else "is not Resigned"


def handle(args: argparse.Namespace) -> int:
    """Check the settings, read every resigned ID back, list the ones that are not."""
    check_ranges(args, {k: RANGES[k] for k in ("rate", "concurrency", "timeout")})
    ledger = Ledger.open(args.state)
    try:
        recorded = ledger.meta().get("host", "")
        run = run_status(ledger)
    finally:
        ledger.close()
    host = verify_host(args.host, recorded, os.environ)
    credentials = load_credentials(os.environ, args.credentials_file)

    def show(d: Discrepancy) -> None:
        print(f"line {d.line}: {printable(d.id)} {_describe(d)}", flush=True)

    result = anyio.run(
        lambda: verify_ledger(
            args.state,
            host,
            credentials,
            rate=args.rate,
            concurrency=args.concurrency,
            timeouts=Timeouts(read=args.timeout, total=args.timeout * 2),
            ca_file=args.ca_file,
            on_discrepancy=show,
        )
    )
    found = result.findings
    bad = sum(found.values())
    unreadable = found[Finding.UNREADABLE]
    print(
        f"bulkresign verify: {result.checked:,} IDs reported resigned; "
        f"{result.checked - bad:,} are Resigned, {found[Finding.NOT_RESIGNED]:,} are not, "
        f"{found[Finding.NOT_FOUND]:,} not found"
        + (f", {unreadable:,} cannot be read back" if unreadable else "")
    )
    if not run.finished:
        # Only IDs reported resigned are read back: the rest must not pass for verified.
        doubt, unsent = run.ids[LineOutcome.IN_DOUBT], run.ids[LineOutcome.UNPROCESSED]
        print(
            f"bulkresign verify: the run is {run.status}, not finished: {doubt:,} IDs in doubt "
            f"and {unsent:,} unprocessed (and any not read from the input yet) were not checked"
            + ("; resume the run to settle them" if run.status == "resumable" else "")
        )
    return ExitCode.OK if result.ok else ExitCode.PROBLEMS
