"""A job: one input resigned against one userpool, from a fresh start or a resume.

:func:`run_job` wires the stages together — client, ledger, limiter, dispatcher, pipeline — and
is what ``bulkresign run`` calls after it has parsed its arguments and, when asked, shown the plan.
"""

from __future__ import annotations

import gc
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from bulkresign._version import __version__
from bulkresign.batching import Ingest
from bulkresign.binding import (
    ingest_done,
    input_options,
    rebind_input,
    record_exclude,
    record_hash,
    record_plan,
    replaced_input,
)
from bulkresign.canary import CANARY_KEY, finish_canary, run_canary
from bulkresign.chain import JournalAnchor
from bulkresign.checkpoint import Checkpointer
from bulkresign.client import GenAuthClient
from bulkresign.config import Credentials, Timeouts
from bulkresign.digest import FileStamp, Prefix, file_stamp, hash_file
from bulkresign.dispatch import Dispatcher, DispatchSettings
from bulkresign.events import Events, FanOut
from bulkresign.held import HeldStream
from bulkresign.inputspec import InputSpec
from bulkresign.journaled import journaled, note_journaled
from bulkresign.ledger import Ledger, Manifest
from bulkresign.limiter import SEND_AHEAD, LimiterStats, RateLimiter
from bulkresign.models import Batch, Endpoint
from bulkresign.pipeline import RunResult, run_pipeline
from bulkresign.retry import CircuitBreaker, ErrorBudget, RetryBudget, RetryPolicy
from bulkresign.stats import RunStats

__all__ = ["JobConfig", "JobInfo", "JobOutcome", "run_job"]


@dataclass(frozen=True, slots=True)
class JobConfig:
    """Everything a run needs, already validated."""

    spec: InputSpec
    host: str
    credentials: Credentials
    state: Path
    endpoint: Endpoint = Endpoint.PUBLIC_ACCOUNT
    rate: float = 100.0
    concurrency: int = 16
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_errors: ErrorBudget | None = None
    reconcile_delay: float = 2.0
    grace: float = 30.0
    exclude: frozenset[str] = frozenset()
    ca_file: Path | None = None
    signals: bool = True
    durable: bool = True
    """fsync every ledger commit; only the checkpoint-cost benchmark turns it off."""
    send_ahead: float = SEND_AHEAD
    """Seconds ahead of schedule the limiter may hand out a slot, so that one wake-up sends
    several requests (:class:`~bulkresign.limiter.RateLimiter`); 0 spaces them exactly."""
    canary: int = 0
    """On a fresh start, send the first ``canary`` batches one at a time and stop unless every
    one of them succeeds outright."""
    input_stamp: FileStamp | None = None
    """The input file's stamp from before anything read it (:mod:`bulkresign.digest`): every
    read of the run must find the file unchanged. ``None``: taken when the job starts."""
    journal: Path | None = None
    """The audit journal the run writes: on resume, the calls it records after the ledger's
    anchor are read back first (:mod:`bulkresign.journaled`). ``None``: the anchored path."""
    held_input: HeldStream | None = None
    """A one-time input (stdin, a pipe) whose start the CLI checked before the state file
    existed: the run reads it from here, the checked bytes first."""
    plan_sha256: str | None = None
    """The reviewed ID set's hash (``--plan-sha256``) the input was checked against: recorded,
    so that a resume without the option is held to it too."""


