"""The vectorized path for the common case: a block of plain lines, each 24 hex digits.

Numpy splits the block at ``\\n``, strips one ``\\r``, picks the lines that are exactly 24 bytes
of ``[0-9A-Fa-f]``, lowercases them and parses them into their 12-byte ObjectId keys, all in a
few passes over the block. Every other line (blank, comment, padded, junk) goes to the exact
per-line path by its index, so counts, line numbers and order are the same as if every line had
taken that path; the tests compare the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["OBJECT_ID_LEN", "HexBlock", "split_hex_block"]

OBJECT_ID_LEN = 24
_ALL_TRUE = np.uint64(0x0101010101010101)  # eight True bytes read as one word
_U8 = npt.NDArray[np.uint8]
_I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class HexBlock:
    """A block of whole lines, split, with its ObjectId lines already parsed.

    Attributes:
        starts, ends: each line's byte span in the block, without ``\\n`` and one ``\\r``.
        good: indexes of the lines that are exactly 24 hex digits, ascending.
        keys: their 12-byte keys, zero-padded to 16 bytes, as ``(len(good), 2)`` uint64.
        text: their lowercased text, ``(len(good), 24)`` bytes.
    """

    starts: _I64
    ends: _I64
    good: npt.NDArray[np.intp]
    keys: npt.NDArray[np.uint64]
    text: _U8


def split_hex_block(data: bytes) -> HexBlock:
    """Split ``data`` (whole lines, each ending in ``\\n``) and parse its 24-hex-digit lines."""
    a = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(a == 10)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    ends -= (ends > starts) & (a[np.maximum(ends - 1, 0)] == 13)
    cand = np.flatnonzero(ends - starts == OBJECT_ID_LEN)
    if len(a) < OBJECT_ID_LEN or not cand.size:
        empty = np.empty((0, OBJECT_ID_LEN), np.uint8)
        return HexBlock(starts, ends, cand, np.empty((0, 2), np.uint64), empty)
    rows = sliding_window_view(a, OBJECT_ID_LEN)[starts[cand]]
    lower = rows | np.uint8(0x20)  # lowercases letters; digits already have the bit set
    hexdigit = ((rows - np.uint8(ord("0"))) < 10) | ((lower - np.uint8(ord("a"))) < 6)
    whole = hexdigit.view(np.uint64)  # (n, 3): a row is valid when all 24 bytes are True
    ok = np.flatnonzero((whole[:, 0] & whole[:, 1] & whole[:, 2]) == _ALL_TRUE)
    if len(ok) < len(cand):
        cand, lower = cand[ok], np.take(lower, ok, axis=0)
    # '0'-'9' → 0-9 and 'a'-'f' → 10-15: the low nibble, plus 9 for letters (bit 6 set)
    nibble = (lower & np.uint8(15)) + (lower >> np.uint8(6)) * np.uint8(9)
    pairs = nibble.view(np.uint16)  # each pair of digits, the first in the low byte
    padded = np.zeros((len(cand), 16), np.uint8)
    padded[:, :12] = ((pairs & np.uint16(0xFF)) << np.uint16(4)) | (pairs >> np.uint16(8))
    return HexBlock(starts, ends, cand, padded.view(np.uint64), lower)
