"""CSV and TSV records: RFC 4180 quoting, a header naming the columns, one column taken.

https://www.rfc-editor.org/rfc/rfc4180 — fields may be quoted, quotes inside doubled, and a quoted
field may hold delimiters and line breaks. Lines without a quote take a plain split (the common
case, and exactly what the csv module would give them); others go through :mod:`csv` in strict mode.
"""

from __future__ import annotations

import csv
import enum
import re
from collections.abc import Iterator

from bulkresign.errors import InputError
from bulkresign.formats import ID_NAMES, Item, physical_lines, precheck, squash
from bulkresign.inputspec import Format, InputSpec
from bulkresign.lines import LongLine, Piece
from bulkresign.models import IdType
from bulkresign.validate import RejectReason, SkipReason, normalizer

__all__ = ["CsvParser"]


class _Malformed(enum.Enum):
    MALFORMED = "malformed"


#: ID types whose values have a shape no column name has.
_SHAPED = frozenset(
    {IdType.USER_ID, IdType.EMAIL, IdType.PHONE, IdType.IDENTITY, IdType.SYNC_RELATION}
)
#: Control characters a header's names must not hold (a tab is a delimiter or trimmed; a line
#: break, LF or CR, may sit in a quoted cell, "Full\nName" as a spreadsheet exports it).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


#: A record whose quoting breaks RFC 4180 (text after a closing quote, a quote in a bare field).
_MALFORMED = _Malformed.MALFORMED


