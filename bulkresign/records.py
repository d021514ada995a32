"""Values the ledger stores and hands back: the manifest, attempts, per-ID outcomes, batches."""

from __future__ import annotations

from dataclasses import dataclass

from bulkresign.models import Batch, BatchState, LineOutcome

__all__ = ["Attempt", "BatchRecord", "IdOutcome", "Manifest"]


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a state file is bound to; a resume must present the same values."""

    input_path: str
    input_sha256: str | None
    id_type: str
    endpoint: str
    host: str
    userpool_id: str
    batch_size: int
    input_options: str
    tool_version: str
    pseudonym_key: str

    def as_meta(self) -> dict[str, str]:
        """The manifest as ``meta`` rows (``None`` values omitted)."""
        out: dict[str, str] = {}
        for key in self.__slots__:
            value = getattr(self, key)
            if value is not None:
                out[key] = str(value)
        return out


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request (or read-back) made for a batch, as the ledger recorded it."""

    seq: int
    attempt: int
    kind: str
    ids: tuple[str, ...]
    started: float
    finished: float | None
    outcome: str | None
    status_code: int | None
    api_code: int | None
    request_id: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class IdOutcome:
    """The recorded outcome of one ID that is not simply "resigned with its batch"."""

    id: str
    outcome: LineOutcome
    api_code: int | None = None
    message: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A batch as stored: its composition, state and per-ID exceptions."""

    batch: Batch
    state: BatchState
    attempts: int
    outcomes: dict[str, IdOutcome]

    def remaining(self) -> tuple[str, ...]:
        """IDs of the batch with no recorded per-ID outcome yet, in batch order."""
        return tuple(i for i in self.batch.ids if i not in self.outcomes)
