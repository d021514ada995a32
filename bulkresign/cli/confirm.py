"""Before the irreversible call: preview the plan, check the guards, ask for the typed count."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass

from bulkresign.batching import Ingest
from bulkresign.cli import printable
from bulkresign.errors import ConfigError
from bulkresign.job import JobConfig, JobInfo
from bulkresign.tally import IngestStats
from bulkresign.threads import run_in_daemon

__all__ = ["Plan", "ask", "ask_count", "preview", "show_plan"]

#: Sample IDs shown before the prompt.
SAMPLES = 3


@dataclass(frozen=True, slots=True)
class Plan:
    """The front half's counts over the whole input, and a few sample IDs."""

    stats: IngestStats
    samples: tuple[str, ...]


def preview(cfg: JobConfig, args: argparse.Namespace) -> Plan | None:
    """Read the whole input once when a prompt or a guard needs its counts; check the guards."""
    if args.yes and args.plan_sha256 is None and args.max_users is None:
        return None  # scripted run without guards: stream at once, the first request in < 1 s
    if cfg.input_stamp is None:  # stdin or a pipe: read once, by the run itself
        name = "stdin" if cfg.spec.path == "-" else f"{cfg.spec.path}: a pipe"
        raise ConfigError(
            f"{name} cannot be read ahead, so the prompt's count, --plan-sha256 and --max-users "
            "cannot be checked before the run: save it to a file to keep them"
        )
    # The stamp ties these reads to the run's: a file rewritten in between is refused.
    stats = Ingest(cfg.spec, exclude=cfg.exclude, stamp=cfg.input_stamp).drain()
    head = Ingest(cfg.spec, exclude=cfg.exclude, stamp=cfg.input_stamp).batches()
    with contextlib.closing(head):
        first = next(head, None)
    plan = Plan(stats, () if first is None else first.ids[:SAMPLES])
    if args.plan_sha256 is not None and args.plan_sha256.lower() != stats.sha256:
        raise ConfigError(
            f"{cfg.spec.path}: its IDs hash to {stats.sha256}, not the reviewed "
            f"{args.plan_sha256}; the input or the --exclude list changed since `bulkresign "
            "plan`, or the plan was made with other options (give plan the same ones)"
        )
    if args.max_users is not None and stats.accepted > args.max_users:
        raise ConfigError(
            f"{cfg.spec.path}: {stats.accepted:,} IDs would be resigned, more than "
            f"--max-users {args.max_users:,}"
        )
    return plan


def show_plan(cfg: JobConfig, info: JobInfo, plan: Plan | None) -> None:
    """Print what is about to happen, to stderr."""
    verb = "Resuming" if info.resuming else "About to resign"
    lines = [
        f"{verb} GenAuth accounts — this cannot be undone.",
        f"  host       {cfg.host}",
        f"  userpool   {info.userpool_id}",
        f"  endpoint   {cfg.endpoint.resign_path}",
        f"  id type    {cfg.spec.id_type}",
        f"  state      {info.state}",
    ]
    if info.input_replaced is not None:
        lines.append(
            "  input      changed since the last run stopped at an input error "
            f"({printable(info.input_replaced)}); every batch already recorded must come out "
            "of it unchanged"
        )
    if plan is not None:
        s = plan.stats
        seconds = s.batches / cfg.rate
        lines += [
            f"  input      {s.path} ({s.format})",
            f"  lines      {s.lines:,}: accepted {s.accepted:,}, duplicates {s.duplicates:,}, "
            f"rejected {s.rejected:,}, skipped {s.skipped:,}, excluded {s.excluded:,}",
            f"  batches    {s.batches:,} at {cfg.rate:g} req/s ≈ {seconds:,.0f} s",
            f"  sha256     {s.sha256}",
            f"  sample     {', '.join(plan.samples)}",
        ]
    print("\n".join(lines), file=sys.stderr)


async def ask_count(total: int | None) -> bool:
    """Ask the operator to type the number of accounts; anything else declines."""
    if total is None:
        answer = await ask("Type 'resign' to continue: ")
        return answer.strip() == "resign"
    answer = await ask(f"Type the number of accounts to resign ({total:,}) to continue: ")
    return answer.strip().replace(",", "") == str(total)


async def ask(prompt: str) -> str:
    """One line typed at the terminal after ``prompt`` (on stderr, beside the plan); ``""`` at
    end of input, which declines. Read in a daemon thread (:mod:`bulkresign.threads`), so that a
    Ctrl-C or SIGTERM at the prompt ends the command at once."""

    def read() -> str:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return sys.stdin.readline()

    return await run_in_daemon(read, name="bulkresign prompt") or ""