@dataclass(frozen=True, slots=True)
class JobInfo:
    """What the operator is shown before the first resign call."""

    userpool_id: str
    resuming: bool
    state: Path
    pseudonym_key: bytes
    """The run's key for log pseudonyms, kept in the ledger so a resume logs the same ones."""
    journal_anchor: JournalAnchor | None = None
    """How far the audit journal had reached at the last run's last anchored commit."""
    input_replaced: str | None = None
    """The last run stopped on this input error, and the input has changed since: the batches
    it recorded are checked against the new input before anything is sent."""


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How the job ended, with its live counters."""

    result: RunResult
    stats: RunStats
    userpool_id: str
    state: Path


Confirm = Callable[[JobInfo], Awaitable[bool]]
#: Runs beside the pipeline until cancelled: the progress display.
Watch = Callable[[RunStats, Callable[[], LimiterStats]], Coroutine[Any, Any, None]]


async def _allow(_: JobInfo) -> bool:
    return True


async def run_job(
    cfg: JobConfig,
    *,
    confirm: Confirm = _allow,
    events: Callable[[JobInfo], Events] | None = None,
    stats: RunStats | None = None,
    watch: Watch | None = None,
    stamp: Callable[[], Mapping[str, object]] | None = None,
    records_gone: Callable[[], str | None] | None = None,
) -> JobOutcome | None:
    """Run (or resume) the job; ``None`` when ``confirm`` declined before anything was sent.

    ``stamp`` adds bookkeeping to every ledger commit (see :mod:`bulkresign.checkpoint`);
    ``records_gone`` says why the run's records are gone, if they are: the run stops.
    """
    resuming = cfg.state.exists()
    path = Path(cfg.spec.path)  # the CLI makes it absolute, so the manifest names one file
    # A pipe (or stdin) can be read once only: its digest is taken as the ingest reads it.
    input_stamp = cfg.input_stamp or file_stamp(cfg.spec.path)
    input_hash: str | None = None
    if resuming and input_stamp is not None:
        # A resumed run must read the very input it began with (the hash is cheap next to a run).
        input_hash = await anyio.to_thread.run_sync(hash_file, path, input_stamp)
    async with GenAuthClient(
        cfg.host,
        cfg.credentials,
        timeouts=cfg.timeouts,
        ca_file=cfg.ca_file,
        max_connections=max(cfg.concurrency, 4),
    ) as client:
        started = time.perf_counter()
        pool = await client.userpool_id()
        # The token call opened the run's first connection; the first requests of the run open
        # the others, and each of those leaves up to that long after its slot.
        new_connection = time.perf_counter() - started
        manifest = Manifest(
            input_path=str(path) if cfg.spec.path != "-" else "-",
            input_sha256=input_hash,
            id_type=str(cfg.spec.id_type),
            endpoint=str(cfg.endpoint),
            host=cfg.host,
            userpool_id=pool,
            batch_size=cfg.spec.batch_size,
            input_options=input_options(cfg.spec, cfg.exclude),
            tool_version=__version__,
            pseudonym_key=secrets.token_hex(16),
        )
        ledger = await anyio.to_thread.run_sync(
            partial(Ledger.open, cfg.state, manifest, durable=cfg.durable)
        )
        try:
            fresh = await anyio.to_thread.run_sync(ledger.last_seq) < 0
            if fresh and cfg.exclude:
                await anyio.to_thread.run_sync(record_exclude, ledger, cfg.exclude)
            meta = await anyio.to_thread.run_sync(ledger.meta)
            key, anchor = bytes.fromhex(meta["pseudonym_key"]), JournalAnchor.from_meta(meta)
            replaced = replaced_input(meta, input_hash)
            info = JobInfo(pool, resuming, cfg.state, key, anchor, replaced)
            if not await confirm(info):
                return None
            if cfg.plan_sha256 is not None:
                await anyio.to_thread.run_sync(record_plan, ledger, cfg.plan_sha256)
            live = stats if stats is not None else RunStats()
            ckpt = Checkpointer(ledger, stamp)
            limiter = RateLimiter(cfg.rate, send_ahead=cfg.send_ahead)
            limiter.expect_new_connections(cfg.concurrency, min(new_connection, 1.0))
            dispatcher = Dispatcher(
                client=client,
                checkpoint=ckpt,
                limiter=limiter,
                settings=DispatchSettings(
                    cfg.endpoint, cfg.spec.id_type, cfg.retry, cfg.reconcile_delay
                ),
                breaker=CircuitBreaker(),
                retry_budget=RetryBudget(),
                error_budget=cfg.max_errors,
                events=events(info) if events is not None else FanOut(),
                stats=live,
                rng=random.Random(),
                records_gone=records_gone,
            )
            ahead = await _journaled(ckpt, cfg.journal, anchor) if resuming else {}
            # A one-time input cannot be hashed ahead: the resume checks the bytes read before.
            once = input_stamp is None
            ingest = Ingest(
                cfg.spec,
                exclude=cfg.exclude,
                stdin=cfg.held_input,
                stamp=input_stamp,
                expect_prefix=Prefix.from_meta(meta.get("input_prefix")) if once else None,
            )
            # What exists now (modules, client, ledger) lives for the whole run: take it out of
            # the cyclic collector's full passes, each a pause of 15 ms or more that holds sends
            # back and lets them reach the server bunched (https://docs.python.org/3/library/gc.html#gc.freeze).
            gc.freeze()
            async with anyio.create_task_group() as tg:
                if input_hash is None and input_stamp is not None:
                    tg.start_soon(record_hash, ckpt, path, input_stamp)
                if watch is not None:
                    tg.start_soon(watch, live, lambda: limiter.stats)
                batches: Iterator[Batch] = ingest.batches()
                read_so_far = ingest.read_so_far if once else None
                # An input the ledger is not bound to by hash — a pipe, a fixed input, or one
                # whose first run stopped before its hash was recorded — shows that it holds the
                # recorded batches before any send, and only then is the ledger bound to it.
                unbound = once or replaced is not None or not meta.get("input_sha256")
                rebind = None
                if unbound and input_hash is not None:
                    rebind = partial(rebind_input, input_hash=input_hash)
                pipeline = partial(
                    run_pipeline,
                    grace=cfg.grace,
                    signals=cfg.signals,
                    read_so_far=read_so_far,
                    sent=ahead,
                )
                replay_first = resuming and unbound
                # Until a batch is recorded nothing was sent: a declined or failed start
                # leaves a state file, and the canary still comes first.
                last = await ckpt.read(lambda led: led.last_seq())
                if cfg.canary and last < 0:
                    batches = await run_canary(
                        cfg.canary, dispatcher, batches, pipeline, concurrency=1
                    )
                elif meta.get(CANARY_KEY):  # a canary was interrupted: it is finished first
                    batches, replayed = await finish_canary(
                        int(meta[CANARY_KEY]),
                        dispatcher,
                        batches,
                        pipeline,
                        concurrency=cfg.concurrency,
                        recorded=last + 1,
                        replay_first=replay_first,
                        replayed=rebind,
                    )
                    if replayed:  # the run's pipeline need not replay the batches again
                        replay_first, rebind = False, None
                result = await pipeline(
                    batches,
                    dispatcher,
                    concurrency=cfg.concurrency,
                    replay_first=replay_first,
                    replayed=rebind,
                )
                tg.cancel_scope.cancel()
            if live.ingest_done:
                final = ingest.stats
                await ckpt.write(partial(ingest_done, stats=final.as_dict()))
            return JobOutcome(result, live, pool, cfg.state)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(ledger.close)


async def _journaled(
    ckpt: Checkpointer, journal: Path | None, anchor: JournalAnchor | None
) -> Mapping[int, frozenset[str]]:
    """Commit what the journal says was sent that the ledger does not hold as sent
    (:mod:`bulkresign.journaled`); return the batches the ledger does not hold at all."""
    path = journal if journal is not None else Path(anchor.path) if anchor is not None else None
    sent = await ckpt.read(lambda led: journaled(led, path, anchor))
    return await ckpt.write(partial(note_journaled, sent=sent)) if sent else {}