class CsvParser:
    """CSV/TSV records, RFC 4180 quoting, one column taken.

    A quoted field may hold line breaks; its record then spans several physical lines, is counted
    at its first line, and the lines after it are skipped as ``continuation``; a malformed record
    (``bad_csv``) too, once a lenient reader would have no field left open. A quote still open
    when the record passes ``limit`` bytes or the end of the input stops the read
    (:class:`InputError` at the record's first line): where its field ends cannot be known, and
    reading the lines after it as records could resign an ID that was only a field's text.
    """

    def __init__(self, spec: InputSpec, fmt: Format, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.delimiter = spec.delimiter or ("\t" if fmt is Format.TSV else ",")
        self.column = spec.column
        self.id_type = spec.id_type
        self.index: int | None = None if spec.header else int(spec.column or 1) - 1
        self.width: int | None = None
        """Fields of the header, or of the first record without one."""
        self.note = "" if self.index is None else f"column {self.index + 1}"
        self.valid = normalizer(spec.id_type, case_sensitive_email=spec.case_sensitive_email)

    def _split(self, text: str) -> list[str] | _Malformed | None:
        """The fields of one record; ``None`` while a quoted field is still open, and
        :data:`_MALFORMED` when the quoting breaks RFC 4180."""
        if '"' not in text:
            return text.split(self.delimiter)
        try:
            rows = list(csv.reader([text], delimiter=self.delimiter, strict=True))
        except csv.Error as exc:
            return None if "unexpected end of data" in str(exc) else _MALFORMED
        return rows[0] if rows else [""]

    def items(self, pieces: Iterator[Piece]) -> Iterator[Item]:
        """One item per physical line, in order."""
        lines = physical_lines(pieces)
        for line, content in lines:
            checked = precheck(line, content, self.limit)
            if isinstance(checked, Item):
                if self.index is None and checked.reason not in (None, SkipReason.BLANK):
                    raise InputError(
                        f"unreadable header ({checked.reason})", path=self.name, line=line
                    )
                if self._may_open(content):  # the next lines may be a field's text
                    raise self._ambiguous(
                        line,
                        f"unreadable ({checked.reason}), and a quoted field may open here",
                        limit=checked.reason is RejectReason.TOO_LONG,
                    )
                yield checked
                continue
            assert isinstance(content, bytes)
            text, group = checked, [content]
            fields = self._split(text)
            size = len(content)
            # A record goes on while a quote is open: the csv module says so, or it found the
            # record malformed and a lenient reader would still be in a field. Its lines are
            # never read again as records of their own: they may be the text of a field, and an
            # ID in a comment must not be resigned.
            while fields is None or (fields is _MALFORMED and self._lenient(text)[0]):
                nxt = next(lines, None)
                if nxt is None:
                    raise self._unclosed(line, "before the end of the input")
                more = nxt[1]
                size += 1 + (len(more) if isinstance(more, bytes) else self.limit)
                if not isinstance(more, bytes) or size > self.limit:
                    raise self._unclosed(line, f"within {self.limit:,} bytes", limit=True)
                if b"\0" in more:
                    raise self._unclosed(line, f"before line {nxt[0]}, which holds a NUL byte")
                try:
                    text += "\n" + more.decode("utf-8")
                except UnicodeDecodeError:
                    raise self._unclosed(
                        line, f"before line {nxt[0]}, which is not UTF-8"
                    ) from None
                group.append(more)
                fields = self._split(text)
            if fields is _MALFORMED:
                if self.index is None:
                    raise self._unreadable_header(line, text, "unbalanced quotes")
                yield Item(line, None, RejectReason.BAD_CSV, content)
            else:
                yield self._record(line, fields, text)
            for later, more in enumerate(group[1:], start=line + 1):
                yield Item(later, None, SkipReason.CONTINUATION, more)

    def _unclosed(self, line: int, where: str, *, limit: bool = False) -> InputError:
        """A quote opened at ``line`` that does not close ``where`` a record can end."""
        what = "the header" if self.index is None else "a quoted field"
        return self._ambiguous(line, f"{what} opened here does not close {where}", limit=limit)

    def _ambiguous(self, line: int, said: str, *, limit: bool) -> InputError:
        """Where a field ends cannot be known from ``line`` on: the read stops there."""
        return InputError(
            f"{said}; the lines after it cannot be told apart from the field's text, so none "
            "is read as a record: fix the quoting"
            + (" (or raise --max-line-bytes for a longer field)" if limit else ""),
            path=self.name,
            line=line,
        )

    def _unreadable_header(self, line: int, text: str, why: str) -> InputError:
        """The header cannot name columns; a CR outside quotes says why: a file whose lines end
        in a bare CR (old Mac exports) reads as one long line."""
        if self._lenient(text)[1]:
            why = "a CR outside quotes: lines ending in a bare CR?"
        return InputError(f"unreadable header ({why})", path=self.name, line=line)

    def _may_open(self, content: bytes | LongLine) -> bool:
        """Whether a line that cannot be read may leave a quoted field open: as a lenient
        reader (Excel, the csv module unstrict) would take it; any quote in an over-long line."""
        if isinstance(content, LongLine):
            return content.quotes
        return b'"' in content and self._lenient(content.decode("utf-8", "replace"))[0]

    def _lenient(self, text: str) -> tuple[bool, bool]:
        """How a lenient CSV reader takes ``text``: whether it is inside a quoted field at the
        end, and whether it met a CR outside one.

        A field that starts with a quote is quoted; in it a doubled quote is a quote, and a
        quote followed by anything but the delimiter ends the quoted part (what follows is
        taken as text, and its quotes as literal ones, as a quote in an unquoted field is):
        https://docs.python.org/3/library/csv.html#csv.Dialect.strict, off. A bare CR ends a
        record, as it does for such a reader.
        """
        ends = (self.delimiter, "\n", "\r")
        quoted = closing = bare_cr = False
        at_start = True
        for ch in text:
            if quoted:
                if closing:
                    closing = False
                    if ch == '"':
                        continue  # a doubled quote
                    quoted = False
                    at_start = ch in ends
                    bare_cr = bare_cr or ch == "\r"
                elif ch == '"':
                    closing = True
                continue
            if at_start and ch == '"':
                quoted, at_start = True, False
            else:
                at_start = ch in ends
                bare_cr = bare_cr or ch == "\r"
        return quoted and not closing, bare_cr

    def _record(self, line: int, fields: list[str], text: str) -> Item:
        if self.index is None:
            names = [f.strip(" \t") for f in fields]
            if self._lenient(text)[1] or any(_CONTROL.search(n) for n in names):
                raise self._unreadable_header(line, text, "control characters")
            self.index = self._resolve(line, names)
            self._refuse_id_as_header(line, names[self.index])
            self.width = self._width(names)
            return Item(line, None, SkipReason.HEADER, text)
        if self.width is None:
            self.width = self._width(fields)
        if self.index >= len(fields):
            return Item(line, None, RejectReason.MISSING_COLUMN, text)
        if len(fields) > self.width and any(f.strip(" \t") for f in fields[self.width :]):
            return Item(line, None, RejectReason.EXTRA_FIELDS, text)
        value = fields[self.index]
        return Item(line, value, None, value)

    def _width(self, fields: list[str]) -> int:
        """The fields a record may fill: the header's, or the first record's without one, less
        the empty ones at its end (an Excel export's `name,username,,`), where a shifted row's
        stray value would hide; never fewer than reach the ID column."""
        assert self.index is not None
        width = len(fields)
        while width > self.index + 1 and not fields[width - 1].strip(" \t"):
            width -= 1
        return width

    def _refuse_id_as_header(self, line: int, name: str) -> None:
        """A header whose ID column is named by a valid ID of a shaped type (a user_id, email,
        phone, identity or sync relation: no column is named so) is a file without a header:
        its first ID would be skipped unseen. A column given by name proves a header. For a
        loose type (a username, an external ID) any name is a valid ID: only the names known
        for its column pass unnamed."""
        if isinstance(self.column, str):
            return
        if self.id_type not in _SHAPED:
            if squash(name) not in ID_NAMES[self.id_type]:
                raise InputError(
                    f"the header's ID column is {name!r}, which could be a {self.id_type}: if "
                    "the file has no header line, pass --no-header; if it does, name the "
                    f"column with --column {name!r}",
                    path=self.name,
                    line=line,
                )
            return
        if squash(name) not in ID_NAMES[self.id_type] and not isinstance(
            self.valid(name), RejectReason
        ):
            raise InputError(
                f"the header's ID column is {name!r}, a valid {self.id_type}: if the file has "
                "no header line, pass --no-header; if it does, name the column with --column",
                path=self.name,
                line=line,
            )

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
