"""The per-line report: one row for every input line, re-derived from the input and the ledger.

The ledger stores batches, not lines, so the report reads the input again through the front half
(:meth:`bulkresign.batching.Ingest.rows`, with the options the manifest recorded) and joins every
accepted line with its batch: the per-ID row when there is one, else ``resigned`` by the batch's
successful call when the batch is terminal, else ``unprocessed``. Each accepted line is checked
against the batch the ledger holds (same ID, same position, same line), so an outcome can never be
pinned on the wrong line. Rows stream: memory holds one batch and its attempts; the first line of
each ID, which a duplicate line names, lives in a temporary on-disk index.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

import orjson

from bulkresign.batching import Ingest
from bulkresign.errors import ConfigError, LedgerError, LedgerMismatch
from bulkresign.files import open_private
from bulkresign.inputspec import InputSpec
from bulkresign.ledger import TERMINAL, Attempt, BatchRecord, Ledger
from bulkresign.models import IdType, LineOutcome
from bulkresign.pipeline import hash_file
from bulkresign.scan import id_keys
from bulkresign.tally import LineKind, LineRow

__all__ = [
    "FIELDS",
    "ReportFormat",
    "ReportRow",
    "ReportSummary",
    "report_rows",
    "spec_from_manifest",
    "write_report",
    "write_rows",
]

#: The report's columns, in order (CSV header, JSONL keys).
FIELDS = ("line", "id", "normalized", "outcome", "reason", "api_code", "batch", "request_id", "time")

#: A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_KIND_OUTCOME = {
    LineKind.DUPLICATE: LineOutcome.DUPLICATE,
    LineKind.REJECTED: LineOutcome.REJECTED_INVALID,
    LineKind.SKIPPED: LineOutcome.SKIPPED,
    LineKind.EXCLUDED: LineOutcome.EXCLUDED,
}


class ReportFormat(StrEnum):
    """How the report is written."""

    CSV = "csv"
    JSONL = "jsonl"

    @classmethod
    def for_path(cls, path: Path) -> ReportFormat:
        """JSONL for a ``.jsonl``/``.ndjson`` name, CSV otherwise."""
        return cls.JSONL if path.suffix.lower() in (".jsonl", ".ndjson") else cls.CSV


@dataclass(frozen=True, slots=True)
class ReportRow:
    """What became of one input line."""

    line: int
    id: str
    """The value as given, printable and cut at 80 characters (a preview, not for re-reading)."""
    normalized: str | None
    """The normalized ID, exactly as it was (or would be) sent; ``None`` when the line has none."""
    outcome: LineOutcome
    reason: str = ""
    api_code: int | None = None
    batch: int | None = None
    request_id: str | None = None
    time: float | None = None
    """Epoch seconds when the outcome was recorded, when the ledger knows it."""


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What :func:`write_report` wrote: every line's outcome counted, and the rows written."""

    lines: int
    written: int
    outcomes: Mapping[LineOutcome, int]


def _none_or(parse: Callable[[str], object]) -> Callable[[str], object]:
    return lambda text: None if text == "None" else parse(text)


def _flag(text: str) -> bool:
    if text not in ("True", "False"):
        raise ValueError(text)
    return text == "True"


def _column(text: str) -> str | int:
    # The CLI turns an all-digit --column into a 1-based index before the manifest records it.
    return int(text) if text.isdigit() else text


#: How each ``input_options`` value (``str()`` of the InputSpec field) is read back.
_OPTION_PARSERS: dict[str, Callable[[str], object]] = {
    "id_type": str,
    "format": str,
    "column": _none_or(_column),
    "delimiter": _none_or(str),
    "header": _flag,
    "field": _none_or(str),
    "case_sensitive_email": _flag,
    "batch_size": int,
    "max_line_bytes": _none_or(int),
}


