"""Blocking calls that a run must be able to walk away from: a prompt, a silent pipe.

``anyio.to_thread.run_sync`` waits for its worker thread even when the task is cancelled, and the
interpreter waits for its non-daemon workers before it exits, so a thread stuck in ``read()`` on a
pipe whose writer has gone quiet, or in ``readline()`` at a prompt, would hold a Ctrl-C or SIGTERM
until the writer or the operator moves. :func:`run_in_daemon` runs the call in a daemon thread
of its own instead: the caller stops waiting when it is cancelled or when ``until`` is set, and
the thread is left to finish alone (or to die with the process).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["run_in_daemon"]

T = TypeVar("T")


async def run_in_daemon(
    fn: Callable[[], T], *, name: str, until: anyio.Event | None = None
) -> T | None:
    """``fn()`` in a new daemon thread; ``None`` if ``until`` is set before it returns.

    An exception ``fn`` raises is raised here. Only calls whose result may be dropped belong
    here: once abandoned, the thread's work is nobody's.
    """
    result: list[T] = []
    failed: list[BaseException] = []
    done = anyio.Event()
    token = anyio.lowlevel.current_token()

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the waiting task
            failed.append(exc)
        with contextlib.suppress(RuntimeError):  # the event loop has ended without waiting
            anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=target, name=name, daemon=True).start()
    async with anyio.create_task_group() as tg:
        if until is not None:

            async def give_up() -> None:
                await until.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(give_up)
        await done.wait()
        tg.cancel_scope.cancel()
    if failed:
        raise failed[0]
    return result[0] if result else None
