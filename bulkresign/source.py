"""Reading an input: raw bytes in large blocks → whole lines, in bounded memory.

The reader opens a file or standard input, hashes the raw bytes as they stream past (the ledger
binds a run to that digest), inflates gzip when the magic bytes say so, strips a UTF-8 byte-order
mark at the start, refuses what is not text (empty, binary, UTF-16, an archive), and cuts the text
at ``\\n`` only — never ``str.splitlines``, which also splits at ``\\x0b``, ``\\x1c``, ``\\x85`` or
``\\u2028`` and would put line numbers out of step with the operator's editor
(https://docs.python.org/3/library/stdtypes.html#str.splitlines).

Lines come out in :class:`~bulkresign.lines.Lines` pieces of whole lines, an over-long line as a
:class:`~bulkresign.lines.LongLine` (:mod:`bulkresign.lines`).
"""

from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Protocol

from bulkresign.decoding import BOM, FOREIGN, GZIP_MAGIC, binary_verdict, gunzip, prepend
from bulkresign.digest import FileStamp, Prefix, StreamDigest
from bulkresign.errors import InputError
from bulkresign.lines import Piece, cut_lines

__all__ = [
    "BLOCK_SIZE",
    "FIRST_BLOCK",
    "ByteStream",
    "InputReader",
    "check_readable",
]

#: Bytes read (and, for gzip, inflated) per step: large enough to amortize numpy's per-call cost.
BLOCK_SIZE = 2 << 20
#: The first read is this small and each next one twice the last, up to ``block_size``: the first
#: 2 MiB block (84k IDs) took 113 ms to scan before the first batch could leave, 64 KiB ~10 ms.
FIRST_BLOCK = 64 << 10
#: How much of the text is inspected to refuse binaries and to pick a format.
SNIFF_BYTES = 8192


class ByteStream(Protocol):
    """What the reader needs of an open input: a file, stdin, or a pipe held by `held.py`."""

    def read(self, size: int = -1, /) -> bytes: ...

    def fileno(self) -> int: ...

    def close(self) -> None: ...


def check_readable(path: str) -> None:
    """Refuse early, with a one-line message, a path that cannot be an input."""
    if path == "-":
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a directory, not a file", path=path)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", path=path)


