"""``bulkresign run``: resign every accepted ID of INPUT exactly once; run it again to resume."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import anyio

from bulkresign.audit import check_journal_file
from bulkresign.binding import recorded_plan
from bulkresign.canary import STOP_PREFIX, mark_canary_told
from bulkresign.cli import (
    ExitCode,
    cancelled_by_sigterm,
    describe,
    operator_error,
    printable,
    raise_if_terminated,
    settle_outcome,
)
from bulkresign.cli.confirm import ask_count, preview, show_plan
from bulkresign.cli.options import (
    add_connection_options,
    add_input_options,
    check_outputs,
    input_spec_from_args,
)
from bulkresign.cli.prepare import check_head, check_report_path, job_config
from bulkresign.cli.records import (
    Records,
    count_problems,
    mark_report,
    print_summary,
    read_ingest_stats,
)
from bulkresign.errors import BulkResignError, ConfigError, LedgerMismatch
from bulkresign.job import JobConfig, JobInfo, JobOutcome, run_job
from bulkresign.limiter import LimiterStats
from bulkresign.logs import check_log_file
from bulkresign.models import Endpoint
from bulkresign.progress import show_progress
from bulkresign.report import write_report
from bulkresign.stats import RunStats

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_RATE", "register"]

#: Requests per second. The free plan's limit is 300 per userpool and is shared with live
#: sign-ins, so the default leaves two thirds of it to them (100 × 50 = 5,000 users/s).
DEFAULT_RATE = 100.0
#: Requests in flight; at 100-300 req/s and 20-100 ms latency, 16 keeps the limiter busy.
DEFAULT_CONCURRENCY = 16


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser(
        "run",
        help="resign every ID in INPUT (irreversible; run again to resume)",
        description="Resign every accepted ID of INPUT exactly once. Running the same command "
        "again with the same --state resumes where it stopped.",
    )
    add_input_options(p)
    add_connection_options(p)
    p.add_argument(
        "--endpoint",
        choices=[e.value for e in Endpoint],
        default="public-account",
        help="resign-public-account-batch (default) or resign-user-batch",
    )
    p.add_argument("--state", type=Path, help="ledger file (default: INPUT.bulkresign)")
    p.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"requests per second, never exceeded (default {DEFAULT_RATE:g})",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight (default {DEFAULT_CONCURRENCY})",
    )
    p.add_argument(
        "--max-errors", help="stop (resumably) after N IDs not found or failed, or P%% of them"
    )
    p.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds in-flight requests get after Ctrl-C (default 30)",
    )
    p.add_argument(
        "--reconcile-delay",
        type=float,
        default=2.0,
        help="seconds to wait before reading back an in-doubt batch (default 2)",
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    p.add_argument("--report", type=Path, help="write the per-line report here when done")
    add_guard_options(p)
    p.set_defaults(func=handle)


def add_guard_options(p: argparse.ArgumentParser) -> None:
    """Guards, records and display options of ``run``."""
    g = p.add_argument_group("guards")
    g.add_argument(
        "--plan-sha256",
        metavar="HASH",
        help="refuse unless the input's ID set hashes to this (from `bulkresign plan`)",
    )
    g.add_argument(
        "--max-users", type=int, metavar="N", help="refuse when more than N IDs would be resigned"
    )
    g.add_argument(
        "--exclude",
        type=Path,
        metavar="FILE",
        help="protected IDs (one per line, same --id-type) that are never sent",
    )
    g.add_argument(
        "--canary",
        type=int,
        default=0,
        metavar="N",
        help="send the first N batches one at a time; stop unless all succeed",
    )
    r = p.add_argument_group("records")
    r.add_argument("--reason", default="", help="why (a ticket): written to the audit journal")
    r.add_argument("--log", type=Path, help="JSON event log (default: STATE.log)")
    r.add_argument(
        "--log-ids", action="store_true", help="log IDs as given instead of keyed pseudonyms"
    )
    r.add_argument("--journal", type=Path, help="audit journal (default: STATE.journal)")
    r.add_argument(
        "--new-journal",
        action="store_true",
        help="begin a new audit journal for a resumed run whose journal is lost (missing at "
        "--journal); its first entry names the one it replaces",
    )
    r.add_argument("--no-progress", action="store_true", help="no live progress display")


def handle(args: argparse.Namespace) -> int:
    """Check, confirm, run or resume the job, and map how it ended to an exit code."""
    cfg = job_config(args, input_spec_from_args(args))
    if not args.yes and not sys.stdin.isatty():
        raise ConfigError("no terminal to confirm on: pass --yes to resign without a prompt")
    if not args.yes and not stderr_is_terminal():
        # The plan and the prompt go to stderr: redirected, the count would be typed unseen.
        raise ConfigError(
            "stderr is not a terminal, so the plan and the prompt would not be seen: keep "
            "stderr on the terminal to confirm, or pass --yes"
        )
    records = Records(cfg, args)
    cfg = dataclasses.replace(cfg, journal=records.journal)
    check_outputs(
        cfg.spec,
        {
            "--state": cfg.state,
            "the state file's -wal": Path(f"{cfg.state}-wal"),
            "the state file's -shm": Path(f"{cfg.state}-shm"),
            "--log": records.log,
            "--journal": records.journal,
            "--report": args.report,
        },
        {"the --exclude file": args.exclude},
    )
    check_report_path(args.report, cfg)
    check_log_file(records.log)
    check_journal_file(records.journal, state=cfg.state, run=records.started_as())
    cfg = check_head(cfg)
    with contextlib.closing(cfg.held_input) if cfg.held_input else contextlib.nullcontext():
        return _run(cfg, args, records)


def _run(cfg: JobConfig, args: argparse.Namespace, records: Records) -> int:
    """Confirm, run or resume the checked job, and map how it ended to an exit code."""
    if args.plan_sha256 is None and (reviewed := recorded_plan(cfg.state)) is not None:
        # The run began guarded by a reviewed plan: its resumes are held to the same one.
        args.plan_sha256 = reviewed
        cfg = dataclasses.replace(cfg, plan_sha256=reviewed)
    plan = preview(cfg, args)
    total = None if plan is None else plan.stats.accepted

    async def confirm(info: JobInfo) -> bool:
        show_plan(cfg, info, plan)
        if args.yes:
            return True
        return await ask_count(total)

    async def watch(stats: RunStats, limiter: Callable[[], LimiterStats]) -> None:
        await show_progress(stats, limiter, total=total)

    live = RunStats()

    async def job() -> JobOutcome | None:
        with anyio.CancelScope() as scope, cancelled_by_sigterm(scope.cancel):
            outcome = await run_job(
                cfg,
                confirm=confirm,
                events=records.events,
                stats=live,
                watch=None if args.no_progress else watch,
                stamp=records.stamp,
                records_gone=records.gone,
            )
            if outcome is not None and outcome.result.finished:
                settle_outcome()
            return outcome
        return None  # cancelled by a SIGTERM before the run watched for it

    try:
        outcome = anyio.run(job)
        if outcome is None or not outcome.result.finished:
            raise_if_terminated()  # a finished run's exit code tells that it finished
    except (BulkResignError, OSError, BaseExceptionGroup) as exc:
        error = operator_error(exc)
        if error is None or live.requests == 0 or isinstance(error, LedgerMismatch):
            raise
        # Calls were made, then a file failed (a full disk, a read-only remount): the ledger
        # holds every intent it committed, so the next run reads back what was in flight.
        print(f"bulkresign: error: {describe(error)}", file=sys.stderr)
        print(
            f"bulkresign: stopped after {live.requests:,} resign calls; once the cause is "
            f"fixed, resume with: {resume_command(cfg)}",
            file=sys.stderr,
        )
        return ExitCode.STOPPED
    if outcome is None:
        print("bulkresign: not confirmed; nothing was sent", file=sys.stderr)
        return ExitCode.USAGE
    return finish(cfg, args, outcome, records)


def stderr_is_terminal() -> bool:
    """Whether the plan and the prompt, written to stderr, reach the operator's terminal."""
    return sys.stderr.isatty()


