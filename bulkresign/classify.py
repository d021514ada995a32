"""Map one call's raw outcome — an exception or a response — onto the error tree.

Every function here is pure, so the whole decision table is unit-tested without a network. The
question each row answers is *could the server have applied this call?* (see ``errors.py``):

| raw outcome                                                  | POST             | GET        |
|--------------------------------------------------------------|------------------|------------|
| refused / DNS / connect timeout / pool wait                  | ConnectFailed    | same       |
| certificate or TLS handshake failure                         | TLSFailed        | same       |
| read timeout, reset or disconnect after sending, broken body | InDoubt          | NotApplied |
| HTTP 429, or envelope statusCode 429                         | Throttled        | same       |
| HTTP 5xx, or envelope statusCode >= 500                      | InDoubt          | NotApplied |
| 2xx that is not a JSON envelope; 1xx/3xx                     | InDoubt          | NotApplied |
| HTTP 401 or statusCode 401 (after one re-authentication)     | AuthFailed       | same       |
| HTTP 403 or statusCode 403                                   | PermissionDenied | same       |
| other 4xx (HTTP or envelope: 400, 404/2004, 409, 422 …)      | Rejected         | same       |
| envelope statusCode 200                                      | success          | success    |

A read is idempotent, so what would be in doubt for a POST is merely "not applied" for a GET
(Jepsen downgrades only reads from ``:info`` to ``:fail``,
https://github.com/jepsen-io/jepsen/blob/main/doc/tutorial/06-refining.md).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import StrEnum

import aiohttp

from bulkresign.envelope import Envelope, one_line, parse_envelope, retry_after_from
from bulkresign.errors import (
    ApiError,
    AuthFailed,
    ConnectFailed,
    Fatal,
    InDoubt,
    NotApplied,
    PermissionDenied,
    Rejected,
    Throttled,
    TLSFailed,
)
from bulkresign.transport import RawResponse

__all__ = [
    "CallOutcome",
    "classify_exception",
    "classify_response",
    "outcome_of",
]


class CallOutcome(StrEnum):
    """How one call ended, for counting: success or the kind of :class:`ApiError`."""

    OK = "ok"
    REJECTED = "rejected"
    THROTTLED = "throttled"
    CONNECT_FAILED = "connect_failed"
    NOT_APPLIED = "not_applied"
    IN_DOUBT = "in_doubt"
    AUTH_FAILED = "auth_failed"
    PERMISSION_DENIED = "permission_denied"
    TLS_FAILED = "tls_failed"
    FATAL = "fatal"


_OUTCOMES: tuple[tuple[type[ApiError], CallOutcome], ...] = (
    (Throttled, CallOutcome.THROTTLED),
    (ConnectFailed, CallOutcome.CONNECT_FAILED),
    (NotApplied, CallOutcome.NOT_APPLIED),
    (Rejected, CallOutcome.REJECTED),
    (InDoubt, CallOutcome.IN_DOUBT),
    (AuthFailed, CallOutcome.AUTH_FAILED),
    (PermissionDenied, CallOutcome.PERMISSION_DENIED),
    (TLSFailed, CallOutcome.TLS_FAILED),
)


def outcome_of(error: ApiError | None) -> CallOutcome:
    """The :class:`CallOutcome` of a call that raised ``error`` (``None``: it succeeded)."""
    if error is None:
        return CallOutcome.OK
    for kind, outcome in _OUTCOMES:
        if isinstance(error, kind):
            return outcome
    return CallOutcome.FATAL


class _Kind(StrEnum):
    CONNECT = "connect"
    TLS = "tls"
    DOUBT = "doubt"
    FATAL = "fatal"


# Ordered most specific first: aiohttp's classes inherit from several branches at once
# (ClientConnectorCertificateError is a ClientConnectorError *and* an SSLError).
_EXCEPTIONS: tuple[tuple[type[BaseException], _Kind, str], ...] = (
    (aiohttp.ClientConnectorCertificateError, _Kind.TLS, "certificate verification failed"),
    (aiohttp.ServerFingerprintMismatch, _Kind.TLS, "certificate fingerprint mismatch"),
    (aiohttp.ClientSSLError, _Kind.TLS, "TLS handshake failed"),
    (ssl.SSLCertVerificationError, _Kind.TLS, "certificate verification failed"),
    (aiohttp.ConnectionTimeoutError, _Kind.CONNECT, "timed out connecting"),
    (aiohttp.ClientConnectorError, _Kind.CONNECT, "cannot connect"),
    (aiohttp.ClientHttpProxyError, _Kind.CONNECT, "the proxy refused to connect"),
    (ConnectionRefusedError, _Kind.CONNECT, "connection refused"),
    (aiohttp.RedirectClientError, _Kind.DOUBT, "answered with a redirect"),
    (aiohttp.InvalidURL, _Kind.FATAL, "invalid URL"),
    (aiohttp.NonHttpUrlClientError, _Kind.FATAL, "not an HTTP URL"),
    (aiohttp.SocketTimeoutError, _Kind.DOUBT, "timed out waiting for the response"),
    (aiohttp.ServerTimeoutError, _Kind.DOUBT, "timed out"),
    (aiohttp.ServerDisconnectedError, _Kind.DOUBT, "server disconnected"),
    (ConnectionResetError, _Kind.DOUBT, "connection reset"),
    (aiohttp.ClientPayloadError, _Kind.DOUBT, "response body broken"),
    (aiohttp.ClientResponseError, _Kind.DOUBT, "malformed response"),
    (aiohttp.ClientError, _Kind.DOUBT, "connection broke"),
    (TimeoutError, _Kind.DOUBT, "timed out"),
    (ssl.SSLError, _Kind.DOUBT, "TLS error after connecting"),
    (OSError, _Kind.DOUBT, "network error"),
)


def _detail(exc: BaseException) -> str:
    """The class name, plus the text when it names only host and OS reason.

    Timeouts and response errors are left bare: their text can quote the request URL, whose
    query holds user IDs (``ConnectionTimeoutError`` says ``Connection timeout to host <url>``).
    """
    name = type(exc).__name__
    speaks = isinstance(exc, OSError | aiohttp.ServerFingerprintMismatch)
    text = str(exc) if speaks and not isinstance(exc, TimeoutError) else ""
    return f"{name}: {one_line(text)}" if text else name


def classify_exception(exc: BaseException, *, what: str, idempotent: bool) -> ApiError | None:
    """The :class:`ApiError` for a transport exception, or ``None`` if it is not a network one.

    ``what`` names the call (``"POST /api/v3/resign-user-batch"``); ``idempotent`` says a
    repeat is harmless (a GET), so an ambiguous failure becomes :class:`NotApplied`.
    Cancellation and programming errors are never classified: the caller re-raises them.
    """
    row = next((row for row in _EXCEPTIONS if isinstance(exc, row[0])), None)
    if row is None:
        return None
    _, verdict, reason = row
    message = f"{what}: {reason} ({_detail(exc)})"
    if verdict is _Kind.CONNECT:
        return ConnectFailed(f"{message}; nothing was sent")
    if verdict is _Kind.TLS:
        return TLSFailed(f"{message}; pass --ca-file for a private CA")
    if verdict is _Kind.FATAL:
        return Fatal(message)
    return _doubt(message, idempotent=idempotent, facts=_Facts())


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a response told us, copied onto whichever error it turns into."""

    status_code: int | None = None
    api_code: int | None = None
    request_id: str | None = None
    http_status: int | None = None

    def error(self, kind: type[ApiError], message: str) -> ApiError:
        return kind(
            message,
            status_code=self.status_code,
            api_code=self.api_code,
            request_id=self.request_id,
            http_status=self.http_status,
        )


