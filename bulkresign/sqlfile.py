"""The SQLite plumbing under the ledger: a connection with its durability settings, a transaction.

The ledger runs in WAL mode with ``synchronous=FULL``: in WAL mode ``NORMAL`` may roll back the last
commits on power loss (https://www.sqlite.org/pragma.html#pragma_synchronous), which would turn a
recorded SENDING back into PENDING and let the batch be sent again without a read-back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["Transaction", "connect"]


def connect(path: Path, *, durable: bool = True) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit), WAL, foreign keys on.

    ``durable=False`` turns fsync off: only the checkpoint-cost benchmark uses it.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                # A failed COMMIT (disk full, I/O error) can leave the transaction open.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        else:
            self._conn.execute("ROLLBACK")
