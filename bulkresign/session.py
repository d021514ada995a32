"""One authenticated conversation with GenAuth: token, headers, send, classify, re-authenticate.

:class:`ApiSession` is the plumbing under :mod:`bulkresign.client`: it owns the transport and
the token, turns every outcome into a success envelope or a classified
:class:`~bulkresign.errors.ApiError`, and keeps the counts behind :class:`ClientStats`. Errors are
raised ``from None`` and scrubbed of the secret and tokens: the aiohttp exception behind one
holds the request's headers, bearer token included.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType, TracebackType

import orjson

from bulkresign._version import __version__
from bulkresign.auth import ManagementToken, TokenSource, token_from_envelope
from bulkresign.classify import CallOutcome, classify_exception, classify_response, outcome_of
from bulkresign.config import DEFAULT_TIMEOUTS, Credentials, Timeouts
from bulkresign.envelope import Envelope
from bulkresign.errors import ApiError, AuthFailed, PermissionDenied, Rejected
from bulkresign.redact import scrubber
from bulkresign.transport import AiohttpTransport, RawResponse, SentHook, Transport

__all__ = ["TOKEN_PATH", "ApiSession", "ClientStats"]

TOKEN_PATH = "/api/v3/get-management-token"  # noqa: S105 - a URL path, not a password
#: The longest error message kept, once scrubbed (a server's text, or a transport error's).
_ERROR_LIMIT = 500
#: The longest ``requestId`` kept (GenAuth's are 32 hex digits or a UUID).
_REQUEST_ID_LIMIT = 100


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of what a client has done.

    ``calls`` counts API operations by final outcome; a call retried after a 401 counts once,
    and the retry shows in ``reauths``. Token requests are counted apart.
    """

    token_requests: int = 0
    reauths: int = 0
    calls: Mapping[CallOutcome, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def total_calls(self) -> int:
        """Every API operation, whatever its outcome."""
        return sum(self.calls.values())


class ApiSession:
    """Authenticated calls to one GenAuth host; an async context manager owning its transport.

    Args:
        host: the API origin, as :func:`bulkresign.config.resolve_host` returns it.
        credentials: the access key used to obtain management tokens.
        timeouts: the bounds of every single HTTP request.
        transport: the HTTP seam; default an :class:`AiohttpTransport` built from ``ca_file``
            and ``max_connections``.
        clock: monotonic seconds, for token renewal.
        refresh_margin: renew the token this fraction of its lifetime before it expires.
        wall_clock: epoch seconds, the reference for an ``HTTP-date`` ``Retry-After``.
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
        self._host = host.rstrip("/")
        self._credentials = credentials
        self._timeouts = timeouts
        self._transport: Transport = transport or AiohttpTransport(
            ca_file=ca_file, max_connections=max_connections
        )
        self._clock = clock
        self._wall_clock = wall_clock
        self._tokens = TokenSource(self._fetch_token, clock=clock, refresh_margin=refresh_margin)
        self._token_requests = 0
        self._reauths = 0
        self._calls: Counter[CallOutcome] = Counter()
        self._entered = False
        self._scrubbing: tuple[ManagementToken | None, Callable[[str, int], str]] | None = None

    async def __aenter__(self) -> ApiSession:
        await self._transport.__aenter__()
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = False
        await self._transport.__aexit__(exc_type, exc, tb)

    @property
    def stats(self) -> ClientStats:
        """Token requests, re-authentications and calls by outcome, as of now."""
        return ClientStats(
            token_requests=self._token_requests,
            reauths=self._reauths,
            calls=MappingProxyType(dict(self._calls)),
        )

    async def userpool_id(self) -> str:
        """The userpool the access key is scoped to; fetches a token if none is current."""
        self._require_entered()
        return (await self._tokens.get()).userpool_id

    def _require_entered(self) -> None:
        if not self._entered:
            raise RuntimeError("the GenAuth client was used outside 'async with'")

    def _headers(self, token: ManagementToken | None, *, json: bool) -> dict[str, str]:
        # Both header families: Authing's SDKs send x-authing-*, GenAuth's rebranded ones
        # x-genauth-*, and whether either host also reads the other's is not documented
        # (../shared/reference/genauth-api.md, section 2c). Each carries the same value.
        headers = {"accept": "application/json", "user-agent": f"bulkresign/{__version__}"}
        for family in ("authing", "genauth"):
            headers[f"x-{family}-sdk-version"] = f"bulkresign:{__version__}"
            headers[f"x-{family}-lang"] = "en-US"
            if token is not None:
                headers[f"x-{family}-userpool-id"] = token.userpool_id
        if json:
            headers["content-type"] = "application/json"
        if token is not None:
            headers["authorization"] = f"Bearer {token.value.reveal()}"
        return headers

    def _scrub(self, error: ApiError, token: ManagementToken | None = None) -> ApiError:
        """Remove the credentials and tokens from a server's text, in case it ever echoes them,
        then cut it to length: its message, and its ``requestId``, which the ledger and the
        report keep."""
        clean = self._cleaner(token)
        text = clean(error.message, _ERROR_LIMIT)
        if text != error.message:
            error.message = text
            error.args = (text,)
        if error.request_id is not None:
            error.request_id = clean(error.request_id, _REQUEST_ID_LIMIT)
        return error

    def _cleaner(self, token: ManagementToken | None) -> Callable[[str, int], str]:
        """The scrub of a server's text for calls made with ``token`` (:func:`scrubber`): built
        once a token, as every call's answer passes through it."""
        if self._scrubbing is None or self._scrubbing[0] is not token:
            scrub = scrubber(
                self._credentials.access_key_secret.reveal(),
                *self._tokens.secrets(),
                *([token.value.reveal()] if token is not None else []),
                whole=[self._credentials.access_key_id],
            )
            self._scrubbing = (token, scrub)
        return self._scrubbing[1]

    def _clean_success(self, envelope: Envelope, token: ManagementToken) -> Envelope:
        """A success's ``requestId`` and message scrubbed and cut as an error's are: the ledger
        keeps them too (a ``success: false`` answer's message becomes an error's)."""
        clean = self._cleaner(token)
        rid = None if envelope.request_id is None else clean(envelope.request_id, _REQUEST_ID_LIMIT)
        message = clean(envelope.message, _ERROR_LIMIT) if envelope.message else ""
        if rid == envelope.request_id and message == envelope.message:
            return envelope
        return replace(envelope, request_id=rid, message=message)

    def count(self, error: ApiError | None) -> None:
        """Count one finished operation under its outcome (``None``: success)."""
        self._calls[outcome_of(error)] += 1

    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: bytes | None,
        idempotent: bool,
        on_sent: SentHook | None = None,
    ) -> Envelope | ApiError:
        """One HTTP request, classified; raises only what is not a network failure."""
        what = f"{method} {path}"
        try:
            raw: RawResponse = await self._transport.request(
                method,
                self._host + path,
                headers=headers,
                params=params,
                body=body,
                timeout=self._timeouts,
                on_sent=on_sent,
            )
        except Exception as exc:
            error = classify_exception(exc, what=what, idempotent=idempotent)
            if error is None:
                raise
            return error
        return classify_response(raw, what=what, idempotent=idempotent, now=self._wall_clock())

    async def _fetch_token(self) -> ManagementToken:
        """Ask for a management token. Nothing else was sent, so no failure here is in doubt."""
        self._token_requests += 1
        started = self._clock()
        credentials = self._credentials
        result = await self._send(
            "POST",
            TOKEN_PATH,
            headers=self._headers(None, json=True),
            params=None,
            body=orjson.dumps(
                {
                    "accessKeyId": credentials.access_key_id,
                    "accessKeySecret": credentials.access_key_secret.reveal(),
                }
            ),
            idempotent=True,
        )
        refused = isinstance(result, AuthFailed | PermissionDenied | Rejected)
        if isinstance(result, ApiError) and not refused:
            # Throttled, no connection, 5xx or garbage: retryable. TLS and URL errors: fatal.
            raise self._scrub(result) from None
        if isinstance(result, ApiError):
            error = AuthFailed(
                f"the access key was refused: {result.message}",
                status_code=result.status_code,
                api_code=result.api_code,
                request_id=result.request_id,
                http_status=result.http_status,
            )
            raise self._scrub(error) from None
        return token_from_envelope(result, obtained_at=started)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        payload: object = None,
        idempotent: bool,
        on_sent: SentHook | None = None,
    ) -> Envelope:
        """One API operation: authenticate, send, and re-authenticate once on a 401.

        Failures are counted here; the caller counts the success (:meth:`count`) once it has
        read the answer.
        A 401 means the server rejected the token before doing anything, so sending the same
        call again with a fresh token cannot apply it twice. ``on_sent`` is called as the call's
        request is written (not the token's).
        """
        self._require_entered()
        body = orjson.dumps(payload) if payload is not None else None
        reauthenticated = False
        while True:
            try:
                token = await self._tokens.get()
            except ApiError as exc:
                self.count(exc)
                raise
            result = await self._send(
                method,
                path,
                headers=self._headers(token, json=body is not None),
                params=params,
                body=body,
                idempotent=idempotent,
                on_sent=on_sent,
            )
            unauthorized = isinstance(result, AuthFailed) and 401 in (
                result.status_code,
                result.http_status,
            )
            if unauthorized and not reauthenticated:
                self._tokens.invalidate(token)
                self._reauths += 1
                reauthenticated = True
                continue
            if isinstance(result, ApiError):
                if unauthorized:
                    result.message = f"{result.message} (again after re-authenticating)"
                    result.args = (result.message,)
                self.count(result)
                raise self._scrub(result, token) from None
            return self._clean_success(result, token)
