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

from collections.abc import Awaitable, Callable, Iterator
from itertools import islice
from pathlib import Path

import anyio

from bulkresign.dispatch import Dispatcher
from bulkresign.errors import ApiError, InputError
from bulkresign.ledger import BatchRecord, IdOutcome, Ledger
from bulkresign.models import Batch, BatchState, LineOutcome
from bulkresign.pipeline import RunResult

__all__ = ["CANARY_KEY", "STOP_PREFIX", "finish_canary", "mark_canary_told", "run_canary"]

#: Meta key: how many batches the canary began with, until it has passed.
CANARY_KEY = "canary"

#: :func:`~bulkresign.pipeline.run_pipeline` with the run's options bound.
Pipeline = Callable[..., Awaitable[RunResult]]

#: States a batch may be in when a resumed canary finds it: left as they are.
_SETTLED = (BatchState.DONE, BatchState.REJECTED, BatchState.RECONCILED)
#: An open batch read back and settled by its read-back (its unknown IDs recorded not_found).
_READ = BatchState.RECONCILED

#: Meta key: set once the canary's stop for unknown IDs was shown (:func:`mark_canary_told`), so
#: that a kill before that makes the resume show it, and stop, again.
CANARY_TOLD = "canary_told"
#: How every stop reason of the canary begins.
STOP_PREFIX = "canary:"

_UNKNOWN = "unknown to the server, though its call answered success (canary read-back)"


async def run_canary(
    count: int,
    dispatcher: Dispatcher,
    batches: Iterator[Batch],
    pipeline: Pipeline,
    *,
    concurrency: int,
    recorded: int = 0,
    replay_first: bool = False,
    replayed: Callable[[Ledger], None] | None = None,
) -> Iterator[Batch]:
    """The first ``count`` batches one at a time; stop unless each ends DONE and reads back
    Resigned.

    ``pipeline`` is :func:`~bulkresign.pipeline.run_pipeline` with the run's own options. A
    resume of a canary interrupted before it sent them all passes the number of batches the
    ledger holds (``recorded``): those are replayed and finished together by one pipeline of
    ``concurrency`` workers, as any open batch is (with ``replay_first`` and ``replayed`` as
    that takes them), and only the canary's batches never sent go one at a time.

    Returns the rest of the input; an input error met among the first batches is raised by the
    rest, so that the pipeline stops on it as it would anywhere else.
    """
    head: list[Batch] = []
    rest: Iterator[Batch] = batches
    try:
        head.extend(islice(batches, count))
    except InputError as exc:
        rest = _Failing(exc)
    if recorded == 0:
        # Noted before the first send, cleared once passed: a resume of an interrupted canary
        # finishes its check (finish_canary, and this with ``recorded``).
        await dispatcher.checkpoint.write(lambda led: led.set_meta(CANARY_KEY, str(len(head))))
    old, new = head[:recorded], head[recorded:]
    before = await dispatcher.checkpoint.read(lambda led: [led.batch(b.seq) for b in old])
    was_open = [r.batch.seq for r in before if r is not None and r.state not in _SETTLED]
    if old:
        await pipeline(
            iter(old),
            dispatcher,
            concurrency=concurrency,
            replay_first=replay_first,
            replayed=replayed,
        )
        dispatcher.stats.ingest_done = False  # the input goes on past these
    if was_open and not await _passed(dispatcher, was_open, (BatchState.DONE, _READ)):
        return rest
    for batch in new:  # one pipeline a batch, so that a failed one stops the next
        await pipeline(iter([batch]), dispatcher, concurrency=1)
        dispatcher.stats.ingest_done = False
        if not await _passed(dispatcher, [batch.seq], (BatchState.DONE,)):
            return rest
    sent = set(was_open) | {b.seq for b in new}
    after = await dispatcher.checkpoint.read(lambda led: [led.batch(s) for s in sorted(sent)])
    await _check(dispatcher, [r.batch for r in after if r and r.state is BatchState.DONE])
    return rest


async def _passed(d: Dispatcher, seqs: list[int], good: tuple[BatchState, ...]) -> bool:
    """False, the run stopped, unless every batch ``seqs`` ended in a ``good`` state."""
    if d.stop_reason is not None:
        return False
    records = await d.checkpoint.read(lambda led: [led.batch(s) for s in seqs])
    for seq, rec in zip(seqs, records, strict=True):
        if rec is None or rec.state not in good:
            unknown = [line for line, _ in _unknown_rows([rec])]
            if unknown:  # refused as unknown, or found so by the read-back of a batch in flight
                _stop_for_unknown(d, unknown, silently=False, batch=seq)
            else:
                state = "unsent" if rec is None else rec.state
                d.stop(f"{STOP_PREFIX} batch {seq} ended {state}, not done")
            return False
    return True


