"""The dedup table: exact against a Python set, compact, and indifferent to how keys arrive."""

from __future__ import annotations

import gc
import mmap
import tracemalloc
import weakref

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkresign.buckets import BUCKET, empty_buckets, scramble
from bulkresign.dedup import KeyTable
from bulkresign.growth import MAX_LOAD, PARTS, aim_buckets, grown_buckets, start_buckets
from bulkresign.idkeys import id_keys
from bulkresign.models import IdType

U64 = npt.NDArray[np.uint64]


def reference(keys: U64) -> list[bool]:
    """First occurrences, by a Python set."""
    seen: set[tuple[int, int]] = set()
    out = []
    for pair in map(tuple, keys.tolist()):
        out.append(pair not in seen)
        seen.add(pair)
    return out


def insert_in_blocks(table: KeyTable, keys: U64, blocks: int) -> list[bool]:
    new: list[bool] = np.concatenate(
        [table.insert(b) for b in np.array_split(keys, blocks)]
    ).tolist()
    return new


def mapping_of(slots: U64) -> object:
    """What holds an array's memory, under its views and buffers."""
    owner: object = slots
    while isinstance(owner, np.ndarray | memoryview):
        owner = owner.base if isinstance(owner, np.ndarray) else owner.obj
    return owner


def swap(k0: U64, k1: U64) -> tuple[U64, U64]:
    """A weak bijection: w0 is k1, so keys sharing k1 collide on w0 and on every hash bit."""
    return k1, k0


def few_bits(k0: U64, k1: U64) -> tuple[U64, U64]:
    """A weak bijection whose w0 keeps 8 bits of the key in its top bits (one bucket, mostly)."""
    return k1 ^ (k0 << np.uint64(56)), k0


class TestExactness:
    @pytest.mark.parametrize("blocks", [1, 7, 50])
    def test_matches_a_python_set(self, blocks: int) -> None:
        """New-or-duplicate answers equal a set's, for any split into blocks."""
        rng = np.random.default_rng(blocks)
        keys = rng.integers(0, 5000, size=(20_000, 2)).astype(np.uint64)
        table = KeyTable()
        assert insert_in_blocks(table, keys, blocks) == reference(keys)
        assert len(table) == len(set(map(tuple, keys.tolist())))

    @pytest.mark.parametrize("scrambler", [swap, few_bits])
    def test_exact_when_hashes_collide(self, scrambler: object) -> None:
        """Keys sharing their hash word (or its top bits) are still told apart."""
        rng = np.random.default_rng(7)
        keys = np.stack([rng.integers(1, 1000, 3000), rng.integers(0, 3, 3000)], axis=1).astype(
            np.uint64
        )
        table = KeyTable(scrambler=scrambler)  # type: ignore[arg-type]
        assert insert_in_blocks(table, keys, 9) == reference(keys)

    def test_zero_key_is_a_key(self) -> None:
        """The all-zero key (ObjectId 000…0) is stored like any other."""
        keys = np.array([[0, 0], [1, 0], [0, 0]], np.uint64)
        table = KeyTable()
        assert table.insert(keys).tolist() == [True, True, False]
        assert table.contains(keys).tolist() == [True, True, True]

    def test_contains(self) -> None:
        """contains() finds exactly the inserted keys."""
        rng = np.random.default_rng(3)
        keys = rng.integers(1, 2**63, size=(30_000, 2), dtype=np.uint64)
        table = KeyTable()
        table.insert(keys[:20_000])
        assert table.contains(keys).tolist() == [True] * 20_000 + [False] * 10_000

    @settings(max_examples=60, deadline=None)
    @given(
        values=st.lists(st.integers(0, 40), max_size=300),
        cut=st.lists(st.integers(0, 300), max_size=5),
    )
    def test_property_against_a_set(self, values: list[int], cut: list[int]) -> None:
        """Random small keys, random block cuts: always a set's answers."""
        keys = np.array([[v * 3, v % 4] for v in values], np.uint64).reshape(-1, 2)
        table = KeyTable()
        got: list[bool] = []
        for part in np.split(keys, sorted({c for c in cut if c < len(keys)})):
            got += table.insert(part).tolist()
        assert got == reference(keys)

    def test_growth_keeps_every_key(self) -> None:
        """After many rebuilds, every key is still found and none is new again."""
        rng = np.random.default_rng(11)
        keys = rng.integers(1, 2**63, size=(150_000, 2), dtype=np.uint64)
        table = KeyTable()
        for block in np.array_split(keys, 40):
            table.insert(block)
        assert not table.insert(keys).any()
        assert len(table) == 150_000


class TestKeys:
    def test_user_id_keys_are_the_objectid_bytes(self) -> None:
        """A user_id key is its 12 bytes: exact, no hash involved."""
        key = id_keys(IdType.USER_ID, ["0123456789abcdef01234567"])
        assert key.tobytes() == bytes.fromhex("0123456789abcdef01234567") + b"\0" * 4

    def test_other_keys_are_128_bit_digests(self) -> None:
        """Other types use 16-byte digests of the normalized value."""
        keys = id_keys(IdType.EMAIL, ["a@example.com", "b@example.com"])
        assert keys.shape == (2, 2) and keys[0].tolist() != keys[1].tolist()

    def test_scramble_is_a_bijection(self) -> None:
        """Distinct keys stay distinct after scrambling (so storing them is exact)."""
        rng = np.random.default_rng(5)
        k = rng.integers(0, 16, size=(4000, 2)).astype(np.uint64)
        w0, w1 = scramble(k[:, 0], k[:, 1])
        assert len(set(zip(w0.tolist(), w1.tolist(), strict=True))) == len(
            set(map(tuple, k.tolist()))
        )


