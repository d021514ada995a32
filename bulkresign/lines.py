"""Cutting text into lines in bounded memory: whole lines in pieces, over-long lines as summaries.

The text is cut at ``\\n`` only (see :mod:`bulkresign.source` for why). A line longer than the
limit that crosses a block boundary is never assembled: its first bytes and its length are kept
and the rest skipped, so a 1 GB line costs one block of memory, and comes out as a
:class:`LongLine`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bulkresign.errors import InputError
from bulkresign.validate import PREVIEW_BYTES

__all__ = ["Lines", "LongLine", "Piece", "cut_lines", "numbered"]


@dataclass(frozen=True, slots=True)
class Lines:
    """Whole consecutive lines, each ending in ``\\n``; the first is line ``first_line``."""

    first_line: int
    data: bytes


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line longer than the limit, never held whole.

    ``head`` is its first ``PREVIEW_BYTES + 1`` bytes (the whole line, without a trailing ``\\r``,
    when shorter); ``length`` counts its bytes without the line ending; ``blank`` and ``comment``
    say whether it holds only spaces and tabs, or starts with ``#`` after them; ``quotes``
    whether it holds a ``"`` at all (a CSV line that may open a quoted field).
    """

    line: int
    head: bytes
    length: int
    blank: bool
    comment: bool
    quotes: bool = False


Piece = Lines | LongLine


def cut_lines(blocks: Iterable[bytes], limit: int) -> Iterator[Piece]:
    """Cut ``blocks`` into lines of at most ``limit`` bytes (without ``\\n`` and one ``\\r``)."""
    line = 1
    carry = b""
    long: _LongLine | None = None
    for block in blocks:
        if long is not None:
            nl = block.find(b"\n")
            if nl < 0:
                long.feed(block)
                continue
            long.feed(block[:nl])
            yield long.finish()
            line += 1
            long = None
            block = block[nl + 1 :]
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1
        if cut:
            whole = data if cut == len(data) else data[:cut]
            yield Lines(line, whole)
            line += whole.count(b"\n")
        tail = data[cut:]
        if len(tail) > limit + 1:  # too long whatever follows, even if it ends in \r
            long = _LongLine(line, tail)
            carry = b""
        else:
            carry = tail
    if long is not None:
        yield long.finish()
    elif carry:
        yield Lines(line, carry + b"\n")


class _LongLine:
    """The running summary of an over-long line: its head, length and first non-blank byte."""

    def __init__(self, line: int, first: bytes) -> None:
        self.line = line
        self.head = b""
        self.length = 0
        self.first_sig: int | None = None
        self.sig_pos = 0
        self.last = 0
        self.quotes = False
        self.feed(first)

    def feed(self, part: bytes) -> None:
        if not part:
            return
        if self.first_sig is None:
            rest = part.lstrip(b" \t")
            if rest:
                self.first_sig = rest[0]
                self.sig_pos = self.length + len(part) - len(rest)
        if len(self.head) <= PREVIEW_BYTES:
            self.head = (self.head + part[: PREVIEW_BYTES + 1])[: PREVIEW_BYTES + 1]
        self.length += len(part)
        self.last = part[-1]
        self.quotes = self.quotes or b'"' in part

    def finish(self) -> LongLine:
        length = self.length - (self.last == 0x0D)
        blank = self.first_sig is None or (self.first_sig == 0x0D and self.sig_pos == length)
        head = self.head[:length] if self.length <= len(self.head) else self.head
        comment = self.first_sig == ord("#")
        return LongLine(self.line, head, length, blank, comment, self.quotes)


def numbered(pieces: Iterator[Piece]) -> Iterator[Piece]:
    """``pieces``, with the line the reading stopped at put into an error that has none (a
    truncated gzip, a failed read): the operator is told where the input breaks off."""
    last: Piece | None = None
    try:
        for last in pieces:
            yield last
    except InputError as exc:
        if exc.line is not None:
            raise
        if isinstance(last, Lines):
            line = last.first_line + last.data.count(b"\n")
        else:
            line = 1 if last is None else last.line + 1
        raise InputError(exc.reason, path=exc.path, line=line) from None
