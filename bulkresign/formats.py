"""Formats: which line holds which field — plain lines, CSV/TSV, JSONL — and ``--format auto``.

Each parser (CSV/TSV in :mod:`bulkresign.csvrecords`) turns the reader's pieces into one
:class:`Item` per physical line, in order: the field
the line carries, or why it carries none (a skip or a rejection). Checks shared by every format
come first, in this order: blank (spaces and tabs only), [plain lines: ``#`` comment], longer than
the limit, NUL byte, invalid UTF-8. Structural faults that make the whole input unusable (a CSV
without the named column, a JSON field that is not a string) raise :class:`InputError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import NamedTuple

import orjson

from bulkresign.errors import ConfigError, InputError
from bulkresign.inputspec import Format, InputSpec
from bulkresign.lines import LongLine, Piece
from bulkresign.models import IdType
from bulkresign.validate import RejectReason, SkipReason, preview_text

__all__ = [
    "ID_NAMES",
    "Item",
    "JsonlParser",
    "classify_plain",
    "physical_lines",
    "pick_format",
    "plain_items",
    "precheck",
    "refuse_header_line",
    "squash",
]


class Item(NamedTuple):
    """One physical line: the field it holds (``text``), or the reason it holds none."""

    line: int
    text: str | None
    reason: RejectReason | SkipReason | None
    raw: bytes | str
    """What a preview of the line shows: its bytes, or the field's text."""


#: Header names (lowercased, letters and digits only) taken for the ID column when none is named.
ID_NAMES: dict[IdType, tuple[str, ...]] = {
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


def squash(name: str) -> str:
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


def physical_lines(pieces: Iterator[Piece]) -> Iterator[tuple[int, bytes | LongLine]]:
    """Each line's bytes without ``\\n`` and one trailing ``\\r``, or its :class:`LongLine`."""
    for piece in pieces:
        if isinstance(piece, LongLine):
            yield piece.line, piece
            continue
        line = piece.first_line
        for content in piece.data.split(b"\n")[:-1]:
            yield line, content[:-1] if content.endswith(b"\r") else content
            line += 1


def precheck(line: int, content: bytes | LongLine, limit: int) -> Item | str:
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
    checked = precheck(line, content, limit)
    if isinstance(checked, Item):
        return checked
    return Item(line, checked, None, checked)


def plain_items(pieces: Iterator[Piece], limit: int) -> Iterator[Item]:
    """Plain lines: one value per line; blank and ``#`` comment lines are skipped."""
    for line, content in physical_lines(pieces):
        if isinstance(content, LongLine):
            if content.comment and not content.blank:
                yield Item(line, None, SkipReason.COMMENT, content.head)
            else:
                checked = precheck(line, content, limit)
                assert isinstance(checked, Item)
                yield checked
        else:
            yield classify_plain(line, content, limit)


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
        for line, content in physical_lines(pieces):
            checked = precheck(line, content, self.limit)
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
            elif _named_twice(checked, field):
                yield Item(line, None, RejectReason.DUPLICATE_FIELD, checked)
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
        """The ID field: the one key named for the ID type, or the first object's only key (as
        a CSV header's only column is taken). Two keys named for it (``mobile`` and ``phone``,
        ``mail`` and ``Mail``) are refused, as two such CSV columns are: either could be meant."""
        found = [k for k in obj if squash(k) in ID_NAMES[self.id_type]]
        if len(found) == 1 or (not found and len(obj) == 1):
            self.field = found[0] if found else next(iter(obj))
            self.note = f"field {self.field!r}"
            return self.field
        keys = ", ".join(repr(k) for k in (found or list(obj))[:20])
        what = "keys that could hold the ID" if found else "keys"
        raise InputError(
            f"name the ID field with --field; the first object has {what}: {keys}",
            path=self.name,
            line=line,
        )


def _named_twice(text: str, field: str) -> bool:
    """Whether the object gives ``field`` two different values.

    JSON parsers keep the last one without a word ("the behavior of software that receives such
    an object is unpredictable", https://www.rfc-editor.org/rfc/rfc8259#section-4); which account
    the line meant is then a guess. The text test skips the slow parse for almost every line.
    """
    if text.count(field) < 2 and "\\u" not in text:
        return False
    pairs = json.loads(text, object_pairs_hook=list)
    values = [v for k, v in pairs if k == field]
    return any(v != values[0] for v in values[1:])


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object"


#: Types any word is a valid ID of: a header line in a plain file would be sent as one.
_LOOSE = frozenset({IdType.USERNAME, IdType.EXTERNAL_ID})


def refuse_header_line(spec: InputSpec, fmt: Format, name: str, sample: bytes) -> None:
    """Refuse a plain-lines input of usernames or external IDs whose first line is a column
    name (``username``): a header there is sent as an ID, and resigns the account so named.
    ``--no-header`` says the line is an ID."""
    if fmt is not Format.LINES or not spec.header or spec.id_type not in _LOOSE:
        return
    for number, raw in enumerate(sample.split(b"\n")[:100], start=1):
        line = raw.decode("utf-8", "replace").strip()
        if not line or line.startswith("#"):
            continue
        if squash(line) in _COLUMN_NAMES:
            raise InputError(
                f"{line!r} reads as a column name, and would be sent as an ID ({spec.id_type}): if "
                "it is a header, remove it or give --format csv; if it is an ID, pass "
                "--no-header",
                path=name,
                line=number,
            )
        return


#: What a header line of a plain file says: the names above, and the words spreadsheets use.
_COLUMN_NAMES = frozenset(n for names in ID_NAMES.values() for n in names) | {
    "id",
    "uid",
    "user",
    "users",
    "usernames",
    "login",
    "name",
    "account",
    "extid",
    "employeeid",
    "staffid",
}
