"""``bulkresign audit verify FILE``: check that an audit journal's hash chain is intact."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bulkresign.chain import JournalAnchor, verify_journal
from bulkresign.cli import ExitCode
from bulkresign.errors import ConfigError
from bulkresign.ledger import Ledger

__all__ = ["register"]

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``audit`` command and its ``verify`` sub-command."""
    p = sub.add_parser(
        "audit",
        help="work with a run's audit journal",
        description="Work with the hash-chained audit journal a run writes.",
    )
    actions = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = actions.add_parser(
        "verify",
        help="check the journal's hash chain (exit 0 intact, 1 tampered)",
        description="Check every line of FILE against the hash chain. Prints 'OK: N entries, "
        "chain intact, head SHA256' and exits 0 (store the head elsewhere: --head then also "
        "detects lines cut from the end), or 'TAMPERED: line L: reason' and exits 1.",
    )
    v.add_argument("file", type=Path, metavar="FILE", help="the audit journal (JSONL)")
    v.add_argument(
        "--head",
        metavar="SHA256",
        help="the journal's last hash, recorded elsewhere: also detects dropped trailing lines",
    )
    v.add_argument(
        "--state",
        type=Path,
        metavar="STATE",
        help="the run's ledger: the chain must also pass through the point it anchored",
    )
    v.set_defaults(func=handle_verify)


def _anchor(state: Path) -> JournalAnchor:
    ledger = Ledger.open(state)
    try:
        anchor = JournalAnchor.from_meta(ledger.meta())
    finally:
        ledger.close()
    if anchor is None:
        raise ConfigError(f"{state}: the state file anchors no audit journal")
    return anchor


def handle_verify(args: argparse.Namespace) -> int:
    """Verify the journal and print the one-line verdict."""
    head: str | None = args.head
    if head is not None and not _HEX64.match(head.lower()):
        raise ConfigError(f"--head {head!r}: expected 64 hex digits (a SHA-256)")
    through = _anchor(args.state) if args.state is not None else None
    result = verify_journal(
        args.file, head=head.lower() if head is not None else None, through=through
    )
    if result.ok and result.entries == 0 and through is None:
        # A run writes its first entry as it starts: an empty file was never a run's journal,
        # or was emptied, which only the ledger's anchor (--state) can tell.
        raise ConfigError(f"{args.file}: empty, not an audit journal (--state tells if it was one)")
    if result.ok:
        print(f"OK: {result.entries} entries, chain intact, head {result.head}")
        return ExitCode.OK
    print(f"TAMPERED: line {result.first_bad_line}: {result.reason}")
    return ExitCode.PROBLEMS
