"""Redaction: credential fields and secret values out of anything about to be logged or journaled.

:func:`redact` turns a value into JSON-ready data and replaces by ``"[redacted]"`` the value of any
field named like a credential (:data:`SECRET_SUFFIXES`, :data:`SECRET_FIELDS`), and every
occurrence of a registered secret value (:func:`add_secret`) or of a JWT anywhere in any string:
nested dicts and lists, dict keys, bytes, reprs of other objects, exception messages. Objects that
are not JSON types become text *before* the scrub, so no repr slips past it. structlog warns that
secrets leak through exception strings and traceback locals
(https://www.structlog.org/en/stable/recipes.html). The event log runs it as the
:class:`Redactor` processor (:mod:`bulkresign.logs`); the audit journal calls it on every entry.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import cast

from structlog.typing import EventDict, WrappedLogger

from bulkresign.envelope import one_line

__all__ = [
    "REDACTED",
    "SECRET_FIELDS",
    "SECRET_SUFFIXES",
    "Redactor",
    "add_secret",
    "forget_secrets",
    "normal_name",
    "redact",
    "scrub_secrets",
    "scrubber",
]

REDACTED = "[redacted]"

#: A field is redacted when its name, lower-cased without ``_`` and ``-``, ends with one of these
#: (``token``, ``access_token``, ``accessKeySecret``, ``Set-Cookie``, ``proxy-authorization``…)…
SECRET_SUFFIXES = ("token", "tokens", "secret", "password", "passwd", "cookie", "authorization")
#: …or is one of these.
SECRET_FIELDS = frozenset({"apikey", "bearer", "credentials", "privatekey", "pseudonymkey"})

# Three base64url segments, the first two JSON objects ("eyJ" is base64 for '{"'): RFC 7519 §3.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_MAX_DEPTH = 32  # deeper (or self-referencing) structures are not walked, only replaced


def normal_name(key: str) -> str:
    """A field name as the rules compare it: lower-cased, without ``_`` and ``-``."""
    return key.lower().replace("_", "").replace("-", "")


@functools.lru_cache(maxsize=4096)
def _is_secret_field(key: str) -> bool:
    name = normal_name(key)
    return name in SECRET_FIELDS or name.endswith(SECRET_SUFFIXES)


class _SecretValues:
    """The known secret values, compiled into one pattern; safe to extend from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._snapshot: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not value or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            # Longest first, so a secret containing another is replaced whole.
            alternatives = sorted(self._values, key=len, reverse=True)
            self._snapshot = tuple(alternatives)
            self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._snapshot = ()
            self._pattern = None

    def found(self, text: str) -> bool:
        """Whether ``text`` holds a registered secret or anything shaped like a JWT."""
        # Substring tests (C's two-way search) beat the regex alternation several times over.
        return any(v in text for v in self._snapshot) or (
            "eyJ" in text and _JWT.search(text) is not None
        )

    def scrub(self, text: str) -> str:
        pattern = self._pattern  # one read: a concurrent add() swaps in a whole new pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        return text


_SECRETS = _SecretValues()


def add_secret(value: str) -> None:
    """Register a secret value (a key secret, a freshly minted token) to redact from every log."""
    _SECRETS.add(value)


def scrub_secrets(text: str) -> str:
    """``text`` with every registered secret value and anything shaped like a JWT replaced."""
    return _SECRETS.scrub(text)


def scrubber(*secrets: str, whole: Iterable[str] = ()) -> Callable[[str, int], str]:
    """A function that makes a server's text safe to keep, and cuts it to a length.

    It replaces each of ``secrets`` and ``whole`` by ``***`` in any case, every registered
    secret and anything JWT-shaped (:func:`scrub_secrets`), then cuts the text (a control
    character becomes a space) and replaces any run of :data:`FRAGMENT` or more characters that
    is also in one of ``secrets``: a server may echo part of a secret, or one split by a
    character of its own. ``whole`` is replaced only whole: an access key ID is often the
    userpool's ObjectId, which shares long runs with the pool's user IDs.
    """
    fragile = set(secrets) - {""}
    kept = fragile | (set(whole) - {""})
    # Longest first, so that a secret holding another is replaced whole.
    ordered = sorted(kept, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE) if ordered else None
    grams = {
        s.translate(_ASCII_LOWER)[i : i + FRAGMENT]
        for s in fragile
        for i in range(len(s) - FRAGMENT + 1)
    }

    def scrub(text: str, limit: int) -> str:
        if pattern is not None:
            text = pattern.sub("***", text)
        text = one_line(scrub_secrets(text), limit)
        return _without_fragments(text, grams) if grams else text

    return scrub


