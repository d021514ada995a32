"""The audit journal: an append-only, hash-chained JSONL record of what a run did and why.

The line format, the chain and its verification are in :mod:`bulkresign.chain`.

The journal is the *evidence*; the ledger is the source of truth. It is private (0600) and holds
the IDs exactly as given, because it is the audit record of who was resigned, when and by whom.
A resumed run appends to the same file after verifying it (from the ledger's anchor on); a journal
that fails verification is refused rather than extended. Entries pass through
:func:`bulkresign.redact.redact`, so a secret handed to it by mistake is still never written.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self, cast

import orjson

from bulkresign._version import __version__
from bulkresign.chain import (
    GENESIS,
    JournalAnchor,
    VerifyResult,
    holds_entries,
    seal,
    verify_journal,
)
from bulkresign.errors import ConfigError, LedgerError
from bulkresign.files import PRIVATE_MODE, check_private, names_open_file
from bulkresign.redact import redact
from bulkresign.sqlfile import is_blank

__all__ = [
    "GENESIS",
    "RESERVED_FIELDS",
    "AuditJournal",
    "JournalAnchor",
    "VerifyResult",
    "check_journal_file",
    "verify_journal",
]

#: Field names the journal sets itself.
RESERVED_FIELDS = frozenset({"seq", "time", "kind", "prev", "hash"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditJournal:
    """An open journal that appends hash-chained entries; one thread at a time may append."""

    def __init__(
        self, path: Path, fd: int, seq: int, prev: str, now: Callable[[], datetime], offset: int
    ) -> None:
        """Use :meth:`open`."""
        self.path = path
        self._fd = fd
        self._seq = seq
        self._prev = prev
        self._offset = offset
        self._now = now
        self._lock = threading.Lock()  # cheap insurance: seq and prev must advance together
        self._broken: str | None = None
        """Why a write failed: the journal is closed, and every later append says so."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        since: JournalAnchor | None = None,
        now: Callable[[], datetime] = _utc_now,
    ) -> AuditJournal:
        """Create the journal with mode 0600, or verify an existing one and continue its chain.

        An existing journal is verified whole, or from ``since`` on when that anchor is this
        file's. Raises :class:`~bulkresign.errors.LedgerError` naming the first bad line when it
        fails verification, and ``ConfigError`` when it is not private.
        """
        path = Path(path)
        anchored = since is not None and since.entries > 0
        if anchored and not path.exists():
            assert since is not None
            raise LedgerError(
                f"{path}: no audit journal here, but the state file anchored {since.entries} "
                f"entries of {since.path}: give --journal {since.path}, put it back, or, if it "
                "is lost, resume with --new-journal"
            )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            raise LedgerError(f"{path}: cannot create audit journal: {exc.strerror}") from None
        else:
            os.fchmod(fd, PRIVATE_MODE)  # the umask can only narrow the mode; be explicit anyway
            return cls(path, fd, 0, GENESIS, now, 0)
        check_private(path)
        if since is not None and since.path != str(path.absolute()):
            # Another path: the same journal moved with its run passes through the anchor; a
            # different file does not, nor does a copy while the original is still there: either
            # would split the run's chain in two.
            result = verify_journal(path, through=since)
            if anchored and (not result.ok or Path(since.path).exists()):
                raise LedgerError(
                    f"{path}: not the audit journal the state file anchored ({since.path}, "
                    f"{since.entries} entries): give --journal {since.path}"
                )
        else:
            result = verify_journal(path, since=since)
        if not result.ok:
            raise LedgerError(
                f"{path}:{result.first_bad_line}: audit journal fails verification "
                f"({result.reason}); refusing to extend it — keep it as evidence, move it aside, "
                "and resume with --new-journal"
            )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot open audit journal: {exc.strerror}") from None
        return cls(path, fd, result.entries, result.head or GENESIS, now, os.fstat(fd).st_size)

    @property
    def entries(self) -> int:
        """How many entries the journal holds."""
        return self._seq

    @property
    def head(self) -> str:
        """SHA-256 of the last line (``GENESIS`` while empty): the ``prev`` of the next entry."""
        return self._prev

    def anchor(self) -> JournalAnchor | None:
        """Make every entry so far durable and say where they end; ``None`` once closed.

        Safe to call from another thread than the one appending: the fsync runs outside the
        lock, so appends never wait for it, and covers at least the entries it reports.
        """
        with self._lock:
            fd = self._fd
            mark = JournalAnchor(self._seq, self._offset, self._prev, str(self.path.absolute()))
        if fd < 0:
            return None
        try:
            os.fsync(fd)
        except OSError:  # closed meanwhile, or the disk failed: the next anchor will tell
            return None
        return mark

    def append(self, kind: str, *, durable: bool = False, **fields: object) -> None:
        """Write one entry; with ``durable`` also fsync it before returning.

        ``fields`` must be JSON-ready (strings, numbers, lists, dicts); names in
        :data:`RESERVED_FIELDS` are refused with ``ValueError``.
        """
        clash = RESERVED_FIELDS.intersection(fields)
        if clash:
            raise ValueError(f"audit fields {sorted(clash)} are reserved")
        with self._lock:
            if self._broken is not None:  # every writer of the run hears of it, as one error
                raise LedgerError(f"{self.path}: cannot append to audit journal: {self._broken}")
            if self._fd < 0:
                raise ValueError(f"{self.path}: audit journal is closed")
            entry: dict[str, object] = {
                "seq": self._seq,
                "time": self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "kind": kind,
            }
            entry.update(cast(dict[str, object], redact(fields)))
            entry["prev"] = self._prev
            line = seal(orjson.dumps(entry))
            data = memoryview(line + b"\n")
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
                if durable:
                    os.fsync(self._fd)
            except OSError as exc:
                # A torn line may now end the file: appending after it would only hide the break.
                os.close(self._fd)
                self._fd = -1
                self._broken = exc.strerror or str(exc)
                raise LedgerError(f"{self.path}: cannot append to audit journal: {exc}") from exc
            self._prev = hashlib.sha256(line).hexdigest()
            self._seq += 1
            self._offset += len(line) + 1

    def run_started(self, *, reason: str, durable: bool = True, **fields: object) -> None:
        """Append ``run_started`` with who, where and why, plus the caller's ``fields``.

        The caller passes what only it knows — ``host``, ``userpool_id``, ``endpoint``,
        ``id_type``, ``plan_sha256``, ``input_sha256`` — and this adds the operator
        (``getpass.getuser()``), the tool version, the machine's name and the process id.
        """
        try:
            operator = getpass.getuser()
        except (KeyError, OSError):  # no $USER and no passwd entry (some containers)
            operator = f"uid:{os.getuid()}"
        self.append(
            "run_started",
            durable=durable,
            operator=operator,
            reason=reason,
            tool_version=__version__,
            machine=socket.gethostname(),
            pid=os.getpid(),
            **fields,
        )

    def in_place(self) -> bool:
        """Whether the path still names the file being written, whole (not moved, replaced, deleted
        or cut)."""
        with self._lock:
            if self._fd < 0:
                return True  # closed: nothing more is written to it
            # Emptied or cut in place (`: > journal`): the same file, without its entries.
            return (
                names_open_file(self.path, self._fd) and os.fstat(self._fd).st_size >= self._offset
            )

    def close(self) -> None:
        """Close the file; later appends raise ``ValueError``."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_journal_file(path: Path, *, state: Path, run: Mapping[str, str] | None = None) -> None:
    """Refuse, before anything is created, a ``--journal`` that is a symbolic link, a folder, a
    file with content but no journal entry — a run would refuse it only after creating its
    state file and log — or, when ``state`` holds no run yet (missing, or left empty by a kill
    as it was made), a journal of another run: of one whose state file is gone, the calls it
    records could not be told from new ones; another run's would take this one's entries. Its
    own journal, beside a state file left empty (a lost ``-wal``), must have been started with
    ``run``'s endpoint, ID type, host and input: the state file no longer binds them."""
    if path.is_symlink():
        raise ConfigError(f"{path}: a symbolic link; name the file itself")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: not a regular file; --journal names a file")
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        journal = holds_entries(path)
    except OSError:
        return  # unreadable: opening it will say why
    if not journal:
        raise ConfigError(f"{path}: exists and is not an audit journal; name another --journal")
    started = _started(path) if state.exists() and is_blank(state) else None
    if started is not None and run is not None:
        for key, given in run.items():
            if isinstance(had := started.get(key), str) and had != given:
                raise ConfigError(
                    f"{path}: this run's journal began with {key} {had!r}, not {given!r}; its "
                    f"state file {state} holds none of it (its -wal lost): give the same options"
                )
    if not state.exists() or (started is not None and _named(started) != os.path.abspath(state)):
        raise ConfigError(
            f"{path}: the audit journal of another run, and {state} holds none yet: if that "
            "run's state file was moved, give it with --state; if it is lost, the calls this "
            "journal records cannot be checked, and running again may resign those users "
            "twice; to start over anyway, name another --journal"
        )


def _started(path: Path) -> dict[str, object]:
    """The journal's first entry (``run_started``), or an empty dict."""
    try:
        with path.open("rb") as f:
            entry = orjson.loads(f.readline(1 << 16))
    except (OSError, orjson.JSONDecodeError):
        return {}
    return entry if isinstance(entry, dict) else {}


def _named(entry: Mapping[str, object]) -> str | None:
    """The state file a ``run_started`` entry names, made absolute."""
    state = entry.get("state")
    return os.path.abspath(state) if isinstance(state, str) else None
