"""Running the emulator: in the caller's event loop (:func:`serve`) or in a thread of its own
(:func:`serve_in_thread`).

Both bind 127.0.0.1 by default, pick a free port for ``port=0``, and on exit stop accepting,
give in-flight calls a moment, write the state file and close it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from aiohttp import web

from bulkresign.emulator.app import make_app
from bulkresign.emulator.emulator import Emulator
from bulkresign.emulator.state import FLUSH_INTERVAL

__all__ = ["RunningServer", "serve", "serve_in_thread"]

T = TypeVar("T")

#: Seconds in-flight calls get to finish when the server stops (stalls are woken at once).
_SHUTDOWN_TIMEOUT = 2.0
#: Room for the benchmarks' bursts of connections.
_BACKLOG = 1024


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A listening emulator: where it is, and a thread-safe way to look inside."""

    url: str
    """``http://<host>:<port>``, the ``host`` to give a client."""
    host: str
    port: int
    emulator: Emulator
    loop: asyncio.AbstractEventLoop = field(repr=False)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the server's loop thread and return its result.

        From the server's own loop this is a plain call; from any other thread it waits for the
        loop, so ``fn`` never races a request handler.
        """
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def oracle(self, *, summary: bool = False) -> dict[str, object]:
        """:meth:`Emulator.oracle`, safe from any thread."""
        return self.call(lambda: self.emulator.oracle(summary=summary))


async def _flush_forever(emulator: Emulator) -> None:
    """Write dirty users to the state file every :data:`FLUSH_INTERVAL` seconds."""
    state = emulator.state
    if state is None:
        return
    while True:
        await anyio.sleep(FLUSH_INTERVAL)
        rows = emulator.take_dirty()
        if rows:
            await anyio.to_thread.run_sync(state.write, rows)


@asynccontextmanager
async def serve(
    emulator: Emulator, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningServer]:
    """Serve ``emulator`` on ``host:port`` for the duration of the ``async with`` block."""
    await anyio.to_thread.run_sync(emulator.open_state)
    try:
        runner = web.AppRunner(
            make_app(emulator), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, backlog=_BACKLOG)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
            server = RunningServer(
                f"http://{url_host}:{bound_port}",
                bound_host,
                bound_port,
                emulator,
                asyncio.get_running_loop(),
            )
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_flush_forever, emulator)
                    try:
                        yield server
                    finally:
                        tg.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # anyio wraps even a lone error raised in the caller's block; hand it back as is.
                if len(group.exceptions) != 1:
                    raise
                error = group.exceptions[0]
                raise error from error.__cause__
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(emulator.close_state)


@dataclass
class _Handoff:
    """What the server thread hands the caller: the server or the error that stopped it."""

    ready: threading.Event = field(default_factory=threading.Event)
    server: RunningServer | None = None
    stop: asyncio.Event | None = None
    error: BaseException | None = None


@contextmanager
def serve_in_thread(
    emulator: Emulator, host: str = "127.0.0.1", port: int = 0, *, start_timeout: float = 30.0
) -> Iterator[RunningServer]:
    """Serve ``emulator`` from a thread with its own event loop, for sync and subprocess tests.

    Read the emulator through :meth:`RunningServer.call` / :meth:`RunningServer.oracle` while it
    runs; after the block, read it directly.
    """
    handoff = _Handoff()

    async def main() -> None:
        handoff.stop = asyncio.Event()
        async with serve(emulator, host, port) as server:
            handoff.server = server
            handoff.ready.set()
            await handoff.stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the caller, who re-raises it
            handoff.error = exc
        finally:
            handoff.ready.set()

    thread = threading.Thread(target=run, name="bulkresign-emulator", daemon=True)
    thread.start()
    if not handoff.ready.wait(start_timeout):
        raise TimeoutError(f"the emulator did not start within {start_timeout} s")
    if handoff.server is None or handoff.stop is None:
        thread.join()
        raise handoff.error or RuntimeError("the emulator stopped while starting")
    server, stop = handoff.server, handoff.stop
    try:
        yield server
    finally:
        server.loop.call_soon_threadsafe(stop.set)
        thread.join()
        if handoff.error is not None:
            raise handoff.error
