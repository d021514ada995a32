"""Structured logging: JSON lines with secrets redacted and personal IDs pseudonymized.

Every event is one JSON object per line (``timestamp`` in ISO-8601 UTC, ``level``, ``event`` and
the event's fields), rendered with orjson into a file created with mode 0600 — the production
recipe of https://www.structlog.org/en/stable/performance.html. Two processors run before the
renderer:

* :class:`~bulkresign.redact.Redactor` (:mod:`bulkresign.redact`, re-exported here) replaces
  credential fields and every registered secret value or JWT by ``"[redacted]"``; tracebacks are
  rendered without locals, where secrets hide.
* :class:`Pseudonymizer` replaces the value of every personal-ID field (:data:`ID_FIELDS`) by a
  keyed pseudonym, ``p:`` + the first 12 hex digits of HMAC-SHA256(run key, ID). The key is the
  run's (the ledger keeps it), so an operator holding the ledger can map a pseudonym back with
  :func:`pseudonym`; anyone holding only the log cannot. Free text is not searched for IDs: never
  put an ID into an event name or message, only into an ID field. Text we do not write — the
  server's error message, which names an unknown ID — comes with the IDs it may name in
  :data:`TEXT_IDS`, and each of those, and any user_id, is replaced by its pseudonym in the
  event's ``message``.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import hmac
import logging
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from secrets import token_bytes
from typing import IO, BinaryIO, cast

import orjson
import structlog
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from bulkresign.errors import ConfigError
from bulkresign.files import open_private
from bulkresign.redact import (
    REDACTED,
    SECRET_FIELDS,
    SECRET_SUFFIXES,
    Redactor,
    add_secret,
    forget_secrets,
    normal_name,
    redact,
)

__all__ = [
    "ID_FIELDS",
    "REDACTED",
    "SECRET_FIELDS",
    "SECRET_SUFFIXES",
    "TEXT_IDS",
    "Pseudonymizer",
    "Redactor",
    "add_secret",
    "check_log_file",
    "configure_logging",
    "get_logger",
    "pseudonym",
    "redact",
    "reset_logging",
]

#: Field names holding personal IDs, compared as :func:`~bulkresign.redact.normal_name` gives
#: them: ``id``, ``ids``, ``user_id``, ``user_ids``, ``value``, ``values``, ``email``, ``emails``,
#: ``phone``, ``phones``.
#: A list value is pseudonymized element by element.
ID_FIELDS = frozenset(
    {"id", "ids", "userid", "userids", "value", "values", "email", "emails", "phone", "phones"}
)

#: An event field listing the IDs its free text may name (the server's message): they are
#: pseudonymized there too, and the field itself is never written.
TEXT_IDS = "text_ids"

#: A GenAuth user_id inside free text (24 hex digits, not part of a longer token).
_OBJECT_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{24}(?![0-9A-Za-z])")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


@functools.lru_cache(maxsize=4096)
def _is_id_field(key: str) -> bool:
    return normal_name(key) in ID_FIELDS


def pseudonym(key: bytes, user_id: str) -> str:
    """The keyed pseudonym of ``user_id``: ``p:`` + 12 hex digits of HMAC-SHA256(key, user_id).

    The ledger stores the run's key as hex, so a tool holding the ledger calls
    ``pseudonym(bytes.fromhex(manifest.pseudonym_key), user_id)``.
    """
    data = user_id.encode("utf-8", "surrogatepass")
    return "p:" + hmac.new(key, data, hashlib.sha256).hexdigest()[:12]


class Pseudonymizer:
    """Processor: replace every personal-ID field (:data:`ID_FIELDS`) by its keyed pseudonym.

    Runs after :class:`Redactor`, so it only meets JSON-ready data. With ``enabled=False``
    (``--log-ids``) the IDs are logged as given.
    """

    def __init__(self, key: bytes, *, enabled: bool = True) -> None:
        self._key = key
        self._enabled = enabled

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        """Return the event with its ID fields pseudonymized."""
        named = event_dict.pop(TEXT_IDS, None)
        if not self._enabled:
            return event_dict
        if named:
            event_dict = self._scrub(event_dict, named)
        return cast(EventDict, self._walk(event_dict))

    def _scrub(self, event_dict: EventDict, ids: list[str]) -> EventDict:
        """Replace each of ``ids``, and any user_id, in the event's message by its pseudonym.

        The server may spell an ID as it stores it rather than as sent: any case, and a phone
        without its country code; and it names the account by its user_id whatever ID type was
        sent ("不能重复离职: <user_id>" for an email), so 24-hex tokens are hidden as well.
        """
        text = event_dict.get("message")
        if not isinstance(text, str):
            return event_dict
        spellings = {v.casefold(): i for i in ids if i for v in _spellings(i)}
        if spellings:
            # Longest first, so that an ID is replaced whole rather than a shorter spelling in it.
            either = "|".join(re.escape(v) for v in sorted(spellings, key=len, reverse=True))
            text = re.sub(
                either,
                lambda m: pseudonym(self._key, spellings.get(m.group(0).casefold(), m.group(0))),
                text,
                flags=re.IGNORECASE,
            )
        text = _OBJECT_ID.sub(lambda m: pseudonym(self._key, m.group(0)), text)
        return {**event_dict, "message": text}

    def _walk(self, value: object) -> object:
        if isinstance(value, dict):
            return {
                k: self._hide(v) if _is_id_field(k) else self._walk(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value

    def _hide(self, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, list):
            return [self._hide(v) for v in value]
        if isinstance(value, dict):
            return self._walk(value)
        return pseudonym(self._key, str(value))


def check_log_file(path: Path) -> None:
    """Refuse a ``--log`` that is a symbolic link or a file with content other than a log's.

    An existing log is appended to (a resumed run); events appended to anything else would
    spoil it, and leak IDs into it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: a symbolic link; name the file itself") from None
        return  # unreadable: opening it to write will say why
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{path}: is a directory; --log names a file")
    with open(fd, "rb") as existing:
        first = existing.readline(1 << 16)
    if not first:
        return
    try:
        event = orjson.loads(first)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or not {"event", "level"} <= event.keys():
        raise ConfigError(f"{path}: exists and is not a bulkresign log; name another --log")


