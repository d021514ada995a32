"""The audit journal: an append-only, hash-chained JSONL record of what a run did and why.

Each line is one JSON object, in this key order::

    {"seq": 0, "time": "2025-01-01T00:00:00.000000Z", "kind": "run_started", ...fields...,
     "prev": "<64 hex>", "hash": "<64 hex>"}

``seq`` counts lines from 0. ``prev`` is the SHA-256 of the previous line's exact bytes (without
its newline), 64 zeros on the first line, so editing, deleting, inserting or reordering any line
breaks the chain at the next one. ``hash`` is the SHA-256 of the line's own bytes up to ``,"hash"``
with ``}`` appended; it makes an edit of the *last* line evident too, and it is the head a caller
may store elsewhere (:attr:`AuditJournal.head`, ``verify_journal(path, head=...)``) to make
dropping whole trailing lines evident as well. This is the classic hash chain (the baseline in
Crosby & Wallach, "Efficient Data Structures for Tamper-Evident Logging", USENIX Security 2009,
https://www.usenix.org/legacy/event/sec09/tech/full_papers/crosby.pdf): without an anchored
head it shows accidents and naive edits, not a forger who rewrites the whole file.

The journal is the *evidence*; the ledger is the source of truth. It is private (0600) and holds
the IDs exactly as given, because it is the audit record of who was resigned, when and by whom.
A resumed run appends to the same file after verifying it; a journal that fails verification is
refused rather than extended. Entries pass through :func:`bulkresign.logs.redact`, so a secret
handed to it by mistake is still never written.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self, cast

import orjson

from bulkresign._version import __version__
from bulkresign.errors import InputError, LedgerError
from bulkresign.files import PRIVATE_MODE, check_private
from bulkresign.logs import redact

__all__ = ["GENESIS", "RESERVED_FIELDS", "AuditJournal", "VerifyResult", "verify_journal"]

#: The ``prev`` of the first line.
GENESIS = "0" * 64
#: Field names the journal sets itself.
RESERVED_FIELDS = frozenset({"seq", "time", "kind", "prev", "hash"})

_HASH_SUFFIX = re.compile(rb',"hash":"([0-9a-f]{64})"\}\Z')
#: Our lines are a few kilobytes; a longer one is not ours, and is not read whole into memory.
_MAX_LINE = 1 << 24


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _seal(body: bytes) -> bytes:
    """Append the ``hash`` field to a serialized entry (``body`` ends with ``}``)."""
    digest = hashlib.sha256(body).hexdigest().encode()
    return body[:-1] + b',"hash":"' + digest + b'"}'


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict on a journal file."""

    ok: bool
    entries: int
    """Lines that verified (all of them when ``ok``)."""
    first_bad_line: int | None
    """1-based line number of the first line that fails, or ``None``."""
    reason: str | None
    head: str | None = None
    """SHA-256 of the last verified line: the next ``prev``, or ``None`` for an empty journal."""


def _check_line(line: bytes, number: int, prev: str) -> str | None:
    """Why line ``number`` (1-based, without its newline) breaks the chain, or ``None``."""
    sealed = _HASH_SUFFIX.search(line)
    if sealed is None:
        return "not a sealed journal entry (no trailing hash)"
    body = line[: sealed.start()] + b"}"
    if hashlib.sha256(body).hexdigest().encode() != sealed.group(1):
        return "entry hash does not match its content (line edited)"
    try:
        entry = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("seq") != number - 1:
        return f"seq {entry.get('seq')!r} where {number - 1} was expected (lines lost or moved)"
    if entry.get("prev") != prev:
        return "prev does not match the line before (lines lost, inserted, moved or edited)"
    if not isinstance(entry.get("time"), str) or not isinstance(entry.get("kind"), str):
        return "time or kind missing"
    return None


def verify_journal(path: Path, *, head: str | None = None) -> VerifyResult:
    """Check every line of the journal at ``path`` against the chain.

    With ``head`` (a value of :attr:`AuditJournal.head` kept elsewhere), the journal must also end
    exactly there, which makes truncation at a line boundary evident. An unreadable file raises
    :class:`~bulkresign.errors.InputError`.
    """
    prev, entries = GENESIS, 0
    try:
        with path.open("rb") as f:
            for number, raw in enumerate(iter(lambda: f.readline(_MAX_LINE + 1), b""), start=1):
                if len(raw) > _MAX_LINE:
                    return VerifyResult(False, entries, number, "line too long for a journal entry")
                if not raw.endswith(b"\n"):
                    return VerifyResult(False, entries, number, "truncated: no newline at the end")
                line = raw[:-1]
                reason = _check_line(line, number, prev)
                if reason is not None:
                    return VerifyResult(False, entries, number, reason)
                prev, entries = hashlib.sha256(line).hexdigest(), number
    except OSError as exc:
        raise InputError(f"cannot read audit journal: {exc.strerror}", path=str(path)) from None
    last = prev if entries else None
    if head is not None and head != last:
        return VerifyResult(False, entries, entries + 1, "journal does not end at the given head")
    return VerifyResult(True, entries, None, None, last)


class AuditJournal:
    """An open journal that appends hash-chained entries; one thread at a time may append."""

    def __init__(self, path: Path, fd: int, seq: int, prev: str, now: Callable[[], datetime]):
        """Use :meth:`open`."""
        self.path = path
        self._fd = fd
        self._seq = seq
        self._prev = prev
        self._now = now
        self._lock = threading.Lock()  # cheap insurance: seq and prev must advance together

    @classmethod
    def open(cls, path: Path, *, now: Callable[[], datetime] = _utc_now) -> AuditJournal:
        """Create the journal with mode 0600, or verify an existing one and continue its chain.

        Raises :class:`~bulkresign.errors.LedgerError` naming the first bad line when an existing
        journal fails verification, and ``ConfigError`` when it is not private.
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            raise LedgerError(f"{path}: cannot create audit journal: {exc.strerror}") from None
        else:
            os.fchmod(fd, PRIVATE_MODE)  # the umask can only narrow the mode; be explicit anyway
            return cls(path, fd, 0, GENESIS, now)
        check_private(path)
        result = verify_journal(path)
        if not result.ok:
            raise LedgerError(
                f"{path}:{result.first_bad_line}: audit journal fails verification "
                f"({result.reason}); refusing to extend it — move it aside to start a new one"
            )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot open audit journal: {exc.strerror}") from None
        return cls(path, fd, result.entries, result.head or GENESIS, now)

    @property
    def entries(self) -> int:
        """How many entries the journal holds."""
        return self._seq

    @property
    def head(self) -> str:
        """SHA-256 of the last line (``GENESIS`` while empty): the ``prev`` of the next entry."""
        return self._prev

    def append(self, kind: str, *, durable: bool = False, **fields: object) -> None:
        """Write one entry; with ``durable`` also fsync it before returning.

        ``fields`` must be JSON-ready (strings, numbers, lists, dicts); names in
        :data:`RESERVED_FIELDS` are refused with ``ValueError``.
        """
        clash = RESERVED_FIELDS.intersection(fields)
        if clash:
            raise ValueError(f"audit fields {sorted(clash)} are reserved")
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"{self.path}: audit journal is closed")
            entry: dict[str, object] = {
                "seq": self._seq,
                "time": self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "kind": kind,
            }
            entry.update(cast(dict[str, object], redact(fields)))
            entry["prev"] = self._prev
            line = _seal(orjson.dumps(entry))
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
                raise LedgerError(f"{self.path}: cannot append to audit journal: {exc}") from exc
            self._prev = hashlib.sha256(line).hexdigest()
            self._seq += 1

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
