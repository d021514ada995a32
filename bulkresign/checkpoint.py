"""Group commit: many tasks' ledger writes, one durable transaction per flush.

Each dispatcher task submits a small write (record an intent, record an outcome) and waits until
it is durable. Whoever holds the flush lock takes *every* write queued so far and commits them
together in a worker thread, so a slow ``fsync`` is paid once per flush, not once per write
(the leader/follower form of group commit, as in PostgreSQL's ``commit_delay``:
https://www.postgresql.org/docs/current/wal-configuration.html). The queue is bounded by the
number of tasks, since each waits for its own write before making another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import anyio
import anyio.to_thread

from bulkresign.ledger import Ledger

__all__ = ["Checkpointer", "CheckpointStats"]

T = TypeVar("T")


@dataclass(eq=False)
class _Op(Generic[T]):
    fn: Callable[[Ledger], T]
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
    _pending: list[_Op[object]] = field(default_factory=list)
    _lock: anyio.Lock = field(default_factory=anyio.Lock)
    _writes: int = 0
    _commits: int = 0

    async def write(self, fn: Callable[[Ledger], T]) -> T:
        """Make ``fn``'s writes durable, grouped with whatever else is waiting."""
        op: _Op[T] = _Op(fn)
        self._pending.append(cast(_Op[object], op))
        async with self._lock:
            if not op.done:
                group, self._pending = self._pending, []
                await anyio.to_thread.run_sync(self._flush, group)
        if op.error is not None:
            raise op.error
        return cast(T, op.result)

    async def read(self, fn: Callable[[Ledger], T]) -> T:
        """Run a read of the ledger off the event loop, after every write queued before it."""
        async with self._lock:
            return await anyio.to_thread.run_sync(fn, self.ledger)

    @property
    def stats(self) -> CheckpointStats:
        """Writes and commits so far."""
        return CheckpointStats(self._writes, self._commits)

    def _flush(self, group: list[_Op[object]]) -> None:
        conn = self.ledger
        with conn.transaction():
            for op in group:
                # A savepoint per write: one failing write is returned to its caller without
                # undoing the others in the same commit.
                conn.savepoint()
                try:
                    op.result = op.fn(conn)
                except Exception as exc:  # handed to the waiting caller, who re-raises it
                    conn.rollback_to_savepoint()
                    op.error = exc
                else:
                    conn.release_savepoint()
        for op in group:
            op.done = True
        self._writes += len(group)
        self._commits += 1
