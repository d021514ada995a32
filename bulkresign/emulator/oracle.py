"""The oracle: what the emulator saw and did, independent of anything the client records.

Tests and benchmarks check the client's claims against it: every user resigned exactly once
(``max_resign_count == 1``), no batch above 50 IDs, no 1-second bucket above the rate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bulkresign.emulator.store import UserStore

__all__ = ["Counters", "oracle_view"]


@dataclass(slots=True)
class Counters:
    """Request counters, reset together by ``POST /__emulator/reset-counters``."""

    started: float
    """Clock time the ``per_second`` buckets count from."""
    requests: Counter[str] = field(default_factory=Counter)
    """Every request by path, including the token call, refused and throttled ones."""
    resign_requests: int = 0
    """Resign calls past authentication and the rate limit (whatever their outcome)."""
    read_requests: int = 0
    """Read-back calls past authentication and the rate limit."""
    largest_batch: int = 0
    """The most ``userIds`` any resign call carried (counted even when the call was refused)."""
    throttled: int = 0
    duplicate_id_requests: int = 0
    """Resign calls naming one user twice (a client bug; the user is resigned once)."""
    unknown_requested: int = 0
    """IDs in resign calls that named no user."""
    re_resign_requested: int = 0
    """IDs in resign calls that named a user already Resigned."""
    faults_injected: Counter[str] = field(default_factory=Counter)
    per_second: Counter[int] = field(default_factory=Counter)
    """Accepted (authenticated, not throttled) API calls by whole second since ``started``."""


def oracle_view(counters: Counters, store: UserStore, *, summary: bool) -> dict[str, object]:
    """The oracle as JSON-ready values; ``summary`` leaves out the per-user map."""
    view: dict[str, object] = {
        "requests": dict(counters.requests),
        "resign_requests": counters.resign_requests,
        "read_requests": counters.read_requests,
        "resigned_total": store.resigned_total,
        "max_resign_count": store.max_resign_count,
        "largest_batch": counters.largest_batch,
        "throttled": counters.throttled,
        "duplicate_id_requests": counters.duplicate_id_requests,
        "unknown_requested": counters.unknown_requested,
        "re_resign_requested": counters.re_resign_requested,
        "faults_injected": {str(k): n for k, n in counters.faults_injected.items()},
        "per_second": {str(s): n for s, n in sorted(counters.per_second.copy().items())},
    }
    if not summary:
        view["resign_counts"] = store.resign_counts()
    return view
