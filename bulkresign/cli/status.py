"""``bulkresign status``: what a state file says about its run, finished or not.

Counts come from the ledger alone, so ``status`` works during a run (WAL lets it read beside the
writer), after a crash, and after the end. Nothing is sent and nothing is written.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bulkresign.cli import ExitCode
from bulkresign.errors import LedgerError
from bulkresign.join import open_outcome
from bulkresign.ledger import TERMINAL, Ledger
from bulkresign.models import BatchState, LineOutcome
from bulkresign.records import handed_to

__all__ = ["RunStatus", "register", "render", "run_status"]

#: Manifest keys shown, in order (``pseudonym_key`` is a secret of the run's logs: never shown).
_SHOWN = (
    "input_path",
    "input_sha256",
    "host",
    "userpool_id",
    "endpoint",
    "id_type",
    "batch_size",
    "tool_version",
)
#: Per-ID outcomes a ledger can hold, in the order they are shown.
_ID_OUTCOMES = (
    LineOutcome.RESIGNED,
    LineOutcome.NOT_FOUND,
    LineOutcome.FAILED,
    LineOutcome.UNPROCESSED,
    LineOutcome.IN_DOUBT,
)


@dataclass(frozen=True, slots=True)
class RunStatus:
    """The state of one run, as its ledger records it."""

    manifest: dict[str, object]
    ingest: dict[str, object] | None
    """The ingest counts, recorded once the input was read to its end."""
    batches: dict[BatchState, int]
    ids: dict[LineOutcome, int]
    attempts: int
    handed_to: str | None = None
    """Where ``report --abandon-run`` handed the unprocessed rows: the run is closed for good."""

    @property
    def finished(self) -> bool:
        """Whether the whole input was batched and every batch reached a terminal state."""
        open_ = sum(n for s, n in self.batches.items() if s not in TERMINAL)
        return self.ingest is not None and open_ == 0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict (``--json``)."""
        return {
            "manifest": self.manifest,
            "ingest": self.ingest,
            "ingest_complete": self.ingest is not None,
            "batches": {str(s): n for s, n in self.batches.items()},
            "ids": {str(o): n for o, n in self.ids.items()},
            "attempts": self.attempts,
            "finished": self.finished,
            "status": self.status,
        }

    @property
    def status(self) -> str:
        """``finished``, ``abandoned`` (closed by ``report --abandon-run``) or ``resumable``."""
        if self.finished:
            return "finished"
        return "resumable" if self.handed_to is None else "abandoned"


def run_status(ledger: Ledger) -> RunStatus:
    """Count batches by state and IDs by outcome (one pass over the batches)."""
    meta = ledger.meta()
    manifest: dict[str, object] = {k: meta[k] for k in _SHOWN if k in meta}
    if "batch_size" in meta:
        manifest["batch_size"] = int(meta["batch_size"])
    if "input_options" in meta:
        manifest["input_options"] = _json(ledger, meta, "input_options")
    if "created_at" in meta:
        manifest["created"] = _iso(float(meta["created_at"]))
    batches: Counter[BatchState] = Counter()
    ids: Counter[LineOutcome] = Counter()
    attempts = 0
    for rec in ledger.iter_batches():
        batches[rec.state] += 1
        attempts += rec.attempts
        ids.update(o.outcome for o in rec.outcomes.values())
        # An ID without a per-ID row went with its batch: resigned if the batch is terminal.
        bare = len(rec.batch.ids) - len(rec.outcomes)
        ids[open_outcome(rec.state)] += bare
    ingest = _json(ledger, meta, "ingest") if "ingest" in meta else None
    return RunStatus(
        manifest,
        ingest,
        {s: batches[s] for s in BatchState},
        {o: ids[o] for o in _ID_OUTCOMES},
        attempts,
        handed_to(meta),
    )


def _json(ledger: Ledger, meta: dict[str, str], key: str) -> dict[str, object]:
    try:
        value = orjson.loads(meta[key])
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise LedgerError(f"{ledger.path}: the manifest's {key} is not readable")
    return value


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def render(status: RunStatus, state: Path) -> str:
    """The status as a short aligned text."""
    m = status.manifest
    rows = [f"bulkresign status: {state}"]
    for label, key in (
        ("input", "input_path"),
        ("host", "host"),
        ("userpool", "userpool_id"),
        ("endpoint", "endpoint"),
        ("id type", "id_type"),
        ("created", "created"),
    ):
        rows.append(f"  {label:<10}  {m.get(key, '?')}")
    ingest = status.ingest
    if ingest is None:
        rows.append("  input read  not to its end yet")
    else:
        keys = ("lines", "accepted", "duplicates", "rejected", "skipped", "excluded")
        counts = ", ".join(f"{_count(ingest.get(k)):,} {k}" for k in keys)
        rows.append(f"  input read  to its end: {counts}")
    total = sum(status.batches.values())
    states = ", ".join(f"{s} {n:,}" for s, n in status.batches.items() if n)
    rows.append(f"  batches     {total:,}" + (f" ({states})" if states else ""))
    ids = ", ".join(f"{str(o).replace('_', ' ')} {n:,}" for o, n in status.ids.items())
    rows.append(f"  IDs         {ids}")
    rows.append(f"  attempts    {status.attempts:,}")
    gone = status.handed_to is not None and not Path(status.handed_to).exists()
    said = {
        "finished": "finished",
        "abandoned": f"abandoned: its unprocessed rows went to {status.handed_to}"
        + (" (not there: the same `report … --abandon-run` writes it again)" if gone else ""),
        "resumable": "resumable: run the same `bulkresign run` command to finish it",
    }
    rows.append(f"  status      {said[status.status]}")
    return "\n".join(rows)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``status`` sub-command."""
    p = sub.add_parser(
        "status",
        help="counts and state of a run, finished or not",
        description="Show what a state file records: the run's manifest, batches by state, "
        "IDs by outcome, and whether the run finished or can be resumed.",
    )
    p.add_argument("--state", type=Path, required=True, help="the run's ledger file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Open the ledger, count, print."""
    ledger = Ledger.open(args.state)
    try:
        status = run_status(ledger)
    finally:
        ledger.close()
    if args.json:
        print(orjson.dumps(status.as_dict()).decode())
    else:
        print(render(status, args.state))
    return ExitCode.OK