def spec_from_manifest(meta: Mapping[str, str], *, path: str | None = None) -> InputSpec:
    """The :class:`InputSpec` a run read its input with (the inverse of ``job._options``).

    ``path`` replaces the manifest's ``input_path``. Raises ``LedgerError`` when the manifest's
    ``input_options`` cannot be read back.
    """
    try:
        options = orjson.loads(meta["input_options"])
    except (KeyError, orjson.JSONDecodeError):
        options = None
    if not isinstance(options, dict):
        raise LedgerError("the state file's manifest has no readable input_options")
    unknown = sorted(set(options) - set(_OPTION_PARSERS))
    if unknown:
        raise LedgerError(
            f"the state file records input options this bulkresign does not know: "
            f"{', '.join(unknown)}; use the bulkresign version that made it"
        )
    fields: dict[str, Any] = {}
    for name, text in options.items():
        try:
            fields[name] = _OPTION_PARSERS[name](str(text))
        except ValueError:
            raise LedgerError(f"the state file records input option {name}={text!r}") from None
    return InputSpec(path=path if path is not None else meta.get("input_path", "-"), **fields)


def report_rows(
    ledger: Ledger, *, input_path: str | None = None, exclude: Collection[str] = ()
) -> Iterator[ReportRow]:
    """One row per line of the run's input, in input order.

    The input is the manifest's ``input_path`` unless ``input_path`` names another copy; its
    SHA-256 must match the one the run recorded. ``exclude`` must be the run's ``--exclude``
    set. Everything that can be checked before the first row is checked here, eagerly;
    ``LedgerMismatch`` is raised later only if the input turns out not to match the ledger.
    """
    meta = ledger.meta()
    ingest_meta = _ingest_meta(meta)
    path = input_path if input_path is not None else meta.get("input_path", "-")
    if path == "-":
        raise ConfigError(
            f"{ledger.path}: the run read standard input; give --input FILE with the same bytes"
        )
    spec = spec_from_manifest(meta, path=path)
    ingest = Ingest(spec, exclude=exclude)  # checks that the input is there and readable
    expected = meta.get("input_sha256") or str(ingest_meta.get("input_sha256") or "")
    if expected:
        actual = hash_file(Path(path))
        if actual != expected:
            raise LedgerMismatch(
                f"{path}: SHA-256 {actual[:16]}…, but the run read an input with "
                f"{expected[:16]}…; the input changed since the run"
            )
    excluded = int(cast("int", ingest_meta.get("excluded", 0)))
    if excluded and not exclude:
        raise ConfigError(
            f"{ledger.path}: the run excluded {excluded:,} IDs; give the same --exclude FILE"
        )
    # Without duplicates (known once the run read its whole input) no line needs a first line.
    first = None if ingest_meta.get("duplicates") == 0 else _FirstLines(spec.id_type)
    return _rows(ledger, ingest, expected, first)


def _ingest_meta(meta: Mapping[str, str]) -> dict[str, object]:
    text = meta.get("ingest")
    return dict(orjson.loads(text)) if text else {}


def _rows(
    ledger: Ledger, ingest: Ingest, expected: str, first: _FirstLines | None
) -> Iterator[ReportRow]:
    join = _Join(ledger)
    with contextlib.ExitStack() as stack:
        if first is not None:
            stack.callback(first.close)
        for row in ingest.rows():
            if row.kind is LineKind.ACCEPTED:
                if first is not None and row.id is not None:
                    first.add(row.id, row.line)
                yield join.accepted(row)
                continue
            reason = "" if row.reason is None else str(row.reason)
            if row.kind is LineKind.DUPLICATE:
                at = first.find(row.id) if first is not None and row.id is not None else None
                reason = "duplicate of an earlier line" if at is None else f"duplicate of line {at}"
            elif row.kind is LineKind.EXCLUDED:
                reason = "in the --exclude list"
            yield ReportRow(row.line, row.raw, row.id, _KIND_OUTCOME[row.kind], reason)
        join.finish()
        if expected and ingest.input_digest() != expected:
            raise LedgerMismatch(f"{ingest.spec.path}: the input changed while it was read")


