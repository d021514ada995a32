"""What the ledger stores: its schema, the manifest, attempts, per-ID outcomes, batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from bulkresign.errors import LedgerError, LedgerMismatch
from bulkresign.models import Batch, BatchState, LineOutcome

__all__ = [
    "BINDING",
    "OPEN",
    "SCHEMA",
    "SCHEMA_VERSION",
    "TERMINAL",
    "Attempt",
    "BatchRecord",
    "IdOutcome",
    "Manifest",
    "handed_to",
    "check_manifest",
    "join_ids",
    "join_lines",
    "split_ids",
]

SCHEMA_VERSION = 1

#: States a batch does not leave.
TERMINAL = frozenset({BatchState.DONE, BatchState.REJECTED, BatchState.RECONCILED})

#: The SQL test for a batch still open. The partial index ``batches_open`` is built on this very
#: clause, so a query that filters on it reads only the open batches, never the whole table.
OPEN = "state NOT IN ('done', 'rejected', 'reconciled')"

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE batches (
    seq INTEGER PRIMARY KEY,
    ids TEXT NOT NULL,
    lines TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
CREATE INDEX batches_open ON batches(state) WHERE {OPEN};
CREATE TABLE attempts (
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ids TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    outcome TEXT,
    status_code INTEGER,
    api_code INTEGER,
    request_id TEXT,
    message TEXT,
    PRIMARY KEY (seq, attempt)
) WITHOUT ROWID;
CREATE TABLE id_outcomes (
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    api_code INTEGER,
    message TEXT,
    request_id TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (seq, id)
) WITHOUT ROWID;
"""

#: Manifest keys that must match for a state file to be resumed.
BINDING = ("id_type", "endpoint", "host", "userpool_id", "batch_size", "input_options")


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a state file is bound to; a resume must present the same values."""

    input_path: str
    input_sha256: str | None
    id_type: str
    endpoint: str
    host: str
    userpool_id: str
    batch_size: int
    input_options: str
    tool_version: str
    pseudonym_key: str

    def as_meta(self) -> dict[str, str]:
        """The manifest as ``meta`` rows (``None`` values omitted)."""
        out: dict[str, str] = {}
        for key in self.__slots__:
            value = getattr(self, key)
            if value is not None:
                out[key] = str(value)
        return out


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request (or read-back) made for a batch, as the ledger recorded it."""

    seq: int
    attempt: int
    kind: str
    ids: tuple[str, ...]
    started: float
    finished: float | None
    outcome: str | None
    status_code: int | None
    api_code: int | None
    request_id: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class IdOutcome:
    """The recorded outcome of one ID that is not simply "resigned with its batch"."""

    id: str
    outcome: LineOutcome
    api_code: int | None = None
    message: str | None = None
    request_id: str | None = None
    at: float | None = None
    """When the ledger recorded it (Unix time); ``None`` before it is recorded."""


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A batch as stored: its composition, state and per-ID exceptions."""

    batch: Batch
    state: BatchState
    attempts: int
    outcomes: dict[str, IdOutcome]

    def remaining(self) -> tuple[str, ...]:
        """IDs of the batch with no recorded per-ID outcome yet, in batch order."""
        return tuple(i for i in self.batch.ids if i not in self.outcomes)


def join_ids(ids: Sequence[str]) -> str:
    """IDs as the ledger stores them: one text, ``\n``-separated (no valid ID holds one)."""
    return "\n".join(ids)


def join_lines(lines: Sequence[int]) -> str:
    """A batch's line numbers as the ledger stores them: comma-separated."""
    return ",".join(map(str, lines))


def split_ids(text: str) -> tuple[str, ...]:
    """The IDs of a stored text (:func:`join_ids` read back)."""
    return tuple(text.split("\n")) if text else ()


def handed_to(meta: Mapping[str, str]) -> str | None:
    """Where ``report --abandon-run`` handed the run's unprocessed rows, if it closed the run."""
    note = meta.get("abandoned")
    return str(orjson.loads(note).get("to")) if note else None


def check_manifest(path: Path, meta: Mapping[str, str], manifest: Manifest | None) -> None:
    """Refuse a state file of another schema, or (given ``manifest``) bound to another run.

    Raises:
        LedgerError: the schema version differs.
        LedgerMismatch: a :data:`BINDING` value or the input's SHA-256 differs.
    """
    version = meta.get("schema_version")
    if version != str(SCHEMA_VERSION):
        raise LedgerError(
            f"{path}: schema version {version}, this bulkresign reads {SCHEMA_VERSION}"
        )
    if manifest is None:
        return
    if (to := handed_to(meta)) is not None:
        missing = (
            ""
            if Path(to).exists()
            else (
                f" ({to} is not there: if that hand-off was interrupted, the same `bulkresign "
                "report … --abandon-run` command writes it again)"
            )
        )
        raise LedgerError(
            f"{path}: this run was closed by `bulkresign report --abandon-run`, its unprocessed "
            f"rows handed to {to}; resuming would send them a second time: run that file, with "
            f"another --state{missing}"
        )
    want = manifest.as_meta()
    for key in BINDING:
        if meta.get(key) != want.get(key):
            said = (
                "made with " + _options_differ(meta.get(key, ""), want.get(key, ""))
                if key == "input_options"
                else f"made with {_OPTIONS.get(key, key)} {meta.get(key)!r} "
                f"(given: {want.get(key)!r})"
            )
            raise LedgerMismatch(
                f"{path}: {said}; give the run's own options to resume it, or use another "
                "--state file for a different run"
            )
    stored, given = meta.get("input_sha256"), manifest.input_sha256
    # After a run stopped on an input error, the fixed input may differ: the run's batches are
    # then checked one by one as the new input replays them (bulkresign.pipeline).
    if stored and given and stored != given and not meta.get("input_error"):
        made_for = meta.get("input_path")
        if made_for and made_for != manifest.input_path:
            raise LedgerMismatch(
                f"{path}: made for the input {made_for}, not {manifest.input_path}; use another "
                "--state file for a different input"
            )
        raise LedgerMismatch(
            f"{path}: made for an input with SHA-256 {stored[:16]}…, but "
            f"{manifest.input_path} now hashes to {given[:16]}…; the input changed"
        )


#: The command-line option behind each field of a run's binding and its ``input_options``.
_OPTIONS = {
    "exclude_sha256": "--exclude",
    "format": "--format",
    "column": "--column",
    "delimiter": "--delimiter",
    "header": "--no-header",
    "field": "--field",
    "case_sensitive_email": "--case-sensitive-email",
    "max_line_bytes": "--max-line-bytes",
    "batch_size": "--batch-size",
    "id_type": "--id-type",
    "endpoint": "--endpoint",
    "host": "--host",
    "userpool_id": "the access key of userpool",
}


def _options_differ(made: str, given: str) -> str:
    """What differs between two ``input_options``, in the options' own words."""
    try:
        old, new = orjson.loads(made or "{}"), orjson.loads(given or "{}")
    except orjson.JSONDecodeError:
        return "other input options"
    said = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        option = _OPTIONS.get(key, key)
        if key == "header":  # the flag is the header's presence; the option is its absence
            said.append(
                "--no-header" if old.get(key) == "False" else "a header row (no --no-header)"
            )
        elif key == "exclude_sha256":
            said.append(
                "another --exclude list"
                if old.get(key) and new.get(key)
                else ("--exclude FILE (given: none)" if old.get(key) else "no --exclude")
            )
        else:
            said.append(f"{option} {old.get(key)!r} (given: {new.get(key)!r})")
    return ", ".join(said) or "other input options"