class TestMemory:
    def test_at_most_40_bytes_per_id(self) -> None:
        """200k IDs: the table, and the peak while filling it, stay under 40 bytes per ID."""
        rng = np.random.default_rng(2)
        keys = rng.integers(1, 2**63, size=(200_000, 2), dtype=np.uint64)
        blocks = np.array_split(keys, 20)
        table = KeyTable()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for block in blocks:
                table.insert(block)
            temporaries = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert table.nbytes / len(table) <= 40
        # the slots are mapped apart, untraced; the rest is one block's temporaries (10k keys)
        peak = temporaries + table.nbytes
        assert peak / len(table) <= 40 + 64 * len(blocks[0]) / len(table)

    def test_a_rebuild_holds_about_40_bytes_a_key(self) -> None:
        """Growing a partition holds at most 48 bytes a key of it besides the slots."""
        rng = np.random.default_rng(7)
        table = KeyTable()
        table.insert(rng.integers(1, 2**63, size=(400_000, 2), dtype=np.uint64))
        keys = table._counts[0]
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            table._grow(0, keys + 1)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert peak / keys <= 48

    def test_slots_live_in_a_mapping_of_their_own(self) -> None:
        """A partition's slots are a zeroed, writable anonymous mapping, not C heap."""
        slots = empty_buckets(1000)
        assert slots.shape == (1000, BUCKET) and slots.dtype == np.uint64
        assert slots.flags.writeable and not slots.any()
        assert isinstance(mapping_of(slots), mmap.mmap)

    def test_an_outgrown_partition_is_unmapped_at_once(self) -> None:
        """Once every partition has grown, no mapping of the first layout is left."""
        table = KeyTable()
        maps = [weakref.ref(mapping_of(table._w0[p])) for p in range(PARTS)]
        rng = np.random.default_rng(6)
        table.insert(rng.integers(1, 2**63, size=(100_000, 2), dtype=np.uint64))
        gc.collect()
        assert [m() for m in maps] == [None] * PARTS

    def test_bytes_per_id_do_not_depend_on_id_length(self) -> None:
        """Long emails cost the table what short ones do: 16 bytes a key."""
        short = id_keys(IdType.EMAIL, [f"{i}@x.io" for i in range(20_000)])
        long = id_keys(IdType.EMAIL, [f"{'x' * 200}{i}@example.com" for i in range(20_000)])
        a, b = KeyTable(), KeyTable()
        a.insert(short)
        b.insert(long)
        assert a.nbytes / len(a) <= 40 and b.nbytes / len(b) <= 40
        assert abs(a.nbytes - b.nbytes) < 0.01 * a.nbytes

    def test_estimate_keeps_the_table_small(self) -> None:
        """Told the final count, the table ends near its target load instead of 1.9× over."""
        rng = np.random.default_rng(4)
        keys = rng.integers(1, 2**63, size=(200_000, 2), dtype=np.uint64)
        table = KeyTable()
        table.expect(200_000)
        for block in np.array_split(keys, 20):
            table.insert(block)
        assert table.nbytes / len(table) <= 16 / 0.7

    def test_prepare_refuses_oversized_batches(self) -> None:
        """A prepared batch is at most 2**24 keys (positions are packed in 24 bits)."""
        with pytest.raises(ValueError, match="at most"):
            KeyTable().prepare(np.zeros(((1 << 24) + 1, 2), np.uint64))


class TestGrowth:
    def test_partitions_grow_in_different_blocks(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Past the first blocks, no block rebuilds more than a quarter of the partitions."""
        grown: list[int] = []
        grow = KeyTable._grow

        def counting(self: KeyTable, p: int, need: int) -> None:
            grown[-1] += 1
            grow(self, p, need)

        monkeypatch.setattr(KeyTable, "_grow", counting)
        rng = np.random.default_rng(5)
        keys = rng.integers(1, 2**63, size=(600_000, 2), dtype=np.uint64)
        table = KeyTable()
        table.expect(len(keys))
        for block in np.array_split(keys, 150):
            grown.append(0)
            table.insert(block)
        assert max(grown[10:]) <= PARTS // 4, grown


class TestGrowthPolicy:
    @given(
        p=st.integers(0, PARTS - 1),
        old=st.integers(16, 10**7),
        extra=st.integers(1, 10**7),
        expected=st.integers(0, 10**10),
    )
    def test_a_grown_partition_holds_its_keys_below_max_load(
        self, p: int, old: int, extra: int, expected: int
    ) -> None:
        """Whatever the estimate, a partition grows, and holds what it must below MAX_LOAD."""
        need = int(MAX_LOAD * old * BUCKET) + extra
        buckets = grown_buckets(p, old, need, aim_buckets(expected))
        assert buckets > old
        assert need <= MAX_LOAD * buckets * BUCKET

    @given(
        p=st.integers(0, PARTS - 1),
        old=st.integers(16, 10**7),
        expected=st.integers(0, 10**10),
    )
    def test_growth_stays_within_its_factors(self, p: int, old: int, expected: int) -> None:
        """A partition grown for one more key grows by 1.25× to 1.9× (rounded up)."""
        need = int(MAX_LOAD * old * BUCKET) + 1
        buckets = grown_buckets(p, old, need, aim_buckets(expected))
        assert 1.25 * old <= buckets <= 1.9 * old + 1

    def test_partitions_start_staggered(self) -> None:
        """Starting sizes rise with the partition over about one growth factor."""
        sizes = [start_buckets(p) for p in range(PARTS)]
        assert sizes == sorted(sizes)
        assert 1.8 * sizes[0] <= sizes[-1] <= 1.9 * sizes[0] + 1
