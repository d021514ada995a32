"""Joining input lines with the ledger: what became of each line of a run's input.

The ledger stores batches, not lines. Each accepted line of a fresh pass over the input names its
batch and position; its outcome is the batch's per-ID row when there is one, else ``resigned`` by
the batch's successful call when the batch is terminal, else ``in_doubt`` or ``unprocessed``
(:func:`open_outcome`). Every accepted line
is checked against the batch the ledger holds (same ID, same position, same line), so an outcome
can never be pinned on the wrong line. Memory holds one batch and its attempts; the first line of
each ID, which a duplicate line names, lives in a temporary on-disk index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bulkresign.errors import LedgerMismatch
from bulkresign.idkeys import id_keys, match_form
from bulkresign.inputspec import InputSpec
from bulkresign.ledger import TERMINAL, Attempt, BatchRecord, Ledger
from bulkresign.models import BatchState, LineOutcome
from bulkresign.tally import LineKind, LineRow

__all__ = ["ReportRow", "join_lines", "open_outcome"]

_KIND_OUTCOME = {
    LineKind.DUPLICATE: LineOutcome.DUPLICATE,
    LineKind.REJECTED: LineOutcome.REJECTED_INVALID,
    LineKind.SKIPPED: LineOutcome.SKIPPED,
    LineKind.EXCLUDED: LineOutcome.EXCLUDED,
}
_UNSENT = "not sent yet: run the same `bulkresign run` again to finish it"


def open_outcome(state: BatchState) -> LineOutcome:
    """What an ID of a batch in ``state`` without a per-ID row comes to.

    Terminal: resigned by the batch's call. SENDING or IN_DOUBT: an attempt may have reached the
    server (a SENDING batch's intent is committed before its request leaves, so a crash cannot
    tell sent from not yet sent): in doubt. PENDING: nothing of it is out.
    """
    if state in TERMINAL:
        return LineOutcome.RESIGNED
    if state is BatchState.PENDING:
        return LineOutcome.UNPROCESSED
    return LineOutcome.IN_DOUBT


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


def join_lines(
    ledger: Ledger, rows: Iterable[LineRow], spec: InputSpec, *, duplicates: bool = True
) -> Iterator[ReportRow]:
    """Join the lines of one pass over the input (:meth:`Ingest.rows`) with ``ledger``.

    ``duplicates=False`` skips the first-line index when the input is known to have none. Raises
    ``LedgerMismatch`` as soon as a line does not agree with the batch the ledger holds, and at the
    end if the ledger holds batches the lines did not reach.
    """
    join = _Join(ledger)
    first = _FirstLines(spec) if duplicates else None
    try:
        for row in rows:
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
    finally:
        if first is not None:
            first.close()


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
        """The row of an accepted line (loading its batch when it starts a new one)."""
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
                # Rows a read-back settled name no request: the time is when it was recorded.
                known.at if attempt is None else attempt.finished,
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
        outcome = open_outcome(rec.state)
        if outcome is LineOutcome.IN_DOUBT:
            reason = (
                f"batch {rec.state}: its call may have been applied; only the same "
                "`bulkresign run` again settles it (it reads the batch back first)"
            )
        else:
            reason = f"batch {rec.state}: run the same `bulkresign run` again to finish it"
        return ReportRow(row.line, row.raw, row.id, outcome, reason, batch=row.batch)

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


class _FirstLines:
    """The line each accepted ID first appeared on, so that a duplicate line can name it.

    A temporary SQLite database (``""``: on disk, private, deleted when closed) keyed by the dedup
    table's own 128-bit keys (:func:`bulkresign.idkeys.id_keys`), so two values are one ID here
    exactly when deduplication said so. Memory holds only the IDs added since the last flush.
    """

    #: IDs held in memory before they go to the index in one transaction.
    _FLUSH = 1 << 16

    def __init__(self, spec: InputSpec) -> None:
        self._spec = spec
        self._recent: dict[str, int] = {}  # not yet in the index: found here first
        self._conn = sqlite3.connect("", isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute(
            "CREATE TABLE first (key BLOB PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
        )

    def add(self, user_id: str, line: int) -> None:
        """Remember the first line of a newly accepted ID."""
        (user_id,) = match_form(self._spec, [user_id])
        self._recent[user_id] = line
        if len(self._recent) >= self._FLUSH:
            self._flush()

    def find(self, user_id: str) -> int | None:
        """The line ``user_id`` was first accepted on, if it was."""
        (user_id,) = match_form(self._spec, [user_id])
        line = self._recent.get(user_id)
        if line is not None:
            return line
        key = id_keys(self._spec.id_type, [user_id])[0].tobytes()
        row = self._conn.execute("SELECT line FROM first WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def _flush(self) -> None:
        keys = [k.tobytes() for k in id_keys(self._spec.id_type, list(self._recent))]
        self._conn.execute("BEGIN")
        self._conn.executemany(
            "INSERT OR IGNORE INTO first VALUES (?, ?)",
            zip(keys, self._recent.values(), strict=True),
        )
        self._conn.execute("COMMIT")
        self._recent.clear()

    def close(self) -> None:
        self._conn.close()
