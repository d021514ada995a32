"""Group commit: many tasks' ledger writes, one durable transaction per flush.

A task either *writes* (``await write(fn)``: returns once ``fn``'s changes are durable) or *posts*
(``post(fn)``: queues the change and goes on). Whoever holds the flush lock takes *every* change
queued so far and commits them together in a worker thread, so a slow ``fsync`` and the thread hop
(about 0.1–0.3 ms of CPU on these machines) are paid once per flush, not once per change (the
leader/follower form of group commit, as in PostgreSQL's ``commit_delay``:
https://www.postgresql.org/docs/current/wal-configuration.html).

Only what must be durable *before* something happens is written: a request's intent, before the
request leaves. Outcomes are posted, and ride on the next commit — an intent's, or the pipeline's
periodic :meth:`Checkpointer.flush`. Changes are applied in the order they were queued, so a posted
outcome is always committed before any later change to the same batch. A crash that loses a posted
outcome leaves its batch SENDING, and the next run reads it back: it costs a read-back, never a
resend. The queue stays short: every commit takes all of it, and the pipeline commits at least
every 50 ms (a chunk of new batches, or the flusher), so at 300 requests a second it holds a few
dozen changes.

A ``stamp`` adds bookkeeping to every commit: the run's audit-journal anchor
(:class:`bulkresign.chain.JournalAnchor`), so the ledger says how far the journal had reached.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import anyio
import anyio.to_thread

from bulkresign.errors import LedgerError
from bulkresign.ledger import Ledger
from bulkresign.sqlfile import told

__all__ = ["Checkpointer", "CheckpointStats"]

T = TypeVar("T")


@dataclass(eq=False)
class _Op(Generic[T]):
    fn: Callable[[Ledger], T]
    posted: bool = False
    """Nobody waits for it: a failure is kept and raised by the next ``post`` or ``flush``."""
    done: bool = False
    result: T | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class CheckpointStats:
    """How many writes were made durable in how many commits."""

    writes: int
    commits: int


@dataclass(eq=False)
class Checkpointer:
    """The event loop's door to the :class:`~bulkresign.ledger.Ledger`.

    ``await checkpointer.write(fn)`` runs ``fn(ledger)`` inside a committed transaction and
    returns its result; ``await checkpointer.read(fn)`` runs a read in the worker thread.
    """

    ledger: Ledger
    stamp: Callable[[], Mapping[str, object]] | None = None
    """Called in the worker thread before each commit; its items go to the ledger's meta."""
    _pending: list[_Op[object]] = field(default_factory=list)
    _lock: anyio.Lock = field(default_factory=anyio.Lock)
    _writes: int = 0
    _commits: int = 0
    _failure: BaseException | None = None

    async def write(self, fn: Callable[[Ledger], T]) -> T:
        """Make ``fn``'s writes durable, grouped with whatever else is waiting."""
        op: _Op[T] = _Op(fn)
        self._pending.append(cast(_Op[object], op))
        async with self._lock:
            if not op.done:
                await self._flush_pending()
        if op.error is not None:
            raise op.error
        return cast(T, op.result)

    def post(self, fn: Callable[[Ledger], object]) -> None:
        """Queue ``fn``'s writes for the next commit without waiting for it.

        Raises:
            LedgerError: an earlier posted change failed to commit.
        """
        self._raise_failure()
        self._pending.append(_Op(fn, posted=True))

    @property
    def queued(self) -> int:
        """Changes queued and not yet committed."""
        return len(self._pending)

    async def flush(self) -> None:
        """Commit every change queued so far (nothing to do when the queue is empty)."""
        async with self._lock:
            await self._flush_pending()
        self._raise_failure()

    async def read(self, fn: Callable[[Ledger], T]) -> T:
        """Run a read of the ledger off the event loop, after every change queued before it."""
        async with self._lock:
            await self._flush_pending()
            try:
                return await anyio.to_thread.run_sync(fn, self.ledger)
            except sqlite3.Error as exc:
                raise self._told(exc) from exc

    def _told(self, exc: Exception) -> Exception:
        """SQLite's own error (a full disk, a damaged page) as the one line the operator reads,
        naming the state file; any other error as it is."""
        if isinstance(exc, sqlite3.DatabaseError):
            return told(self.ledger.path, exc)
        if isinstance(exc, sqlite3.Error):
            return LedgerError(f"{self.ledger.path}: the state file failed ({exc})")
        return exc

    @property
    def stats(self) -> CheckpointStats:
        """Writes and commits so far."""
        return CheckpointStats(self._writes, self._commits)

    async def _flush_pending(self) -> None:
        """Commit the queue as it stands (the caller holds the lock).

        Shielded: once the group is taken from the queue it must reach the ledger, or a caller
        cancelled at the wrong moment would drop the other callers' changes with its own.
        """
        with anyio.CancelScope(shield=True):
            if self._pending:
                group, self._pending = self._pending, []
                await anyio.to_thread.run_sync(self._flush, group)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise LedgerError(f"a change to the state file failed: {self._failure}")

    def _flush(self, group: list[_Op[object]]) -> None:
        conn = self.ledger
        # Taken before the transaction: the journal's anchor costs an fsync of its own, which
        # need not hold the ledger's write lock.
        stamp = self.stamp() if self.stamp is not None else {}
        try:
            with conn.transaction():
                for key, value in stamp.items():
                    conn.set_meta_json(key, value)
                for op in group:
                    # A savepoint per change: one failing write is returned to its caller
                    # without undoing the others in the same commit.
                    conn.savepoint()
                    try:
                        op.result = op.fn(conn)
                    except Exception as exc:  # handed to the waiting caller, who re-raises it
                        conn.rollback_to_savepoint()
                        op.error = self._told(exc)
                    else:
                        conn.release_savepoint()
        except Exception as exc:  # the commit itself failed: nothing in the group is durable
            for op in group:
                op.error = self._told(exc)
        for op in group:
            op.done = True
            if op.posted and op.error is not None and self._failure is None:
                self._failure = op.error
        self._writes += len(group)
        self._commits += 1
