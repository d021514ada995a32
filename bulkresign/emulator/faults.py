"""Injected failures: which one hits a call (seeded, so a run replays) and what it looks like.

The faults are the ones a gateway or a network produces and a fake at the HTTP-client level
cannot: an HTML error page instead of JSON, a TCP reset after the server applied the call, an
answer held past any client timeout. The ``*_after`` kinds leave the client *in doubt*.
"""

from __future__ import annotations

import random
import socket
import struct
from enum import StrEnum
from http import HTTPStatus

from aiohttp import web

from bulkresign.emulator.config import Faults

__all__ = ["FaultInjector", "FaultKind", "gateway_page", "reset_connection"]


class FaultKind(StrEnum):
    """The oracle's names for injected faults."""

    ERROR_BEFORE = "error_before"
    ERROR_AFTER = "error_after"
    RESET_AFTER = "reset_after"
    STALL_AFTER = "stall_after"
    READ_ERROR = "read_error"


class FaultInjector:
    """Draws faults from one seeded RNG; a probability of 0 draws nothing, so it costs nothing."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        # Latency draws come from their own RNG, so turning jitter on does not move the faults.
        self._jitter = random.Random(seed)

    def reseed(self, seed: int) -> None:
        """Restart the sequences of draws from ``seed``."""
        self._rng.seed(seed)
        self._jitter.seed(seed)

    def latency(self, mean_ms: float, jitter_ms: float) -> float:
        """Seconds of latency: uniform in ``mean ± jitter`` milliseconds, never negative."""
        ms = mean_ms + self._jitter.uniform(-jitter_ms, jitter_ms) if jitter_ms else mean_ms
        return max(0.0, ms) / 1000.0

    def _hit(self, p: float) -> bool:
        return p > 0.0 and (p >= 1.0 or self._rng.random() < p)

    def before(self, faults: Faults) -> int | None:
        """The HTTP status of a gateway error answering a resign call unapplied, or ``None``."""
        if self._hit(faults.error_before):
            return self._rng.choice((502, 503))
        return None

    def read(self, faults: Faults) -> int | None:
        """The HTTP status of a gateway error answering a read-back call, or ``None``."""
        if self._hit(faults.read_error):
            return self._rng.choice((502, 503))
        return None

    def after(self, faults: Faults) -> tuple[FaultKind, int] | None:
        """The fault spoiling the answer to an applied resign call, with its HTTP status."""
        if self._hit(faults.error_after):
            return FaultKind.ERROR_AFTER, self._rng.choice((500, 502))
        if self._hit(faults.reset_after):
            return FaultKind.RESET_AFTER, 0
        if self._hit(faults.stall_after):
            return FaultKind.STALL_AFTER, 200
        return None


def gateway_page(status: int) -> web.Response:
    """An nginx-style HTML error page: what a client gets when the gateway, not the API, answers."""
    title = f"{status} {HTTPStatus(status).phrase}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>"
        f"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return web.Response(status=status, text=body, content_type="text/html")


def reset_connection(request: web.Request) -> None:
    """Abort the request's TCP connection with an RST and no response.

    ``SO_LINGER`` with a zero timeout makes ``close`` send RST instead of FIN
    (https://man7.org/linux/man-pages/man7/socket.7.html, ``SO_LINGER``), so the client sees
    "connection reset by peer" rather than a clean end of stream.
    """
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