class _Join:
    """Joins accepted lines with their batch in the ledger, one batch at a time."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._seq = -1
        self._record: BatchRecord | None = None
        self._seen = 0
        self._ok: dict[str, Attempt] = {}
        self._by_request: dict[str, Attempt] = {}

    def accepted(self, row: LineRow) -> ReportRow:
        assert row.id is not None and row.batch is not None and row.position is not None
        if row.batch != self._seq:
            self._load(row.batch)
        rec = self._record
        if rec is None:
            return ReportRow(
                row.line, row.raw, row.id, LineOutcome.UNPROCESSED, _UNSENT, batch=row.batch
            )
        self._check(rec, row)
        self._seen += 1
        known = rec.outcomes.get(row.id)
        if known is not None:
            attempt = self._by_request.get(known.request_id or "")
            return ReportRow(
                row.line,
                row.raw,
                row.id,
                known.outcome,
                known.message or "",
                known.api_code,
                row.batch,
                known.request_id,
                None if attempt is None else attempt.finished,
            )
        if rec.state in TERMINAL:
            ok = self._ok.get(row.id)
            return ReportRow(
                row.line,
                row.raw,
                row.id,
                LineOutcome.RESIGNED,
                batch=row.batch,
                request_id=None if ok is None else ok.request_id,
                time=None if ok is None else ok.finished,
            )
        reason = f"batch {rec.state}: run the same `bulkresign run` again to finish it"
        return ReportRow(row.line, row.raw, row.id, LineOutcome.UNPROCESSED, reason, batch=row.batch)

    def _load(self, seq: int) -> None:
        self._close_batch()
        self._seq, self._seen = seq, 0
        self._record = self._ledger.batch(seq)
        attempts = self._ledger.attempts(seq) if self._record is not None else []
        # An ID of a terminal batch without a per-ID row went in the batch's successful call.
        self._ok = {i: a for a in attempts if a.outcome == "ok" for i in a.ids}
        self._by_request = {a.request_id: a for a in attempts if a.request_id}

    def _check(self, rec: BatchRecord, row: LineRow) -> None:
        ids, lines, at = rec.batch.ids, rec.batch.lines, row.position
        assert at is not None
        if at >= len(ids) or ids[at] != row.id or lines[at] != row.line:
            raise LedgerMismatch(
                f"{self._ledger.path}: line {row.line} re-reads as batch {rec.batch.seq} "
                f"position {at}, which the ledger holds differently; the input, its options or "
                "--exclude differ from the run's"
            )

    def _close_batch(self) -> None:
        rec = self._record
        if rec is not None and self._seen != len(rec.batch.ids):
            raise LedgerMismatch(
                f"{self._ledger.path}: batch {rec.batch.seq} holds {len(rec.batch.ids)} IDs, "
                f"but the input re-reads with {self._seen}; the input differs from the run's"
            )

    def finish(self) -> None:
        """Check that the input yielded every batch the ledger holds."""
        self._close_batch()
        last = self._ledger.last_seq()
        if last > self._seq:
            raise LedgerMismatch(
                f"{self._ledger.path}: the ledger holds {last + 1:,} batches, but the input "
                f"re-reads into {self._seq + 1:,}; the input differs from the run's"
            )


_UNSENT = "not sent yet: run the same `bulkresign run` again to finish it"


class _FirstLines:
    """The line each accepted ID first appeared on, so that a duplicate line can name it.

    A temporary SQLite database (``""``: on disk, private, deleted when closed) keyed by the dedup
    table's own 128-bit keys (:func:`bulkresign.scan.id_keys`): a 10M-line report holds no per-ID
    state in memory, and two values are one ID here exactly when deduplication said so.
    """

    _FLUSH = 4096

    def __init__(self, id_type: IdType) -> None:
        self._id_type = id_type
        self._ids: list[str] = []
        self._lines: list[int] = []
        self._conn = sqlite3.connect("", isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute(
            "CREATE TABLE first (key BLOB PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
        )

    def add(self, user_id: str, line: int) -> None:
        """Remember the first line of a newly accepted ID."""
        self._ids.append(user_id)
        self._lines.append(line)
        if len(self._ids) >= self._FLUSH:
            self._flush()

    def find(self, user_id: str) -> int | None:
        """The line ``user_id`` was first accepted on, if it was."""
        self._flush()
        key = id_keys(self._id_type, [user_id])[0].tobytes()
        row = self._conn.execute("SELECT line FROM first WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def _flush(self) -> None:
        if not self._ids:
            return
        keys = [k.tobytes() for k in id_keys(self._id_type, self._ids)]
        self._conn.execute("BEGIN")
        self._conn.executemany("INSERT OR IGNORE INTO first VALUES (?, ?)", zip(keys, self._lines))
        self._conn.execute("COMMIT")
        self._ids.clear()
        self._lines.clear()

    def close(self) -> None:
        self._conn.close()


def write_rows(rows: Iterable[ReportRow], out: IO[str], fmt: ReportFormat) -> int:
    """Write ``rows`` to ``out`` (CSV with a header row, or JSONL); returns how many."""
    count = 0
    if fmt is ReportFormat.CSV:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        for r in rows:
            writer.writerow(
                (
                    r.line,
                    _cell(r.id),
                    r.normalized or "",  # exact: the column a re-run reads (docs/report.md)
                    r.outcome.value,
                    _cell(r.reason),
                    "" if r.api_code is None else r.api_code,
                    "" if r.batch is None else r.batch,
                    _cell(r.request_id or ""),
                    _iso(r.time) or "",
                )
            )
            count += 1
        return count
    for r in rows:
        record = dict(zip(FIELDS, (r.line, r.id, r.normalized, r.outcome.value), strict=False))
        record.update(reason=r.reason, api_code=r.api_code, batch=r.batch)
        record.update(request_id=r.request_id, time=_iso(r.time))
        out.write(orjson.dumps(record).decode() + "\n")
        count += 1
    return count


def _cell(value: str) -> str:
    """Defuse a value a spreadsheet would run as a formula by quoting it with a leading '."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def write_report(
    state: Path,
    output: Path | None = None,
    *,
    fmt: ReportFormat | None = None,
    outcomes: Collection[LineOutcome] | None = None,
    input_path: str | None = None,
    exclude: Collection[str] = (),
) -> ReportSummary:
    """Write the report of the run in ``state`` to ``output`` (a new 0600 file) or stdout.

    ``outcomes`` keeps only rows with those outcomes; ``fmt`` defaults to the output's extension.
    A file appears only once complete: it is written beside ``output`` and renamed over it.
    """
    ledger = Ledger.open(state)
    try:
        rows = report_rows(ledger, input_path=input_path, exclude=exclude)
        seen: Counter[LineOutcome] = Counter()
        wanted = None if outcomes is None else frozenset(outcomes)

        def kept() -> Iterator[ReportRow]:
            for row in rows:
                seen[row.outcome] += 1
                if wanted is None or row.outcome in wanted:
                    yield row

        if output is None:
            written = write_rows(kept(), sys.stdout, fmt or ReportFormat.CSV)
        else:
            with _replacing(output) as out:
                written = write_rows(kept(), out, fmt or ReportFormat.for_path(output))
        return ReportSummary(sum(seen.values()), written, dict(seen))
    finally:
        ledger.close()


@contextlib.contextmanager
def _replacing(output: Path) -> Iterator[IO[str]]:
    """A private file beside ``output`` that replaces it once the block completes."""
    if output.exists() and not output.is_file():
        raise ConfigError(f"{output}: not a regular file; leave out --output to write to stdout")
    temp = output.with_name(f".{output.name}.{secrets.token_hex(4)}.tmp")
    try:
        out = cast("IO[str]", open_private(temp, "w"))
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write the report ({exc.strerror})") from None
    try:
        with out:
            yield out
        os.replace(temp, output)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
