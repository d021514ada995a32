"""Bucket arithmetic for the dedup table: the key scramble, home buckets, and layout helpers.

These are the pure pieces of :mod:`bulkresign.dedup`, kept apart so the table class reads as the
algorithm: see that module's docstring for the layout they serve.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "BLOCK_KEYS",
    "BUCKET",
    "LOW24",
    "PART_BITS",
    "S24",
    "KeyBatch",
    "Scrambler",
    "bulk_build",
    "empty_buckets",
    "first_occurrences",
    "home_bucket",
    "prepare_keys",
    "probe_one",
    "ranks",
    "scramble",
]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Idx = npt.NDArray[np.intp]
Scrambler = Callable[[U64, U64], tuple[U64, U64]]

#: Partitions are picked by the top PART_BITS bits of w0: 64 of them, so the transient of
#: growing one (its keys copied, sorted and re-laid) stays near 1/64 of the table.
PART_BITS = 6
#: Slots per bucket: four 8-byte words of w0, one cache line with its w1 row beside it.
BUCKET = 4
#: Keys prepared at once: positions must fit in the low 24 bits of the sort key.
BLOCK_KEYS = 1 << 24
S24 = np.uint64(24)
LOW24 = np.uint64((1 << 24) - 1)


def _round(x: U64, c: np.uint64) -> U64:
    """The round function: splitmix64's finalizer, keyed by the multiplier."""
    z = (x ^ (x >> np.uint64(30))) * c
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def scramble(k0: U64, k1: U64) -> tuple[U64, U64]:
    """A 128-bit bijection: ``(w0, w1)`` with ``w0`` depending on every bit of the key."""
    w1 = k0 ^ _round(k1, np.uint64(0xBF58476D1CE4E5B9))
    w0 = k1 ^ _round(w1, np.uint64(0x9E3779B97F4A7C15))
    return w0, w1


def home_bucket(w0: U64, buckets: int) -> I64:
    """Each key's first bucket: the 32 bits below the partition bits, scaled to ``buckets``."""
    sel = (w0 >> np.uint64(32 - PART_BITS)) & np.uint64(0xFFFFFFFF)
    return ((sel * np.uint64(buckets)) >> np.uint64(32)).astype(np.int64)


def first_occurrences(top: U64, w0: U64, w1: U64) -> Mask:
    """For keys sorted by (top bits, position): True at the first occurrence of each key."""
    first = np.ones(len(top), np.bool_)
    if len(top) < 2:
        return first
    same_top = top[1:] == top[:-1]
    same_key = same_top & (w0[1:] == w0[:-1]) & (w1[1:] == w1[:-1])
    first[1:] = ~same_key
    clash = np.flatnonzero(same_top & ~same_key)
    if clash.size:  # distinct keys share the top bits: settle those runs exactly (rare)
        run_start = np.flatnonzero(np.concatenate(([True], ~same_top)))
        for r in np.unique(np.searchsorted(run_start, clash + 1, side="right") - 1).tolist():
            a = int(run_start[r])
            b = int(run_start[r + 1]) if r + 1 < len(run_start) else len(top)
            seen: set[tuple[int, int]] = set()
            for j in range(a, b):
                key = (int(w0[j]), int(w1[j]))
                first[j] = key not in seen
                seen.add(key)
    return first


def probe_one(t0: U64, t1: U64, w0: int, w1: int, bucket: int, *, insert: bool) -> bool:
    """One key's probe, in plain Python: True if added (``insert``) or found."""
    buckets = t0.shape[0]
    for step in range(buckets):
        b = (bucket + step) % buckets
        for j, stored in enumerate(t0[b].tolist()):
            if stored == w0 and int(t1[b, j]) == w1:
                return not insert
            if stored == 0:
                if insert:
                    t0[b, j], t1[b, j] = w0, w1
                return insert
    raise AssertionError("key table overfull")  # unreachable below MAX_LOAD


