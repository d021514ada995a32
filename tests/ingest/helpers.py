"""Helpers shared by the ingest tests: ObjectIds, one-shot ingestion, the accounting identity."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bulkresign.batching import Ingest
from bulkresign.inputspec import InputSpec
from bulkresign.models import Batch
from bulkresign.tally import IngestStats

#: The ``write`` fixture: content (bytes or text) and an optional file name → the file's path.
Write = Callable[..., Path]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
_INGEST_OPTIONS = ("fast", "threaded", "block_size", "exclude", "stdin", "on_reject")


def object_ids(n: int, seed: int = 1) -> list[str]:
    """``n`` distinct lowercase ObjectIds, the same for a given seed."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        out[f"{rng.getrandbits(96):024x}"] = None
    return list(out)


def ingest(path: Path | str, **options: Any) -> Ingest:
    """An Ingest of ``path``; options go to InputSpec or to Ingest, whichever takes them."""
    extra = {k: options.pop(k) for k in _INGEST_OPTIONS if k in options}
    return Ingest(InputSpec(str(path), **options), **extra)


def drain(path: Path | str, **options: Any) -> IngestStats:
    """The final counts of reading ``path``."""
    return ingest(path, **options).drain()


def batches(path: Path | str, **options: Any) -> list[Batch]:
    """Every batch of ``path``."""
    return list(ingest(path, **options).batches())


def accounted(stats: IngestStats) -> bool:
    """Every line is counted exactly once."""
    return stats.lines == (
        stats.accepted + stats.duplicates + stats.rejected + stats.skipped + stats.excluded
    )
