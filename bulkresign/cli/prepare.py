"""``bulkresign run``, before anything is created: the arguments made a :class:`JobConfig`, and
the checks an input or an option must pass before the state file exists.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
from pathlib import Path

from bulkresign.batching import Ingest
from bulkresign.cli.options import RANGES, check_endpoint, check_ranges, load_exclude
from bulkresign.cli.records import wrote_report
from bulkresign.config import Timeouts, load_credentials, resolve_host
from bulkresign.digest import file_stamp
from bulkresign.errors import ConfigError
from bulkresign.files import refuse_replacing, run_files
from bulkresign.held import HeldStream, open_once
from bulkresign.inputspec import InputSpec
from bulkresign.job import JobConfig
from bulkresign.models import Endpoint
from bulkresign.report import REPORT_HEADS
from bulkresign.retry import ErrorBudget
from bulkresign.source import check_readable

__all__ = ["check_head", "check_report_path", "job_config"]


def job_config(args: argparse.Namespace, spec: InputSpec) -> JobConfig:
    """Validate the arguments into a :class:`JobConfig`."""
    check_ranges(args, RANGES)
    if spec.path == "-" and args.state is None:
        raise ConfigError("reading stdin: give --state FILE so the run can be resumed")
    if spec.path != "-":
        spec = dataclasses.replace(spec, path=os.path.abspath(spec.path))
    state = args.state if args.state is not None else Path(f"{spec.path}.bulkresign")
    if args.plan_sha256 is not None and re.fullmatch(r"[0-9a-fA-F]{64}", args.plan_sha256) is None:
        raise ConfigError(f"--plan-sha256 {args.plan_sha256!r}: expected 64 hex digits")
    if args.canary < 0:
        raise ConfigError(f"--canary must be 0 or more, not {args.canary}")
    check_endpoint(Endpoint(args.endpoint), spec.id_type)
    return JobConfig(
        spec=spec,
        host=resolve_host(args.host, os.environ),
        credentials=load_credentials(os.environ, args.credentials_file),
        state=state,
        endpoint=Endpoint(args.endpoint),
        rate=args.rate,
        concurrency=args.concurrency,
        timeouts=Timeouts(read=args.timeout, total=args.timeout * 2),
        max_errors=ErrorBudget.parse(args.max_errors) if args.max_errors else None,
        reconcile_delay=args.reconcile_delay,
        grace=args.grace,
        ca_file=args.ca_file,
        exclude=load_exclude(args.exclude, spec) if args.exclude else frozenset(),
        canary=args.canary,
        input_stamp=file_stamp(spec.path),  # before the first read: see bulkresign.digest
        plan_sha256=args.plan_sha256,
    )


def check_report_path(path: Path | None, cfg: JobConfig) -> None:
    """Refuse, before any call, a --report the run could not write at its end: its folder, and
    a file there that is not a report of ours (the irreversible run must not end in a refusal);
    and one that is, but another run's (a resume replaces only the report its run wrote)."""
    if path is None:
        return
    if cfg.input_stamp is None:
        # The report reads the input again: a pipe cannot be, and the run would end refusing.
        name = "stdin" if cfg.spec.path == "-" else f"{cfg.spec.path} (a pipe)"
        raise ConfigError(
            f"--report: {name} can be read only once, and a report reads the input again; "
            "leave out --report and write it afterwards with `bulkresign report --state STATE "
            "--input FILE` from a copy of the same bytes, or run from a file"
        )
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; --report names the report file")
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: cannot write the report there (no such or no writable folder)")
    needed = {**run_files(cfg.state), "input": Path(cfg.spec.path)}
    refuse_replacing(path, needed, REPORT_HEADS)
    if path.is_file() and path.stat().st_size and not wrote_report(cfg.state, path):
        # Another run's report is the record of what that run did: never replaced unasked.
        raise ConfigError(
            f"{path}: exists, and this run did not write it; name another --report, or move "
            "that one away first"
        )


def check_head(cfg: JobConfig) -> JobConfig:
    """Refuse, before anything is created or sent, an input whose start cannot be used.

    The first batch is read the way the run will read it (format, header, encoding, the first
    lines). A pipe or stdin can be read only once: the bytes read here are held for the run,
    which is given the config returned.
    """
    check_readable(cfg.spec.path)  # missing, a folder, unreadable: said before any file exists
    held = None if cfg.input_stamp is not None else HeldStream(open_once(cfg.spec.path))
    ingest = Ingest(
        cfg.spec, exclude=cfg.exclude, threaded=False, stdin=held, stamp=cfg.input_stamp
    )
    try:
        with contextlib.closing(ingest.batches()) as batches:
            next(batches, None)
    except BaseException:
        if held is not None:
            held.close()
        raise
    if held is None:
        return cfg
    held.rewind()
    return dataclasses.replace(cfg, held_input=held)