def _doubt(message: str, *, idempotent: bool, facts: _Facts) -> ApiError:
    if idempotent:
        return facts.error(NotApplied, f"{message}; nothing was changed, it can be repeated")
    return facts.error(InDoubt, f"{message}; it may have been applied")


def classify_response(
    response: RawResponse, *, what: str, idempotent: bool, now: float
) -> Envelope | ApiError:
    """The envelope of a successful answer (statusCode 200), or the :class:`ApiError` it means.

    ``now`` (epoch seconds) is the reference for an ``HTTP-date`` ``Retry-After`` when the
    response has no ``Date``.
    """
    http = response.status
    envelope = parse_envelope(response.body)
    code = envelope.status_code if envelope is not None else None
    facts = _Facts(
        status_code=code if code is not None else http,
        api_code=envelope.api_code if envelope is not None else None,
        request_id=envelope.request_id if envelope is not None else None,
        http_status=http,
    )
    if envelope is not None:
        said = f"statusCode {code}"
        if envelope.api_code is not None:
            said += f", apiCode {envelope.api_code}"
        if envelope.message:
            said += f": {envelope.message}"
    else:
        said = f"HTTP {http} without a JSON envelope"
    message = f"{what}: {said}"
    if http == 429 or code == 429:
        return Throttled(
            message,
            retry_after=retry_after_from(response.headers, now=now),
            status_code=429,
            request_id=facts.request_id,
            http_status=http,
        )
    if http >= 500 or (200 <= http < 300 and code is not None and code >= 500):
        return _doubt(message, idempotent=idempotent, facts=facts)
    if http == 401 or code == 401:
        return facts.error(AuthFailed, message)
    if http == 403 or code == 403:
        return facts.error(PermissionDenied, message)
    if 400 <= http < 500 or (code is not None and 400 <= code < 500):
        return facts.error(Rejected, message)
    if not 200 <= http < 300 or envelope is None or envelope.status_code != 200:
        return _doubt(message, idempotent=idempotent, facts=facts)
    return envelope
