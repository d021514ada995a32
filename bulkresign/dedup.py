"""An exact set of 128-bit keys in numpy, filled a block at a time: "seen before?" for 10⁸ IDs.

A ``user_id`` key is the ObjectId's own 12 bytes (zero-padded), so its set is exact; any other ID
type is keyed by a 128-bit BLAKE2b digest of its normalized value, where a false duplicate would
need a collision among 2¹²⁸ values. Every membership answer compares all 128 bits.

Each key is first scrambled by a two-round Feistel network (https://en.wikipedia.org/wiki/Feistel_cipher),
a bijection of 128-bit values: storing the scrambled pair is storing the key, and its first word
``w0`` is a well-mixed 64-bit hash that picks the key's place, tells empty slots (``w0 == 0``)
apart, and settles almost every comparison on its own. The few keys with ``w0 == 0`` (the zero
key among them, otherwise one in 2⁶⁴) are kept in a Python set.

Layout: 16 partitions (by the top 4 bits of ``w0``), each an open-addressing table of 4-slot
buckets with linear probing from bucket to bucket (https://en.wikipedia.org/wiki/Linear_probing),
the two words in two arrays. Bucket ``i`` of ``n`` comes from the next 32 bits by Lemire's
multiply-shift (https://lemire.me/blog/2016/06/27/a-fast-alternative-to-the-modulo-reduction/),
so buckets follow the order of ``w0``. A block of keys is inserted in a few vectorized rounds:

1. sort the block by (``w0``, position): equal keys become neighbours, first occurrence first;
2. each round, every unresolved key reads its current bucket; a key found there is a duplicate;
   the missing keys bound for one bucket take its free slots in block order (their rank within
   the sorted run), and the others move on to the next bucket. The last few keys of long
   clusters are finished one by one.

Slots fill from the left and are never freed, so a bucket with a free slot ends every probe
sequence that reaches it. A partition grows 1.9× when it would pass a load of 0.8, so the table
holds 20–38 bytes per key, and growing one partition at a time keeps the transient to 1/16 of it.
A grown partition is rebuilt without probing: its keys, sorted by ``w0``, are laid out in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["KeyBatch", "KeyTable", "scramble"]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Idx = npt.NDArray[np.intp]
Scrambler = Callable[[U64, U64], tuple[U64, U64]]

PART_BITS = 4
PARTS = 1 << PART_BITS
BUCKET = 4
MAX_LOAD = 0.8
GROWTH = 1.9
#: With an estimate of the final count, growth may stop short of GROWTH, but not below this.
MIN_GROWTH = 1.25
#: The load a partition grown to the estimate would end at, were the estimate exact.
AIM_LOAD = 0.75
MIN_BUCKETS = 16
#: Keys left in a probe that are finished one by one instead of by another vectorized round.
SCALAR_TAIL = 64
#: Keys prepared at once: positions must fit in the low 24 bits of the sort key.
BLOCK_KEYS = 1 << 24

_S24 = np.uint64(24)
_LOW24 = np.uint64((1 << 24) - 1)
_SLOT_BITS = (np.uint32(1), np.uint32(1 << 8), np.uint32(1 << 16), np.uint32(1 << 24))


def _f(x: U64, c: np.uint64) -> U64:
    """The round function: splitmix64's finalizer, keyed by the multiplier."""
    z = (x ^ (x >> np.uint64(30))) * c
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def scramble(k0: U64, k1: U64) -> tuple[U64, U64]:
    """A 128-bit bijection: ``(w0, w1)`` with ``w0`` depending on every bit of the key."""
    w1 = k0 ^ _f(k1, np.uint64(0xBF58476D1CE4E5B9))
    w0 = k1 ^ _f(w1, np.uint64(0x9E3779B97F4A7C15))
    return w0, w1


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


