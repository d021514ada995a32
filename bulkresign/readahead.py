"""Run a generator a few items ahead in a helper thread, behind a bounded queue.

Ingestion has two halves of similar cost: reading, parsing and preparing keys, which depend only on
the block at hand, and the dedup table, which must take blocks in order. numpy releases the GIL in
its loops, so running the first half one or two blocks ahead uses the second core. Items arrive in
their original order and the queue holds at most ``depth`` of them, so results and memory are the
same as without the thread; an exception in the helper is raised in the consumer, and closing the
consumer stops the helper and joins it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar, cast

__all__ = ["read_ahead"]

T = TypeVar("T")
_DONE = object()
#: How long the helper waits on a full queue before it checks whether it should stop.
_POLL = 0.05
#: How long a closed consumer waits for the helper to finish.
_JOIN = 5.0


def read_ahead(
    source: Iterator[T], *, depth: int = 2, name: str = "bulkresign-read"
) -> Iterator[T]:
    """Yield the items of ``source``, produced in a helper thread at most ``depth`` ahead."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    helper = threading.Thread(target=produce, name=name, daemon=True)
    helper.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        # A helper blocked on a silent pipe cannot be interrupted; it is a daemon and stops at
        # its next item, so the consumer does not wait for it for long.
        helper.join(timeout=_JOIN)
