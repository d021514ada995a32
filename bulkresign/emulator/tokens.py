"""Management tokens: HS256 JWTs the vendor's SDKs can decode, and their checks on each call.

Every SDK decodes the payload *without verifying it* to read ``scoped_userpool_id``. The Python
SDK (authing 5.1.0, ``ManagementTokenProvider.decode_jwt``) decodes it with ``base64.b64decode``,
the standard alphabet, so a base64url payload holding ``-`` or ``_`` crashes it. Those two come
only from bytes above 0x7F or from ``>``, ``?``, ``~`` at certain offsets. So a safe payload is
ASCII-escaped JSON, with a leading padding claim ``n`` (0, 1, 2 ... spaces) shifting the offsets
until it is clean. With ``sdk_safe=False`` the pool's (non-ASCII) name is written as raw UTF-8
and ``n`` shifts it until the payload *does* hold ``-``/``_``, reproducing the crash on purpose.
JWT layout: https://datatracker.ietf.org/doc/html/rfc7519#section-3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

import orjson

__all__ = ["TokenIssuer", "b64url"]

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_UNSAFE = frozenset(b"-_")
#: Three shifts cover every offset modulo 3; more only help claims with several ``>?~`` in them.
_MAX_SHIFTS = 12


def b64url(data: bytes) -> bytes:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class TokenIssuer:
    """Mints tokens for one userpool and recognises the ones it minted that have not expired.

    A token is valid only if this issuer minted it (so tokens do not survive an emulator restart;
    the client re-authenticates on the 401, as it must after any expiry).
    """

    def __init__(self, userpool_id: str, access_key_id: str, userpool_name: str) -> None:
        self._userpool_id = userpool_id
        self._access_key_id = access_key_id
        self._userpool_name = userpool_name
        self._key = secrets.token_bytes(32)
        self._live: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"TokenIssuer(pool={self._userpool_id}, live={len(self._live)})"

    def mint(self, now: float, ttl: float, *, sdk_safe: bool = True) -> str:
        """A new token valid from ``now`` for ``ttl`` seconds.

        With ``sdk_safe=False`` the payload holds ``-`` or ``_`` whenever the claims allow it,
        which the default pool name (non-ASCII) always does.
        """
        iat = int(now)
        claims: dict[str, object] = {
            "n": "",
            "token_type": "management_token",
            "scoped_userpool_id": self._userpool_id,
            "userpool_name": self._userpool_name,
            "access_key_type": "userpool",
            "access_key_id": self._access_key_id,
            "iat": iat,
            "exp": iat + int(ttl),
            "jti": secrets.token_hex(8),
        }
        for shift in range(_MAX_SHIFTS):
            claims["n"] = " " * shift
            if sdk_safe:
                payload = b64url(json.dumps(claims, separators=(",", ":")).encode("ascii"))
            else:
                payload = b64url(orjson.dumps(claims))
            if _UNSAFE.isdisjoint(payload) == sdk_safe:
                break
        else:
            if sdk_safe:
                raise RuntimeError(
                    "cannot mint an SDK-safe token: the userpool or access key ID holds too many "
                    "of '>', '?', '~'"
                )
        signing_input = _HEADER + b"." + payload
        signature = b64url(hmac.new(self._key, signing_input, hashlib.sha256).digest())
        token = (signing_input + b"." + signature).decode()
        self._forget_expired(now)
        self._live[token] = (self._userpool_id, now + ttl)
        return token

    def verify(self, token: str, now: float) -> str | None:
        """The userpool ``token`` is scoped to, or ``None`` if it is unknown or expired."""
        entry = self._live.get(token)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def _forget_expired(self, now: float) -> None:
        """Drop expired tokens once the table grows, so short TTLs cannot leak memory."""
        if len(self._live) >= 1024:
            self._live = {t: e for t, e in self._live.items() if e[1] > now}
