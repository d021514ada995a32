"""The run's heap upkeep: the holes a growing dedup table leaves go back to the system."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

import bulkresign.job
from bulkresign.batching import Ingest
from bulkresign.heap import HeapKeeper
from bulkresign.inputspec import InputSpec
from tests.run.test_rate import resign_all

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallinfo2 is glibc's")


@glibc
def test_a_heap_with_more_free_bytes_than_the_limit_is_trimmed() -> None:
    """Over the limit the keeper calls malloc_trim and counts it."""
    keeper = HeapKeeper(limit=-1)
    assert keeper.available
    assert keeper() is True
    assert keeper.trims == 1


@glibc
def test_a_heap_under_the_limit_is_left_alone() -> None:
    """Under the limit nothing is trimmed."""
    keeper = HeapKeeper(limit=1 << 62)
    assert keeper() is False
    assert keeper.trims == 0


def test_the_keeper_never_raises() -> None:
    """Whatever the C library, a call answers a bool and leaves the process running."""
    assert isinstance(HeapKeeper()(), bool)


def test_the_ingest_calls_back_after_every_block(tmp_path: Path) -> None:
    """``on_block`` runs once per block the dedup table has taken."""
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{i:024x}\n" for i in range(3000)))
    calls: list[int] = []
    ingest = Ingest(InputSpec(str(path)), block_size=4096, on_block=lambda: calls.append(1))
    assert ingest.drain().accepted == 3000
    assert len(calls) >= 3000 * 25 // 4096


async def test_a_run_keeps_its_heap_between_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_job hands its ingest a HeapKeeper, called after every block."""
    calls: list[bool] = []

    class Counting(HeapKeeper):
        def __call__(self) -> bool:
            calls.append(True)
            return super().__call__()

    monkeypatch.setattr(bulkresign.job, "HeapKeeper", Counting)
    outcome, _, _ = await resign_all(tmp_path, 20 * 50, limit=1000, rate=1000)
    assert outcome.result.finished
    assert calls
