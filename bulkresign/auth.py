"""The management access token: decode it, and refresh it once for all callers ahead of expiry.

GenAuth's scheme (``POST /api/v3/get-management-token``) returns a JWT whose payload names the
userpool in ``scoped_userpool_id``; every call then sends the token and that userpool ID. The
vendor SDKs refresh only after expiry, without a lock; here the token is renewed a margin of its
lifetime *before* expiry, and concurrent callers share one request (single-flight).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import orjson

from bulkresign.config import Secret
from bulkresign.envelope import Envelope
from bulkresign.errors import AuthFailed

__all__ = ["ManagementToken", "TokenSource", "decode_jwt_claims", "token_from_envelope"]

_URLSAFE = bytes.maketrans(b"-_", b"+/")


@dataclass(frozen=True, slots=True)
class ManagementToken:
    """A token, the userpool it is scoped to, and when (on the client's clock) to renew it."""

    value: Secret
    userpool_id: str
    obtained_at: float
    expires_in: float

    def renew_at(self, margin: float) -> float:
        """The clock reading from which the token should be replaced."""
        return self.obtained_at + self.expires_in * (1.0 - margin)


def decode_jwt_claims(token: str) -> dict[str, object]:
    """The payload of a JWT, *unverified*: only the server that minted it can check it.

    The payload is base64url without padding (RFC 7515 §2, https://www.rfc-editor.org/rfc/
    rfc7515#section-2). The vendor's Python SDK decodes it with the standard alphabet and crashes
    on ``-``/``_``; here the alphabet is mapped and the padding restored, and any character
    outside base64 is an error rather than silently dropped.
    """
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise ValueError("not a JWT (expected three dot-separated parts)")
    # Non-ASCII becomes "?", which the strict decoder below refuses.
    payload = parts[1].encode("ascii", errors="replace").rstrip(b"=").translate(_URLSAFE)
    payload += b"=" * (-len(payload) % 4)
    try:
        claims = orjson.loads(base64.b64decode(payload, validate=True))
    except (binascii.Error, orjson.JSONDecodeError):
        raise ValueError("JWT payload is not base64url-encoded JSON") from None
    if not isinstance(claims, dict):
        raise ValueError("JWT payload is not a JSON object")
    return claims


#: RFC 6750 §2.1's b64token (https://www.rfc-editor.org/rfc/rfc6750#section-2.1).
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*", re.ASCII)
#: A header value of visible ASCII only.
_VISIBLE = re.compile(r"[\x21-\x7e]+", re.ASCII)


def token_from_envelope(envelope: Envelope, *, obtained_at: float) -> ManagementToken:
    """The token in a successful ``get-management-token`` answer, or :class:`AuthFailed`.

    The messages name what is missing and never quote the token.
    """
    data = envelope.data
    if not isinstance(data, dict):
        raise AuthFailed(
            "get-management-token answered without data", request_id=envelope.request_id
        )
    token = data.get("access_token")
    expires_in = data.get("expires_in")
    if not isinstance(token, str) or not token:
        raise AuthFailed(
            "get-management-token answered without an access_token", request_id=envelope.request_id
        )
    if _B64TOKEN.fullmatch(token) is None:
        # It goes into a header: a CR/LF or space there would split or corrupt the request.
        raise AuthFailed(
            "get-management-token answered an access_token with characters a bearer token "
            "cannot hold (RFC 6750 §2.1)",
            request_id=envelope.request_id,
        )
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not math.isfinite(expires_in)
        or expires_in <= 0
    ):
        raise AuthFailed(
            "get-management-token answered without a positive expires_in",
            request_id=envelope.request_id,
        )
    try:
        claims = decode_jwt_claims(token)
    except ValueError as exc:
        raise AuthFailed(f"the management token cannot be read: {exc}") from None
    pool = claims.get("scoped_userpool_id")
    if not isinstance(pool, str) or not pool:
        raise AuthFailed(
            "the management token has no scoped_userpool_id claim, so the userpool is unknown; "
            "use a userpool or collaborative-admin access key"
        )
    if _VISIBLE.fullmatch(pool) is None:  # it goes into a header too
        raise AuthFailed("the management token's scoped_userpool_id is not a printable ID")
    return ManagementToken(Secret(token), pool, obtained_at, float(expires_in))


class TokenSource:
    """Hands out a current token; renews it through ``fetch`` at most once at a time.

    Callers that find the token due while another caller is renewing it wait on the lock and
    then reuse the fresh token, so N concurrent callers cause one request (single-flight). If
    the renewing caller is cancelled, the lock passes to the next waiter, which tries again.
    Every token after the first must be scoped to the first one's userpool: a run is bound to
    one pool, which is checked against its ledger only when it starts.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[ManagementToken]],
        *,
        clock: Callable[[], float],
        refresh_margin: float,
    ) -> None:
        if not 0.0 <= refresh_margin < 1.0:
            raise ValueError(f"refresh_margin must be in [0, 1), not {refresh_margin}")
        self._fetch = fetch
        self._clock = clock
        self._margin = refresh_margin
        self._token: ManagementToken | None = None
        self._pool: str | None = None
        self._lock = anyio.Lock()

    def _fresh(self) -> ManagementToken | None:
        token = self._token
        if token is not None and self._clock() < token.renew_at(self._margin):
            return token
        return None

    async def get(self) -> ManagementToken:
        """A token that is not yet due for renewal."""
        token = self._fresh()
        if token is not None:
            return token
        async with self._lock:
            token = self._fresh()
            if token is None:
                token = await self._fetch()
                if self._pool is not None and token.userpool_id != self._pool:
                    # The key now names another pool (the host's key store changed, or another
                    # server answers): its users are not this run's, whatever their IDs.
                    raise AuthFailed(
                        f"a renewed management token is scoped to userpool {token.userpool_id}, "
                        f"not {self._pool} as when this client started; stopping"
                    )
                self._pool = token.userpool_id
                self._token = token
            return token

    def invalidate(self, token: ManagementToken) -> None:
        """Drop ``token`` after the server refused it; a newer token is left alone."""
        if self._token is token:
            self._token = None

    def secrets(self) -> tuple[str, ...]:
        """The current token's text, so error messages can be scrubbed of it."""
        return (self._token.value.reveal(),) if self._token is not None else ()