def empty_buckets(buckets: int) -> U64:
    """A zeroed ``(buckets, BUCKET)`` array in an anonymous mapping of its own, not in the C heap.

    glibc raises its mmap threshold each time a mapped block is freed, so once the partitions
    have grown a few times, arrays from ``np.zeros`` come from its heap and the outgrown ones
    stay behind as holes the process cannot return. A mapping of our own goes back to the
    system the moment its array is freed, and the kernel zero-fills its pages on first touch.
    """
    slots = mmap.mmap(-1, buckets * BUCKET * 8, flags=mmap.MAP_PRIVATE)
    return np.frombuffer(slots, np.uint64).reshape(buckets, BUCKET)


def bulk_build(t0: U64, t1: U64, w0: U64, w1: U64, home: I64) -> None:
    """Fill empty tables with unique keys sorted by home bucket, without probing rounds.

    Placing each key at ``max(first slot of its home bucket, previous key's slot + 1)`` is what
    inserting them one by one would do: every slot between a key's home and its place is taken,
    so a lookup never stops short of it. Keys pushed past the last slot wrap around to the first
    free slots, one at a time (a handful at most).
    """
    idx = np.arange(len(w0), dtype=np.int64)
    pos = home * BUCKET  # in place: a whole partition at a time, the peak of a growing table
    pos -= idx
    np.maximum.accumulate(pos, out=pos)
    pos += idx
    del idx
    flat0, flat1 = t0.reshape(-1), t1.reshape(-1)
    fit = int(np.searchsorted(pos, len(flat0)))  # positions ascend: the overflow is a tail
    flat0[pos[:fit]] = w0[:fit]
    flat1[pos[:fit]] = w1[:fit]
    for a, b, h in zip(w0[fit:].tolist(), w1[fit:].tolist(), home[fit:].tolist(), strict=True):
        probe_one(t0, t1, a, b, h, insert=True)


def ranks(sorted_ids: I64) -> I64:
    """Each element's index within its run of equal values (the input is sorted)."""
    n = len(sorted_ids)
    idx = np.arange(n)
    if not n:
        return idx
    start = np.ones(n, np.bool_)
    start[1:] = sorted_ids[1:] != sorted_ids[:-1]
    return idx - np.maximum.accumulate(np.where(start, idx, 0))


@dataclass(frozen=True, slots=True)
class KeyBatch:
    """Keys made ready for the table: scrambled, sorted by ``w0``, with their positions.

    ``w0``/``w1``/``index`` hold the keys with ``w0 != 0`` (the first occurrence of each, when
    prepared ``unique``), sorted by ``w0``, and each one's index in the input; ``odd`` and
    ``odd_keys`` the others, in input order.
    """

    size: int
    w0: U64
    w1: U64
    index: Idx
    odd: Idx
    odd_keys: list[tuple[int, int]]


def prepare_keys(keys: U64, scrambler: Scrambler, *, unique: bool = True) -> KeyBatch:
    """Scramble ``keys`` and sort them by ``w0``; with ``unique``, keep first occurrences only."""
    if len(keys) > BLOCK_KEYS:
        raise ValueError(f"at most {BLOCK_KEYS} keys at once, not {len(keys)}")
    w0, w1 = scrambler(keys[:, 0], keys[:, 1])
    odd: Idx = np.flatnonzero(w0 == 0)
    odd_keys = list(zip(w0[odd].tolist(), w1[odd].tolist(), strict=True))
    live: Idx = np.flatnonzero(w0) if len(odd) else np.arange(len(keys))
    if len(odd):
        w0, w1 = w0[live], w1[live]
    packed = (w0 >> S24 << S24) | np.arange(len(w0), dtype=np.uint64)
    packed.sort()
    pos = (packed & LOW24).astype(np.intp)
    w0, w1 = w0[pos], w1[pos]
    if unique:
        first = np.flatnonzero(first_occurrences(packed >> S24, w0, w1))
        w0, w1, pos = w0[first], w1[first], pos[first]
    return KeyBatch(len(keys), w0, w1, live[pos], odd, odd_keys)