async def finish_canary(
    count: int,
    dispatcher: Dispatcher,
    batches: Iterator[Batch],
    pipeline: Pipeline,
    *,
    concurrency: int,
    recorded: int,
    replay_first: bool,
    replayed: Callable[[Ledger], None] | None,
) -> tuple[Iterator[Batch], bool]:
    """A resume of a run whose canary was interrupted: read back the canary batches that ended
    done, and stop if any ID is unknown or not Resigned, as the canary would have; then, if a
    canary batch is still open or the ledger holds fewer than ``count`` batches (``recorded``),
    go on with the canary: its open batches finished and judged, the others one at a time.

    Returns what is left of ``batches`` for the run, and whether the recorded batches were
    replayed (the run's own pipeline then need not replay them again).
    """
    records, told = await dispatcher.checkpoint.read(
        lambda led: ([led.batch(s) for s in range(count)], led.meta().get(CANARY_TOLD))
    )
    found = _unknown_rows(records)
    if len(found) > int(told or 0):  # the stop for them was never shown: again
        silently = any(message == _UNKNOWN for _, message in found)
        _stop_for_unknown(dispatcher, [line for line, _ in found], silently=silently)
        return batches, False
    done = [r.batch for r in records if r and r.state is BatchState.DONE]
    if done:
        await _read_back(dispatcher, done)
    if dispatcher.stop_reason is not None:
        return batches, False
    if recorded < count or any(r is not None and r.state not in _SETTLED for r in records):
        rest = await run_canary(
            count,
            dispatcher,
            batches,
            pipeline,
            concurrency=concurrency,
            recorded=min(recorded, count),
            replay_first=replay_first,
            replayed=replayed,
        )
        return rest, recorded > 0
    await _check(dispatcher, [])
    return batches, False


async def _check(d: Dispatcher, done: list[Batch]) -> None:
    """Read the canary's done batches back; once that passes, the canary is over."""
    if done:
        await _read_back(d, done)
    if d.stop_reason is None:
        await d.checkpoint.write(_passed_canary)


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
            d.stop(f"{STOP_PREFIX} read-back of batch {batch.seq} failed ({exc.message})")
            return
        line = dict(zip(batch.ids, batch.lines, strict=True))
        unknown += [line[i] for i in found.absent]
        not_resigned += [line[i] for i in found.pending + found.unlisted]
        if found.absent:
            rows = [IdOutcome(i, LineOutcome.NOT_FOUND, None, _UNKNOWN) for i in found.absent]
            await d.checkpoint.write(_recorder(batch.seq, rows))
            d.stats.resigned -= len(rows)
            d.stats.not_found += len(rows)
    if unknown:
        _stop_for_unknown(d, unknown, silently=True)
    elif not_resigned:
        d.stop(
            f"{STOP_PREFIX} {len(not_resigned)} ID(s) do not read back Resigned though their call "
            f"answered success (first at line {min(not_resigned)}); check them with "
            "`bulkresign verify` before resuming"
        )


def _stop_for_unknown(
    d: Dispatcher, lines: list[int], *, silently: bool, batch: int | None = None
) -> None:
    """Stop the run for the IDs at ``lines`` the server does not know; ``silently``: its calls
    had answered success for them (the canary's read-back found them unknown)."""
    n = len(lines)
    if silently:
        how = f"the server answered success for {n} ID(s) it does not know"
    elif batch is not None:
        how = f"batch {batch} ended with {n} ID(s) unknown to the server"
    else:
        how = f"{n} ID(s) of the canary's batches are unknown to the server"
    d.stop(
        f"{STOP_PREFIX} {how} (first at line {min(lines)}), recorded not_found; a server that "
        "accepts unknown IDs silently would have the rest of this run report such IDs "
        "resigned: find them with `bulkresign plan --preflight` and remove them, or resume to "
        "go on (the rest of the canary still goes first, and stops again on such IDs)"
    )


def mark_canary_told(state: Path) -> None:
    """Note in the state file that the canary's stop was shown (the CLI, once it printed it),
    as the number of unknown IDs it had found: until then a resume shows it, and stops, again."""
    ledger = Ledger.open(state)
    try:
        count = int(ledger.meta().get(CANARY_KEY) or 0)
        found = _unknown_rows([ledger.batch(s) for s in range(count)])
        with ledger.transaction():
            ledger.set_meta(CANARY_TOLD, str(len(found)))
    finally:
        ledger.close()


def _unknown_rows(records: list[BatchRecord | None]) -> list[tuple[int, str | None]]:
    """(line, message) of every canary ID recorded not_found."""
    return [
        (line, r.outcomes[i].message)
        for r in records
        if r is not None
        for i, line in zip(r.batch.ids, r.batch.lines, strict=True)
        if i in r.outcomes and r.outcomes[i].outcome is LineOutcome.NOT_FOUND
    ]


def _passed_canary(led: Ledger) -> None:
    led.set_meta(CANARY_KEY, "")
    led.set_meta(CANARY_TOLD, "")


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
