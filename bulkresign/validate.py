"""Per-``userIdType`` checks: a raw value becomes one normalized ID, or a reason to reject it.

Everything here is pure. The rules never *repair* a value into a different one: a value with a
control character, invalid UTF-8 or the wrong shape is rejected, never cleaned up, because a
cleaned-up ID could name another user. The only changes made are ones that cannot change which user
is meant: trimming spaces and tabs at both ends, lowercasing hex and (unless asked not to) emails,
which GenAuth matches case-insensitively, and dropping separators from phone numbers. Each
normalization is idempotent. The rules are listed in docs/ingest.md.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from enum import StrEnum

from bulkresign.models import IdType

__all__ = [
    "PREVIEW_BYTES",
    "Normalizer",
    "RejectReason",
    "SkipReason",
    "normalizer",
    "preview_bytes",
    "preview_text",
    "printable",
]

#: How much of a rejected value is shown (bytes of a raw line, characters of a field).
PREVIEW_BYTES = 80


class RejectReason(StrEnum):
    """Why a line yields no ID."""

    TOO_LONG = "too_long"
    NUL = "nul_byte"
    INVALID_UTF8 = "invalid_utf8"
    CONTROL = "control_character"
    COMMA = "comma"
    EMPTY = "empty"
    PADDED = "padded"
    """A username, external ID, identity or sync relation with spaces or tabs at an end: they
    may be part of the ID, and trimmed it could name another account."""
    BAD_CSV = "bad_csv"
    MISSING_COLUMN = "missing_column"
    EXTRA_FIELDS = "extra_fields"
    """A CSV/TSV record with more fields than the header (or the first record) and something
    in them: a delimiter inside an unquoted value (``Smith, John``) shifts every column after
    it, and the ID column would hold another field's value."""
    BAD_JSON = "bad_json"
    MISSING_FIELD = "missing_field"
    DUPLICATE_FIELD = "duplicate_field"
    INVALID_USER_ID = "invalid_user_id"
    INVALID_EMAIL = "invalid_email"
    INVALID_PHONE = "invalid_phone"
    INVALID_IDENTITY = "invalid_identity"
    INVALID_SYNC_RELATION = "invalid_sync_relation"


class SkipReason(StrEnum):
    """Why a line is not an ID and not an error either."""

    BLANK = "blank"
    COMMENT = "comment"
    HEADER = "header"
    CONTINUATION = "continuation"
    """A physical line inside a CSV record whose quoted field holds a line break."""


#: A normalizer maps a decoded field to its normalized ID, or to the reason it is rejected.
Normalizer = Callable[[str], str | RejectReason]

#: Spaces and tabs are trimmed; every other ASCII control is an error.
_TRIM = " \t"
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Unicode categories refused anywhere in an ID: controls, format characters (zero-width,
#: byte-order marks, bidi overrides), line and paragraph separators. See
#: https://www.unicode.org/reports/tr44/#General_Category_Values
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})

_USER_ID = re.compile(r"[0-9a-fA-F]{24}")
#: RFC 5322 dot-atom local part and an LDH domain of two or more labels, each also allowing
#: non-ASCII (RFC 6531/6532); quoted local parts and address literals are not accepted.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_ALNUM = r"[A-Za-z0-9\u0080-\U0010ffff]"
_LABEL = rf"{_ALNUM}(?:[A-Za-z0-9\-\u0080-\U0010ffff]{{0,61}}{_ALNUM})?"
_EMAIL_PATTERN = rf"({_ATOM}(?:\.{_ATOM})*)@({_LABEL}(?:\.{_LABEL})+)"


@functools.cache
def _email_re() -> re.Pattern[str]:
    """The non-ASCII email rule, compiled on first use: its Unicode ranges take ~30 ms to
    compile, a tenth of the CLI's start-up, and most inputs are ASCII or not emails at all."""
    return re.compile(_EMAIL_PATTERN)


_LOCAL_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-."
_DOMAIN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."
_PHONE_SEPARATORS = str.maketrans("", "", " -.()")
#: A ``+`` is followed by a country code, which never begins with 0 (ITU-T E.164): ``+00 1…``
#: would otherwise be cut as if ``+1…`` and match another spelling's user.
_PHONE = re.compile(r"\+[1-9][0-9]{4,14}|[0-9]{5,15}")


