"""What the dispatcher tells the outside world: logs, the audit journal, the progress display.

The dispatcher calls these hooks synchronously and never waits on them, so an implementation must
be cheap (append a line, bump a counter). :class:`NullEvents` is the silent default for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bulkresign.errors import ApiError
from bulkresign.models import BatchState

__all__ = ["Events", "NullEvents"]


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
        """The request's outcome was committed."""

    def read_back(self, seq: int, ids: Sequence[str], why: str) -> None:
        """A read-back is about to resolve ``ids``."""

    def batch_closed(self, seq: int, state: BatchState) -> None:
        """Every ID of batch ``seq`` has an outcome."""

    def stopping(self, reason: str) -> None:
        """The run will send nothing new."""


class NullEvents:
    """Hooks that do nothing."""

    def attempt_started(self, seq: int, attempt: int, kind: str, ids: Sequence[str]) -> None:
        """Do nothing."""

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
        """Do nothing."""

    def read_back(self, seq: int, ids: Sequence[str], why: str) -> None:
        """Do nothing."""

    def batch_closed(self, seq: int, state: BatchState) -> None:
        """Do nothing."""

    def stopping(self, reason: str) -> None:
        """Do nothing."""
