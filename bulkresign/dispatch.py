"""Dispatch: carry one batch from its recorded composition to a recorded outcome for every ID.

Every send follows the same protocol: commit the intent (``SENDING``, with exactly the IDs about
to leave), take a slot from the shared rate limiter, send, record the outcome. A fresh batch's first
intent is committed by the pipeline together with the batch itself; the outcome is posted to the
next commit (:mod:`bulkresign.checkpoint`), so a request costs no commit of its own. What happens
next depends only on the outcome's class (see :mod:`bulkresign.errors`):

* success — the IDs sent are resigned;
* not applied (throttled, no connection) — send the same IDs again later (throttling pauses every
  worker through the limiter; other failures back off with full jitter, within a retry budget);
* rejected — nothing was applied: a read-back sorts the IDs into already resigned, unknown
  (``not_found``) and still pending; pending IDs are split in halves until the one the server
  refuses stands alone, so one bad ID never blocks 49 good ones;
* in doubt — never resent blind: after a short delay, read back and resend only the users that are
  not yet Resigned;
* fatal — the circuit breaker opens and the run stops; the batch stays open for the next run.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import anyio

from bulkresign.attempts import BatchJob
from bulkresign.checkpoint import Checkpointer
from bulkresign.client import GenAuthClient
from bulkresign.events import Events, FanOut
from bulkresign.ledger import BatchRecord
from bulkresign.limiter import RateLimiter
from bulkresign.models import Endpoint, IdType
from bulkresign.reconcile import ReadBack, read_back
from bulkresign.retry import CircuitBreaker, ErrorBudget, RetryBudget, RetryPolicy
from bulkresign.stats import RunStats

__all__ = ["Dispatcher", "DispatchSettings", "WorkItem"]


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """What every batch of one run shares."""

    endpoint: Endpoint
    id_type: IdType
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    reconcile_delay: float = 2.0
    """Seconds to wait before reading back an in-doubt batch, so that a request still in the
    server's pipeline lands before we look."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A batch to finish; ``read_first`` when a previous run may have sent part of it."""

    record: BatchRecord
    read_first: bool = False
    intent_committed: bool = False
    """The intent of the batch's first attempt (every ID) is already committed."""


@dataclass(eq=False)
class Dispatcher:
    """Finishes batches; shared by every worker of a run."""

    client: GenAuthClient
    checkpoint: Checkpointer
    limiter: RateLimiter
    settings: DispatchSettings
    breaker: CircuitBreaker
    retry_budget: RetryBudget
    error_budget: ErrorBudget | None = None
    events: Events = field(default_factory=FanOut)
    stats: RunStats = field(default_factory=RunStats)
    rng: random.Random = field(default_factory=random.Random)
    stopping: anyio.Event = field(default_factory=anyio.Event)
    stop_reason: str | None = None
    reviews: int = 0
    """Read-backs of rejected batches out under an error budget: sends hold meanwhile."""
    reviewed: anyio.Event = field(default_factory=anyio.Event)
    waiting: set[anyio.CancelScope] = field(default_factory=set)
    """The scopes of sends waiting for a slot, cancelled by :meth:`stop`."""
    records_gone: Callable[[], str | None] | None = None
    """Why the run's records (its audit journal) are no longer where they are written, or
    ``None``: checked beside the state file (:func:`bulkresign.upkeep.flush_periodically`)."""
    unsent: set[int] = field(default_factory=set)
    """Batches whose first attempt's intent is committed but whose request has not left. What is
    still here when the run ends is withdrawn (:func:`bulkresign.pipeline.run_pipeline`)."""

    def stop(self, reason: str) -> None:
        """Send nothing new, not even a request waiting for its slot; batches in progress park
        where they stand."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.events.stopping(reason)
        self.stopping.set()
        for waiting in self.waiting:
            waiting.cancel()

    @contextlib.contextmanager
    def reviewing(self) -> Iterator[None]:
        """Hold every send while a rejected batch is read back under ``--max-errors``: the IDs
        it finds unknown may exceed the budget, and then nothing more may leave. Without the
        hold, the read-back queues for a slot behind every waiting send, which all go first."""
        if self.error_budget is None:
            yield
            return
        if self.reviews == 0:
            self.reviewed = anyio.Event()
        self.reviews += 1
        try:
            yield
        finally:
            self.reviews -= 1
            if self.reviews == 0:
                self.reviewed.set()

    async def cleared(self) -> None:
        """Return once no :meth:`reviewing` read-back is out."""
        while self.reviews:
            await self.reviewed.wait()

    async def read_back(self, ids: Sequence[str]) -> ReadBack:
        """Read ``ids`` back with this run's client, endpoint, ID type, limiter and retries."""
        settings = self.settings
        return await read_back(
            self.client,
            settings.endpoint,
            ids,
            settings.id_type,
            limiter=self.limiter,
            retry=settings.retry,
            rng=self.rng,
        )

    async def finish(self, item: WorkItem) -> None:
        """Carry ``item`` as far as it can go before the run stops."""
        await BatchJob(self, item.record).run(item.read_first, item.intent_committed)
