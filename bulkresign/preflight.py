"""``plan --preflight``: what the userpool says about the planned IDs, without changing anything.

It uses :class:`~bulkresign.client.GenAuthReader`, which has no resign method, so a preflight is
structurally unable to resign anyone; the tests also check that the emulator saw no resign call.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bulkresign.client import GenAuthReader
from bulkresign.limiter import RateLimiter
from bulkresign.models import Batch, Endpoint, IdType
from bulkresign.reconcile import read_back
from bulkresign.retry import RetryPolicy

__all__ = ["KEEP_UNKNOWN", "Preflight", "preflight"]


#: Unknown IDs a preflight keeps, with their lines, to be listed: memory stays bounded.
KEEP_UNKNOWN = 1000


@dataclass(frozen=True, slots=True)
class Preflight:
    """How many planned IDs the userpool does not know, has already resigned, or still has."""

    unknown: int
    already_resigned: int
    active: int
    calls: int
    userpool_id: str
    unknown_ids: tuple[tuple[int, str], ...] = ()
    """The first :data:`KEEP_UNKNOWN` unknown IDs, as (line, ID), in input order."""

    def as_dict(self) -> dict[str, object]:
        """The counts, and the first unknown IDs, as a JSON-ready dict."""
        return {
            "unknown": self.unknown,
            "already_resigned": self.already_resigned,
            "active": self.active,
            "calls": self.calls,
            "userpool_id": self.userpool_id,
            "unknown_ids": [{"line": line, "id": i} for line, i in self.unknown_ids],
        }


async def preflight(
    reader: GenAuthReader,
    endpoint: Endpoint,
    id_type: IdType,
    batches: Iterator[Batch],
    *,
    rate: float,
    on_unknown: Callable[[int, str], None] | None = None,
) -> Preflight:
    """Read every planned ID back, batch by batch, at most ``rate`` calls a second.

    ``on_unknown`` is called with the line and ID of every unknown ID, in input order (the
    result keeps only the first :data:`KEEP_UNKNOWN`).
    """
    limiter = RateLimiter(rate)
    retry = RetryPolicy()
    rng = random.Random()
    unknown = resigned = active = 0
    listed: list[tuple[int, str]] = []
    pool = await reader.userpool_id()
    for batch in batches:
        found = await read_back(
            reader, endpoint, batch.ids, id_type, limiter=limiter, retry=retry, rng=rng
        )
        unknown += len(found.absent)
        resigned += len(found.resigned)
        active += len(found.pending) + len(found.unlisted)
        if found.absent and (on_unknown is not None or len(listed) < KEEP_UNKNOWN):
            absent = set(found.absent)
            rows = [(n, i) for i, n in zip(batch.ids, batch.lines, strict=True) if i in absent]
            if on_unknown is not None:
                for line, i in rows:
                    on_unknown(line, i)
            listed += rows[: KEEP_UNKNOWN - len(listed)]
    # Every read call, the halving of a group the server refused for an unknown ID included.
    calls = reader.stats.total_calls
    return Preflight(unknown, resigned, active, calls, pool, tuple(listed))
