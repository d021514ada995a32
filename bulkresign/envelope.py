"""What a GenAuth response says: the JSON envelope, and how long a ``Retry-After`` asks us to wait.

Every answer of the V3 management API is ``{statusCode, message, apiCode?, requestId?, data}``,
usually with HTTP 200 even for business errors: "a response with HTTP status 200 cannot be taken
as success; judge by the body" (GenAuth docs, ``docs/reference/error-code.md``). Parsing is kept
apart from the verdict (:mod:`bulkresign.classify`) so both read as small pure functions.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC

import orjson

__all__ = [
    "MAX_RETRY_AFTER",
    "Envelope",
    "flat",
    "one_line",
    "parse_envelope",
    "parse_retry_after",
    "retry_after_from",
]

#: The longest pause a ``Retry-After`` may impose; a larger value is clipped to this.
MAX_RETRY_AFTER = 300.0
_MESSAGE_LIMIT = 300
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class Envelope:
    """The JSON wrapper around every GenAuth answer: ``{statusCode, message, apiCode, …, data}``."""

    status_code: int
    message: str
    api_code: int | None
    request_id: str | None
    data: object


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None


def parse_envelope(body: bytes) -> Envelope | None:
    """The envelope in ``body``, or ``None`` when it is not JSON or has no integer statusCode."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    code = doc.get("statusCode")
    if isinstance(code, str):  # a numeric string would be a different API, not a typo
        return None
    status_code = _int(code)
    if status_code is None:
        return None
    message = doc.get("message")
    request_id = doc.get("requestId")
    return Envelope(
        status_code=status_code,
        message=flat(message) if isinstance(message, str) else "",
        api_code=_int(doc.get("apiCode")),
        request_id=(flat(request_id) or None) if isinstance(request_id, str) else None,
        data=doc.get("data"),
    )


def flat(text: str) -> str:
    """``text`` with control characters collapsed to spaces, whole: a server's text is cut
    (:func:`one_line`) only once scrubbed of secrets, or a secret across the cut would stay."""
    return _CONTROL.sub(" ", text).strip()


def one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """``text`` with control characters collapsed to spaces, cut to ``limit`` characters."""
    text = flat(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_retry_after(
    value: str | None, *, now: float, cap: float = MAX_RETRY_AFTER
) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or ``None`` when it is absent or garbage.

    Both forms of RFC 9110 §10.2.3 (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after):
    ``delay-seconds`` and an ``HTTP-date`` (IMF-fixdate, RFC 850 or asctime), taken relative to
    ``now`` (epoch seconds). A date in the past means "now" (0); the result is clipped to ``cap``.
    """
    if value is None:
        return None
    text = value.strip()
    if _DIGITS.fullmatch(text):
        return min(float(int(text)), cap)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime carries no zone; every HTTP-date is GMT
        when = when.replace(tzinfo=UTC)
    return min(max(when.timestamp() - now, 0.0), cap)


def retry_after_from(headers: Mapping[str, str], *, now: float) -> float | None:
    """The ``Retry-After`` pause of a response, measured against its own ``Date`` when present.

    Using the server's ``Date`` as the reference for an ``HTTP-date`` cancels clock skew between
    us and the server; ``now`` is the fallback. Header names must be lower-case.
    """
    reference = now
    date = headers.get("date")
    if date is not None:
        try:
            parsed = email.utils.parsedate_to_datetime(date.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
        if parsed is not None:
            reference = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return parse_retry_after(headers.get("retry-after"), now=reference)
