"""The per-line report: one row for every input line, re-derived from the input and the ledger.

The ledger stores batches, not lines, so the report reads the input again through the front half
(:meth:`bulkresign.batching.Ingest.rows`) with the options the manifest recorded, refusing an input
whose SHA-256 is not the run's, and joins each line with the ledger (:mod:`bulkresign.join`).
Rows stream to CSV or JSONL; a 10M-line report never sits in memory.
"""

from __future__ import annotations

import csv
import functools
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import orjson

from bulkresign.batching import Ingest
from bulkresign.digest import hash_file
from bulkresign.errors import ConfigError, InputError, LedgerError, LedgerMismatch
from bulkresign.files import refuse_replacing, replacing, run_files
from bulkresign.inputspec import InputSpec
from bulkresign.join import ReportRow, join_lines
from bulkresign.ledger import Ledger
from bulkresign.models import LineOutcome

__all__ = [
    "FIELDS",
    "REPORT_HEADS",
    "ReportFormat",
    "ReportRow",
    "ReportSummary",
    "report_rows",
    "spec_from_manifest",
    "write_report",
    "write_rows",
]

#: The report's columns, in order (CSV header, JSONL keys).
FIELDS = (
    "line",
    "id",
    "normalized",
    "outcome",
    "reason",
    "api_code",
    "batch",
    "request_id",
    "time",
)

#: A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ReportFormat(StrEnum):
    """How the report is written."""

    CSV = "csv"
    JSONL = "jsonl"

    @classmethod
    def for_path(cls, path: Path) -> ReportFormat:
        """JSONL for a ``.jsonl``/``.ndjson`` name, CSV otherwise."""
        return cls.JSONL if path.suffix.lower() in (".jsonl", ".ndjson") else cls.CSV


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What :func:`write_report` wrote: every line's outcome counted, and the rows written."""

    lines: int
    written: int
    outcomes: Mapping[LineOutcome, int]
    input_error: str | None = None
    """Why the rows end early: the input cannot be read past a line (the run stopped there too)."""


def _none_or(parse: Callable[[str], object]) -> Callable[[str], object]:
    return lambda text: None if text == "None" else parse(text)


def _flag(text: str) -> bool:
    if text not in ("True", "False"):
        raise ValueError(text)
    return text == "True"


def _column(text: str) -> str | int:
    # The CLI turns an all-digit --column into a 1-based index before the manifest records it.
    return int(text) if text.isdigit() else text


#: How each ``input_options`` value (``str()`` of the InputSpec field) is read back.
_OPTION_PARSERS: dict[str, Callable[[str], object]] = {
    "id_type": str,
    "format": str,
    "column": _none_or(_column),
    "delimiter": _none_or(str),
    "header": _flag,
    "field": _none_or(str),
    "case_sensitive_email": _flag,
    "batch_size": int,
    "max_line_bytes": _none_or(int),
}


def spec_from_manifest(meta: Mapping[str, str], *, path: str | None = None) -> InputSpec:
    """The :class:`InputSpec` a run read its input with (the inverse of ``binding.input_options``).

    ``path`` replaces the manifest's ``input_path``. Raises ``LedgerError`` when the manifest's
    ``input_options`` cannot be read back.
    """
    try:
        options = orjson.loads(meta["input_options"])
    except (KeyError, orjson.JSONDecodeError):
        options = None
    if not isinstance(options, dict):
        raise LedgerError("the state file's manifest has no readable input_options")
    options.pop("exclude_sha256", None)  # binds the run to its --exclude; not a read option
    unknown = sorted(set(options) - set(_OPTION_PARSERS))
    if unknown:
        raise LedgerError(
            f"the state file records input options this bulkresign does not know: "
            f"{', '.join(unknown)}; use the bulkresign version that made it"
        )
    fields: dict[str, Any] = {}
    for name, text in options.items():
        try:
            fields[name] = _OPTION_PARSERS[name](str(text))
        except ValueError:
            raise LedgerError(f"the state file records input option {name}={text!r}") from None
    return InputSpec(path=path if path is not None else meta.get("input_path", "-"), **fields)


