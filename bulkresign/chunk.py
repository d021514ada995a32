"""What one chunk of input lines came to: the unit :mod:`bulkresign.scan` hands downstream.

A :class:`Chunk` covers consecutive lines: the IDs accepted there (in order, with their line
numbers), and how many lines were duplicates, excluded, skipped or rejected; with ``detail``, the
fate of each line for ``bulkresign report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bulkresign.dedup import KeyBatch
from bulkresign.tally import LineKind, Reject
from bulkresign.validate import RejectReason, SkipReason, preview_bytes, preview_text

__all__ = ["Chunk", "Detail", "Pending", "line_kind", "preview"]

#: One line for ``bulkresign report``: line, raw preview, normalized ID, kind, reason.
Detail = tuple[int, str, str | None, LineKind, RejectReason | SkipReason | None]


@dataclass(slots=True)
class Chunk:
    """What became of ``lines`` consecutive input lines."""

    lines: int
    accepted_lines: npt.NDArray[np.int64]
    accepted: bytes
    """The accepted IDs in order, UTF-8, each followed by ``\\n``."""
    duplicates: int = 0
    excluded: int = 0
    skipped: dict[SkipReason, int] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    detail: list[Detail] | None = None
    consumed: int = 0
    """Bytes of text read by the time this chunk was formed (for size estimates)."""


def preview(raw: bytes | str) -> str:
    return preview_bytes(raw) if isinstance(raw, bytes) else preview_text(raw)


@dataclass(slots=True)
class Pending:
    """A chunk whose IDs are parsed and keyed, waiting for the dedup table."""

    chunk: Chunk
    lines: npt.NDArray[np.int64]  # the line of each candidate ID
    ids: list[str] | npt.NDArray[np.uint8]  # their text: strings, or 24-byte rows
    live: npt.NDArray[np.intp]  # the candidates not excluded
    keys: KeyBatch | None
    slots: list[int] = field(default_factory=list)  # each candidate's place in chunk.detail


def line_kind(reason: RejectReason | SkipReason | None) -> LineKind:
    return LineKind.SKIPPED if isinstance(reason, SkipReason) else LineKind.REJECTED