class InputReader:
    """One pass over one input, as a context manager.

    Args:
        path: a file, or ``"-"`` for standard input.
        stdin: read this instead of opening ``path`` (standard input, or a one-time input whose
            start the CLI read ahead: :class:`~bulkresign.held.HeldStream`); it is not closed here.
        block_size: bytes per read; tests use tiny blocks to cross every boundary.
        stamp: what a regular file must bear throughout the read (:mod:`bulkresign.digest`);
            by default the stamp it has when opened.
        expect_prefix: what an earlier run read of this (one-time) input: the same bytes must
            come first.
    """

    def __init__(
        self,
        path: str,
        *,
        block_size: int = BLOCK_SIZE,
        stdin: ByteStream | None = None,
        stamp: FileStamp | None = None,
        expect_prefix: Prefix | None = None,
    ) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self.block_size = block_size
        self.gzip = False
        self.sample = b""
        self.bytes_read = 0
        self.text_read = 0
        self._stdin = stdin
        self._file: ByteStream | None = None
        self._hash = StreamDigest(self.name, expect_prefix)
        self._text: Iterator[bytes] = iter(())
        self._stamp = stamp

    def __enter__(self) -> InputReader:
        check_readable(self.path)
        # Unbuffered: the reader reads whole blocks anyway, and a buffered reader's lock, held by
        # a read that a stop has walked away from (bulkresign.threads), aborts the interpreter's
        # shutdown ("could not acquire lock for <stdin>").
        if self._stdin is not None:
            self._file = self._stdin
        elif self.path == "-":
            self._file = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
        else:
            try:
                self._file = open(self.path, "rb", buffering=0)  # closed by __exit__
            except OSError as exc:
                raise InputError(f"cannot open: {exc.strerror}", path=self.path) from None
        try:
            if self.path == "-":
                self._stamp = None
            elif self._stamp is None:
                self._stamp = FileStamp.of(os.fstat(self._file.fileno()))
            self._check_stamp()
            self._text = self._sniffed()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()

    def _close(self) -> None:
        if self._file is not None and self._file is not self._stdin:
            self._file.close()  # fd 0 itself stays open: closefd=False
        self._file = None

    @property
    def size(self) -> int | None:
        """The size of the text when it is known in advance: a plain (not gzip) regular file."""
        if self.path == "-" or self.gzip:
            return None
        st = os.stat(self.path)
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def digest(self) -> str:
        """SHA-256 (hex) of the raw bytes read so far: of the whole input once it is exhausted."""
        return self._hash.prefix.sha256

    @property
    def prefix(self) -> Prefix:
        """The raw bytes read so far, as a :class:`Prefix`."""
        return self._hash.prefix

    def _fail(self, message: str) -> InputError:
        return InputError(message, path=self.name)

    def _raw(self) -> Iterator[bytes]:
        assert self._file is not None
        # read1 returns what a pipe has instead of waiting for a whole block, so the first batch
        # of a slow producer's stream goes out at once; what the pipe already holds beyond that
        # is gathered into the block (select), so a fast pipe still gives full blocks.
        read = getattr(self._file, "read1", self._file.read)
        eof = False
        limit = min(self.block_size, FIRST_BLOCK)
        while not eof:
            parts: list[bytes] = []
            size = 0
            try:
                while size < limit and (not parts or self._ready()):
                    part = read(limit - size)
                    if not part:
                        eof = True
                        break
                    parts.append(part)
                    size += len(part)
            except OSError as exc:
                raise self._fail(f"read failed: {exc.strerror or exc}") from None
            self._check_stamp()  # after the read: a write that began before it shows by now
            if not parts:
                break
            block = parts[0] if len(parts) == 1 else b"".join(parts)
            self._hash.update(block)
            self.bytes_read += len(block)
            limit = min(self.block_size, limit * 2)
            yield block
        self._hash.finish()

    def _check_stamp(self) -> None:
        if self._stamp is not None and self._file is not None:
            self._stamp.check(self._file.fileno(), self.name)

    def _ready(self) -> bool:
        """Whether more input can be read without waiting (always, for a regular file)."""
        if self._file is None:
            return False
        try:
            fd = self._file.fileno()
        except (OSError, ValueError):  # an in-memory stream never makes anyone wait
            return True
        try:
            return bool(select.select([fd], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def _decoded(self) -> Iterator[bytes]:
        raw = self._raw()
        first = b""
        for block in raw:  # enough bytes for the magic numbers
            first += block
            if len(first) >= 8:
                break
        if first.startswith(GZIP_MAGIC):
            self.gzip = True
            yield from self._gunzip(first, raw)
            return
        if first:
            yield first
        yield from raw

    def _gunzip(self, first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
        return gunzip(first, rest, self.block_size, self._fail)

    def _sniffed(self) -> Iterator[bytes]:
        """Check the start of the text, then yield it and the rest; ``sample`` is set on return."""
        decoded = self._decoded()
        head = b""
        for block in decoded:
            head += block
            if len(head) >= SNIFF_BYTES or not self._ready():
                break
        if not head:
            raise self._fail("empty file" if not self.gzip else "empty after gunzip")
        for magic, what in FOREIGN:
            if head.startswith(magic):
                raise self._fail(f"not a text file: {what}")
        if head.startswith(BOM):
            head = head[len(BOM) :]
            if not head:  # a slow pipe may have sent the mark alone
                head = next((block for block in decoded if block), b"")
            if not head:
                raise self._fail("empty file (only a byte-order mark)")
        self.sample = head[:SNIFF_BYTES]
        verdict = binary_verdict(self.sample)
        if verdict is not None:
            raise self._fail(f"not a text file: {verdict}")
        return prepend(head, decoded)

    def pieces(self, limit: int) -> Iterator[Piece]:
        """Cut the text into lines of at most ``limit`` bytes (without ``\\n`` and one ``\\r``)."""
        return cut_lines(self._counted(), limit)

    def _counted(self) -> Iterator[bytes]:
        for block in self._text:
            self.text_read += len(block)
            yield block