#: The shortest part of a credential :func:`scrubber` looks for in a server's text.
FRAGMENT = 8
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _without_fragments(text: str, grams: set[str]) -> str:
    """``text`` with every run covered by a credential's ``FRAGMENT``-grams replaced."""
    low = text.translate(_ASCII_LOWER)
    starts = [i for i in range(len(low) - FRAGMENT + 1) if low[i : i + FRAGMENT] in grams]
    if not starts:
        return text
    out, done = [], 0
    for i in starts:
        if i > done:
            out += [text[done:i], "***"]
        elif not out or out[-1] != "***":
            out.append("***")
        done = max(done, i + FRAGMENT)
    out.append(text[done:])
    return "".join(out)


def forget_secrets() -> None:
    """Forget every registered secret value (tests, and :func:`bulkresign.logs.reset_logging`)."""
    _SECRETS.clear()


def redact(value: object, depth: int = 0) -> object:
    """``value`` as JSON-ready data, with credential fields and known secret values redacted.

    Objects that are not JSON types become their ``str()`` (exceptions ``Type: message``,
    dataclasses a dict of their fields) *before* the scrub, so no repr slips past it.
    """
    if type(value) is dict and (flat := _redact_flat(value)) is not None:
        return flat
    if isinstance(value, str):
        return _SECRETS.scrub(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)  # orjson refuses integers wider than 64 bits; a log call must not raise
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, Mapping):
        keys = [str(k) for k in value]
        # Field names are the same few dozen on every event: one search over them all.
        shown = [_SECRETS.scrub(k) for k in keys] if _SECRETS.found("\0".join(keys)) else keys
        return {
            name: REDACTED if _is_secret_field(key) else redact(v, depth + 1)
            for name, key, v in zip(shown, keys, value.values(), strict=True)
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        # A batch's 50 IDs: one search over them all (NUL never occurs in a secret, so no match
        # can span two items) instead of 50 scrubs; the event log and journal log every batch.
        try:
            joined = "\0".join(items)
        except TypeError:  # not all strings: walk them one by one
            joined = None
        if joined is not None and not _SECRETS.found(joined):
            return items
        return [redact(v, depth + 1) for v in items]
    if isinstance(value, bytes | bytearray | memoryview):
        return _SECRETS.scrub(bytes(value).decode("utf-8", "backslashreplace"))
    if isinstance(value, BaseException):
        return _SECRETS.scrub(f"{type(value).__name__}: {value}")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return redact(fields, depth)
    return _SECRETS.scrub(str(value))


def _redact_flat(value: Mapping[object, object]) -> dict[str, object] | None:
    """:func:`redact` of a flat event in one search over all its text, or ``None`` if it is not one.

    Every event the dispatcher logs or journals is flat: string keys; values ``None``, booleans,
    floats, 64-bit integers, strings, or lists and tuples of strings. When no secret occurs in
    their text joined by NUL (a match across a NUL only sends the event down the full walk),
    scrubbing would change nothing, and only the secret-named fields are replaced. A request's
    four records each took this walk: 17-19 µs each, against 5-6 µs here.
    """
    texts: list[str] = []
    out: dict[str, object] = {}
    for key, v in value.items():
        if not isinstance(key, str):
            return None
        if isinstance(v, str):
            texts.append(v)
        elif isinstance(v, list | tuple):
            try:
                texts.append("\0".join(v))
            except TypeError:  # not all strings
                return None
            v = list(v)
        elif isinstance(v, bool) or v is None or type(v) is float:
            pass
        elif type(v) is not int or not -(2**63) <= v < 2**64:
            return None
        texts.append(key)
        out[key] = REDACTED if _is_secret_field(key) else v
    if _SECRETS.found("\0".join(texts)):
        return None
    return out


class Redactor:
    """Processor: make the event JSON-ready and redact every secret in it (see :func:`redact`)."""

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        """Return the redacted event."""
        return cast(EventDict, redact(event_dict))
