"""What to read and how: the input file, its format, the ID type and the batch size.

An :class:`InputSpec` fully determines the batches an input yields, so a resumed run that is given
the same spec and the same bytes re-creates exactly the same batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from bulkresign.errors import ConfigError
from bulkresign.models import MAX_BATCH, IdType

#: The longest line ``--max-line-bytes`` may allow: a line is held whole in memory, and no ID
#: (nor a CSV or JSONL record holding one) comes near 16 MiB.
MAX_LINE_LIMIT = 16 << 20

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_RECORD_BYTES",
    "MAX_LINE_LIMIT",
    "Format",
    "InputSpec",
]

#: Longest plain line (bytes, without its line ending). An ID is at most a few hundred bytes.
DEFAULT_MAX_LINE_BYTES = 1024
#: Longest CSV/TSV/JSONL record: a row holds the other columns of an HR export too.
DEFAULT_MAX_RECORD_BYTES = 64 * 1024


class Format(StrEnum):
    """How lines of the input carry IDs."""

    AUTO = "auto"
    LINES = "lines"
    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class InputSpec:
    """The input and every option that changes which IDs it yields.

    Args:
        path: the file to read (a ``str``; a ``Path`` is taken as its string), or ``"-"`` for
            standard input; gzip is detected by magic bytes.
        id_type: which field of the user the IDs name; chooses the validation rules.
        format: ``auto`` picks by extension, then by content.
        column: CSV/TSV column, by header name or by 1-based index (``int``).
        delimiter: CSV/TSV field separator (default ``,`` for CSV, tab for TSV).
        header: whether the first CSV/TSV record names the columns.
        field: JSONL object key holding the ID.
        case_sensitive_email: keep the case of emails instead of lowercasing them.
        batch_size: IDs per batch, 1..50.
        max_line_bytes: longest accepted line (record, for CSV/TSV/JSONL); ``None`` for the
            format's default (1 KiB for plain lines, 64 KiB for records).
    """

    path: str
    id_type: IdType = IdType.USER_ID
    format: Format = Format.AUTO
    column: str | int | None = None
    delimiter: str | None = None
    header: bool = True
    field: str | None = None
    case_sensitive_email: bool = False
    batch_size: int = MAX_BATCH
    max_line_bytes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", os.fspath(self.path))  # a Path from a library caller
        try:  # callers may pass the plain strings the CLI and the ledger use
            object.__setattr__(self, "id_type", IdType(self.id_type))
            object.__setattr__(self, "format", Format(self.format))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"--batch-size must be 1..{MAX_BATCH}, not {self.batch_size}")
        if self.max_line_bytes is not None and not 1 <= self.max_line_bytes <= MAX_LINE_LIMIT:
            raise ConfigError(
                f"--max-line-bytes must be from 1 to {MAX_LINE_LIMIT:,}, not {self.max_line_bytes}"
            )
        if self.delimiter is not None and not _usable_delimiter(self.delimiter):
            raise ConfigError(
                f"--delimiter must be one printable character or a tab, not {self.delimiter!r}"
            )
        if isinstance(self.column, int) and self.column < 1:
            raise ConfigError(f"--column index counts from 1, not {self.column}")
        if isinstance(self.column, str) and not self.header:
            raise ConfigError(
                f"--column {self.column!r} names a column, but --no-header says there are no names;"
                " give its 1-based index instead"
            )

    def line_limit(self, fmt: Format) -> int:
        """The byte limit for one line (plain) or one record (CSV/TSV/JSONL)."""
        if self.max_line_bytes is not None:
            return self.max_line_bytes
        return DEFAULT_MAX_LINE_BYTES if fmt is Format.LINES else DEFAULT_MAX_RECORD_BYTES


def _usable_delimiter(value: str) -> bool:
    """One character that cannot be confused with a line ending or a quote."""
    if len(value) != 1 or value in '\r\n"':
        return False
    return value == "\t" or value.isprintable()
