"""What the dispatcher tells the outside world: logs, the audit journal, the progress display.

The dispatcher calls these hooks synchronously and never waits on them, so an implementation must
be cheap (append a line, bump a counter). ``FanOut()`` with no targets is the silent default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bulkresign.errors import ApiError
from bulkresign.models import BatchState

__all__ = ["Events", "FanOut"]


class Events(Protocol):
    """Hooks called as a batch moves through the protocol."""

    def attempt_started(self, seq: int, attempt: int, kind: str, ids: Sequence[str]) -> None:
        """An intent was committed and the request is about to leave."""

    def attempt_finished(
        self,
        seq: int,
        attempt: int,
        kind: str,
        ids: Sequence[str],
        outcome: str,
        latency: float,
        error: ApiError | None,
        request_id: str | None,
    ) -> None:
        """The request's outcome was recorded (posted to the ledger's next commit)."""

    def read_back(self, seq: int, ids: Sequence[str], why: str) -> None:
        """A read-back is about to resolve ``ids``."""

    def batch_closed(self, seq: int, state: BatchState) -> None:
        """Every ID of batch ``seq`` has an outcome."""

    def stopping(self, reason: str) -> None:
        """The run will send nothing new."""


class FanOut:
    """Calls every hook of several :class:`Events` in turn; ``FanOut()`` is the silent one."""

    def __init__(self, *targets: Events) -> None:
        self._targets = targets

    def attempt_started(self, seq: int, attempt: int, kind: str, ids: Sequence[str]) -> None:
        """Forward to every target."""
        for t in self._targets:
            t.attempt_started(seq, attempt, kind, ids)

    def attempt_finished(
        self,
        seq: int,
        attempt: int,
        kind: str,
        ids: Sequence[str],
        outcome: str,
        latency: float,
        error: ApiError | None,
        request_id: str | None,
    ) -> None:
        """Forward to every target."""
        for t in self._targets:
            t.attempt_finished(seq, attempt, kind, ids, outcome, latency, error, request_id)

    def read_back(self, seq: int, ids: Sequence[str], why: str) -> None:
        """Forward to every target."""
        for t in self._targets:
            t.read_back(seq, ids, why)

    def batch_closed(self, seq: int, state: BatchState) -> None:
        """Forward to every target."""
        for t in self._targets:
            t.batch_closed(seq, state)

    def stopping(self, reason: str) -> None:
        """Forward to every target."""
        for t in self._targets:
            t.stopping(reason)
