"""Heap upkeep for a long run on glibc: give back the holes a growing dedup table leaves.

The dedup table grows a partition at a time: a bigger array is allocated, the keys move, the
old array is freed. glibc serves blocks above its mmap threshold from mappings of their own and
returns them when freed, but it raises that threshold each time such a block is freed, so once
the partitions have grown a few times their successors come from the heap, and the outgrown ones
stay behind as holes the process cannot return (peak RSS less the table grew 1.57x from 1M to
10M IDs). Pinning the threshold (``mallopt``) stops that, at a price: every large numpy
temporary of the ingest then becomes a fresh mapping, faulted in page by page (2.2M page faults
instead of 0.4M for 10M IDs) — ingest 1.4x slower.

:class:`HeapKeeper` leaves the threshold alone and instead calls ``malloc_trim(0)``, which hands
the free pages inside the heap back with ``MADV_DONTNEED`` (https://man7.org/linux/man-pages/man3/malloc_trim.3.html),
whenever ``mallinfo2`` counts more free bytes in the heap than its limit. Ingesting 10M IDs alone
(docs/benchmarks.md): 9.7-10.3 s against 12.3-12.7 s pinned, the same peak RSS less the table
(110-120 MiB against 119), and 93 against 101 MiB at 1M. Elsewhere than on glibc 2.33+ it does
nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["TRIM_ABOVE", "HeapKeeper"]

#: Free bytes in the heap above which the keeper trims: more than the ingest's own working set
#: of temporaries, which would only be faulted in again.
TRIM_ABOVE = 64 << 20


class _MallInfo2(ctypes.Structure):
    """``struct mallinfo2`` (glibc 2.33+, malloc.h): every field a ``size_t``."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


class HeapKeeper:
    """Trims glibc's heap when it holds more than ``limit`` free bytes; call it between blocks.

    Args:
        limit: free bytes in the heap (``mallinfo2().fordblks``) that the process may keep.
    """

    def __init__(self, limit: int = TRIM_ABOVE) -> None:
        self.limit = limit
        self.trims = 0
        self._info: Callable[[], _MallInfo2] | None = None
        self._trim: Callable[[int], int] | None = None
        try:
            libc = ctypes.CDLL(None)  # the process's own symbols: libc's, where it is glibc
            info, trim = libc.mallinfo2, libc.malloc_trim
        except (OSError, AttributeError):
            return
        info.restype = _MallInfo2
        trim.argtypes = [ctypes.c_size_t]
        self._info, self._trim = info, trim

    @property
    def available(self) -> bool:
        """Whether this C library has ``mallinfo2`` and ``malloc_trim`` (glibc 2.33+)."""
        return self._info is not None

    def free_bytes(self) -> int:
        """Free bytes in the heap now (0 where unknown)."""
        if self._info is None:
            return 0
        return int(self._info().fordblks)

    def __call__(self) -> bool:
        """Trim if the heap holds more free bytes than the limit; whether it trimmed."""
        if self._trim is None or self.free_bytes() <= self.limit:
            return False
        self._trim(0)
        self.trims += 1
        return True
