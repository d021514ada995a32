"""The optional state file: users' statuses and resign counts, kept across emulator restarts.

Writes are behind the hot path: request handlers only mark users dirty, and the server's flusher
writes the dirty users' rows in one transaction every :data:`FLUSH_INTERVAL` seconds from a worker
thread, and once more on a clean shutdown. A crash loses at most the last interval, which is fine
for a rehearsal target (the client's own ledger uses ``synchronous=FULL``; this file does not).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from bulkresign.emulator.store import StateRow
from bulkresign.errors import ConfigError
from bulkresign.files import check_private, ensure_private

__all__ = ["FLUSH_INTERVAL", "SCHEMA_VERSION", "StateFile"]

FLUSH_INTERVAL = 0.5
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    status_changed_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    resign_count INTEGER NOT NULL
) WITHOUT ROWID
"""


class StateFile:
    """One SQLite file (0600, WAL); used by one writer at a time (the flusher)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            ensure_private(path)
            check_private(path)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot open emulator state file: {exc.strerror}") from None
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ConfigError(f"{path}: not an emulator state file ({exc})") from None

    def _prepare(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if version == 0 and tables == 0:
            db.execute(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {version}, expected {SCHEMA_VERSION}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")

    def load(self) -> Iterator[StateRow]:
        """Every saved row."""
        yield from self._db.execute(
            "SELECT user_id, status, status_changed_at, updated_at, resign_count FROM users"
        )

    def write(self, rows: Sequence[StateRow]) -> None:
        """Save ``rows`` (replacing older rows of the same users) in one transaction."""
        if not rows:
            return
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?)", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        self._db.close()
