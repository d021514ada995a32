"""Named crash points: make each ordering window of the ledger protocol deterministic in tests.

``BULKRESIGN_CRASH_AT=after_send_before_commit`` kills the process with SIGKILL the first time
that point is reached; ``name:N`` at the N-th time. Without the variable a point costs one dict
lookup. The crash tests use these to prove that every window between "intent committed",
"request sent", "outcome posted" and "outcome committed" recovers without resigning anyone twice.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "crash_point"]

#: Every named point, in the order a batch passes them.
POINTS = (
    "after_batch_insert",
    "after_intent_commit",
    "after_send_before_commit",
    "after_outcome_commit",
    "after_readback_before_commit",
)

_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get("BULKRESIGN_CRASH_AT")
    if not spec:
        return None
    name, _, count = spec.partition(":")
    return name, int(count) if count.isdigit() else 1


def crash_point(name: str) -> None:
    """SIGKILL this process if ``BULKRESIGN_CRASH_AT`` names ``name`` and its count is reached."""
    target = _TARGET
    if target is None or target[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= target[1]:
        os.kill(os.getpid(), signal.SIGKILL)


_TARGET = _target()
