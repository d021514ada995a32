"""What ingestion tells about the input: running counts, and the fate of each line.

Every line is counted once, as exactly one of accepted, duplicate, rejected, skipped or excluded:
``lines == accepted + duplicates + rejected + skipped + excluded`` at every step.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bulkresign.inputspec import Format
from bulkresign.models import IdType
from bulkresign.validate import RejectReason, SkipReason

__all__ = ["REJECT_SAMPLES", "IngestStats", "LineKind", "LineRow", "Reject", "Tally"]

#: Line numbers kept per rejection reason for the summary.
REJECT_SAMPLES = 5


class LineKind(StrEnum):
    """What became of one input line."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class Reject:
    """A rejected line: its number, the reason, and a printable, truncated copy of the value."""

    line: int
    reason: RejectReason
    value: str


@dataclass(frozen=True, slots=True)
class LineRow:
    """One input line as ``bulkresign report`` shows it.

    ``id`` is the normalized ID for accepted, duplicate and excluded lines; ``batch`` and
    ``position`` place an accepted ID in its batch.
    """

    line: int
    raw: str
    id: str | None
    kind: LineKind
    reason: RejectReason | SkipReason | None = None
    batch: int | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class IngestStats:
    """A snapshot of the counts; final once ``done``.

    ``sha256`` (the plan hash) is the SHA-256 of the ID type's name and the accepted IDs in
    order, each followed by ``\\n``: what ``sha256sum`` prints for a file of them under a first
    line naming the type (the same values reviewed as usernames must not pass as external IDs).
    ``input_sha256`` is that of the raw input bytes.
    """

    path: str
    id_type: IdType
    format: Format
    format_note: str
    lines: int
    accepted: int
    duplicates: int
    rejected: int
    skipped: int
    excluded: int
    batches: int
    rejected_by_reason: Mapping[str, int]
    reject_lines: Mapping[str, tuple[int, ...]]
    skipped_by_reason: Mapping[str, int]
    sha256: str
    input_sha256: str
    bytes_read: int
    done: bool
    dedup_bytes: int = 0
    """Memory held by the exact-dedup table of accepted IDs at the end of the pass (the one stage
    that grows with the input, 20–38 bytes an ID); 0 until then."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every field."""
        return {
            "path": self.path,
            "id_type": str(self.id_type),
            "format": str(self.format),
            "format_note": self.format_note,
            "lines": self.lines,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "excluded": self.excluded,
            "batches": self.batches,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "reject_lines": {k: list(v) for k, v in self.reject_lines.items()},
            "skipped_by_reason": dict(self.skipped_by_reason),
            "sha256": self.sha256,
            "input_sha256": self.input_sha256,
            "bytes_read": self.bytes_read,
            "dedup_bytes": self.dedup_bytes,
            "done": self.done,
        }


@dataclass
class Tally:
    """The running counts of one pass (mutated by the pass, read through :meth:`snapshot`)."""

    path: str
    id_type: IdType
    format: Format = Format.AUTO
    format_note: str = ""
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0
    excluded: int = 0
    batches: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    reject_lines: dict[str, list[int]] = field(default_factory=dict)
    skipped_by: dict[str, int] = field(default_factory=dict)
    accepted_hash: hashlib._Hash = field(default_factory=hashlib.sha256)
    input_sha256: str = ""
    bytes_read: int = 0
    dedup_bytes: int = 0
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.accepted_hash.update(f"{self.id_type.value}\n".encode())  # see IngestStats

    def reject(self, line: int, reason: RejectReason) -> None:
        """Count one rejected line."""
        key = reason.value
        self.rejected[key] = self.rejected.get(key, 0) + 1
        sample = self.reject_lines.setdefault(key, [])
        if len(sample) < REJECT_SAMPLES:
            sample.append(line)

    def skip(self, reason: SkipReason, n: int = 1) -> None:
        """Count ``n`` skipped lines."""
        self.skipped += n
        self.skipped_by[reason.value] = self.skipped_by.get(reason.value, 0) + n

    def snapshot(self) -> IngestStats:
        """The counts as they stand (the pass updates them a chunk at a time, under ``lock``)."""
        with self.lock:
            return self._snapshot()

    def _snapshot(self) -> IngestStats:
        return IngestStats(
            path=self.path,
            id_type=self.id_type,
            format=self.format,
            format_note=self.format_note,
            lines=self.lines,
            accepted=self.accepted,
            duplicates=self.duplicates,
            rejected=sum(dict(self.rejected).values()),
            skipped=self.skipped,
            excluded=self.excluded,
            batches=self.batches,
            rejected_by_reason=dict(self.rejected),
            reject_lines={k: tuple(v) for k, v in self.reject_lines.items()},
            skipped_by_reason=dict(self.skipped_by),
            sha256=self.accepted_hash.copy().hexdigest(),
            input_sha256=self.input_sha256,
            bytes_read=self.bytes_read,
            done=self.done,
            dedup_bytes=self.dedup_bytes,
        )
