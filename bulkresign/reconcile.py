"""Read-back: the only way out of doubt.

The resign call answers one boolean for up to 50 users and has no idempotency key, so whenever its
outcome is unknown (a timeout, a reset, a 5xx, a crash) bulkresign asks the server what is true
now — ``get-public-account-batch`` / ``get-user-batch`` — and resends only the users that are not
yet Resigned. The same read-back sorts a rejected batch into users that exist and users that do not,
and :func:`split_rejected` decides what to send next, so one bad ID never blocks 49 good ones.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import anyio

from bulkresign.client import GenAuthReader, match_users
from bulkresign.errors import NotApplied, Rejected, Throttled
from bulkresign.limiter import RateLimiter
from bulkresign.models import (
    MAX_BATCH,
    BatchState,
    Endpoint,
    IdType,
    LineOutcome,
    UserRecord,
    UserStatus,
)
from bulkresign.records import IdOutcome
from bulkresign.retry import RetryPolicy

__all__ = [
    "THROTTLE_CAP",
    "USER_NOT_FOUND",
    "ReadBack",
    "absent_rows",
    "failed_row",
    "read_back",
    "resigned_rows",
    "sort_read_back",
    "split_rejected",
    "terminal_state",
]

#: Throttled answers to one read-back before it gives up (each behind a growing global pause).
THROTTLE_CAP = 50
#: apiCode of "user not found" (genauth-docs, docs/reference/error-code.md).
USER_NOT_FOUND = 2004


@dataclass(frozen=True, slots=True)
class ReadBack:
    """IDs sorted by what a read-back found, each in the order they were asked."""

    resigned: tuple[str, ...]
    """Present and Resigned: applied already, never to be sent again."""
    absent: tuple[str, ...]
    """Not returned: the server does not know them (not found)."""
    pending: tuple[str, ...]
    """Present and in another status the API lists: still to be sent."""
    unlisted: tuple[str, ...] = ()
    """Present, in a status the API does not list: whether it is resigned cannot be told, so
    it is neither sent again nor counted resigned (a run stops on it, its batch in doubt)."""


def sort_read_back(asked: Sequence[str], found: Mapping[str, UserRecord]) -> ReadBack:
    """Sort ``asked`` by the records a read-back returned for them."""
    resigned: list[str] = []
    absent: list[str] = []
    pending: list[str] = []
    unlisted: list[str] = []
    for user_id in asked:
        record = found.get(user_id)
        if record is None:
            absent.append(user_id)
        elif record.status == UserStatus.RESIGNED:
            resigned.append(user_id)
        elif isinstance(record.status, UserStatus):
            pending.append(user_id)
        else:
            unlisted.append(user_id)
    return ReadBack(tuple(resigned), tuple(absent), tuple(pending), tuple(unlisted))


def split_rejected(
    ids: tuple[str, ...], pending: tuple[str, ...], *, not_found: bool
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """What to do after ``ids`` were rejected and a read-back left ``pending`` still to resign.

    Returns the IDs to record as failed and the groups to send next (the last one first). Every
    group is shorter than ``ids``, so the split ends: a lone ID the server refuses is failed, a
    "not found" that the read-back explained (some IDs absent) sends the rest together, and
    anything else is halved until the refused ID stands alone.
    """
    if len(pending) == 1 and len(ids) == 1:
        # The server refuses it (even says "not found") while the read-back finds the user.
        return pending, []
    if not pending:
        return (), []
    if (not_found and len(pending) < len(ids)) or len(pending) == 1:
        return (), [pending]
    half = len(pending) // 2
    return (), [pending[half:], pending[:half]]


def resigned_rows(ids: Sequence[str], request_id: str | None, why: str) -> list[IdOutcome]:
    """Per-ID rows for ``ids`` resigned other than by their whole batch's own call."""
    return [IdOutcome(i, LineOutcome.RESIGNED, None, why, request_id) for i in ids]


def absent_rows(ids: Sequence[str], api_code: int | None = None) -> list[IdOutcome]:
    """Per-ID rows for ``ids`` a read-back did not find; ``api_code`` is the code of the call
    that refused them, if one did (a read-back after a call in doubt has none to give)."""
    return [
        IdOutcome(i, LineOutcome.NOT_FOUND, api_code, "user not found (read back)") for i in ids
    ]


def failed_row(user_id: str, error: Rejected) -> IdOutcome:
    """The row of an ID the server refuses on its own."""
    return IdOutcome(user_id, LineOutcome.FAILED, error.api_code, error.message, error.request_id)


def terminal_state(rows: Iterable[IdOutcome], *, used_read_back: bool) -> BatchState:
    """The state of a batch every ID of which has an outcome (``rows``: the per-ID ones)."""
    if any(r.outcome in (LineOutcome.NOT_FOUND, LineOutcome.FAILED) for r in rows):
        return BatchState.REJECTED
    return BatchState.RECONCILED if used_read_back else BatchState.DONE


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
        found.update(await _read_group(get, group, id_type))
    return sort_read_back(ids, found)


_Get = Callable[[Sequence[str], IdType], Awaitable[list[UserRecord]]]


async def _read_group(get: _Get, group: Sequence[str], id_type: IdType) -> dict[str, UserRecord]:
    """The records that answer ``group``, by asked ID.

    Whether the API leaves an unknown ID out of a read or refuses the whole read with "user not
    found" (apiCode 2004) is not documented: a refused read is halved, as a rejected resign is,
    until the ID the server does not know stands alone, and is then absent.
    """
    try:
        records = await get(group, id_type)
    except Rejected as exc:
        if exc.api_code != USER_NOT_FOUND:
            raise
        if len(group) == 1:
            return {}
        half = len(group) // 2
        first = await _read_group(get, group[:half], id_type)
        return {**first, **await _read_group(get, group[half:], id_type)}
    matched = match_users(group, id_type, records)
    if len(set(records)) > len(matched) and len(group) > 1:
        # A record came back that no asked ID claims (a phone stored in another format, say):
        # ask for the unclaimed IDs one at a time, where the answer cannot be misattributed.
        for user_id in (i for i in group if i not in matched):
            matched.update(await _read_group(get, [user_id], id_type))
    return matched


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
