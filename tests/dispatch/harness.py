"""A harness that runs the real pipeline and dispatcher against the in-memory FakeServer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from bulkresign.checkpoint import Checkpointer
from bulkresign.client import GenAuthClient
from bulkresign.dispatch import Dispatcher, DispatchSettings
from bulkresign.ledger import Ledger, Manifest
from bulkresign.limiter import RateLimiter
from bulkresign.models import Batch, Endpoint, IdType
from bulkresign.pipeline import RunResult, run_pipeline
from bulkresign.retry import CircuitBreaker, ErrorBudget, RetryBudget, RetryPolicy
from tests.dispatch.fake import FakeServer

MANIFEST = Manifest(
    input_path="ids.txt",
    input_sha256=None,
    id_type="user_id",
    endpoint="public-account",
    host="http://127.0.0.1:1",
    userpool_id="pool",
    batch_size=50,
    input_options="{}",
    tool_version="test",
    pseudonym_key="00" * 16,
)


def make_ids(n: int, prefix: str = "a") -> list[str]:
    """``n`` distinct 24-hex IDs."""
    return [f"{prefix}{i:023x}" for i in range(n)]


def make_batches(ids: Sequence[str], size: int = 50) -> list[Batch]:
    """Chunk ``ids`` the way the ingest stage does."""
    return [
        Batch(seq, tuple(ids[i : i + size]), tuple(range(i + 1, i + 1 + len(ids[i : i + size]))))
        for seq, i in enumerate(range(0, len(ids), size))
    ]


class Harness:
    """Runs (and re-runs, as a resume would) one job over one ledger file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last: Dispatcher | None = None

    async def run(
        self,
        server: FakeServer,
        batches: Sequence[Batch],
        *,
        concurrency: int = 4,
        max_in_doubt: int = 1000,
        rate: float = 100_000.0,
        signals: bool = False,
        error_budget: ErrorBudget | None = None,
    ) -> RunResult:
        """One process lifetime: open the ledger, run the pipeline, close it (even on a crash)."""
        ledger = Ledger.open(self.path, MANIFEST)
        try:
            dispatcher = Dispatcher(
                client=cast(GenAuthClient, server),
                checkpoint=Checkpointer(ledger),
                limiter=RateLimiter(
                    rate, min_rate=min(rate, 10_000.0), pause_base=0.001, max_pause=0.01
                ),
                settings=DispatchSettings(
                    Endpoint.PUBLIC_ACCOUNT,
                    IdType.USER_ID,
                    RetryPolicy(base=0.001, cap=0.001, max_attempts=50),
                    reconcile_delay=0.0,
                ),
                breaker=CircuitBreaker(max_in_doubt=max_in_doubt),
                retry_budget=RetryBudget(ratio=10.0, floor=10_000),
                error_budget=error_budget,
                rng=random.Random(0),
            )
            self.last = dispatcher
            return await run_pipeline(
                iter(batches), dispatcher, concurrency=concurrency, signals=signals
            )
        finally:
            ledger.close()

    def ledger(self) -> Ledger:
        """A fresh look at the ledger file (made for the job if there is none yet)."""
        return Ledger.open(self.path, None if self.path.exists() else MANIFEST)
