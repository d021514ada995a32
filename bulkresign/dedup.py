"""An exact set of 128-bit keys in numpy, filled a block at a time: "seen before?" for 10⁸ IDs.

A ``user_id`` key is the ObjectId's own 12 bytes (zero-padded), so its set is exact; any other ID
type is keyed by a 128-bit BLAKE2b digest of its normalized value, where a false duplicate would
need a collision among 2¹²⁸ values. Every membership answer compares all 128 bits.

Each key is first scrambled by a two-round Feistel network (https://en.wikipedia.org/wiki/Feistel_cipher),
a bijection of 128-bit values: storing the scrambled pair is storing the key, and its first word
``w0`` is a well-mixed 64-bit hash that picks the key's place, tells empty slots (``w0 == 0``)
apart, and settles almost every comparison on its own. The few keys with ``w0 == 0`` (the zero
key among them, otherwise one in 2⁶⁴) are kept in a Python set.

Layout: 64 partitions (by the top 6 bits of ``w0``), each an open-addressing table of 4-slot
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
sequence that reaches it. A partition grows when it would pass a load of 0.8: by 1.9×, or less when
the reader's estimate of the final count (:meth:`KeyTable.expect`) says less will do. So the table
holds 20–38 bytes per key (about 21 when the estimate is good), and growing one partition at a time
keeps the transient to 1/64 of it. Each partition's slots are an anonymous mapping of their own
(:func:`~bulkresign.buckets.empty_buckets`), so an outgrown one goes back to the system at once
instead of staying behind as a hole in the C heap. A grown partition is rebuilt without probing:
its keys, sorted by ``w0``, are laid out in one pass. Partitions start at sizes spread over one
growth factor (and keep that spread), so they fill up, and are rebuilt, in different blocks: with
equal sizes and evenly spread keys, all 64 were rebuilt within one block (237 ms at 5.6M keys of a
10M-ID run, a stall that bunched the run's requests into 429s).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bulkresign.buckets import (
    BLOCK_KEYS,
    BUCKET,
    PART_BITS,
    KeyBatch,
    Scrambler,
    bulk_build,
    empty_buckets,
    home_bucket,
    prepare_keys,
    probe_one,
    ranks,
    scramble,
)
from bulkresign.growth import MAX_LOAD, PARTS, aim_buckets, grown_buckets, start_buckets

__all__ = ["BLOCK_KEYS", "KeyBatch", "KeyTable"]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Idx = npt.NDArray[np.intp]

#: Keys left in a probe that are finished one by one instead of by another vectorized round.
SCALAR_TAIL = 64

_SLOT_BITS = (np.uint32(1), np.uint32(1 << 8), np.uint32(1 << 16), np.uint32(1 << 24))
#: A key's place is ``partition << _PART_SHIFT | bucket``: one sortable int64 for both.
_PART_SHIFT = 40
_BUCKET_MASK = (1 << _PART_SHIFT) - 1
_PART_STARTS = np.arange(PARTS + 1, dtype=np.int64) << _PART_SHIFT


class KeyTable:
    """An exact, insert-only set of 128-bit keys given as ``(n, 2)`` uint64 arrays.

    Args:
        scrambler: the bijection applied to keys; tests pass a weak one to force collisions
            of ``w0`` and of its top bits.
    """

    def __init__(self, *, scrambler: Scrambler | None = None) -> None:
        self._scramble: Scrambler = scrambler if scrambler is not None else scramble
        sizes = [start_buckets(p) for p in range(PARTS)]
        self._w0 = [empty_buckets(n) for n in sizes]
        self._w1 = [empty_buckets(n) for n in sizes]
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
        place = self._place(batch.w0)
        added = self._probe(place, batch.w0, batch.w1, insert=True)
        new[batch.index] = added
        parts = (batch.w0[added] >> np.uint64(64 - PART_BITS)).astype(np.intp)
        for p, n in enumerate(np.bincount(parts, minlength=PARTS).tolist()):
            self._counts[p] += n
        return new

    def find(self, batch: KeyBatch) -> Mask:
        """True where a key of a prepared batch is in the table."""
        found = np.zeros(batch.size, np.bool_)
        for i, pair in zip(batch.odd.tolist(), batch.odd_keys, strict=True):
            found[i] = pair in self._odd
        found[batch.index] = self._probe(self._place(batch.w0), batch.w0, batch.w1, insert=False)
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

        A partition then grows only as far as the estimate needs, within the bounds of
        :func:`~bulkresign.growth.grown_buckets`, which keep the bytes per key whatever the
        estimate.
        """
        self._expected = total

    def _make_room(self, w0: U64) -> None:
        """Grow the partitions ``w0`` would fill past MAX_LOAD, and only those."""
        incoming = np.bincount((w0 >> np.uint64(64 - PART_BITS)).astype(np.intp), minlength=PARTS)
        for p in range(PARTS):
            need = self._counts[p] + int(incoming[p])
            if need > MAX_LOAD * self._w0[p].size:
                self._grow(p, need)

    def _place(self, w0: U64) -> I64:
        """Each sorted key's place: ``partition << 40 | home bucket``, ascending with ``w0``."""
        part = w0 >> np.uint64(64 - PART_BITS)
        bounds = np.searchsorted(part, np.arange(PARTS + 1, dtype=np.uint64)).tolist()
        place = np.empty(len(w0), np.int64)
        for p in range(PARTS):
            a, b = bounds[p], bounds[p + 1]
            if a < b:
                place[a:b] = home_bucket(w0[a:b], self._w0[p].shape[0]) + (p << _PART_SHIFT)
        return place

    def _probe(self, place: I64, w0: U64, w1: U64, *, insert: bool) -> Mask:
        """Look up (and with ``insert``, add) keys sorted by place (partition, home bucket).

        Keys must be unique among themselves when inserting. Returns True where a key was added
        (``insert``) or found. ``place`` moves one bucket on each round (wrapping around within
        its partition when the bucket index is taken modulo the partition's size), so it stays
        sorted, and the keys bound for one bucket in a round sit side by side.
        """
        result = np.zeros(len(w0), np.bool_)
        active: Idx = np.arange(len(w0))
        slow: list[tuple[int, int, int, int]] = []  # keys for the exact one-by-one path
        while active.size > SCALAR_TAIL:
            bounds = np.searchsorted(place, _PART_STARTS).tolist()
            at, rows = self._gather(bounds, place)
            match = (rows == w0[:, None]).view(np.uint32)[:, 0]
            empty = (rows == 0).view(np.uint32)[:, 0]
            free = ((empty * np.uint32(0x01010101)) >> np.uint32(24)).astype(np.int64)
            settled = np.zeros(len(w0), np.bool_)
            check = np.flatnonzero(match)
            if check.size:
                found, unsure = self._confirm(bounds, check, at, match[check], w1[check])
                settled[found] = True
                result[active[found]] = not insert
                settled[unsure] = True
                slow += zip(
                    active[unsure].tolist(), place[unsure].tolist(), w0[unsure].tolist(),
                    w1[unsure].tolist(), strict=True,
                )  # fmt: skip
            if insert:
                miss = np.flatnonzero(~settled)
                rank = ranks(place[miss])
                fits = rank < free[miss]
                go = miss[fits]
                self._write(place[go], at[go] + BUCKET - free[go] + rank[fits], w0[go], w1[go])
                result[active[go]] = True
                onward = miss[~fits]
            else:
                onward = np.flatnonzero(~settled & (free == 0))
            active, place, w0, w1 = active[onward], place[onward] + 1, w0[onward], w1[onward]
        slow += zip(active.tolist(), place.tolist(), w0.tolist(), w1.tolist(), strict=True)
        for i, where, a, b in slow:
            p, bucket = where >> _PART_SHIFT, where & _BUCKET_MASK
            result[i] = probe_one(self._w0[p], self._w1[p], a, b, bucket, insert=insert)
        return result

    def _gather(self, bounds: list[int], place: I64) -> tuple[I64, U64]:
        """Each key's current bucket as a flat slot index in its partition, and its ``w0`` row."""
        at = np.empty(len(place), np.int64)
        rows = np.empty((len(place), BUCKET), np.uint64)
        for p in range(PARTS):
            a, b = bounds[p], bounds[p + 1]
            if a < b:
                table = self._w0[p]
                bucket = (place[a:b] & _BUCKET_MASK) % table.shape[0]
                np.take(table, bucket, axis=0, out=rows[a:b])
                np.multiply(bucket, BUCKET, out=at[a:b])
        return at, rows

    def _confirm(
        self, bounds: list[int], check: Idx, at: I64, match: npt.NDArray[np.uint32], w1: U64
    ) -> tuple[Idx, Idx]:
        """Of the keys ``check`` whose ``w0`` matched a slot: those whose ``w1`` matches too, and
        the unsure ones (as indexes of the round's keys).

        A key is unsure when its ``w0`` matched more than one slot or its ``w1`` did not match:
        two keys share a ``w0`` (one chance in 2⁶⁴), and the exact one-by-one path settles it.
        """
        slot = np.full(len(match), -1, np.int64)
        for j, bit in enumerate(_SLOT_BITS):
            slot[match == bit] = j
        stored = np.zeros(len(check), np.uint64)
        cuts = np.searchsorted(check, bounds).tolist()
        for p in range(PARTS):
            a, b = cuts[p], cuts[p + 1]
            if a < b:
                single = slot[a:b] >= 0
                flat = self._w1[p].reshape(-1)
                stored[a:b][single] = flat[at[check[a:b]][single] + slot[a:b][single]]
        same = (slot >= 0) & (stored == w1)
        return check[same], check[~same]

    def _write(self, place: I64, at: I64, w0: U64, w1: U64) -> None:
        """Store keys at flat slot indexes ``at`` of their partitions."""
        bounds = np.searchsorted(place, _PART_STARTS).tolist()
        for p in range(PARTS):
            a, b = bounds[p], bounds[p + 1]
            if a < b:
                self._w0[p].reshape(-1)[at[a:b]] = w0[a:b]
                self._w1[p].reshape(-1)[at[a:b]] = w1[a:b]

    def _grow(self, p: int, need: int) -> None:
        """Rebuild partition ``p`` with room for ``need`` keys and, if known, the expected ones."""
        old0, old1 = self._w0[p].reshape(-1), self._w1[p].reshape(-1)
        buckets = grown_buckets(p, len(old0) // BUCKET, need, aim_buckets(self._expected))
        live = old0 != 0
        w0, w1 = old0[live], old1[live]
        del old0, old1, live
        self._w0[p] = empty_buckets(buckets)
        self._w1[p] = empty_buckets(buckets)
        # Within a partition home buckets follow the order of w0, and in slot order the keys are
        # sorted but for the few displaced from full buckets: timsort (numpy's stable sort) takes
        # such nearly sorted input in one pass. One array is reordered at a time, as this
        # transient grows with the partition (40 rather than 80 bytes a key at its peak).
        order = np.argsort(w0, kind="stable")
        w0 = w0[order]
        w1 = w1[order]
        del order
        bulk_build(self._w0[p], self._w1[p], w0, w1, home_bucket(w0, buckets))
