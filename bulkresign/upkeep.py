"""What runs beside a run's workers (:func:`bulkresign.pipeline.run_pipeline`): the watch for
signals, the periodic flush of posted outcomes (and the check that the state file is still in
place), and the settling of what the run leaves when it ends, however it ends.
"""

from __future__ import annotations

import signal

import anyio

from bulkresign.dispatch import Dispatcher
from bulkresign.ledger import Ledger

__all__ = ["FLUSH_EVERY", "flush_periodically", "settle", "watch_signals"]

#: Seconds between commits of posted outcomes when no intent commit carries them sooner.
FLUSH_EVERY = 0.05
#: Flush ticks between checks that the run's records are still where they are written (1 s).
RECORDS_EVERY = 20


async def flush_periodically(dispatcher: Dispatcher) -> None:
    """Commit posted outcomes every :data:`FLUSH_EVERY` seconds; stop the run if its state file
    is no longer where it was opened."""
    ckpt = dispatcher.checkpoint
    gone = dispatcher.records_gone
    ticks = 0
    while True:
        await anyio.sleep(FLUSH_EVERY)
        ticks += 1
        # A state file moved away mid-run leaves its WAL behind under the old name, and the
        # next run at that path would start the job afresh: stop at once, and say so.
        if not ckpt.ledger.in_place():
            dispatcher.stop(
                f"{ckpt.ledger.path}: the state file was moved, replaced or deleted while the run "
                "used it; put it back, with its -wal and -shm files, before resuming"
            )
        # The journal is the run's evidence: written on into a deleted file, it would be lost.
        if gone is not None and ticks % RECORDS_EVERY == 0 and (why := gone()) is not None:
            dispatcher.stop(why)
        if ckpt.queued:
            await ckpt.flush()


async def settle(dispatcher: Dispatcher) -> None:
    """Withdraw the intents whose requests never left and commit every posted outcome."""
    unsent = sorted(dispatcher.unsent)
    dispatcher.unsent.clear()

    def withdraw(led: Ledger) -> None:
        for seq in unsent:
            led.withdraw_intent(seq, 1)  # only first attempts are committed ahead

    if unsent:
        dispatcher.checkpoint.post(withdraw)
    await dispatcher.checkpoint.flush()


async def watch_signals(dispatcher: Dispatcher, scope: anyio.CancelScope, grace: float) -> None:
    """The first SIGINT/SIGTERM/SIGHUP stops the run and gives what is in flight ``grace``
    seconds; a second cancels ``scope`` at once. A hangup is the terminal going away: the run
    stops as it would on SIGTERM, instead of dying with requests in doubt.

    Closing the receiver resets the signals to Python's defaults, under which a SIGTERM ends
    the process on the spot and a Ctrl-C raises wherever the loop happens to be: the handlers
    from before (asyncio's own for Ctrl-C, the command's for SIGTERM and SIGHUP) are put back.
    """
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {s: signal.getsignal(s) for s in watched}
    try:
        with anyio.open_signal_receiver(*watched) as received:
            async for signum in received:
                if (dispatcher.stop_reason or "").startswith("signal"):
                    scope.cancel()  # a second signal: stop now, the next run reads back
                    return
                dispatcher.stop(f"signal {signal.Signals(signum).name}")
                scope.deadline = min(scope.deadline, anyio.current_time() + grace)
    finally:
        for signum, handler in before.items():
            if handler is not None:
                signal.signal(signum, handler)
