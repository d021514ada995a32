"""The audit journal's hash chain: how a line is sealed, how a file is checked, and anchors.

Each line is one JSON object, in this key order::

    {"seq": 0, "time": "2025-01-01T00:00:00.000000Z", "kind": "run_started", ...fields...,
     "prev": "<64 hex>", "hash": "<64 hex>"}

``seq`` counts lines from 0. ``prev`` is the SHA-256 of the previous line's exact bytes (without
its newline), 64 zeros on the first line, so editing, deleting, inserting or reordering any line
breaks the chain at the next one. ``hash`` is the SHA-256 of the line's own bytes up to ``,"hash"``
with ``}`` appended; it makes an edit of the *last* line evident too, and it is the head a caller
may store elsewhere (:attr:`bulkresign.audit.AuditJournal.head`, ``verify_journal(path, head=...)``)
to make dropping whole trailing lines evident as well. This is the classic hash chain (the baseline
in Crosby & Wallach, "Efficient Data Structures for Tamper-Evident Logging", USENIX Security 2009,
https://www.usenix.org/legacy/event/sec09/tech/full_papers/crosby.pdf): without an anchored head it
shows accidents and naive edits, not a forger who rewrites the whole file.

A run anchors its journal in the ledger (:class:`JournalAnchor`: entries, byte offset and head,
fsynced first, stored with a ledger commit at most once a second). ``bulkresign audit verify
--state`` checks that the chain passes through the anchor, so lines dropped before it are evident;
a resumed run checks only the anchored line and what follows it (``verify_journal(path,
since=anchor)``) instead of hashing the whole file again (10M IDs make a journal of some 430 MB).
Extending a journal whose earlier lines were edited hides nothing: the chain still breaks there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from bulkresign.errors import InputError

__all__ = [
    "ANCHOR_KEY",
    "GENESIS",
    "JournalAnchor",
    "VerifyResult",
    "holds_entries",
    "seal",
    "verify_journal",
]

#: The ``prev`` of the first line.
GENESIS = "0" * 64
#: The ledger meta key a run's :class:`JournalAnchor` is stored under.
ANCHOR_KEY = "journal_anchor"

_HASH_SUFFIX = re.compile(rb',"hash":"([0-9a-f]{64})"\}\Z')
#: Our lines are a few kilobytes; a longer one is not ours, and is not read whole into memory.
_MAX_LINE = 1 << 24


def seal(body: bytes) -> bytes:
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


@dataclass(frozen=True, slots=True)
class JournalAnchor:
    """A point of the journal recorded elsewhere: its first ``entries`` lines end at ``offset``."""

    entries: int
    offset: int
    """Bytes of the first ``entries`` lines, newlines included."""
    head: str
    """SHA-256 of line ``entries`` (``GENESIS`` when ``entries`` is 0)."""
    path: str
    """The journal's absolute path: an anchor holds for that file only."""

    def as_json(self) -> dict[str, object]:
        """The anchor as the ledger stores it (under :data:`ANCHOR_KEY`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> JournalAnchor | None:
        """The anchor a ledger's meta holds, or ``None``."""
        raw = meta.get(ANCHOR_KEY)
        return None if raw is None else cls.from_json(orjson.loads(raw))

    @classmethod
    def from_json(cls, value: object) -> JournalAnchor | None:
        """Read back :meth:`as_json`; ``None`` for anything else."""
        if not isinstance(value, dict):
            return None
        entries, offset, head, path = (value.get(k) for k in ("entries", "offset", "head", "path"))
        if not (isinstance(entries, int) and isinstance(offset, int)):
            return None
        if not (isinstance(head, str) and isinstance(path, str)) or entries < 0 or offset < 0:
            return None
        return cls(entries, offset, head, path)


def _check_line(line: bytes, number: int, prev: str | None) -> str | None:
    """Why line ``number`` (1-based, without its newline) breaks the chain, or ``None``.

    ``prev=None`` checks the line on its own: its hash, its shape and its ``seq``.
    """
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
    if prev is not None and entry.get("prev") != prev:
        return "prev does not match the line before (lines lost, inserted, moved or edited)"
    if not isinstance(entry.get("time"), str) or not isinstance(entry.get("kind"), str):
        return "time or kind missing"
    return None


