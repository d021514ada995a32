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
sequence that reaches it. A partition grows when it would pass a load of 0.8: by 1.9×, or less
when the reader's estimate of the final count (:meth:`KeyTable.expect`) says less will do. So the
table holds 20–38 bytes per key (about 21 when the estimate is good), and growing one partition at
a time keeps the transient to 1/16 of it. A grown partition is rebuilt without probing: its keys,
sorted by ``w0``, are laid out in one pass.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from bulkresign.buckets import (
    BLOCK_KEYS,
    BUCKET,
    LOW24,
    PART_BITS,
    S24,
    KeyBatch,
    Scrambler,
    bulk_build,
    home_bucket,
    prepare_keys,
    probe_one,
    ranks,
    scramble,
)

__all__ = ["BLOCK_KEYS", "KeyBatch", "KeyTable"]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Idx = npt.NDArray[np.intp]

PARTS = 1 << PART_BITS
MAX_LOAD = 0.8
GROWTH = 1.9
#: With an estimate of the final count, growth may stop short of GROWTH, but not below this.
MIN_GROWTH = 1.25
#: The load a partition grown to the estimate would end at, were the estimate exact.
AIM_LOAD = 0.75
MIN_BUCKETS = 16
#: Keys left in a probe that are finished one by one instead of by another vectorized round.
SCALAR_TAIL = 64

_SLOT_BITS = (np.uint32(1), np.uint32(1 << 8), np.uint32(1 << 16), np.uint32(1 << 24))


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
        return prepare_keys(keys, self._scramble, unique=unique)

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
                home[a:b] = home_bucket(w0[a:b], self._w0[p].shape[0])
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
                rank = ranks((part[miss].astype(np.int64) << 40) | cur[miss])
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
            result[i] = probe_one(self._w0[p], self._w1[p], a, b, c, insert=insert)
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
            packed = (w0 >> S24 << S24) | np.arange(len(w0), dtype=np.uint64)
            packed.sort()
            order = (packed & LOW24).astype(np.intp)
        else:
            order = np.argsort(w0)
        w0, w1 = w0[order], w1[order]
        bulk_build(self._w0[p], self._w1[p], w0, w1, home_bucket(w0, buckets))
