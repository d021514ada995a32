"""``plan --preflight``: the read-only look-ups, wired to the command line.

``plan`` imports this module only when asked, so a plain ``plan`` loads no HTTP client at all.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import anyio

from bulkresign.batching import Ingest
from bulkresign.client import GenAuthReader
from bulkresign.config import Timeouts, load_credentials, resolve_host
from bulkresign.inputspec import InputSpec
from bulkresign.models import Endpoint
from bulkresign.preflight import KEEP_UNKNOWN, Preflight, preflight
from bulkresign.validate import printable

__all__ = ["render_preflight", "run_preflight"]


def run_preflight(
    args: argparse.Namespace,
    spec: InputSpec,
    exclude: frozenset[str] = frozenset(),
    on_unknown: Callable[[int, str], None] | None = None,
) -> Preflight:
    """Read every planned ID back through the read-only client; return the counts."""
    host = resolve_host(args.host, os.environ)
    credentials = load_credentials(os.environ, args.credentials_file)
    timeouts = Timeouts(read=args.timeout, total=args.timeout * 2)

    async def go() -> Preflight:
        async with GenAuthReader(host, credentials, timeouts=timeouts, ca_file=args.ca_file) as r:
            batches = Ingest(spec, exclude=exclude).batches()
            return await preflight(
                r,
                Endpoint(args.endpoint),
                spec.id_type,
                batches,
                rate=args.rate,
                on_unknown=on_unknown,
            )

    return anyio.run(go)


#: Unknown IDs the table lists (``--json`` has up to :data:`KEEP_UNKNOWN`).
SHOWN = 20


def render_preflight(found: Preflight) -> str:
    """The look-ups' counts as lines under the plan's table, and the first unknown IDs."""
    lines = [
        f"  preflight   userpool {found.userpool_id}, {found.calls:,} read-only calls",
        f"    unknown            {found.unknown:>9,}",
        f"    already resigned   {found.already_resigned:>9,}",
        f"    active             {found.active:>9,}",
    ]
    if found.unknown:
        more = found.unknown - min(SHOWN, len(found.unknown_ids))
        lines.append("  unknown to the userpool (line: ID), to remove before the run:")
        lines += [f"    {line}: {printable(i)}" for line, i in found.unknown_ids[:SHOWN]]
        if more:
            lines.append(
                f"    … and {more:,} more (--rejects FILE lists them all, --json the first "
                f"{KEEP_UNKNOWN:,})"
            )
    return "\n".join(lines)
