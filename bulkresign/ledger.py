"""The durable ledger: what was planned, what is in flight, and what came of it.

One SQLite file per run (WAL, ``synchronous=FULL``, mode 0600). A batch moves
``PENDING → SENDING(attempt) → DONE | REJECTED | IN_DOUBT → RECONCILED`` and every attempt records
*exactly which IDs* it carried, committed **before** the request leaves. A crash at any point
therefore leaves either an attempt without an outcome (which resume reads back before anything is
sent again) or a recorded outcome — never a silent gap.

Per-ID rows exist only for outcomes that are not simply "resigned with its batch": IDs found
already resigned by a read-back, not found, failed, or resigned by a partial attempt. An ID of a
terminal batch with no row was resigned by the batch's own successful attempt.

Why FULL and not NORMAL: see :mod:`bulkresign.sqlfile`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from bulkresign.errors import LedgerError, LedgerMismatch
from bulkresign.files import ensure_private
from bulkresign.ledgerview import LedgerView
from bulkresign.models import Batch, BatchState
from bulkresign.records import (
    SCHEMA,
    SCHEMA_VERSION,
    TERMINAL,
    Attempt,
    BatchRecord,
    IdOutcome,
    Manifest,
    check_manifest,
    join_ids,
    join_lines,
)
from bulkresign.sqlfile import RunLock, Transaction, check_existing, connect, is_frozen, told

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL",
    "Attempt",
    "BatchRecord",
    "IdOutcome",
    "Ledger",
    "LedgerView",
    "Manifest",
]


#: What a run notes about its input besides the manifest: void once the options are rebound.
_RUN_NOTES = (
    "input_sha256",
    "ingest",
    "input_error",
    "input_prefix",
    "plan_sha256",
    "exclude",
    "canary",
)


class Ledger(LedgerView):
    """Synchronous access to one state file, reads (:class:`LedgerView`) and writes; use it from
    one thread at a time.

    :class:`bulkresign.checkpoint.Checkpointer` wraps it for the event loop and groups commits.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: RunLock | None = None) -> None:
        super().__init__(conn, path)
        self._lock = lock

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, manifest: Manifest | None = None, *, durable: bool = True) -> Ledger:
        """Open ``path``: create it for ``manifest``, or check an existing one against it.

        With ``manifest=None`` the file must exist (read-only tools: status, report, verify).
        ``durable=False`` turns fsync off: only the checkpoint-cost benchmark uses it, to measure
        what durability costs; it is not reachable from the command line.
        """
        exists = path.exists()
        if not exists and manifest is None:
            raise LedgerError(f"{path}: no such state file")
        lock: RunLock | None = None
        try:
            if exists:
                check_existing(path, reading=manifest is None)
            else:
                ensure_private(path)
            if manifest is not None:  # a run: the only writer (read-only tools never lock)
                lock = RunLock(path)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot open the state file ({exc.strerror})") from None
        conn: sqlite3.Connection | None = None
        try:
            # WAL only once the file is known to be a ledger: another file is left as it was.
            frozen = manifest is None and is_frozen(path)
            conn = connect(path, durable=durable, frozen=frozen)
            ledger = cls(conn, path, lock)
            ours = exists and ledger._has_schema()
            if not ours and (
                manifest is None or conn.execute("SELECT 1 FROM sqlite_master").fetchone()
            ):
                raise LedgerError(f"{path}: not a bulkresign state file")
            if not frozen:
                conn.execute("PRAGMA journal_mode=WAL")
            if ours:
                ledger._check(manifest)
            else:
                assert manifest is not None
                ledger._create(manifest)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if lock is not None:
                lock.release()
            if not exists:  # half made (a full disk): later runs would take it for a stranger's
                for made in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    made.unlink(missing_ok=True)
            if isinstance(exc, sqlite3.DatabaseError):
                raise told(path, exc) from exc
            raise
        return ledger

    def _has_schema(self) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        return row is not None

    def _create(self, manifest: Manifest) -> None:
        with self.transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            meta = manifest.as_meta()
            meta["schema_version"] = str(SCHEMA_VERSION)
            meta["created_at"] = repr(time.time())
            self._conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())

    def _check(self, manifest: Manifest | None) -> None:
        unbound = manifest is not None and self.last_seq() < 0  # no batch: no option binds it
        try:
            check_manifest(self.path, self.meta(), manifest)
        except LedgerMismatch:
            if not unbound:
                raise
        if unbound:
            assert manifest is not None
            self._rebind(manifest)  # another input's path, say, which no check compares

    def _rebind(self, manifest: Manifest) -> None:
        """Bind a state file that holds no batch to ``manifest``: nothing was sent or planned
        under the old options (a declined prompt, an input with no valid ID), so nothing binds
        the run to them. The pseudonym key, the journal's anchor and the creation time stay."""
        meta = manifest.as_meta()
        del meta["pseudonym_key"]
        with self.transaction():
            self._conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in _RUN_NOTES])
            self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())

    def in_place(self) -> bool:
        """Whether the path still names the file this run locked (moved, replaced or deleted)."""
        return self._lock is None or self._lock.in_place()

    def close(self) -> None:
        """Close the connection (checkpointing the WAL), then let another run have the file."""
        self._conn.close()
        if self._lock is not None:
            self._lock.release()

    # --- transactions and bookkeeping -------------------------------------------------------------

    def transaction(self) -> Transaction:
        """``with ledger.transaction():`` — one durable commit for everything inside."""
        return Transaction(self._conn)

    def savepoint(self) -> None:
        """Open a nested savepoint inside the current transaction."""
        self._conn.execute("SAVEPOINT op")

    def release_savepoint(self) -> None:
        """Keep what was done since :meth:`savepoint`."""
        self._conn.execute("RELEASE op")

    def rollback_to_savepoint(self) -> None:
        """Undo what was done since :meth:`savepoint`."""
        self._conn.execute("ROLLBACK TO op")
        self._conn.execute("RELEASE op")

    def set_meta(self, key: str, value: str) -> None:
        """Set one bookkeeping value (call inside a transaction)."""
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def set_meta_json(self, key: str, value: object) -> None:
        """Set one bookkeeping value as JSON (call inside a transaction)."""
        self.set_meta(key, orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode())

    # --- writes (call inside a transaction) -------------------------------------------------

    def add_batch(self, batch: Batch, *, intent: bool = False) -> None:
        """Record a new batch; its composition never changes afterwards.

        With ``intent``, the batch is recorded SENDING with its first attempt (all its IDs) in
        the same statement group: the intent to send it, committed ahead of the request.
        Otherwise it is PENDING.
        """
        now = time.time()
        ids = join_ids(batch.ids)
        self._conn.execute(
            "INSERT INTO batches (seq, ids, lines, state, attempts, updated) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                batch.seq,
                ids,
                join_lines(batch.lines),
                BatchState.SENDING if intent else BatchState.PENDING,
                1 if intent else 0,
                now,
            ),
        )
        if intent:
            self._conn.execute(
                "INSERT INTO attempts (seq, attempt, kind, ids, started) VALUES (?, 1, ?, ?, ?)",
                (batch.seq, "resign", ids, now),
            )

    def withdraw_intent(self, seq: int, attempt: int) -> None:
        """Forget attempt ``attempt`` of batch ``seq``, whose request never left: back to PENDING.

        Only an attempt without an outcome is withdrawn; any other call changes nothing.
        """
        gone = self._conn.execute(
            "DELETE FROM attempts WHERE seq = ? AND attempt = ? AND finished IS NULL",
            (seq, attempt),
        ).rowcount
        if gone:
            self._conn.execute(
                "UPDATE batches SET attempts = ?, state = ?, updated = ? WHERE seq = ?",
                (attempt - 1, BatchState.PENDING, time.time(), seq),
            )

    def begin_attempt(self, seq: int, ids: Sequence[str], kind: str = "resign") -> int:
        """Record the intent to send ``ids`` of batch ``seq``; returns the attempt number.

        A ``resign`` attempt puts the batch in SENDING; a ``readback`` leaves its state alone.
        """
        (attempt,) = self._conn.execute(
            "UPDATE batches SET attempts = attempts + 1, updated = ? WHERE seq = ? "
            "RETURNING attempts",
            (time.time(), seq),
        ).fetchone()
        self._conn.execute(
            "INSERT INTO attempts (seq, attempt, kind, ids, started) VALUES (?, ?, ?, ?, ?)",
            (seq, attempt, kind, join_ids(ids), time.time()),
        )
        if kind == "resign":
            self.set_state(seq, BatchState.SENDING)
        return int(attempt)

    def finish_attempt(
        self,
        seq: int,
        attempt: int,
        outcome: str,
        *,
        status_code: int | None = None,
        api_code: int | None = None,
        request_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Record how an attempt ended (``ok``, ``not_applied``, ``rejected``, ``in_doubt``…)."""
        self._conn.execute(
            "UPDATE attempts SET finished = ?, outcome = ?, status_code = ?, api_code = ?, "
            "request_id = ?, message = ? WHERE seq = ? AND attempt = ?",
            (time.time(), outcome, status_code, api_code, request_id, message, seq, attempt),
        )

    def set_state(self, seq: int, state: BatchState) -> None:
        """Move batch ``seq`` to ``state``."""
        self._conn.execute(
            "UPDATE batches SET state = ?, updated = ? WHERE seq = ?", (state, time.time(), seq)
        )

    def record_ids(self, seq: int, outcomes: Iterable[IdOutcome]) -> None:
        """Record per-ID outcomes of batch ``seq`` (a later record for an ID replaces it)."""
        now = time.time()
        self._conn.executemany(
            "INSERT OR REPLACE INTO id_outcomes VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((seq, o.id, o.outcome, o.api_code, o.message, o.request_id, now) for o in outcomes),
        )
