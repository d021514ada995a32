"""What binds a run to its input: the file's SHA-256, and a stamp that tells when it changed.

A run reads a regular file more than once: ``plan`` or ``--plan-sha256`` before the run, the hash
beside the first requests, the ingest itself. If another program rewrites the file meanwhile, each
read may see other bytes, and IDs nobody reviewed would be resigned. So the run takes the file's
:class:`FileStamp` once, before its first read, and every read compares the file with it — at the
start, after every block and at the end — and refuses the input the moment it differs.

The stamp holds the device, inode, size, and modification and change times in nanoseconds: a write
moves the modification time (https://man7.org/linux/man-pages/man7/inode.7.html), and a program
that sets it back moves the change time. A pipe or a terminal has no stamp: it can be read once
only, and its digest is taken as it is read (:attr:`bulkresign.source.InputReader.digest`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bulkresign.errors import InputError

__all__ = ["CHANGED", "FileStamp", "file_stamp", "hash_file"]

CHANGED = "changed while it was being read; run again once nothing writes to it"


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
            raise InputError(CHANGED, path=path)


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
