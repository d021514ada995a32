"""The input options ``plan`` and ``run`` share: which file, which format, which ID type."""

from __future__ import annotations

import argparse
import contextlib
import stat
from pathlib import Path

from bulkresign.batching import Ingest
from bulkresign.errors import ConfigError
from bulkresign.inputspec import Format, InputSpec
from bulkresign.models import MAX_BATCH, Endpoint, IdType
from bulkresign.tally import LineKind
from bulkresign.validate import RejectReason, SkipReason, normalizer

__all__ = [
    "RANGES",
    "add_connection_options",
    "add_input_options",
    "check_endpoint",
    "check_outputs",
    "check_ranges",
    "input_spec_from_args",
    "load_exclude",
]


def add_input_options(p: argparse.ArgumentParser) -> None:
    """Add INPUT and the format and validation options."""
    p.add_argument("input", metavar="INPUT", help="file of IDs (plain, CSV/TSV, JSONL, .gz), or -")
    p.add_argument(
        "--id-type",
        choices=[t.value for t in IdType],
        default=IdType.USER_ID.value,
        help="what the IDs name (default user_id)",
    )
    g = p.add_argument_group("input format")
    g.add_argument(
        "--format",
        choices=[f.value for f in Format],
        default=Format.AUTO.value,
        help="auto (default) picks by extension and content, and says what it picked",
    )
    g.add_argument(
        "--column", help="CSV/TSV column holding the ID: a header name or a 1-based index"
    )
    g.add_argument(
        "--delimiter", help="CSV/TSV field separator (default , or tab; `tab` or \\t for a tab)"
    )
    g.add_argument("--no-header", action="store_true", help="the CSV/TSV has no header row")
    g.add_argument("--field", help="JSONL key holding the ID")
    g.add_argument(
        "--case-sensitive-email",
        action="store_true",
        help="keep the case of emails (default: lowercase them, as GenAuth matches)",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        default=MAX_BATCH,
        help=f"IDs per call, 1..{MAX_BATCH} (default {MAX_BATCH})",
    )
    g.add_argument(
        "--max-line-bytes",
        type=int,
        help="longest accepted line (default 1 KiB; 64 KiB per CSV/JSONL record)",
    )


def input_spec_from_args(args: argparse.Namespace) -> InputSpec:
    """The :class:`InputSpec` the options describe (``ConfigError`` when they contradict)."""
    column: str | int | None = args.column
    if isinstance(column, str) and column.isdigit():
        column = int(column)
    return InputSpec(
        path=args.input,
        id_type=IdType(args.id_type),
        format=Format(args.format),
        column=column,
        delimiter="\t" if args.delimiter in ("\\t", "tab") else args.delimiter,
        header=not args.no_header,
        field=args.field,
        case_sensitive_email=args.case_sensitive_email,
        batch_size=args.batch_size,
        max_line_bytes=args.max_line_bytes,
    )


def add_connection_options(p: argparse.ArgumentParser) -> None:
    """Options every command that talks to GenAuth shares."""
    p.add_argument("--host", help="API host (default: $GENAUTH_HOST or https://api.genauth.ai)")
    p.add_argument(
        "--credentials-file",
        type=Path,
        help="file with accessKeyId/accessKeySecret (default: the environment)",
    )
    p.add_argument(
        "--ca-file",
        type=Path,
        help="CA bundle to trust instead of the system roots (private deployments)",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for a response (default 30)"
    )


def load_exclude(path: Path, spec: InputSpec) -> frozenset[str]:
    """Protected IDs: one per line, the run's ID type; any bad line refuses the whole list.

    Protecting one account too many costs nothing; one too few is resigned. So a ``#`` line
    that is a valid ID (a username ``#kim``) is protected as well as skipped as a comment, and
    a value with a `` #`` inside (``kim  # the CEO``) protects what stands before it too.
    """
    exclude = InputSpec(
        str(path),
        spec.id_type,
        Format.LINES,
        header=False,
        case_sensitive_email=spec.case_sensitive_email,
    )
    valid = normalizer(spec.id_type, case_sensitive_email=spec.case_sensitive_email)
    values: set[str] = set()
    listed = False
    for row in Ingest(exclude).rows():
        if row.kind is LineKind.REJECTED:
            raise ConfigError(f"{path}:{row.line}: not a valid {spec.id_type} ({row.reason})")
        listed = listed or row.id is not None
        texts = [row.id] if row.id is not None else []
        if row.reason is SkipReason.COMMENT:
            texts.append(row.raw.strip())
        if row.id is not None and " #" in row.id:
            texts.append(row.id.split(" #", 1)[0].strip())
        values.update(v for v in map(valid, texts) if not isinstance(v, RejectReason))
    if not listed:  # a comment that is also a valid ID (`# only`) does not make it a list
        raise ConfigError(f"{path}: holds no {spec.id_type} to protect (only comments or blanks)")
    return frozenset(values)


def check_endpoint(endpoint: Endpoint, id_type: IdType) -> None:
    """Refuse an ID type the endpoint's read-back cannot look up: an in-doubt call could then
    be neither confirmed nor safely resent, so exactly once could not be kept."""
    if id_type not in endpoint.read_id_types:
        raise ConfigError(
            f"--id-type {id_type} cannot be read back through {endpoint.read_path}, which "
            f"the API documents for {', '.join(sorted(endpoint.read_id_types))} only; an "
            "unanswered call could be neither checked nor safely resent: use --endpoint user, "
            "or another --id-type"
        )


def check_outputs(
    spec: InputSpec, outputs: dict[str, Path | None], inputs: dict[str, Path | None] | None = None
) -> None:
    """Refuse an output that is an input or another output: one would overwrite the other; and
    one that is a pipe, a device or a socket (opening a FIFO waits for a writer: the run hung,
    deaf to SIGTERM).

    Files are compared by device and inode when they exist (a hard link or a symlink is the
    same file), by resolved path when they do not yet.
    """
    named = {"the input": None if spec.path == "-" else Path(spec.path), **(inputs or {})}
    taken = {_identity(path): what for what, path in named.items() if path is not None}
    for option, path in outputs.items():
        if path is None:
            continue
        with contextlib.suppress(OSError):
            mode = path.stat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a folder has its own message
                raise ConfigError(f"{path}: {option} is not a regular file; name a file")
        key = _identity(path)
        if key in taken:
            raise ConfigError(f"{path}: {option} names {taken[key]} too; choose another file")
        taken[key] = option


def _identity(path: Path) -> tuple[int, int] | Path:
    try:
        st = path.stat()
    except OSError:
        return path.resolve()
    return (st.st_dev, st.st_ino)


#: The numeric options' bounds, by their argparse name: the least and most a run can work with
#: (a rate of 1e-300 a second overflowed the limiter; 100,000 workers took 23 s of CPU before
#: the first call), refused up front.
RANGES: dict[str, tuple[float, float]] = {
    "rate": (0.01, 100_000),
    "concurrency": (1, 1024),
    "timeout": (0.1, 3600),
    "grace": (0, 3600),
    "reconcile_delay": (0, 3600),
    "max_users": (0, 10**12),
}


def check_ranges(args: argparse.Namespace, ranges: dict[str, tuple[float, float]]) -> None:
    """Refuse a numeric option outside its bounds (NaN included)."""
    for name, (low, high) in ranges.items():
        value = getattr(args, name)
        if value is not None and not low <= value <= high:  # NaN fails both
            raise ConfigError(
                f"--{name.replace('_', '-')} must be from {low:g} to {high:g}, not {value:g}"
            )
