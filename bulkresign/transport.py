"""The HTTP seam: one request in, raw status, headers and body out.

The client never touches aiohttp directly; it calls a :class:`Transport`. Production uses
:class:`AiohttpTransport`, unit tests use :class:`~bulkresign.mock.MockTransport` (a function from
request to response, after httpx's ``MockTransport``, https://www.python-httpx.org/advanced/transports/).
A transport raises the HTTP library's own exceptions; :mod:`bulkresign.classify` turns them into
the error tree, so the decision "could this have been applied?" lives in one pure module.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit

import aiohttp
import aiohttp.payload
import anyio

from bulkresign.config import Timeouts
from bulkresign.errors import ConfigError

__all__ = [
    "KEEPALIVE_SECONDS",
    "MAX_RESPONSE_BYTES",
    "AiohttpTransport",
    "RawRequest",
    "RawResponse",
    "SentHook",
    "Transport",
    "tls_context",
]

#: Idle pooled connections close after this long. A server that drops an idle keep-alive
#: connection first turns the next POST on it into a reset, and aiohttp never replays a POST
#: (RFC 9112 §9.3.1), so each such race would be an in-doubt batch. Servers and load balancers
#: typically idle out after 60-75 s; 5 s stays well inside that.
KEEPALIVE_SECONDS = 5.0
#: A read-back of 50 users is about 100 KiB; a body beyond this is not an API answer.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# aiohttp's own ``total`` timeout should always fire first; this outer bound is only a backstop.
_BACKSTOP_SECONDS = 1.0

#: Called once, with no arguments, as a request's body is handed to the socket.
SentHook = Callable[[], None]


def _lower_keys(headers: Mapping[str, str]) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        out.setdefault(name.lower(), value)
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class RawRequest:
    """One request as a transport receives it; header names are lower-cased."""

    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str] | None
    body: bytes | None
    timeout: Timeouts

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _lower_keys(self.headers))

    @property
    def path(self) -> str:
        """The URL's path, for routing in a test handler."""
        return urlsplit(self.url).path


@dataclass(frozen=True, slots=True)
class RawResponse:
    """Status, headers (names lower-cased, first value kept) and the whole body of a response."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _lower_keys(self.headers))


class Transport(Protocol):
    """Sends one HTTP request; an async context manager that owns its connections."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: bytes | None,
        timeout: Timeouts,  # noqa: ASYNC109 - becomes aiohttp.ClientTimeout, not a cancel scope
        on_sent: SentHook | None = None,
    ) -> RawResponse:
        """Send the request and read the whole response, within ``timeout``.

        ``on_sent`` is called as the request is written, the moment the server starts to count
        it (:meth:`bulkresign.limiter.RateLimiter.sent`).
        """
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _HookedBody(aiohttp.payload.BytesPayload):
    """A request body that calls ``on_sent`` as aiohttp writes it to the connection.

    On Python 3.11 aiohttp writes a request from a task of its own (from 3.12 it starts that
    task eagerly), so a busy event loop can hold a request back for milliseconds after the call:
    measured 0.6 ms at the median and up to 15 ms at 300 req/s on a 2-core VM. The server counts
    a request when it arrives, so the rate limiter is told when it actually left.
    """

    def __init__(self, value: bytes, on_sent: SentHook) -> None:
        super().__init__(value)
        self._on_sent: SentHook | None = on_sent

    def _sent(self) -> None:
        hook, self._on_sent = self._on_sent, None
        if hook is not None:
            hook()

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        self._sent()
        await super().write(writer)

    async def write_with_length(
        self, writer: aiohttp.abc.AbstractStreamWriter, content_length: int | None
    ) -> None:
        self._sent()
        await super().write_with_length(writer, content_length)


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """A verifying TLS context that trusts only the CAs in ``ca_file`` (a private deployment's).

    Without a CA file the transport takes aiohttp's own verifying context over the system roots.
    There is deliberately no way to turn verification off.
    """
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except FileNotFoundError:
        raise ConfigError(f"{ca_file}: CA file not found") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{ca_file}: cannot load CA certificates ({exc})") from None


class AiohttpTransport:
    """The production transport: one pooled ``aiohttp.ClientSession`` with TLS always verified.

    Redirects are not followed (an API call that redirects is an answer to classify, not to
    chase), cookies are not kept, proxies from the environment are not used, and every call
    carries an explicit ``aiohttp.ClientTimeout``.
    """

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        max_connections: int = 64,
        keepalive: float = KEEPALIVE_SECONDS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._ca_file = ca_file
        self._max_connections = max_connections
        self._keepalive = keepalive
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        # ``True`` is aiohttp's own verifying context, ssl.create_default_context(), made when
        # aiohttp was imported: building a second one cost 37-56 ms before the run's first
        # request. A private CA needs its own (off the event loop: it reads files).
        context: ssl.SSLContext | bool = True
        if self._ca_file is not None:
            context = await anyio.to_thread.run_sync(tls_context, self._ca_file)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=self._keepalive,
            ssl=context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            raise_for_status=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            with anyio.CancelScope(shield=True):
                await session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: bytes | None,
        timeout: Timeouts,  # noqa: ASYNC109 - becomes aiohttp.ClientTimeout, not a cancel scope
        on_sent: SentHook | None = None,
    ) -> RawResponse:
        """Send one request and read the whole body; raises aiohttp's exceptions."""
        if self._session is None:
            raise RuntimeError("AiohttpTransport used outside 'async with'")
        client_timeout = _client_timeout(timeout)
        data: bytes | _HookedBody | None = body
        if on_sent is not None:
            if body is None:
                on_sent()  # aiohttp writes a request without a body from the call itself
            else:
                data = _HookedBody(body, on_sent)
        with anyio.fail_after(timeout.total + _BACKSTOP_SECONDS):
            async with self._session.request(
                method,
                url,
                headers=dict(headers),
                params=dict(params) if params is not None else None,
                data=data,
                timeout=client_timeout,
                allow_redirects=False,
            ) as response:
                content = await self._read(response)
                return RawResponse(response.status, dict(response.headers), content)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_response_bytes:
                raise aiohttp.ClientPayloadError(
                    f"response body exceeds {self._max_response_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)


@functools.lru_cache(maxsize=8)
def _client_timeout(timeout: Timeouts) -> aiohttp.ClientTimeout:
    """aiohttp's form of ``timeout`` (a run uses one or two, so they are built once)."""
    return aiohttp.ClientTimeout(
        total=timeout.total,
        connect=timeout.connect,
        sock_connect=timeout.connect,
        sock_read=timeout.read,
    )