class KeyTable:
    """An exact, insert-only set of 128-bit keys given as ``(n, 2)`` uint64 arrays.

    Args:
        scrambler: the bijection applied to keys; tests pass a weak one to force collisions
            of ``w0`` and of its top bits.
    """

    def __init__(self, *, scrambler: Scrambler | None = None) -> None:
        self._scramble: Scrambler = scrambler if scrambler is not None else scramble
        self._w0 = [np.zeros((MIN_BUCKETS, BUCKET), np.uint64) for _ in range(PARTS)]
        self._w1 = [np.zeros((MIN_BUCKETS, BUCKET), np.uint64) for _ in range(PARTS)]
        self._counts = [0] * PARTS
        self._expected = 0
        self._odd: set[tuple[int, int]] = set()  # keys whose w0 is 0, the empty-slot mark

    def __len__(self) -> int:
        return sum(self._counts) + len(self._odd)

    @property
    def nbytes(self) -> int:
        """Bytes held by the table's arrays."""
        return sum(a.nbytes for a in self._w0) + sum(a.nbytes for a in self._w1)

    def prepare(self, keys: U64, *, unique: bool = True) -> KeyBatch:
        """Scramble and sort ``keys`` (at most :data:`BLOCK_KEYS`) for :meth:`add` or :meth:`find`.

        This reads no table state, so it may run in another thread while the table is busy.
        With ``unique``, only the first occurrence of each key within ``keys`` is kept.
        """
        if len(keys) > BLOCK_KEYS:
            raise ValueError(f"at most {BLOCK_KEYS} keys at once, not {len(keys)}")
        w0, w1 = self._scramble(keys[:, 0], keys[:, 1])
        odd: Idx = np.flatnonzero(w0 == 0)
        odd_keys = list(zip(w0[odd].tolist(), w1[odd].tolist(), strict=True))
        live: Idx = np.flatnonzero(w0) if len(odd) else np.arange(len(keys))
        if len(odd):
            w0, w1 = w0[live], w1[live]
        packed = (w0 >> _S24 << _S24) | np.arange(len(w0), dtype=np.uint64)
        packed.sort()
        pos = (packed & _LOW24).astype(np.intp)
        w0, w1 = w0[pos], w1[pos]
        if unique:
            first = np.flatnonzero(_first_occurrences(packed >> _S24, w0, w1))
            w0, w1, pos = w0[first], w1[first], pos[first]
        return KeyBatch(len(keys), w0, w1, live[pos], odd, odd_keys)

    def add(self, batch: KeyBatch) -> Mask:
        """Add a prepared batch; True where a key was neither in the table nor earlier in it."""
        new = np.zeros(batch.size, np.bool_)
        for i, pair in zip(batch.odd.tolist(), batch.odd_keys, strict=True):
            new[i] = pair not in self._odd
            self._odd.add(pair)
        self._make_room(batch.w0)
        part, home = self._place(batch.w0)
        added = self._probe(part, home, batch.w0, batch.w1, insert=True)
        new[batch.index] = added
        for p, n in enumerate(np.bincount(part[added], minlength=PARTS).tolist()):
            self._counts[p] += n
        return new

    def find(self, batch: KeyBatch) -> Mask:
        """True where a key of a prepared batch is in the table."""
        found = np.zeros(batch.size, np.bool_)
        for i, pair in zip(batch.odd.tolist(), batch.odd_keys, strict=True):
            found[i] = pair in self._odd
        part, home = self._place(batch.w0)
        found[batch.index] = self._probe(part, home, batch.w0, batch.w1, insert=False)
        return found

    def insert(self, keys: U64) -> Mask:
        """Add ``keys``; True where a key was neither in the table nor earlier in ``keys``."""
        new = np.zeros(len(keys), np.bool_)
        for start in range(0, len(keys), BLOCK_KEYS):
            block = keys[start : start + BLOCK_KEYS]
            new[start : start + len(block)] = self.add(self.prepare(block))
        return new

    def contains(self, keys: U64) -> Mask:
        """True where a key is in the table."""
        found = np.zeros(len(keys), np.bool_)
        for start in range(0, len(keys), BLOCK_KEYS):
            block = keys[start : start + BLOCK_KEYS]
            found[start : start + len(block)] = self.find(self.prepare(block, unique=False))
        return found

    def expect(self, total: int) -> None:
        """Aim growth at ``total`` keys in all: an estimate from the reader's progress.

        A partition then grows only as far as the estimate needs (but at least
        :data:`MIN_GROWTH`×, so a creeping estimate cannot cause a rebuild per block) and never
        beyond :data:`GROWTH`×, which keeps the bound on bytes per key whatever the estimate.
        """
        self._expected = total

    def _make_room(self, w0: U64) -> None:
        incoming = np.bincount((w0 >> np.uint64(64 - PART_BITS)).astype(np.intp), minlength=PARTS)
        for p in range(PARTS):
            need = self._counts[p] + int(incoming[p])
            if need > MAX_LOAD * self._w0[p].size:
                self._grow(p, need)

    def _place(self, w0: U64) -> tuple[Idx, I64]:
        """Each key's partition and home bucket (``w0`` sorted)."""
        part = (w0 >> np.uint64(64 - PART_BITS)).astype(np.intp)
        bounds = np.searchsorted(part, np.arange(PARTS + 1)).tolist()
        home = np.empty(len(w0), np.int64)
        for p in range(PARTS):
            a, b = bounds[p], bounds[p + 1]
            if a < b:
                home[a:b] = _home(w0[a:b], self._w0[p].shape[0])
        return part, home

    def _probe(self, part: Idx, home: I64, w0: U64, w1: U64, *, insert: bool) -> Mask:
        """Look up (and with ``insert``, add) keys sorted by (partition, home bucket).

        Keys must be unique among themselves when inserting. Returns True where a key was added
        (``insert``) or found.
        """
        result = np.zeros(len(w0), np.bool_)
        active: Idx = np.arange(len(w0))
        cur = home
        slow: list[tuple[int, int, int, int, int]] = []  # keys for the exact one-by-one path
        while active.size > SCALAR_TAIL:
            bucket, rows = self._gather(part, cur)
            match = (rows == w0[:, None]).view(np.uint32)[:, 0]
            empty = (rows == 0).view(np.uint32)[:, 0]
            free = ((empty * np.uint32(0x01010101)) >> np.uint32(24)).astype(np.int64)
            settled = np.zeros(len(w0), np.bool_)
            check = np.flatnonzero(match)
            if check.size:
                found, unsure = self._confirm(part[check], bucket[check], match[check], w1[check])
                settled[check[found]] = True
                result[active[check[found]]] = not insert
                u = check[unsure]
                slow += zip(
                    active[u].tolist(),
                    part[u].tolist(),
                    cur[u].tolist(),
                    w0[u].tolist(),
                    w1[u].tolist(),
                    strict=True,
                )
                settled[check[unsure]] = True
            if insert:
                miss = np.flatnonzero(~settled)
                rank = _ranks((part[miss].astype(np.int64) << 40) | cur[miss])
                fits = rank < free[miss]
                go = miss[fits]
                self._write(part[go], bucket[go], BUCKET - free[go] + rank[fits], w0[go], w1[go])
                result[active[go]] = True
                onward = miss[~fits]
            else:
                onward = np.flatnonzero(~settled & (free == 0))
            active, part, cur = active[onward], part[onward], cur[onward] + 1
            w0, w1 = w0[onward], w1[onward]
        slow += zip(
            active.tolist(), part.tolist(), cur.tolist(), w0.tolist(), w1.tolist(), strict=True
        )
        for i, p, c, a, b in slow:
            result[i] = _probe_one(self._w0[p], self._w1[p], a, b, c, insert=insert)
        return result

    def _gather(self, part: Idx, cur: I64) -> tuple[I64, U64]:
        """The current bucket of each key, and its ``w0`` row."""
        bounds = np.searchsorted(part, np.arange(PARTS + 1)).tolist()
        bucket = np.empty(len(cur), np.int64)
        rows = np.empty((len(cur), BUCKET), np.uint64)
        for p in range(PARTS):
            a, b = bounds[p], bounds[p + 1]
            if a < b:
                bucket[a:b] = cur[a:b] % self._w0[p].shape[0]
                np.take(self._w0[p], bucket[a:b], axis=0, out=rows[a:b])
        return bucket, rows

    def _confirm(
        self, part: Idx, bucket: I64, match: npt.NDArray[np.uint32], w1: U64
    ) -> tuple[Idx, Idx]:
        """Of keys whose ``w0`` matched a slot: those whose ``w1`` matches too, and the unsure.

        A key is unsure when its ``w0`` matched more than one slot or its ``w1`` did not match:
        two keys share a ``w0`` (one chance in 2⁶⁴), and the exact one-by-one path settles it.
        """
        slot = np.full(len(match), -1, np.intp)
        for j, bit in enumerate(_SLOT_BITS):
            slot[match == bit] = j
        single = np.flatnonzero(slot >= 0)
        stored = np.empty(len(single), np.uint64)
        bounds = np.searchsorted(part[single], np.arange(PARTS + 1)).tolist()
        for p in range(PARTS):
            a, b = bounds[p], bounds[p + 1]
            if a < b:
                at = single[a:b]
                stored[a:b] = self._w1[p][bucket[at], slot[at]]
        same = stored == w1[single]
        found = single[same]
        unsure = np.union1d(np.flatnonzero(slot < 0), single[~same])
        return found, unsure

    def _write(self, part: Idx, bucket: I64, slot: I64, w0: U64, w1: U64) -> None:
        at = bucket * BUCKET + slot
        bounds = np.searchsorted(part, np.arange(PARTS + 1)).tolist()
        for p in range(PARTS):
            a, b = bounds[p], bounds[p + 1]
            if a < b:
                self._w0[p].reshape(-1)[at[a:b]] = w0[a:b]
                self._w1[p].reshape(-1)[at[a:b]] = w1[a:b]

    def _grow(self, p: int, need: int) -> None:
        """Rebuild partition ``p`` with room for ``need`` keys and, if known, the expected ones."""
        old0, old1 = self._w0[p].reshape(-1), self._w1[p].reshape(-1)
        old_buckets = len(old0) // BUCKET
        buckets = math.ceil(old_buckets * GROWTH)
        if self._expected:
            aim = math.ceil(self._expected / PARTS / (AIM_LOAD * BUCKET))
            buckets = max(math.ceil(old_buckets * MIN_GROWTH), min(buckets, aim))
        buckets = max(buckets, math.ceil(need / (MAX_LOAD * BUCKET)))
        taken = np.flatnonzero(old0)
        w0, w1 = old0[taken], old1[taken]
        del old0, old1, taken
        self._w0[p] = np.zeros((buckets, BUCKET), np.uint64)
        self._w1[p] = np.zeros((buckets, BUCKET), np.uint64)
        if len(w0) < 1 << 24:  # sorting one word is quicker than an argsort
            packed = (w0 >> _S24 << _S24) | np.arange(len(w0), dtype=np.uint64)
            packed.sort()
            order = (packed & _LOW24).astype(np.intp)
        else:
            order = np.argsort(w0)
        w0, w1 = w0[order], w1[order]
        _bulk_build(self._w0[p], self._w1[p], w0, w1, _home(w0, buckets))


