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

__all__ = ["id_keys", "match_form", "match_keys"]


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
    and protected by an excluded ``a@x.com``)."""
    if spec.id_type is IdType.EMAIL and spec.case_sensitive_email:
        return [i.lower() for i in ids]
    return ids


def match_keys(spec: InputSpec, ids: list[str]) -> npt.NDArray[np.uint64]:
    """The dedup keys of ``ids`` (:func:`match_form`)."""
    if not ids:
        return np.empty((0, 2), np.uint64)
    return id_keys(spec.id_type, match_form(spec, ids))
