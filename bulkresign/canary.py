"""The canary: a fresh run's first batches one at a time, then read back, before the rest.

A resign call answers one boolean for up to 50 IDs, and the API documents neither a per-ID result
nor what it does with an ID the userpool does not know (``../shared/reference/genauth-api.md``).
A success therefore proves that the server took the call, not that each of its users is now
Resigned. The canary checks that on a few batches before the bulk of the run: it reads their IDs
back, records the ones the server does not know as ``not_found`` (their batch ends REJECTED),
and stops the run when any ID is unknown or not Resigned, so the operator learns how this
userpool answers while the rest of the input is still untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from itertools import islice

import anyio

from bulkresign.digest import Prefix
from bulkresign.dispatch import Dispatcher
from bulkresign.errors import ApiError, InputError
from bulkresign.ledger import IdOutcome, Ledger
from bulkresign.models import Batch, BatchState, LineOutcome
from bulkresign.pipeline import run_pipeline
from bulkresign.reconcile import USER_NOT_FOUND

__all__ = ["CANARY_KEY", "finish_canary", "run_canary"]

#: Meta key: how many batches the canary began with, until it has passed.
CANARY_KEY = "canary"

_UNKNOWN = "unknown to the server, though its call answered success (canary read-back)"


async def run_canary(
    count: int,
    dispatcher: Dispatcher,
    batches: Iterator[Batch],
    *,
    grace: float,
    signals: bool,
    read_so_far: Callable[[], Prefix | None] | None,
) -> Iterator[Batch]:
    """The first ``count`` batches one at a time; stop unless each ends DONE and reads back
    Resigned.

    Returns the rest of the input; an input error met among the first batches is raised by the
    rest, so that the pipeline stops on it as it would anywhere else.
    """
    head: list[Batch] = []
    rest: Iterator[Batch] = batches
    try:
        head.extend(islice(batches, count))
    except InputError as exc:
        rest = _Failing(exc)
    # Noted before the first send, cleared once passed: a resume of an interrupted canary
    # finishes its check (finish_canary).
    await dispatcher.checkpoint.write(lambda led: led.set_meta(CANARY_KEY, str(len(head))))
    for batch in head:  # one pipeline a batch, so that a failed one stops the next
        await run_pipeline(
            iter([batch]),
            dispatcher,
            concurrency=1,
            grace=grace,
            signals=signals,
            read_so_far=read_so_far,
        )
        dispatcher.stats.ingest_done = False
        if dispatcher.stop_reason is not None:
            return rest
        rec = await dispatcher.checkpoint.read(partial(Ledger.batch, seq=batch.seq))
        if rec is None or rec.state is not BatchState.DONE:
            state = "unsent" if rec is None else rec.state
            dispatcher.stop(f"canary: batch {batch.seq} ended {state}, not done")
            return rest
    await _check(dispatcher, head)
    return rest


async def finish_canary(dispatcher: Dispatcher, count: int) -> None:
    """A resume of a run whose canary was interrupted: read back the canary batches that ended
    done (the others are read back as any open batch), and stop if any ID is unknown or not
    Resigned, as the canary would have."""
    records = await dispatcher.checkpoint.read(lambda led: [led.batch(s) for s in range(count)])
    await _check(dispatcher, [r.batch for r in records if r and r.state is BatchState.DONE])


async def _check(d: Dispatcher, done: list[Batch]) -> None:
    """Read the canary's done batches back; once that passes, the canary is over."""
    if done:
        await _read_back(d, done)
    if d.stop_reason is None:
        await d.checkpoint.write(lambda led: led.set_meta(CANARY_KEY, ""))


async def _read_back(d: Dispatcher, head: list[Batch]) -> None:
    """Read every canary ID back; record the unknown ones and stop the run if any is not
    Resigned."""
    await anyio.sleep(d.settings.reconcile_delay)  # let a replica catch up with the calls
    unknown: list[int] = []  # line numbers: the reason goes to the log, which keeps IDs out
    not_resigned: list[int] = []
    for batch in head:
        d.events.read_back(batch.seq, batch.ids, "canary")
        d.stats.readbacks += 1
        try:
            found = await d.read_back(batch.ids)
        except ApiError as exc:
            d.stop(f"canary: read-back of batch {batch.seq} failed ({exc.message})")
            return
        line = dict(zip(batch.ids, batch.lines, strict=True))
        unknown += [line[i] for i in found.absent]
        not_resigned += [line[i] for i in found.pending]
        if found.absent:
            rows = [
                IdOutcome(i, LineOutcome.NOT_FOUND, USER_NOT_FOUND, _UNKNOWN) for i in found.absent
            ]
            await d.checkpoint.write(_recorder(batch.seq, rows))
            d.stats.resigned -= len(rows)
            d.stats.not_found += len(rows)
    if unknown:
        d.stop(
            f"canary: the server answered success for {len(unknown)} ID(s) it does not know "
            f"(first at line {min(unknown)}), recorded not_found; it accepts unknown IDs "
            "silently, so the rest of this run would report such IDs resigned: find them with "
            "`bulkresign plan --preflight` and remove them, or resume to go on regardless"
        )
    elif not_resigned:
        d.stop(
            f"canary: {len(not_resigned)} ID(s) do not read back Resigned though their call "
            f"answered success (first at line {min(not_resigned)}); check them with "
            "`bulkresign verify` before resuming"
        )


def _recorder(seq: int, rows: list[IdOutcome]) -> Callable[[Ledger], None]:
    def write(led: Ledger) -> None:
        led.record_ids(seq, rows)
        led.set_state(seq, BatchState.REJECTED)

    return write


class _Failing(Iterator[Batch]):
    """An input that has failed: every next batch raises its error."""

    def __init__(self, error: InputError) -> None:
        self.error = error

    def __next__(self) -> Batch:
        raise self.error
