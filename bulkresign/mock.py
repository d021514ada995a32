"""The unit-test seam: a transport that calls a function instead of the network.

After httpx's ``MockTransport`` (https://www.python-httpx.org/advanced/transports/): the handler
gets the :class:`~bulkresign.transport.RawRequest` the client built and returns the
:class:`~bulkresign.transport.RawResponse` (or raises) that a server would have sent.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Self

import anyio

from bulkresign.config import Timeouts
from bulkresign.transport import RawRequest, RawResponse, SentHook

__all__ = ["Handler", "MockTransport"]

#: A test handler: from a request to a response (or an awaitable of one), or it raises.
Handler = Callable[[RawRequest], RawResponse | Awaitable[RawResponse]]


class MockTransport:
    """A transport that calls ``handler`` instead of the network: the unit-test seam.

    The handler may be sync or async and may raise any exception (an aiohttp one, to test
    classification). ``timeout.total`` is enforced around it, as the real transport does.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

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
        """Hand the request to the handler and return its response."""
        request = RawRequest(method, url, headers, params, body, timeout)
        if on_sent is not None:
            on_sent()
        with anyio.fail_after(timeout.total):
            result = self._handler(request)
            if inspect.isawaitable(result):
                result = await result
        return result
