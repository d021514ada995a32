"""Read-back: the only way out of doubt.

The resign call answers one boolean for up to 50 users and has no idempotency key, so whenever its
outcome is unknown (a timeout, a reset, a 5xx, a crash) bulkresign asks the server what is true
now — ``get-public-account-batch`` / ``get-user-batch`` — and resends only the users that are not
yet Resigned. The same read-back sorts a rejected batch into users that exist and users that do not.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import anyio

from bulkresign.client import GenAuthReader, match_users
from bulkresign.errors import NotApplied, Throttled
from bulkresign.limiter import RateLimiter
from bulkresign.models import MAX_BATCH, Endpoint, IdType, UserRecord, UserStatus
from bulkresign.retry import RetryPolicy

__all__ = ["THROTTLE_CAP", "ReadBack", "read_back", "sort_read_back"]

#: Throttled answers to one read-back before it gives up (each behind a growing global pause).
THROTTLE_CAP = 50


@dataclass(frozen=True, slots=True)
class ReadBack:
    """IDs sorted by what a read-back found, each in the order they were asked."""

    resigned: tuple[str, ...]
    """Present and Resigned: applied already, never to be sent again."""
    absent: tuple[str, ...]
    """Not returned: the server does not know them (not found)."""
    pending: tuple[str, ...]
    """Present and not Resigned: still to be sent."""


def sort_read_back(asked: Sequence[str], found: Mapping[str, UserRecord]) -> ReadBack:
    """Sort ``asked`` by the records a read-back returned for them."""
    resigned: list[str] = []
    absent: list[str] = []
    pending: list[str] = []
    for user_id in asked:
        record = found.get(user_id)
        if record is None:
            absent.append(user_id)
        elif record.status == UserStatus.RESIGNED:
            resigned.append(user_id)
        else:
            pending.append(user_id)
    return ReadBack(tuple(resigned), tuple(absent), tuple(pending))


async def read_back(
    reader: GenAuthReader,
    endpoint: Endpoint,
    ids: Sequence[str],
    id_type: IdType,
    *,
    limiter: RateLimiter,
    retry: RetryPolicy,
    rng: random.Random,
    on_call: Callable[[], Awaitable[None]] | None = None,
) -> ReadBack:
    """Ask the server for the status of ``ids`` and sort them.

    Reads are idempotent, so every not-applied failure is retried with backoff (throttling pauses
    the shared limiter); a ``Fatal`` error or an exhausted retry cap propagates. When the response
    cannot say which record answers which ID (``sync_relation``), each ID is read on its own.
    """
    if id_type is IdType.SYNC_RELATION and len(ids) > 1:
        groups: list[Sequence[str]] = [[i] for i in ids]
    else:
        groups = [ids[i : i + MAX_BATCH] for i in range(0, len(ids), MAX_BATCH)]
    found: dict[str, UserRecord] = {}
    get = partial(
        _get_with_retry, reader, endpoint, limiter=limiter, retry=retry, rng=rng, on_call=on_call
    )
    for group in groups:
        records = await get(group, id_type)
        matched = match_users(group, id_type, records)
        found.update(matched)
        if len(records) > len(matched) and len(group) > 1:
            # A record came back that no asked ID claims (a phone stored in another format, say):
            # ask for the unclaimed IDs one at a time, where the answer cannot be misattributed.
            for user_id in (i for i in group if i not in matched):
                found.update(match_users([user_id], id_type, await get([user_id], id_type)))
    return sort_read_back(ids, found)


async def _get_with_retry(
    reader: GenAuthReader,
    endpoint: Endpoint,
    ids: Sequence[str],
    id_type: IdType,
    *,
    limiter: RateLimiter,
    retry: RetryPolicy,
    rng: random.Random,
    on_call: Callable[[], Awaitable[None]] | None,
) -> list[UserRecord]:
    attempt = throttled = 0
    while True:
        sent_at = await limiter.acquire()
        if on_call is not None:
            await on_call()
        try:
            records = await reader.get_batch(endpoint, ids, id_type)
        except Throttled as exc:
            # The limiter's pause spaces these out; a pool that throttles every read for this
            # long is not going to answer, and the run should stop rather than spin.
            throttled += 1
            if throttled >= THROTTLE_CAP:
                raise
            limiter.on_throttled(exc.retry_after, sent_at=sent_at)
            continue
        except NotApplied:
            attempt += 1
            if attempt >= retry.max_attempts:
                raise
            await anyio.sleep(retry.delay(attempt, rng, None))
            continue
        limiter.on_success(sent_at=sent_at)
        return records
