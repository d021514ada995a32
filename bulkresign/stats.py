"""Live counters of a run, read by the progress display and the final summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

__all__ = ["LimiterStats", "RunStats"]


@dataclass(eq=False)
class RunStats:
    """Counters that the event loop updates in place (one thread, so no locks)."""

    started: float = field(default_factory=monotonic)
    accepted: int = 0
    """IDs accepted by ingestion so far (the run's total once ``ingest_done``)."""
    batches_planned: int = 0
    ingest_done: bool = False
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    in_doubt: int = 0
    readbacks: int = 0
    resigned: int = 0
    """IDs the server confirmed resigned by a successful response."""
    resigned_by_readback: int = 0
    """IDs a read-back found already Resigned (after doubt, on resume, or after a rejection)."""
    not_found: int = 0
    failed: int = 0
    errors: int = 0
    batches_done: int = 0
    ids_processed: int = 0
    skipped_done: int = 0
    """IDs of batches an earlier run already finished."""

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return monotonic() - self.started


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """A snapshot of the limiter for the progress display and the summary."""

    current_rate: float
    """Requests per second the limiter is pacing at now."""
    max_rate: float
    """The configured ``--rate``; AIMD never goes above it."""
    paused_until: float | None
    """Clock time until which no slot is handed out, or ``None`` when not paused."""
    granted: int
    """Slots handed out."""
    waiting: int
    """Tasks queued for a slot."""
    throttled: int
    """Throttled responses reported."""
    throttle_events: int
    """Congestion events: throttled responses that cut the rate (at most one per cooldown)."""
    paused_seconds: float
    """Seconds spent paused so far."""

    @property
    def paused(self) -> bool:
        """Whether a throttling pause is in force."""
        return self.paused_until is not None
