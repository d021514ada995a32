"""Dedup keys of normalized IDs: 128 bits each, whatever the ID's length.

A ``user_id`` is its ObjectId's own 12 bytes, zero-padded: the key *is* the ID, so the set is
exact. Any other type is keyed by BLAKE2b-128 of the normalized value's UTF-8
(https://www.rfc-editor.org/rfc/rfc7693): two different IDs share a key only by a 128-bit
collision, which no input of this world will produce (64 bits would not be enough at 10⁸ IDs).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from bulkresign.inputspec import InputSpec
from bulkresign.models import IdType

__all__ = ["id_keys", "match_form", "match_keys", "national_number"]


def id_keys(id_type: IdType, ids: list[str]) -> npt.NDArray[np.uint64]:
    """The 128-bit dedup keys of normalized IDs, as ``(len(ids), 2)`` uint64."""
    if id_type is IdType.USER_ID:
        raw = np.frombuffer(bytes.fromhex("".join(ids)), np.uint8).reshape(-1, 12)
        padded = np.zeros((len(ids), 16), np.uint8)
        padded[:, :12] = raw
        return padded.view(np.uint64)
    digests = b"".join(hashlib.blake2b(v.encode(), digest_size=16).digest() for v in ids)
    return np.frombuffer(digests, np.uint64).reshape(-1, 2)


def match_form(spec: InputSpec, ids: list[str]) -> list[str]:
    """Normalized IDs as the server matches them, which dedup and ``--exclude`` compare: emails
    always without case, because GenAuth matches them so, even when ``--case-sensitive-email``
    keeps the case of what is sent (``A@x.com`` after ``a@x.com`` is the same user: a duplicate,
    and protected by an excluded ``a@x.com``); phones without their country code
    (:func:`national_number`)."""
    if spec.id_type is IdType.EMAIL and spec.case_sensitive_email:
        return [i.lower() for i in ids]
    if spec.id_type is IdType.PHONE:
        return [national_number(i) for i in ids]
    return ids


#: ITU-T E.164 country codes are prefix-free: one digit for 1 and 7, two for the codes listed
#: here, three for every other (https://www.itu.int/pub/T-SP-E.164D).
_TWO_DIGIT_CODES = frozenset(
    str(code)
    for code in (20, 27, *range(30, 35), 36, 39, 40, 41, *range(43, 50), *range(51, 59))
    + (*range(60, 67), 81, 82, 84, 86, *range(90, 96), 98)
)


def national_number(phone: str) -> str:
    """A normalized phone without its country code (``+8613800000000`` → ``13800000000``).

    GenAuth keeps ``phone`` apart from ``phoneCountryCode`` and finds a user by either spelling,
    so dedup and ``--exclude`` compare the national number: ``+15550000007`` and ``5550000007``
    are one ID (the spelling first met is the one sent). A number without ``+`` is taken as
    national already.
    """
    if not phone.startswith("+") or len(phone) < 3:
        return phone
    digits = phone[1:]
    code = 1 if digits[0] in "17" else 2 if digits[:2] in _TWO_DIGIT_CODES else 3
    return digits[code:] or phone


def match_keys(spec: InputSpec, ids: list[str]) -> npt.NDArray[np.uint64]:
    """The dedup keys of ``ids`` (:func:`match_form`)."""
    if not ids:
        return np.empty((0, 2), np.uint64)
    return id_keys(spec.id_type, match_form(spec, ids))