def verify_journal(
    path: str | os.PathLike[str],
    *,
    head: str | None = None,
    through: JournalAnchor | None = None,
    since: JournalAnchor | None = None,
) -> VerifyResult:
    """Check the lines of the journal at ``path`` against the chain.

    With ``head`` (a value of :attr:`AuditJournal.head` kept elsewhere), the journal must also end
    exactly there, which makes truncation at a line boundary evident. With ``through`` (an
    anchor from the ledger) the chain must pass through it. With ``since`` only the anchored line
    and the lines after it are checked (a resumed run). An unreadable file raises
    :class:`~bulkresign.errors.InputError`.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            if since is not None and since.entries:
                reason = _check_anchor(f, since)
                if reason is not None:
                    return VerifyResult(False, 0, since.entries, reason)
                f.seek(since.offset)
                result = _verify_from(f, since.entries, since.head, None)
            else:
                result = _verify_from(f, 0, GENESIS, through)
    except OSError as exc:
        raise InputError(f"cannot read audit journal: {exc.strerror}", path=str(path)) from None
    # A file with no sealed line at all was given by mistake (a log, a report) — unless the
    # ledger anchored entries in it, which makes it a journal replaced wholesale: tampered.
    anchored = (through is not None and through.entries > 0) or since is not None
    if not result.ok and result.first_bad_line == 1 and not anchored and not _any_sealed(path):
        raise InputError("not an audit journal: no line of it is a sealed entry", path=str(path))

    if not result.ok:
        return result
    if through is not None and result.entries < through.entries:
        why = f"journal ends before entry {through.entries}, anchored in the state file"
        return VerifyResult(False, result.entries, result.entries + 1, f"{why} (lines lost)")
    if head is not None and head != result.head:
        return VerifyResult(False, result.entries, result.entries + 1, _NOT_AT_HEAD)
    return result


_NOT_AT_HEAD = "journal does not end at the given head"


def holds_entries(path: Path) -> bool:
    """Whether ``path`` holds a sealed entry: its first line, as a journal's is, or any line (a
    journal whose first line was edited is still one, tampered)."""
    with path.open("rb") as f:
        first = f.readline(_MAX_LINE + 1)
    return bool(_HASH_SUFFIX.search(first.rstrip(b"\n"))) or _any_sealed(path)


def _any_sealed(path: Path) -> bool:
    """Whether any line of ``path`` is a sealed entry: a journal with its first line edited
    has the rest, a log, a report or a ledger given by mistake has none."""
    with path.open("rb") as f:
        return any(_HASH_SUFFIX.search(line.rstrip(b"\n")) for line in f)


def _verify_from(
    f: BinaryIO, entries: int, prev: str, through: JournalAnchor | None
) -> VerifyResult:
    """Verify from the file's position on, after ``entries`` lines that ended with ``prev``."""
    for number, raw in enumerate(iter(lambda: f.readline(_MAX_LINE + 1), b""), start=entries + 1):
        if len(raw) > _MAX_LINE:
            return VerifyResult(False, entries, number, "line too long for a journal entry")
        if not raw.endswith(b"\n"):
            return VerifyResult(False, entries, number, "truncated: no newline at the end")
        line = raw[:-1]
        reason = _check_line(line, number, prev)
        if reason is not None:
            return VerifyResult(False, entries, number, reason)
        prev, entries = hashlib.sha256(line).hexdigest(), number
        if through is not None and number == through.entries and prev != through.head:
            why = "not the line the state file anchored (journal replaced or rewritten)"
            return VerifyResult(False, entries - 1, number, why)
    return VerifyResult(True, entries, None, None, prev if entries else None)


def _check_anchor(f: BinaryIO, anchor: JournalAnchor) -> str | None:
    """Why the journal does not hold ``anchor``'s line where the anchor says, or ``None``."""
    lost = f"journal ends before entry {anchor.entries}, anchored in the state file (lines lost)"
    if os.fstat(f.fileno()).st_size < anchor.offset:
        return lost
    line = _line_ending_at(f, anchor.offset)
    if line is None:
        return "no entry ends where the state file anchored one (journal replaced or rewritten)"
    if hashlib.sha256(line).hexdigest() != anchor.head:
        return "not the line the state file anchored (journal replaced or rewritten)"
    return _check_line(line, anchor.entries, None)


def _line_ending_at(f: BinaryIO, offset: int) -> bytes | None:
    """The line whose newline is the byte before ``offset``, without it; ``None`` if there is none.

    Read backwards a block at a time: only the anchored line is read, however long the file.
    """
    f.seek(offset - 1)
    if f.read(1) != b"\n":
        return None
    parts: list[bytes] = []
    pos = end = offset - 1
    while pos > 0 and end - pos <= _MAX_LINE:
        step = min(1 << 16, pos)
        pos -= step
        f.seek(pos)
        block = f.read(step)
        cut = block.rfind(b"\n")
        parts.append(block[cut + 1 :])
        if cut >= 0:
            return b"".join(reversed(parts))
    return b"".join(reversed(parts)) if pos == 0 else None