def printable(text: str) -> str:
    """Escape what a terminal would hide or act on: controls, format characters, separators."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() and unicodedata.category(ch) not in _BAD_CATEGORIES:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def preview_bytes(raw: bytes) -> str:
    """A printable copy of the first :data:`PREVIEW_BYTES` of a raw line, ``…`` when cut.

    Only the first ``PREVIEW_BYTES + 1`` bytes are looked at, so a line too long to be held whole
    gets the same preview as a short one with the same beginning. Bytes that are not UTF-8 show as
    ``\\xNN``.
    """
    head = raw[:PREVIEW_BYTES].decode("utf-8", errors="backslashreplace")
    return printable(head) + ("…" if len(raw) > PREVIEW_BYTES else "")


def preview_text(text: str) -> str:
    """A printable copy of the first :data:`PREVIEW_BYTES` characters of a field."""
    return printable(text[:PREVIEW_BYTES]) + ("…" if len(text) > PREVIEW_BYTES else "")


def _has_control(value: str) -> bool:
    if value.isascii():
        return _ASCII_CONTROL.search(value) is not None
    return any(unicodedata.category(ch) in _BAD_CATEGORIES for ch in value)


def _user_id(value: str) -> str | RejectReason:
    if _USER_ID.fullmatch(value) is None:
        return RejectReason.INVALID_USER_ID
    return value.lower()


def _email(value: str, lowercase: bool) -> str | RejectReason:
    valid = _ascii_email(value) if value.isascii() else _unicode_email(value)
    if not valid:
        return RejectReason.INVALID_EMAIL
    return value.lower() if lowercase else value


def _ascii_email(value: str) -> bool:
    """The rules of :func:`_email_re`, by byte-table deletions: 5-10× quicker than the regex."""
    raw = value.encode()
    local, at, domain = raw.rpartition(b"@")
    if not at or not local or len(raw) > 254 or len(local) > 64 or len(domain) > 253:
        return False
    if local.translate(None, _LOCAL_BYTES) or local[:1] == b"." or local[-1:] == b".":
        return False
    if b".." in local or domain.translate(None, _DOMAIN_BYTES):
        return False
    labels = domain.split(b".")
    if len(labels) < 2 or not all(labels) or max(map(len, labels)) > 63:
        return False
    if b"-." in domain or b".-" in domain or domain[:1] == b"-" or domain[-1:] == b"-":
        return False
    return not labels[-1].isdigit()  # an all-numeric TLD is an IP address, not a domain


def _unicode_email(value: str) -> bool:
    match = _email_re().fullmatch(value)
    if match is None or len(value) > 254 or len(match[1]) > 64 or len(match[2]) > 253:
        return False
    if match[2].rsplit(".", 1)[1].isdigit():
        return False
    return not any(unicodedata.category(ch).startswith("Z") for ch in value)  # NBSP, U+3000


def _phone(value: str) -> str | RejectReason:
    compact = value.translate(_PHONE_SEPARATORS)
    if _PHONE.fullmatch(compact) is None:
        return RejectReason.INVALID_PHONE
    return compact


def _pair(value: str, reason: RejectReason) -> str | RejectReason:
    """``<left>:<right>``, split at the first colon, both sides non-empty and unpadded."""
    left, colon, right = value.partition(":")
    if not colon or not left or not right or left.strip() != left or right.strip() != right:
        return reason
    return value


def normalizer(id_type: IdType, *, case_sensitive_email: bool = False) -> Normalizer:
    """The normalizer for ``id_type``.

    Every normalizer trims spaces and tabs (and rejects the value of a type whose IDs may hold
    them, :attr:`RejectReason.PADDED`), then rejects an empty value and any control, format or
    separator character before the type's own check.
    """
    shape: Callable[[str], str | RejectReason]
    if id_type is IdType.USER_ID:
        shape = _user_id
    elif id_type is IdType.EMAIL:
        lowercase = not case_sensitive_email
        shape = lambda v: _email(v, lowercase)  # noqa: E731
    elif id_type is IdType.PHONE:
        shape = _phone
    elif id_type is IdType.IDENTITY:
        shape = lambda v: _pair(v, RejectReason.INVALID_IDENTITY)  # noqa: E731
    elif id_type is IdType.SYNC_RELATION:
        shape = lambda v: _pair(v, RejectReason.INVALID_SYNC_RELATION)  # noqa: E731
    else:  # username, external_id: anything printable
        shape = str
    # A user_id, email or phone cannot hold a space, so trimming one keeps its meaning; a username
    # can (" kim" and "kim" may be two accounts), so a padded one is refused, never guessed at.
    trims = id_type in (IdType.USER_ID, IdType.EMAIL, IdType.PHONE)

    def normalize(raw: str) -> str | RejectReason:
        value = raw.strip(_TRIM)
        if not value:
            return RejectReason.EMPTY
        if not trims and value != raw:
            return RejectReason.PADDED
        if _has_control(value):
            return RejectReason.CONTROL
        if "," in value:
            # The read-back call takes its IDs comma-separated (userIds=a,b,c): an ID with a
            # comma could be resigned but never read back, so an in-doubt call could not be
            # resolved and the run could not verify it.
            return RejectReason.COMMA
        return shape(value)

    return normalize
