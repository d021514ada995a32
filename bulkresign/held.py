"""A one-time input — standard input, a pipe by name — read twice: first its start, then all of it.

``run`` checks the start of its input before the state file exists, so that an input it cannot use
leaves nothing behind (an empty stdin would otherwise leave a state file and a resume command).
A regular file is simply opened again; a pipe cannot be, so the bytes that check read are kept and
given first to the run's own read.
"""

from __future__ import annotations

import io
import sys

from bulkresign.errors import InputError
from bulkresign.source import ByteStream

__all__ = ["HeldStream", "open_once"]


def open_once(path: str) -> ByteStream:
    """Open standard input (``-``) or a pipe by name for the one read it allows, unbuffered."""
    if path == "-":
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    try:
        return open(path, "rb", buffering=0)
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path=path) from None


class HeldStream(io.RawIOBase):
    """A one-time input read in part, then from its start (:meth:`rewind`).

    Unbuffered, like the reader's own file (:meth:`bulkresign.source.InputReader.__enter__`).
    """

    def __init__(self, raw: ByteStream) -> None:
        super().__init__()
        self._raw = raw
        self._kept: list[bytes] | None = []
        self._again = b""

    def rewind(self) -> None:
        """Stop keeping what is read: the next reads give the kept bytes, then the rest."""
        if self._kept is not None:
            self._again, self._kept = b"".join(self._kept), None

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def read(self, size: int = -1) -> bytes:
        if self._again:
            n = len(self._again) if size < 0 else size
            part, self._again = self._again[:n], self._again[n:]
            return part
        part = self._raw.read(size)
        if self._kept is not None and part:
            self._kept.append(part)
        return part

    def close(self) -> None:
        if not self.closed:
            self._raw.close()  # fd 0 itself stays open: open_once's closefd=False
        super().close()
