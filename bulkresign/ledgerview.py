"""Reading a state file: the batches, their attempts and per-ID outcomes, and the meta values.

:class:`LedgerView` is what :class:`bulkresign.ledger.Ledger` adds its writes to; the queries are
kept apart from the writes so each module stays one concern (the schema is
:mod:`bulkresign.records`'s).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from bulkresign.models import Batch, BatchState, LineOutcome
from bulkresign.records import OPEN, Attempt, BatchRecord, IdOutcome, split_ids

__all__ = ["LedgerView"]


class LedgerView:
    """Queries on one open state file; use it from one thread at a time."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    def meta(self) -> dict[str, str]:
        """Every manifest and bookkeeping value."""
        return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    def batch(self, seq: int) -> BatchRecord | None:
        """The stored batch ``seq``, or ``None``."""
        row = self._conn.execute(
            "SELECT seq, ids, lines, state, attempts FROM batches WHERE seq = ?", (seq,)
        ).fetchone()
        return None if row is None else self._record(row)

    def _record(self, row: tuple[int, str, str, str, int]) -> BatchRecord:
        seq, ids, lines, state, attempts = row
        outcomes = {
            i: IdOutcome(i, LineOutcome(o), a, m, r, t)
            for i, o, a, m, r, t in self._conn.execute(
                "SELECT id, outcome, api_code, message, request_id, at FROM id_outcomes "
                "WHERE seq = ?",
                (seq,),
            )
        }
        batch = Batch(seq, split_ids(ids), tuple(int(x) for x in lines.split(",") if x))
        return BatchRecord(batch, BatchState(state), attempts, outcomes)

    def open_batches(self) -> list[BatchRecord]:
        """Every batch not in a terminal state, in sequence order (what a resume must finish)."""
        query = (
            "SELECT seq, ids, lines, state, attempts FROM batches "  # noqa: S608 - OPEN is a constant
            f"WHERE {OPEN} ORDER BY seq"
        )
        rows = self._conn.execute(query).fetchall()
        return [self._record(r) for r in rows]

    def open_count(self) -> int:
        """How many batches are not in a terminal state (read from the partial index alone)."""
        query = f"SELECT count(*) FROM batches WHERE {OPEN}"  # noqa: S608 - OPEN is a constant
        (n,) = self._conn.execute(query).fetchone()
        return int(n)

    def iter_batches(self, start: int = 0) -> Iterator[BatchRecord]:
        """Every batch from ``start`` on, in sequence order."""
        cur = self._conn.execute(
            "SELECT seq, ids, lines, state, attempts FROM batches WHERE seq >= ? ORDER BY seq",
            (start,),
        )
        for row in cur:
            yield self._record(row)

    def batch_texts(
        self, first: int, last: int, *, lines: bool = True
    ) -> dict[int, tuple[str, str]]:
        """Stored IDs and lines (:func:`join_ids`, :func:`join_lines`; lines ``""`` unless
        ``lines``) of the batches numbered ``first`` to ``last``."""
        column = "lines" if lines else "''"
        rows = self._conn.execute(
            f"SELECT seq, ids, {column} FROM batches WHERE seq BETWEEN ? AND ?",  # noqa: S608 - a constant
            (first, last),
        )
        return {seq: (ids, text) for seq, ids, text in rows}

    def last_seq(self) -> int:
        """The highest recorded batch number, or -1."""
        (value,) = self._conn.execute("SELECT coalesce(max(seq), -1) FROM batches").fetchone()
        return int(value)

    def attempts(self, seq: int) -> list[Attempt]:
        """Every attempt recorded for batch ``seq``, oldest first."""
        rows = self._conn.execute(
            "SELECT seq, attempt, kind, ids, started, finished, outcome, status_code, api_code, "
            "request_id, message FROM attempts WHERE seq = ? ORDER BY attempt",
            (seq,),
        ).fetchall()
        return [Attempt(r[0], r[1], r[2], split_ids(r[3]), *r[4:]) for r in rows]

    def state_counts(self) -> dict[BatchState, int]:
        """How many batches are in each state."""
        rows = self._conn.execute("SELECT state, count(*) FROM batches GROUP BY state")
        return {BatchState(s): n for s, n in rows}

    def pragma(self, name: str) -> object:
        """Read a PRAGMA (tests check ``journal_mode`` and ``synchronous``)."""
        return self._conn.execute(f"PRAGMA {name}").fetchone()[0]
