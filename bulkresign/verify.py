"""Verification: read back every ID the ledger reports resigned, and name those that are not.

It goes through :class:`~bulkresign.client.GenAuthReader` only, so it cannot resign anyone, and
through the shared :class:`~bulkresign.limiter.RateLimiter`, so it paces like a run. IDs are read
in groups of up to 50 by :func:`bulkresign.reconcile.read_back` (which retries what was not
applied and reads an ambiguous answer one ID at a time) from a few concurrent workers; memory
holds the groups in flight, never the list.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread

from bulkresign.client import GenAuthReader, match_users
from bulkresign.config import DEFAULT_TIMEOUTS, Credentials, Timeouts
from bulkresign.errors import ApiError, BulkResignError, ConfigError, Fatal, Throttled
from bulkresign.ledger import TERMINAL, Ledger
from bulkresign.limiter import RateLimiter
from bulkresign.models import MAX_BATCH, Endpoint, IdType, LineOutcome
from bulkresign.reconcile import read_back
from bulkresign.retry import RetryPolicy

__all__ = [
    "Discrepancy",
    "Finding",
    "Resigned",
    "VerifyResult",
    "reported_resigned",
    "verify_ledger",
]

#: Groups pulled from the ledger per thread hop.
_GROUPS_PER_HOP = 16


@dataclass(frozen=True, slots=True)
class Resigned:
    """An ID the ledger reports resigned, with the input line it came from."""

    id: str
    line: int


class Finding(StrEnum):
    """What the read-back found for an ID reported resigned, when it is not Resigned."""

    NOT_RESIGNED = "not_resigned"
    """Present, with another status."""
    NOT_FOUND = "not_found"
    """Unknown to the server."""
    UNREADABLE = "unreadable"
    """Not asked: the read-back sends its IDs comma-separated, and this one holds a comma."""


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """An ID reported resigned that the server does not show as Resigned."""

    id: str
    line: int
    finding: Finding
    status: str | None = None
    """The status the server reports for ``NOT_RESIGNED``, when it could be attributed."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """How many IDs were checked, and what was found for those not Resigned."""

    checked: int
    findings: Mapping[Finding, int]
    discrepancies: tuple[Discrepancy, ...] = field(repr=False)
    """Each of them, unless they were handed to ``on_discrepancy`` instead."""

    @property
    def ok(self) -> bool:
        """Whether every ID reported resigned is Resigned."""
        return not any(self.findings.values())


def reported_resigned(ledger: Ledger) -> Iterator[Resigned]:
    """Every ID the ledger reports resigned, in batch order.

    That is every ID of a terminal batch without a per-ID row (its batch's call resigned it), and
    every ID whose per-ID row says resigned.
    """
    for rec in ledger.iter_batches():
        for user_id, line in zip(rec.batch.ids, rec.batch.lines, strict=True):
            row = rec.outcomes.get(user_id)
            if (row is None and rec.state in TERMINAL) or (
                row is not None and row.outcome is LineOutcome.RESIGNED
            ):
                yield Resigned(user_id, line)


async def verify_ledger(
    state: Path,
    host: str,
    credentials: Credentials,
    *,
    rate: float,
    concurrency: int = 8,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    ca_file: Path | None = None,
    on_discrepancy: Callable[[Discrepancy], None] | None = None,
    retry: RetryPolicy | None = None,
) -> VerifyResult:
    """Read back every ID the run in ``state`` reports resigned.

    Refuses (``ConfigError``) when the credentials belong to another userpool than the run's.
    ``on_discrepancy`` is called for each ID not Resigned as soon as it is found; when it is
    ``None`` they are collected in :attr:`VerifyResult.discrepancies` instead. An API error
    that outlasts the retries (or a fatal one) ends the verification and is raised.
    """
    ledger = await anyio.to_thread.run_sync(Ledger.open, state)
    try:
        meta = await anyio.to_thread.run_sync(ledger.meta)
        endpoint, id_type = Endpoint(meta["endpoint"]), IdType(meta["id_type"])
        async with GenAuthReader(
            host, credentials, timeouts=timeouts, ca_file=ca_file, max_connections=concurrency
        ) as reader:
            pool = await reader.userpool_id()
            if pool != meta["userpool_id"]:
                raise ConfigError(
                    f"{state}: the run was against userpool {meta['userpool_id']}, but these "
                    f"credentials are for {pool}"
                )
            check = _Check(reader, endpoint, id_type, RateLimiter(rate), retry or RetryPolicy())
            if on_discrepancy is not None:
                check.report = on_discrepancy
            await check.run(reported_resigned(ledger), concurrency)
            findings = {f: check.findings[f] for f in Finding}
            return VerifyResult(check.checked, findings, tuple(check.collected))
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(ledger.close)


class _Check:
    """Workers reading groups back; the first error stops them all and is raised."""

    def __init__(
        self,
        reader: GenAuthReader,
        endpoint: Endpoint,
        id_type: IdType,
        limiter: RateLimiter,
        retry: RetryPolicy,
    ) -> None:
        self.reader, self.endpoint, self.id_type = reader, endpoint, id_type
        self.limiter, self.retry = limiter, retry
        self.rng = random.Random()
        self.checked = 0
        self.findings: Counter[Finding] = Counter()
        self.collected: list[Discrepancy] = []
        self.report: Callable[[Discrepancy], None] = self.collected.append
        self._error: BulkResignError | None = None

    async def run(self, targets: Iterator[Resigned], concurrency: int) -> None:
        send, receive = anyio.create_memory_object_stream[list[Resigned]](concurrency)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._produce, targets, send, tg.cancel_scope)
            for _ in range(concurrency):
                tg.start_soon(self._work, receive.clone(), tg.cancel_scope)
            receive.close()
        if self._error is not None:
            raise self._error

    async def _produce(
        self,
        targets: Iterator[Resigned],
        send: anyio.abc.ObjectSendStream[list[Resigned]],
        scope: anyio.CancelScope,
    ) -> None:
        def take() -> list[list[Resigned]]:
            # The ledger is read in a worker thread, one hop at a time, never concurrently.
            groups = []
            for _ in range(_GROUPS_PER_HOP):
                group = list(islice(targets, MAX_BATCH))
                if not group:
                    break
                groups.append(group)
            return groups

        async with send:
            try:
                while groups := await anyio.to_thread.run_sync(take):
                    for group in groups:
                        await send.send(group)
            except BulkResignError as exc:
                self._fail(exc, scope)

    async def _work(
        self, receive: anyio.abc.ObjectReceiveStream[list[Resigned]], scope: anyio.CancelScope
    ) -> None:
        async with receive:
            async for group in receive:
                try:
                    await self._check(group)
                except ApiError as exc:
                    self._fail(exc, scope)
                    return

    def _fail(self, exc: BulkResignError, scope: anyio.CancelScope) -> None:
        if self._error is None:
            self._error = exc
        scope.cancel()

    async def _check(self, group: list[Resigned]) -> None:
        self.checked += len(group)
        lines = {t.id: t.line for t in group}
        ids = [t.id for t in group if "," not in t.id]
        for user_id in (t.id for t in group if "," in t.id):
            self._found(Discrepancy(user_id, lines[user_id], Finding.UNREADABLE))
        if not ids:
            return
        found = await read_back(
            self.reader,
            self.endpoint,
            ids,
            self.id_type,
            limiter=self.limiter,
            retry=self.retry,
            rng=self.rng,
        )
        for user_id in found.absent:
            self._found(Discrepancy(user_id, lines[user_id], Finding.NOT_FOUND))
        others = found.pending + found.unlisted
        statuses = await self._statuses(others) if others else {}
        for user_id in others:
            status = statuses.get(user_id)
            self._found(Discrepancy(user_id, lines[user_id], Finding.NOT_RESIGNED, status))

    def _found(self, discrepancy: Discrepancy) -> None:
        self.findings[discrepancy.finding] += 1
        self.report(discrepancy)

    async def _statuses(self, ids: tuple[str, ...]) -> dict[str, str]:
        """The statuses of users found not Resigned: one more read, best effort."""
        sent_at = await self.limiter.acquire()
        try:
            records = await self.reader.get_batch(self.endpoint, ids, self.id_type)
        except Fatal:
            raise
        except Throttled as exc:
            self.limiter.on_throttled(exc.retry_after, sent_at=sent_at)
            return {}
        except ApiError:
            return {}
        self.limiter.on_success(sent_at=sent_at)
        return {i: str(r.status) for i, r in match_users(ids, self.id_type, records).items()}