def report_rows(
    ledger: Ledger, *, input_path: str | None = None, exclude: Collection[str] = ()
) -> Iterator[ReportRow]:
    """One row per line of the run's input, in input order.

    The input is the manifest's ``input_path`` unless ``input_path`` names another copy; its
    SHA-256 must match the one the run recorded. ``exclude`` must be the run's ``--exclude``
    set. Everything that can be checked before the first row is checked here, eagerly;
    ``LedgerMismatch`` is raised later only if the input turns out not to match the ledger.
    """
    meta = ledger.meta()
    ingest_meta = _ingest_meta(meta)
    if not exclude and "exclude" in meta:
        exclude = orjson.loads(meta["exclude"])  # the run's protected IDs, normalized
    path = input_path if input_path is not None else meta.get("input_path", "-")
    if path == "-":
        said = "--input - cannot be read twice" if input_path == "-" else "the run read stdin"
        raise ConfigError(f"{ledger.path}: {said}; give --input FILE with the same bytes")
    if input_path is None and not meta.get("input_sha256") and not Path(path).is_file():
        # A pipe the run was given by name (`run <(…)`, a FIFO): read once, gone since.
        raise ConfigError(
            f"{ledger.path}: the run read {path}, a pipe, once; give --input FILE with the same "
            "bytes"
        )
    spec = spec_from_manifest(meta, path=path)
    ingest = Ingest(spec, exclude=exclude)  # checks that the input is there and readable
    expected = meta.get("input_sha256") or str(ingest_meta.get("input_sha256") or "")
    if expected:
        actual = hash_file(Path(path))
        if actual != expected:
            raise LedgerMismatch(
                f"{path}: SHA-256 {actual[:16]}…, but the run read an input with "
                f"{expected[:16]}…; the input changed since the run"
            )
    excluded = ingest_meta.get("excluded")
    if isinstance(excluded, int) and excluded and not exclude:
        raise ConfigError(
            f"{ledger.path}: the run excluded {excluded:,} IDs; give the same --exclude FILE"
        )
    # Without duplicates (known once the run read its whole input) no line needs a first line.
    rows = join_lines(ledger, ingest.rows(), spec, duplicates=ingest_meta.get("duplicates") != 0)
    return _digest_checked(rows, ingest, expected)


def _ingest_meta(meta: Mapping[str, str]) -> dict[str, object]:
    text = meta.get("ingest")
    return dict(orjson.loads(text)) if text else {}


def _digest_checked(
    rows: Iterator[ReportRow], ingest: Ingest, expected: str
) -> Iterator[ReportRow]:
    yield from rows
    if expected and ingest.input_digest() != expected:
        raise LedgerMismatch(f"{ingest.spec.path}: the input changed while it was read")


def write_rows(rows: Iterable[ReportRow], out: IO[str], fmt: ReportFormat) -> int:
    """Write ``rows`` to ``out`` (CSV with a header row, or JSONL); returns how many."""
    count = 0
    if fmt is ReportFormat.CSV:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        for r in rows:
            writer.writerow(
                (
                    r.line,
                    _cell(r.id),
                    r.normalized or "",  # exact: the column a re-run reads (docs/report.md)
                    r.outcome.value,
                    _cell(r.reason),
                    "" if r.api_code is None else r.api_code,
                    "" if r.batch is None else r.batch,
                    _cell(r.request_id or ""),
                    _iso(r.time) or "",
                )
            )
            count += 1
        return count
    for r in rows:
        values = (
            r.line,
            r.id,
            r.normalized,
            r.outcome.value,
            r.reason or None,
            r.api_code,
            r.batch,
        )
        record = dict(zip(FIELDS, (*values, r.request_id, _iso(r.time)), strict=True))
        out.write(orjson.dumps(record).decode() + "\n")
        count += 1
    return count


def _cell(value: str) -> str:
    """Defuse a value a spreadsheet would run as a formula by quoting it with a leading '."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


@functools.lru_cache(maxsize=256)  # rows of one batch share their time: format it once
def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


#: How a report of ours begins (CSV, JSONL): the only content a report may be written over.
REPORT_HEADS = (",".join(FIELDS).encode(), b'{"line":')


def write_report(
    state: Path,
    output: Path | None = None,
    *,
    fmt: ReportFormat | None = None,
    outcomes: Collection[LineOutcome] | None = None,
    input_path: str | None = None,
    exclude: Collection[str] = (),
) -> ReportSummary:
    """Write the report of the run in ``state`` to ``output`` (a new 0600 file) or stdout.

    ``outcomes`` keeps only rows with those outcomes; ``fmt`` defaults to the output's extension.
    A file appears only once complete: it is written beside ``output`` and renamed over it.
    """
    ledger = Ledger.open(state)
    try:
        rows = report_rows(ledger, input_path=input_path, exclude=exclude)
        seen: Counter[LineOutcome] = Counter()
        wanted = None if outcomes is None else frozenset(outcomes)

        stopped: list[InputError] = []

        def kept() -> Iterator[ReportRow]:
            try:
                for row in rows:
                    seen[row.outcome] += 1
                    if wanted is None or row.outcome in wanted:
                        yield row
            except InputError as exc:  # every line before it has its row
                stopped.append(exc)

        if output is None:
            written = write_rows(kept(), sys.stdout, fmt or ReportFormat.CSV)
        else:
            read = input_path if input_path is not None else ledger.meta().get("input_path", "-")
            needed = {**run_files(state), "input": Path(read)}
            refuse_replacing(output, needed, REPORT_HEADS)
            with replacing(output) as out:
                written = write_rows(kept(), out, fmt or ReportFormat.for_path(output))
        error = str(stopped[0]) if stopped else None
        return ReportSummary(sum(seen.values()), written, dict(seen), error)
    finally:
        ledger.close()
