"""The SQLite plumbing under the ledger: a connection with its durability settings, a transaction.

The ledger runs in WAL mode with ``synchronous=FULL``: in WAL mode ``NORMAL`` may roll back the last
commits on power loss (https://www.sqlite.org/pragma.html#pragma_synchronous), which would turn a
recorded SENDING back into PENDING and let the batch be sent again without a read-back.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import urllib.parse
from pathlib import Path

from bulkresign.errors import LedgerError
from bulkresign.files import check_private, is_sqlite, names_open_file

__all__ = [
    "RunLock",
    "Transaction",
    "check_existing",
    "connect",
    "is_blank",
    "is_frozen",
    "read_only_note",
    "told",
]


class RunLock:
    """The run's exclusive lock on its state file, held by an open descriptor of the file.

    Two runs on one ledger would each read back and resend the other's batches in flight, so a
    second run is refused while the first holds the lock. ``flock`` locks belong to the open file
    and are released when the process dies, even by ``kill -9``; SQLite's own locks are
    ``fcntl`` byte ranges, which ``flock`` does not touch on Linux
    (https://man7.org/linux/man-pages/man2/flock.2.html).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise LedgerError(
                f"{path}: another bulkresign run is using this state file; wait for it to end "
                "(or stop it), then run again"
            ) from None
        except BaseException:
            self.release()
            raise
        if not self.in_place():  # replaced between the open and the lock: another run's doing
            self.release()
            raise LedgerError(f"{path}: the state file was replaced while it was opened; run again")

    def in_place(self) -> bool:
        """Whether the path still names the locked file (not moved, replaced or deleted)."""
        return names_open_file(self.path, self._fd)

    def release(self) -> None:
        """Close the descriptor, which releases the lock (once; later calls do nothing)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def connect(path: Path, *, durable: bool = True, frozen: bool = False) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit), foreign keys on.

    ``durable=False`` turns fsync off: only the checkpoint-cost benchmark uses it. The journal
    mode is left as the file has it: :class:`bulkresign.ledger.Ledger` switches to WAL only once
    the file is known to be a ledger, so that another program's database is left as it was.
    ``frozen`` (see :func:`is_frozen`) opens it immutable, for reading only.
    """
    if frozen:
        return sqlite3.connect(
            _uri(path, "immutable=1"), uri=True, isolation_level=None, check_same_thread=False
        )
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def is_frozen(path: Path) -> bool:
    """Whether ``path`` can only be read as it is: its folder is read-only (an archive, a
    read-only mount), so SQLite cannot make the ``-shm`` a WAL reader needs, and no ``-wal``
    holds changes the file itself lacks (a ledger closed cleanly leaves an empty one).

    Such a file is opened immutable (https://www.sqlite.org/uri.html#uriimmutable); any other
    is opened as usual, and a read-only folder with a non-empty ``-wal`` fails as SQLite says.
    """
    if os.access(path.parent, os.W_OK):
        return False
    try:
        return os.stat(f"{path}-wal").st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def is_blank(path: Path) -> bool:
    """Whether ``path`` is an empty file or a SQLite database without a single table: what a run
    killed while it created its state file leaves (nothing was sent yet)."""
    try:
        if path.stat().st_size == 0:
            return True
        if not is_sqlite(path):
            return False
        conn = sqlite3.connect(_uri(path, "mode=ro"), uri=True)
        try:
            return conn.execute("SELECT 1 FROM sqlite_master").fetchone() is None
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return False


def _uri(path: Path, query: str) -> str:
    """``path`` as a SQLite URI with ``query`` (https://www.sqlite.org/uri.html)."""
    return f"file:{urllib.parse.quote(str(path.absolute()))}?{query}"


def check_existing(path: Path, *, reading: bool) -> None:
    """Refuse, before connecting, a path that cannot be a ledger; ``reading`` for the read-only
    commands, which never create one (SQLite would make an empty file a WAL database)."""
    if path.is_dir():
        raise LedgerError(f"{path}: is a directory, not a state file")
    check_private(path)
    if reading and is_blank(path):
        raise LedgerError(
            f"{path}: an empty state file, left by a run stopped as it created it (or one "
            "whose -wal was lost): run the same `bulkresign run` command again; it reads back "
            "whatever its audit journal records sent"
        )
    if reading and not is_sqlite(path):
        raise LedgerError(f"{path}: not a bulkresign state file")


def told(path: Path, exc: sqlite3.DatabaseError) -> LedgerError:
    """SQLite's error opening ``path`` as the operator's one line: the disk or the folder
    (``OperationalError``), or the file itself."""
    if isinstance(exc, sqlite3.OperationalError):
        return LedgerError(f"{path}: cannot use the state file ({exc}){read_only_note(path)}")
    return LedgerError(f"{path}: not a usable state file ({exc})")


def read_only_note(path: Path) -> str:
    """What a read-only folder means for a ledger SQLite could not open (see :func:`is_frozen`),
    to add to the error; empty when the folder is writable."""
    if os.access(path.parent, os.W_OK):
        return ""
    return (
        "; its folder is read-only and its -wal holds changes, which SQLite reads only with a "
        "-shm it must create there: copy the state file with its -wal to a writable folder"
    )


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
