"""Formats: which line holds which field — plain lines, CSV/TSV, JSONL — and ``--format auto``.

Each parser turns the reader's pieces into one :class:`Item` per physical line, in order: the field
the line carries, or why it carries none (a skip or a rejection). Checks shared by every format
come first, in this order: blank (spaces and tabs only), [plain lines: ``#`` comment], longer than
the limit, NUL byte, invalid UTF-8. Structural faults that make the whole input unusable (a CSV
without the named column, a JSON field that is not a string) raise :class:`InputError`.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

import orjson

from bulkresign.errors import ConfigError, InputError
from bulkresign.inputspec import Format, InputSpec
from bulkresign.models import IdType
from bulkresign.source import LongLine, Piece
from bulkresign.validate import RejectReason, SkipReason, preview_text

__all__ = ["CsvParser", "Item", "JsonlParser", "classify_plain", "pick_format", "plain_items"]


class Item(NamedTuple):
    """One physical line: the field it holds (``text``), or the reason it holds none."""

    line: int
    text: str | None
    reason: RejectReason | SkipReason | None
    raw: bytes | str
    """What a preview of the line shows: its bytes, or the field's text."""


#: Header names (lowercased, letters and digits only) taken for the ID column when none is named.
_ID_NAMES: dict[IdType, tuple[str, ...]] = {
    IdType.USER_ID: ("userid",),
    IdType.EMAIL: ("email", "emailaddress", "mail"),
    IdType.PHONE: ("phone", "phonenumber", "mobile"),
    IdType.USERNAME: ("username",),
    IdType.EXTERNAL_ID: ("externalid",),
    IdType.IDENTITY: ("identity",),
    IdType.SYNC_RELATION: ("syncrelation",),
}
_EXTENSIONS = {
    ".csv": Format.CSV,
    ".tsv": Format.TSV,
    ".tab": Format.TSV,
    ".jsonl": Format.JSONL,
    ".ndjson": Format.JSONL,
    ".json": Format.JSONL,
}


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def pick_format(spec: InputSpec, name: str, sample: bytes) -> tuple[Format, str]:
    """The format to read ``name`` as, and how it was chosen (shown to the operator)."""
    fmt, note = spec.format, "as asked"
    if fmt is Format.AUTO:
        fmt, note = _auto(spec, name, sample)
    if spec.field is not None and fmt is not Format.JSONL:
        raise ConfigError(f"--field applies to JSONL input, but {name} reads as {fmt}")
    if spec.column is not None and fmt not in (Format.CSV, Format.TSV):
        raise ConfigError(f"--column applies to CSV/TSV input, but {name} reads as {fmt}")
    return fmt, note


def _auto(spec: InputSpec, name: str, sample: bytes) -> tuple[Format, str]:
    base = name.lower().removesuffix(".gz")
    ext = os.path.splitext(base)[1]
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext], f"from the {ext} extension"
    if spec.field is not None:
        return Format.JSONL, "because --field was given"
    first = next(
        (s for s in (ln.strip(b" \t\r") for ln in sample.split(b"\n")) if s and s[:1] != b"#"),
        b"",
    )
    if spec.column is not None or spec.delimiter is not None:
        fmt = Format.TSV if spec.delimiter is None and b"\t" in first else Format.CSV
        return fmt, "because --column/--delimiter was given"
    if first.startswith(b"{"):
        return Format.JSONL, "from the content: the first line is a JSON object"
    if b"\t" in first:
        return Format.TSV, "from the content: the first line has tabs"
    if b"," in first:
        return Format.CSV, "from the content: the first line has commas"
    return Format.LINES, "from the content: one value per line"


def _physical(pieces: Iterator[Piece]) -> Iterator[tuple[int, bytes | LongLine]]:
    """Each line's bytes without ``\\n`` and one trailing ``\\r``, or its :class:`LongLine`."""
    for piece in pieces:
        if isinstance(piece, LongLine):
            yield piece.line, piece
            continue
        line = piece.first_line
        for content in piece.data.split(b"\n")[:-1]:
            yield line, content[:-1] if content.endswith(b"\r") else content
            line += 1