def _home(w0: U64, buckets: int) -> I64:
    """Each key's first bucket: the 32 bits below the partition bits, scaled to ``buckets``."""
    sel = (w0 >> np.uint64(32 - PART_BITS)) & np.uint64(0xFFFFFFFF)
    return ((sel * np.uint64(buckets)) >> np.uint64(32)).astype(np.int64)


def _first_occurrences(top: U64, w0: U64, w1: U64) -> Mask:
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


def _probe_one(t0: U64, t1: U64, w0: int, w1: int, bucket: int, *, insert: bool) -> bool:
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


def _bulk_build(t0: U64, t1: U64, w0: U64, w1: U64, home: I64) -> None:
    """Fill empty tables with unique keys sorted by home bucket, without probing rounds.

    Placing each key at ``max(first slot of its home bucket, previous key's slot + 1)`` is what
    inserting them one by one would do: every slot between a key's home and its place is taken,
    so a lookup never stops short of it. Keys pushed past the last slot wrap around to the first
    free slots, one at a time (a handful at most).
    """
    idx = np.arange(len(w0), dtype=np.int64)
    pos = np.maximum.accumulate(home * BUCKET - idx) + idx
    flat0, flat1 = t0.reshape(-1), t1.reshape(-1)
    fit = int(np.searchsorted(pos, len(flat0)))  # positions ascend: the overflow is a tail
    flat0[pos[:fit]] = w0[:fit]
    flat1[pos[:fit]] = w1[:fit]
    for a, b, h in zip(w0[fit:].tolist(), w1[fit:].tolist(), home[fit:].tolist(), strict=True):
        _probe_one(t0, t1, a, b, h, insert=True)


def _ranks(sorted_ids: I64) -> I64:
    """Each element's index within its run of equal values (the input is sorted)."""
    n = len(sorted_ids)
    idx = np.arange(n)
    if not n:
        return idx
    start = np.ones(n, np.bool_)
    start[1:] = sorted_ids[1:] != sorted_ids[:-1]
    return idx - np.maximum.accumulate(np.where(start, idx, 0))