def _spellings(user_id: str) -> list[str]:
    """``user_id`` and, for a phone in E.164 form, its national number whatever the length of
    its country code (one to three digits): hiding a few digits too many harms nobody."""
    if not user_id.startswith("+") or not user_id[1:].isdigit():
        return [user_id]
    return [user_id, user_id[1:], *(user_id[n:] for n in (2, 3, 4) if len(user_id) - n >= 6)]


class _LogFile:
    """The one open log file, so reconfiguring or resetting can close it."""

    handle: IO[bytes] | None = None

    @classmethod
    def replace(cls, handle: IO[bytes] | None) -> None:
        old, cls.handle = cls.handle, handle
        if old is not None:
            old.close()


def _drop(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    raise structlog.DropEvent


def configure_logging(
    path: Path | None,
    *,
    secrets: Iterable[str] = (),
    log_ids: bool = False,
    pseudonym_key: bytes | None = None,
    level: str = "info",
) -> None:
    """Send structlog events to ``path`` as redacted, pseudonymized JSON lines (``None``: nowhere).

    Calling it again replaces the previous configuration and closes the previous file; secrets
    registered so far stay registered until :func:`reset_logging`. An existing ``path`` is appended
    to, and refused unless it is private. Without ``pseudonym_key`` a random key is used, so the
    pseudonyms cannot be mapped back.
    """
    min_level = _LEVELS.get(level.lower())
    if min_level is None:
        raise ConfigError(f"log level {level!r}: use debug, info, warning, error or critical")
    for value in secrets:
        add_secret(value)
    key = pseudonym_key if pseudonym_key is not None else token_bytes(32)
    add_secret(key.hex())
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        ExceptionRenderer(ExceptionDictTransformer(show_locals=False, use_rich=False)),
        Redactor(),
        Pseudonymizer(key, enabled=not log_ids),
        structlog.processors.JSONRenderer(serializer=orjson.dumps),
    ]
    handle: BinaryIO | None = None
    factory: structlog.BytesLoggerFactory | structlog.ReturnLoggerFactory
    if path is not None:
        check_log_file(path)
        handle = cast(BinaryIO, open_private(path, "ab"))  # refuses a shared file or a link
        factory = structlog.BytesLoggerFactory(cast(BinaryIO, _Named(handle, path)))
    else:
        processors, factory = [_drop], structlog.ReturnLoggerFactory()
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=factory,
        # Not cached, so a reconfiguration reaches loggers that modules fetched at import time.
        cache_logger_on_first_use=False,
    )
    _LogFile.replace(handle)


class _Named:
    """The log file, whose write errors name it: a full disk said only "No space left on
    device", without saying on which file."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self._handle, self._path = handle, path

    def write(self, data: bytes) -> int:
        try:
            return self._handle.write(data)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self._path)) from None

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self._path)) from None


def reset_logging() -> None:
    """Undo :func:`configure_logging`: close the file, forget the secrets, restore structlog."""
    structlog.reset_defaults()
    _LogFile.replace(None)
    forget_secrets()


def get_logger(**initial_values: object) -> FilteringBoundLogger:
    """A structlog logger, optionally with fields bound to every event it logs."""
    return cast(FilteringBoundLogger, structlog.get_logger(**initial_values))
