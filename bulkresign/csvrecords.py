"""CSV and TSV records: RFC 4180 quoting, a header naming the columns, one column taken.

https://www.rfc-editor.org/rfc/rfc4180 — fields may be quoted, quotes inside doubled, and a quoted
field may hold delimiters and line breaks. Lines without a quote take a plain split (the common
case, and exactly what the csv module would give them); others go through :mod:`csv` in strict mode.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator

from bulkresign.errors import InputError
from bulkresign.formats import ID_NAMES, Item, physical_lines, precheck, squash
from bulkresign.inputspec import Format, InputSpec
from bulkresign.lines import LongLine, Piece
from bulkresign.validate import RejectReason, SkipReason

__all__ = ["CsvParser"]


class CsvParser:
    """CSV/TSV records, RFC 4180 quoting, one column taken.

    A quoted field may hold line breaks; its record then spans several physical lines, is counted
    at its first line, and the lines after it are skipped as ``continuation``. A record that is
    still open when it passes ``limit`` bytes or the end of the input is rejected at its first
    line (``bad_csv``), and the lines after it are read again on their own.
    """

    def __init__(self, spec: InputSpec, fmt: Format, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.delimiter = spec.delimiter or ("\t" if fmt is Format.TSV else ",")
        self.column = spec.column
        self.id_type = spec.id_type
        self.want_header = spec.header
        self.index: int | None = None if spec.header else int(spec.column or 1) - 1
        self.note = "" if self.index is None else f"column {self.index + 1}"

    def _split(self, text: str) -> list[str] | None:
        """The fields of one record, ``None`` while a quoted field is still open."""
        if '"' not in text:
            return text.split(self.delimiter)
        try:
            rows = list(csv.reader([text], delimiter=self.delimiter, strict=True))
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return None
            raise ValueError(str(exc)) from None
        return rows[0] if rows else [""]

    def items(self, pieces: Iterator[Piece]) -> Iterator[Item]:
        """One item per physical line, in order."""
        lines = physical_lines(pieces)
        pushed: deque[tuple[int, bytes | LongLine]] = deque()
        while True:
            entry = pushed.popleft() if pushed else next(lines, None)
            if entry is None:
                return
            line, content = entry
            checked = precheck(line, content, self.limit)
            if isinstance(checked, Item):
                if self.index is None and checked.reason not in (None, SkipReason.BLANK):
                    raise InputError(
                        f"unreadable header ({checked.reason})", path=self.name, line=line
                    )
                yield checked
                continue
            assert isinstance(content, bytes)
            text, group = checked, [entry]
            try:
                fields = self._split(text)
                size = len(content)
                while fields is None:
                    nxt = pushed.popleft() if pushed else next(lines, None)
                    if nxt is None:
                        break
                    group.append(nxt)
                    more = nxt[1]
                    if isinstance(more, LongLine) or b"\0" in more:
                        break
                    size += 1 + len(more)
                    if size > self.limit:
                        break
                    try:
                        text += "\n" + more.decode("utf-8")
                    except UnicodeDecodeError:
                        break
                    fields = self._split(text)
            except ValueError:
                fields = None
            if fields is None:
                if self.index is None:
                    raise InputError(
                        "unreadable header (unbalanced quotes)", path=self.name, line=line
                    )
                yield Item(line, None, RejectReason.BAD_CSV, content)
                pushed.extendleft(reversed(group[1:]))
                continue
            yield self._record(line, fields, text)
            for later, more in group[1:]:
                assert isinstance(more, bytes)  # a record closes only over ordinary lines
                yield Item(later, None, SkipReason.CONTINUATION, more)

    def _record(self, line: int, fields: list[str], text: str) -> Item:
        if self.index is None:
            self.index = self._resolve(line, [f.strip(" \t") for f in fields])
            return Item(line, None, SkipReason.HEADER, text)
        if self.index >= len(fields):
            return Item(line, None, RejectReason.MISSING_COLUMN, text)
        value = fields[self.index]
        return Item(line, value, None, value)

    def _resolve(self, line: int, names: list[str]) -> int:
        """The index of the ID column, from ``--column`` or the header's names."""
        shown = ", ".join(repr(n) for n in names[:20]) + (", …" if len(names) > 20 else "")
        if isinstance(self.column, int):
            if self.column > len(names):
                raise InputError(
                    f"--column {self.column}: the header has {len(names)} columns ({shown})",
                    path=self.name,
                    line=line,
                )
            index = self.column - 1
        elif isinstance(self.column, str):
            exact = [i for i, n in enumerate(names) if n == self.column]
            loose = [i for i, n in enumerate(names) if n.lower() == self.column.lower()]
            found = exact or loose
            if len(found) != 1:
                why = "no column" if not found else "more than one column"
                raise InputError(
                    f"{why} named {self.column!r}; the header has: {shown}",
                    path=self.name,
                    line=line,
                )
            index = found[0]
        else:
            wanted = ID_NAMES[self.id_type]
            found = [i for i, n in enumerate(names) if squash(n) in wanted]
            if len(names) == 1:
                found = [0]
            if len(found) != 1:
                raise InputError(
                    f"name the ID column with --column; the header has: {shown}",
                    path=self.name,
                    line=line,
                )
            index = found[0]
        self.note = f"column {index + 1} ({names[index]!r})"
        return index
