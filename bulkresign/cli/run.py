"""``bulkresign run``: resign every accepted ID of INPUT exactly once; run it again to resume."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import anyio

from bulkresign.batching import InputSpec
from bulkresign.cli import ExitCode
from bulkresign.cli.options import add_input_options, input_spec_from_args
from bulkresign.config import Timeouts, load_credentials, resolve_host
from bulkresign.errors import ConfigError
from bulkresign.job import JobConfig, JobInfo, JobOutcome, run_job
from bulkresign.models import Endpoint
from bulkresign.retry import ErrorBudget

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
    p.add_argument("--max-errors", help="stop (resumably) after N failed IDs, or P%% of them")
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
    p.set_defaults(func=handle)


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


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, not {value:g}")


def job_config(args: argparse.Namespace, spec: InputSpec) -> JobConfig:
    """Validate the arguments into a :class:`JobConfig`."""
    _positive("--rate", args.rate)
    _positive("--concurrency", args.concurrency)
    _positive("--timeout", args.timeout)
    if spec.path == "-" and args.state is None:
        raise ConfigError("reading stdin: give --state FILE so the run can be resumed")
    state = args.state if args.state is not None else Path(f"{spec.path}.bulkresign")
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
    )


def handle(args: argparse.Namespace) -> int:
    """Run or resume the job and map how it ended to an exit code."""
    spec = input_spec_from_args(args)
    cfg = job_config(args, spec)
    if not args.yes and not sys.stdin.isatty():
        raise ConfigError("no terminal to confirm on: pass --yes to resign without a prompt")

    async def confirm(info: JobInfo) -> bool:
        _print_header(cfg, info)
        if args.yes:
            return True
        answer = await anyio.to_thread.run_sync(input, "Type 'resign' to continue: ")
        return answer.strip() == "resign"

    outcome = anyio.run(lambda: run_job(cfg, confirm=confirm))
    if outcome is None:
        print("bulkresign: not confirmed; nothing was sent", file=sys.stderr)
        return ExitCode.USAGE
    return _finish(cfg, outcome)


def _print_header(cfg: JobConfig, info: JobInfo) -> None:
    verb = "resuming" if info.resuming else "starting"
    print(
        f"bulkresign: {verb} — host {cfg.host}, userpool {info.userpool_id}, "
        f"endpoint {cfg.endpoint}, id type {cfg.spec.id_type}, state {info.state}",
        file=sys.stderr,
    )


def _finish(cfg: JobConfig, outcome: JobOutcome) -> int:
    s = outcome.stats
    print(
        f"bulkresign: resigned {s.resigned + s.resigned_by_readback}, not found {s.not_found}, "
        f"failed {s.failed}, requests {s.requests}, retries {s.retries}, "
        f"throttled {s.throttled}, in doubt {s.in_doubt}, read-backs {s.readbacks}",
        file=sys.stderr,
    )
    if not outcome.result.finished:
        argv = sys.argv[1:]
        if "--state" not in argv:
            argv += ["--state", str(cfg.state)]
        print(
            f"bulkresign: stopped ({outcome.result.stop_reason or 'not finished'}); "
            f"resume with: bulkresign {shlex.join(argv)}",
            file=sys.stderr,
        )
        return ExitCode.STOPPED
    if s.not_found or s.failed:
        return ExitCode.PROBLEMS
    return ExitCode.OK
