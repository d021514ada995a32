"""What binds a run to its input: the file's SHA-256, and a stamp that tells when it changed.

A run reads a regular file more than once: ``plan`` or ``--plan-sha256`` before the run, the hash
beside the first requests, the ingest itself. If another program rewrites the file meanwhile, each
read may see other bytes, and IDs nobody reviewed would be resigned. So the run takes the file's
:class:`FileStamp` once, before its first read, and every read compares the file with it — at the
start, after every block and at the end — and refuses the input the moment it differs.

The stamp holds the device, inode, size, and modification and change times in nanoseconds: a write
moves the modification time (https://man7.org/linux/man-pages/man7/inode.7.html), and a program
that sets it back moves the change time.

A pipe or a terminal has no stamp and can be read only once: its digest is taken as it is read
(:class:`StreamDigest`). A run records how far it had read and the digest of that :class:`Prefix`
with every commit of new batches, so a resume fed other bytes is refused as soon as it has read
as far, instead of resigning IDs the first run never saw.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import orjson

from bulkresign.errors import InputError, LedgerMismatch

__all__ = ["FileStamp", "Prefix", "StreamDigest", "file_stamp", "hash_file"]


@dataclass(frozen=True, slots=True)
class FileStamp:
    """A regular file's identity and last change, as ``fstat`` reports them."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp | None:
        """The stamp of a ``stat`` result; ``None`` when it is not a regular file."""
        if not stat.S_ISREG(st.st_mode):
            return None
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def check(self, fd: int, path: str) -> None:
        """Raise :class:`InputError` unless the open file ``fd`` still has this stamp."""
        if FileStamp.of(os.fstat(fd)) != self:
            raise InputError(
                "changed while it was being read; run again once nothing writes to it", path=path
            )


def file_stamp(path: str) -> FileStamp | None:
    """The stamp of ``path``; ``None`` for standard input, a pipe, a device or a missing file."""
    if path == "-":
        return None
    try:
        return FileStamp.of(os.stat(path))
    except OSError:
        return None  # the input's own checks name the problem


def hash_file(path: Path, stamp: FileStamp | None = None) -> str:
    """SHA-256 of a file's bytes (hashlib releases the GIL on large blocks).

    Given ``stamp``, the file must bear it before and after the read.
    """
    with path.open("rb") as f:
        if stamp is not None:
            stamp.check(f.fileno(), str(path))
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        if stamp is not None:
            stamp.check(f.fileno(), str(path))
    return digest


@dataclass(frozen=True, slots=True)
class Prefix:
    """The first ``size`` bytes a run read of a one-time input, by their SHA-256."""

    size: int
    sha256: str
    ended: bool = False
    """The input ended there: a resume must not find more."""

    def as_meta(self) -> str:
        """The ledger's form (a JSON object)."""
        return orjson.dumps(
            {"size": self.size, "sha256": self.sha256, "ended": self.ended}
        ).decode()

    @classmethod
    def from_meta(cls, text: str | None) -> Prefix | None:
        """Read back :meth:`as_meta`; ``None`` when nothing was recorded."""
        if not text:
            return None
        value = orjson.loads(text)
        return cls(int(value["size"]), str(value["sha256"]), bool(value.get("ended", False)))


class StreamDigest:
    """SHA-256 of a stream fed block by block; optionally equal, at its size, to ``expect``."""

    def __init__(self, name: str, expect: Prefix | None = None) -> None:
        self._name = name
        self._hash = hashlib.sha256()
        self._expect = expect
        self.prefix = Prefix(0, self._hash.hexdigest())
        """What has been fed so far."""

    def update(self, block: bytes) -> None:
        """Feed the next block; raise :class:`LedgerMismatch` where it departs from ``expect``."""
        size, want = self.prefix.size, self._expect
        if want is not None and size < want.size <= size + len(block):
            head = self._hash.copy()
            head.update(block[: want.size - size])
            if head.hexdigest() != want.sha256:
                self._differs(want)
        if want is not None and want.ended and size + len(block) > want.size:
            raise LedgerMismatch(
                f"{self._name}: goes on past the {want.size:,} bytes at which the earlier run "
                "read it to its end; feed the resumed run the same input"
            )
        self._hash.update(block)
        self.prefix = Prefix(size + len(block), self._hash.hexdigest())

    def finish(self) -> None:
        """The stream ended: it must not be shorter than what the earlier run read."""
        if self._expect is not None and self.prefix.size < self._expect.size:
            raise LedgerMismatch(
                f"{self._name}: ends after {self.prefix.size:,} bytes, before the "
                f"{self._expect.size:,} the earlier run read; feed the resumed run the same input"
            )
        self.prefix = Prefix(self.prefix.size, self.prefix.sha256, ended=True)

    def _differs(self, want: Prefix) -> NoReturn:
        raise LedgerMismatch(
            f"{self._name}: its first {want.size:,} bytes differ from those the earlier run "
            "read; feed the resumed run the same input"
        )
