"""How large the dedup table's partitions start and grow: :mod:`~bulkresign.dedup`'s sizing policy.

Plain arithmetic on bucket counts, kept apart from the table so it can be read, and tested, on
its own. A partition grows when it would pass a load of :data:`MAX_LOAD`: by :data:`GROWTH`×,
or less when the reader's estimate of the final count says less will do, but never by less than
:data:`MIN_GROWTH`× (a creeping estimate must not cause a rebuild per block) nor to a load below
:data:`MIN_LOAD` (16 bytes a slot / 0.42 ≤ 38 bytes a key).
"""

from __future__ import annotations

import math

from bulkresign.buckets import BUCKET, PART_BITS

__all__ = ["MAX_LOAD", "PARTS", "aim_buckets", "grown_buckets", "stagger", "start_buckets"]

PARTS = 1 << PART_BITS
MAX_LOAD = 0.8
GROWTH = 1.9
#: With an estimate of the final count, growth may stop short of GROWTH, but not below this.
MIN_GROWTH = 1.25
#: The load a partition grown to the estimate would end at, were the estimate exact.
AIM_LOAD = 0.75
#: No partition is ever grown to a load below this.
MIN_LOAD = 0.42
MIN_BUCKETS = 16


def stagger(p: int) -> float:
    """Partition ``p``'s size factor: sizes spread over one growth factor, so partitions fill
    up, and are rebuilt, in different blocks rather than all 64 in one."""
    return float(GROWTH ** (p / PARTS))


def start_buckets(p: int) -> int:
    """Buckets partition ``p`` starts with."""
    return math.ceil(MIN_BUCKETS * stagger(p))


def aim_buckets(expected: int) -> int:
    """Buckets per partition for ``expected`` keys in all at AIM_LOAD (0: no estimate)."""
    return math.ceil(expected / PARTS / (AIM_LOAD * BUCKET)) if expected else 0


def grown_buckets(p: int, old_buckets: int, need: int, aim: int) -> int:
    """Buckets partition ``p`` of ``old_buckets`` grows to, to hold ``need`` keys.

    With an estimate (``aim`` from :func:`aim_buckets`), the partition goes straight to its aimed
    size once its keys fill MIN_LOAD of it: jumping there any sooner would make every partition
    jump within the same block.
    """
    buckets = math.ceil(old_buckets * GROWTH)
    if aim and need >= MIN_LOAD * aim * BUCKET:
        buckets = max(math.ceil(old_buckets * MIN_GROWTH), aim)
    elif aim:
        buckets = max(math.ceil(old_buckets * MIN_GROWTH), min(buckets, aim))
    floor = math.ceil(need / (MAX_LOAD * BUCKET))
    if buckets < floor:
        # A block too large for the partition sizes it by its keys: staggered as at the start,
        # or every partition would be left the same size, to fill up in the same block again.
        buckets = math.ceil(floor * stagger(p))
    return buckets
