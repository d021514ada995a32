"""The asynchronous GenAuth V3 management client: token, batch resign, batch read-back.

:class:`GenAuthReader` can only read; :class:`GenAuthClient` adds the one irreversible call.
Code that must never resign (``plan --preflight``, reconciliation) takes a reader, so it is
structurally unable to. Every failure is raised as an :class:`~bulkresign.errors.ApiError`
chosen by :mod:`bulkresign.classify` (see ``docs/client.md`` for the table).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio

from bulkresign.config import DEFAULT_TIMEOUTS, Credentials, Timeouts
from bulkresign.errors import ConnectFailed, InDoubt, NotApplied, Throttled
from bulkresign.models import MAX_BATCH, Endpoint, IdType, ResignResult, UserRecord
from bulkresign.session import ApiSession, ClientStats
from bulkresign.transport import SentHook, Transport
from bulkresign.users import match_users, parse_users

__all__ = ["ClientStats", "GenAuthClient", "GenAuthReader", "match_users"]


def _check_ids(ids: Sequence[str], *, csv: bool) -> None:
    """Refuse a batch the API would refuse: a programming error, hence ``ValueError``."""
    if isinstance(ids, str):
        raise ValueError("ids must be a sequence of IDs, not one string")
    if not 1 <= len(ids) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1..{MAX_BATCH} IDs, not {len(ids)}")
    for user_id in ids:
        if not isinstance(user_id, str) or not user_id:
            raise ValueError("every ID must be a non-empty string")
        if csv and "," in user_id:
            # The read-back sends userIds comma-separated, as the typed SDKs do; the server
            # would split this ID in two.
            raise ValueError("an ID containing ',' cannot be read back")


#: Tries of a command's first token request against transient errors (1 + 2 + 4 s between).
FIRST_TOKEN_TRIES = 4


class GenAuthReader:
    """Reads users from GenAuth; an async context manager that owns its transport.

    The token is fetched on first use and renewed ahead of expiry, once for all concurrent
    callers; a 401 triggers one re-authentication and one retry of that call.

    Args:
        host: the API origin, as :func:`bulkresign.config.resolve_host` returns it.
        credentials: the access key used to obtain management tokens.
        timeouts: the bounds of every single HTTP request.
        transport: the HTTP seam; default an :class:`AiohttpTransport` built from ``ca_file``
            and ``max_connections``.
        clock: monotonic seconds, for token renewal.
        wall_clock: epoch seconds, the reference for an ``HTTP-date`` ``Retry-After``.
        refresh_margin: renew the token this fraction of its lifetime before it expires.
    """

    def __init__(
        self,
        host: str,
        credentials: Credentials,
        *,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.monotonic,
        ca_file: Path | None = None,
        max_connections: int = 64,
        refresh_margin: float = 0.1,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = ApiSession(
            host,
            credentials,
            timeouts=timeouts,
            transport=transport,
            clock=clock,
            ca_file=ca_file,
            max_connections=max_connections,
            refresh_margin=refresh_margin,
            wall_clock=wall_clock,
        )

    async def __aenter__(self) -> Self:
        await self._session.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._session.__aexit__(exc_type, exc, tb)

    @property
    def stats(self) -> ClientStats:
        """Token requests, re-authentications and calls by outcome, as of now."""
        return self._session.stats

    async def userpool_id(self) -> str:
        """The userpool the access key is scoped to; fetches a token if none is current.

        The first token of a command is tried :data:`FIRST_TOKEN_TRIES` times when the server
        answers a transient error (5xx, 429, a timeout): one such answer ended the command. No
        connection at all is said at once: it is the host or the network, not a moment.
        """
        for attempt in range(1, FIRST_TOKEN_TRIES + 1):
            try:
                return await self._session.userpool_id()
            except NotApplied as exc:
                if isinstance(exc, ConnectFailed) or attempt == FIRST_TOKEN_TRIES:
                    raise
                wait = exc.retry_after if isinstance(exc, Throttled) else None
                await anyio.sleep(min(wait if wait is not None else 0.5 * 2**attempt, 10.0))
        raise AssertionError("unreachable")

    async def get_batch(
        self, endpoint: Endpoint, ids: Sequence[str], id_type: IdType
    ) -> list[UserRecord]:
        """Read 1..50 users back (``GET endpoint.read_path``); unknown IDs are simply absent.

        A read can be repeated, so any ambiguous failure is raised as ``NotApplied``. Use
        :func:`match_users` to attribute the records to ``ids``.
        """
        _check_ids(ids, csv=True)
        params = {"userIds": ",".join(ids), "userIdType": id_type.value}
        if id_type is IdType.IDENTITY:
            params["withIdentities"] = "true"
        envelope = await self._session.call(
            "GET", endpoint.read_path, params=params, idempotent=True
        )
        try:
            records = parse_users(envelope.data)
        except ValueError as exc:
            error = NotApplied(
                f"GET {endpoint.read_path}: malformed answer ({exc}); a read can be repeated",
                status_code=envelope.status_code,
                request_id=envelope.request_id,
            )
            self._session.count(error)
            raise error from None
        self._session.count(None)
        return records


class GenAuthClient(GenAuthReader):
    """A :class:`GenAuthReader` that can also resign users — the one irreversible call."""

    async def resign_batch(
        self,
        endpoint: Endpoint,
        ids: Sequence[str],
        id_type: IdType,
        *,
        on_sent: SentHook | None = None,
    ) -> ResignResult:
        """Resign 1..50 users (``POST endpoint.resign_path``) in one call.

        Returns the server's answer when its statusCode is 200 (``success`` may still be false);
        raises the classified :class:`ApiError` otherwise. A 200 without ``data.success`` is
        :class:`InDoubt`: the server answered, but not in a form that says what it did.
        ``on_sent`` is called as the request is written (:class:`bulkresign.transport.Transport`).
        """
        _check_ids(ids, csv=False)
        envelope = await self._session.call(
            "POST",
            endpoint.resign_path,
            payload={"userIds": list(ids), "userIdType": id_type.value},
            idempotent=False,
            on_sent=on_sent,
        )
        data = envelope.data
        success = data.get("success") if isinstance(data, dict) else None
        if not isinstance(success, bool):
            error = InDoubt(
                f"POST {endpoint.resign_path}: statusCode 200 without data.success; "
                "it may have been applied",
                status_code=envelope.status_code,
                request_id=envelope.request_id,
            )
            self._session.count(error)
            raise error
        self._session.count(None)
        return ResignResult(
            success=success, request_id=envelope.request_id, message=envelope.message
        )