def resume_command(cfg: JobConfig) -> str:
    """This very command, with the state file named: what resumes the run."""
    argv = sys.argv[1:]
    if "--state" not in argv:
        argv += ["--state", str(cfg.state)]
    return f"bulkresign {shlex.join(argv)}"


def finish(cfg: JobConfig, args: argparse.Namespace, outcome: JobOutcome, records: Records) -> int:
    """Close the records, print the summary and the resume command, pick the exit code."""
    ingest = read_ingest_stats(cfg.state)
    rejected = ingest.get("rejected", 0) if ingest else 0
    records.close(outcome)
    print_summary(outcome, ingest, [cfg.state, records.log, records.journal], cfg.state)
    if not outcome.result.finished:
        resume = resume_command(cfg)
        bad = outcome.result.input_error
        if bad is not None:
            print(f"bulkresign: error: {printable(str(bad))}", file=sys.stderr)
            print(
                "bulkresign: stopped at an input error: nothing read past it was sent; fix "
                f"the input, then resume with: {resume}",
                file=sys.stderr,
            )
            return ExitCode.USAGE if outcome.stats.requests == 0 else ExitCode.STOPPED
        reason = outcome.result.stop_reason
        print(
            f"bulkresign: stopped ({reason or 'not finished'}); resume with: {resume}",
            file=sys.stderr,
        )
        if reason is not None and reason.startswith(STOP_PREFIX):
            mark_canary_told(cfg.state)  # shown: a resume does not stop on them again
        return ExitCode.STOPPED
    unwritten = args.report is not None and not _write_report(cfg, args.report)
    problems = count_problems(cfg.state)  # over every run of the job, not just this one
    if problems is None:  # the state file went away as the run ended: this run's own count
        problems = outcome.stats.not_found + outcome.stats.failed
    if rejected or problems or unwritten:
        return ExitCode.PROBLEMS
    return ExitCode.OK


def _write_report(cfg: JobConfig, report: Path) -> bool:
    """Write the finished run's report; on failure say so, and how to write it later."""
    try:
        write_report(cfg.state, report, exclude=cfg.exclude)
        mark_report(cfg.state, report)
    except (BulkResignError, OSError) as exc:
        # The run is finished: the report can be written again, and exit 2 would say "nothing
        # was sent".
        print(f"bulkresign: error: {describe(exc)}", file=sys.stderr)
        print(
            f"bulkresign: the run finished, but its report was not written: once the cause is "
            f"fixed, `bulkresign report --state {shlex.quote(str(cfg.state))} --output "
            f"{shlex.quote(str(report))}` writes it",
            file=sys.stderr,
        )
        return False
    print(f"bulkresign: report written to {report}", file=sys.stderr)
    return True