def _precheck(line: int, content: bytes | LongLine, limit: int) -> Item | str:
    """The checks every format shares; the decoded text when the line passes them."""
    if isinstance(content, LongLine):
        if content.blank:
            return Item(line, None, SkipReason.BLANK, content.head)
        return Item(line, None, RejectReason.TOO_LONG, content.head)
    if not content.strip(b" \t"):
        return Item(line, None, SkipReason.BLANK, content)
    if len(content) > limit:
        return Item(line, None, RejectReason.TOO_LONG, content)
    if b"\0" in content:
        return Item(line, None, RejectReason.NUL, content)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return Item(line, None, RejectReason.INVALID_UTF8, content)


def classify_plain(line: int, content: bytes, limit: int) -> Item:
    """One plain line (without its line ending): a field, a skip or a rejection."""
    stripped = content.lstrip(b" \t")
    if stripped[:1] == b"#":
        return Item(line, None, SkipReason.COMMENT, content)
    checked = _precheck(line, content, limit)
    if isinstance(checked, Item):
        return checked
    return Item(line, checked, None, checked)


def plain_items(pieces: Iterator[Piece], limit: int) -> Iterator[Item]:
    """Plain lines: one value per line; blank and ``#`` comment lines are skipped."""
    for line, content in _physical(pieces):
        if isinstance(content, LongLine):
            if content.comment and not content.blank:
                yield Item(line, None, SkipReason.COMMENT, content.head)
            else:
                checked = _precheck(line, content, limit)
                assert isinstance(checked, Item)
                yield checked
        else:
            yield classify_plain(line, content, limit)


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
        lines = _physical(pieces)
        pushed: deque[tuple[int, bytes | LongLine]] = deque()
        while True:
            entry = pushed.popleft() if pushed else next(lines, None)
            if entry is None:
                return
            line, content = entry
            checked = _precheck(line, content, self.limit)
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
            wanted = _ID_NAMES[self.id_type]
            found = [i for i, n in enumerate(names) if _squash(n) in wanted]
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


class JsonlParser:
    """JSON Lines: one object per line, the ID in one string field."""

    def __init__(self, spec: InputSpec, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.field = spec.field
        self.id_type = spec.id_type
        self.note = f"field {self.field!r}" if self.field else ""

    def items(self, pieces: Iterator[Piece]) -> Iterator[Item]:
        """One item per physical line, in order."""
        for line, content in _physical(pieces):
            checked = _precheck(line, content, self.limit)
            if isinstance(checked, Item):
                yield checked
                continue
            try:
                obj = orjson.loads(checked)
            except orjson.JSONDecodeError:
                yield Item(line, None, RejectReason.BAD_JSON, checked)
                continue
            if not isinstance(obj, dict):
                yield Item(line, None, RejectReason.BAD_JSON, checked)
                continue
            field = self.field if self.field is not None else self._resolve(line, obj)
            value = obj.get(field)
            if value is None:
                yield Item(line, None, RejectReason.MISSING_FIELD, checked)
            elif isinstance(value, str):
                yield Item(line, value, None, value)
            else:
                raise InputError(
                    f"field {field!r} holds {_json_kind(value)} "
                    f"({preview_text(orjson.dumps(value).decode())}), not a string",
                    path=self.name,
                    line=line,
                )

    def _resolve(self, line: int, obj: dict[str, object]) -> str:
        squashed = {_squash(k): k for k in obj}
        for name in _ID_NAMES[self.id_type]:
            if name in squashed:
                self.field = squashed[name]
                self.note = f"field {self.field!r}"
                return self.field
        keys = ", ".join(repr(k) for k in list(obj)[:20])
        raise InputError(
            f"name the ID field with --field; the first object has keys: {keys}",
            path=self.name,
            line=line,
        )


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object"
