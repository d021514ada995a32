"""The run as one streaming pipeline: ingest → ledger → workers, with a graceful stop.

```
 ingest thread ──chunks──▶ producer ──WorkItem (bounded stream)──▶ N workers ──▶ Dispatcher
                              │ batches + first intents                  │ outcomes (posted)
                              ▼            (one commit per chunk)        ▼
                            ledger ◀──────────────────────────────── checkpoint ◀── flusher
```
The producer first hands out the batches a previous run left open (those in SENDING or IN_DOUBT
are read back before anything is resent), then streams the input again from the start: batches the
ledger already holds are checked against it (one query a chunk) and skipped, new ones are
recorded SENDING together with the intent of their first attempt, one commit per chunk, and handed
out. The stream's buffer equals the number of workers, so memory stays flat whatever the input
size.

Committing intents a chunk ahead is what makes a request cost no commit of its own (a commit's
thread hop alone costs 0.1–0.3 ms of CPU here; docs/benchmarks.md). The price is paid only on a
crash: batches whose intent was committed but whose request had not left are read back by the next
run, like the ones in flight (at most a chunk, the stream's buffer and the workers' batches). When
the run ends any other way — finished, stopped, cancelled — those intents are withdrawn, in a
shielded commit, and the batches are PENDING again. A flusher commits posted outcomes every
:data:`~bulkresign.upkeep.FLUSH_EVERY` seconds, so a crash loses at most that much progress to
read-backs (:mod:`bulkresign.upkeep` holds it, the signal watch and the settling at the end).

Signals (https://anyio.readthedocs.io/en/stable/signals.html): the first SIGINT/SIGTERM stops new
sends and gives in-flight requests ``grace`` seconds to finish and be recorded; a second one
cancels at once. Either way every attempt without a recorded outcome stays SENDING in the ledger and
the next run reads it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import islice

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulkresign.checkpoint import Checkpointer
from bulkresign.crashpoints import crash_point
from bulkresign.digest import Prefix
from bulkresign.dispatch import Dispatcher, WorkItem
from bulkresign.errors import InputError, LedgerMismatch
from bulkresign.ledger import BatchRecord, Ledger
from bulkresign.models import Batch, BatchState
from bulkresign.records import join_ids, join_lines
from bulkresign.threads import run_in_daemon
from bulkresign.upkeep import flush_periodically, settle, watch_signals

__all__ = ["CHUNK", "FIRST_CHUNK", "RunResult", "run_pipeline"]

#: Batches pulled from the ingest thread per hop (one thread hop and one commit per chunk). Each
#: commit costs an fsync, which on a slow virtual disk costs CPU as well as time: 16 a chunk lost
#: 18 % of full-speed throughput to the durable ledger, 64 lose under 3 %.
CHUNK = 64
#: Batches in the first chunk; each next one is four times as large, up to CHUNK. The first
#: request waits for its chunk's intents to be committed: 64 inserts held it back 22-35 ms.
FIRST_CHUNK = 4


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended."""

    finished: bool
    """Every batch has a terminal state and the input was read to its end."""
    stop_reason: str | None
    input_error: InputError | None = None
    """The input became unusable part way (a bad record, truncated gzip, a change while read):
    the run stopped there, and resumes once the input is fixed."""


async def run_pipeline(
    batches: Iterator[Batch],
    dispatcher: Dispatcher,
    *,
    concurrency: int,
    grace: float = 30.0,
    signals: bool = True,
    read_so_far: Callable[[], Prefix | None] | None = None,
    replay_first: bool = False,
    replayed: Callable[[Ledger], None] | None = None,
    sent: Mapping[int, frozenset[str]] | None = None,
) -> RunResult:
    """Finish what the ledger holds open, then stream ``batches`` through the workers.

    ``read_so_far`` (for an input that can be read only once) is recorded with every commit of
    new batches, so that a resume can tell whether it is fed the same bytes. ``replay_first``
    (a pipe, or an input replaced after an input error) reads the input past every recorded
    batch, checking each, before the open ones are sent; ``replayed`` is then posted. ``sent``:
    new batches the audit journal records sent (a ledger that lost commits), with their IDs:
    recorded in doubt and read back first (:mod:`bulkresign.journaled`).
    """
    sent = sent or {}
    ckpt = dispatcher.checkpoint
    open_items = await ckpt.read(lambda led: led.open_batches())
    last_seq = await ckpt.read(lambda led: led.last_seq())
    stats = dispatcher.stats
    mismatch: list[LedgerMismatch] = []
    input_error: list[InputError] = []

    # A pipe's writer may pause after its first lines: the first hop waits for one batch only
    # (four held a slow producer's first 60 IDs until 200 had come).
    size = 1 if read_so_far is not None else FIRST_CHUNK
    seen = -1  # the highest batch number the input has given so far

    async def take() -> list[Batch]:
        """The input's next chunk of batches; the ones the ledger holds are checked, not new."""
        nonlocal size, seen
        if read_so_far is None:
            chunk = await anyio.to_thread.run_sync(_take, batches, size)
        else:
            # A pipe may go quiet for good: a stop must not wait for its writer.
            taken = partial(_take, batches, size)
            got = await run_in_daemon(taken, name="bulkresign read", until=dispatcher.stopping)
            if got is None:
                raise _StoppedReading
            chunk = got
        size = min(CHUNK, size * 4)
        if chunk:
            seen = chunk[-1].seq
            stats.batches_planned += len(chunk)
            stats.accepted += sum(len(b.ids) for b in chunk)
            old = [b for b in chunk if b.seq <= last_seq]
            if old:
                await _check_known(ckpt, old, lines=replay_first)
                stats.skipped_done += sum(len(b.ids) for b in old)
        return chunk

    async def replay() -> list[Batch]:
        """Read the input past every batch the ledger holds, checking each, before any send."""
        while chunk := await take():
            if chunk[-1].seq > last_seq:
                break
        if seen < last_seq:
            raise LedgerMismatch(
                f"the input ends after batch {seen}, but the state file holds batches up to "
                f"{last_seq}: the input changed since the run began"
            )
        if replayed is not None:
            ckpt.post(replayed)
        return chunk

    async def produce(send: MemoryObjectSendStream[WorkItem]) -> None:
        async with send:
            try:
                # A replaced input, or a pipe, must first show that it holds the recorded batches.
                chunk = await replay() if replay_first else None
                for rec in open_items:
                    read_first = rec.state in (BatchState.SENDING, BatchState.IN_DOUBT)
                    await send.send(WorkItem(rec, read_first))
                while not dispatcher.stopping.is_set():
                    chunk = chunk if chunk is not None else await take()
                    if not chunk:
                        stats.ingest_done = True
                        if read_so_far is not None and (read := read_so_far()) is not None:
                            ckpt.post(lambda led: led.set_meta("input_prefix", read.as_meta()))
                        return
                    new = [b for b in chunk if b.seq > last_seq]
                    chunk = None
                    _check_journaled(new, sent)
                    if new:
                        # Listed first: if this task is cancelled while the commit lands, the
                        # intents are still withdrawn (withdrawing one never written is a no-op).
                        # Not those the journal records sent: they stay in doubt until read back.
                        dispatcher.unsent.update(b.seq for b in new if b.seq not in sent)
                        where = read_so_far() if read_so_far is not None else None
                        await ckpt.write(partial(_add, batches=new, read=where))
                        crash_point("after_batch_insert")
                    for b in new:
                        if dispatcher.stopping.is_set():
                            return
                        record = BatchRecord(b, BatchState.SENDING, 1, {})
                        if b.seq in sent:
                            await _put(send, WorkItem(record, read_first=True))
                        else:
                            await _put(send, WorkItem(record, intent_committed=True))
            except (anyio.BrokenResourceError, _StoppedReading):
                return  # every worker has stopped, or the run while the input was silent
            except LedgerMismatch as exc:
                mismatch.append(exc)
                dispatcher.stop(str(exc))
            except InputError as exc:
                # What was read before the bad spot is recorded and finishes; nothing after it
                # is sent. The note lets the next run take the fixed input (bulkresign.job); the
                # bytes read ahead of the bad spot are no longer a prefix the fixed one must repeat.
                note = str(exc)
                input_error.append(exc)
                dispatcher.stop(f"input error: {note}")
                ckpt.post(partial(_note_input_error, note=note))

    async def work(recv: MemoryObjectReceiveStream[WorkItem]) -> None:
        async with recv:
            while (item := await _next_item(recv)) is not None:
                if dispatcher.stopping.is_set():
                    return
                await dispatcher.finish(item)

    try:
        async with anyio.create_task_group() as outer:
            if signals:
                outer.start_soon(watch_signals, dispatcher, outer.cancel_scope, grace)
            outer.start_soon(flush_periodically, dispatcher)
            async with anyio.create_task_group() as workers:
                # Room for a chunk beyond one item per worker: the workers still have a chunk's
                # worth to send while the producer commits the next chunk's intents (an fsync).
                send, recv = anyio.create_memory_object_stream[WorkItem](
                    max_buffer_size=concurrency + CHUNK
                )
                async with recv:
                    for _ in range(concurrency):
                        workers.start_soon(work, recv.clone())
                workers.start_soon(produce, send)
            outer.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await settle(dispatcher)
    if mismatch:
        raise mismatch[0]
    open_left = await ckpt.read(lambda led: led.open_count())
    # Whatever stopped the run, it is finished if the input was read to its end and every batch
    # closed (a breaker that opens on the last read-backs leaves nothing to resume).
    finished = stats.ingest_done and open_left == 0
    return RunResult(finished, dispatcher.stop_reason, input_error[0] if input_error else None)


# The streams' send() and receive() each yield to the event loop first, even when they need not
# wait: two loop iterations a request, about a tenth of the client's CPU at 300 req/s. These skip
# the yield when the item (or the room) is there; the worker's next await (the rate limiter, which
# checks for cancellation) or the producer's next chunk is the checkpoint instead.


async def _put(send: MemoryObjectSendStream[WorkItem], item: WorkItem) -> None:
    try:
        send.send_nowait(item)
    except anyio.WouldBlock:
        await send.send(item)


async def _next_item(recv: MemoryObjectReceiveStream[WorkItem]) -> WorkItem | None:
    """The next item, or ``None`` once the producer is done."""
    try:
        return recv.receive_nowait()
    except anyio.WouldBlock:
        try:
            return await recv.receive()
        except anyio.EndOfStream:
            return None
    except anyio.EndOfStream:
        return None


class _StoppedReading(Exception):
    """The run stopped while a one-time input was being waited for."""


def _take(batches: Iterator[Batch], n: int) -> list[Batch]:
    return list(islice(batches, n))


def _note_input_error(led: Ledger, *, note: str) -> None:
    led.set_meta("input_error", note)
    led.set_meta("input_prefix", "")


def _add(led: Ledger, *, batches: list[Batch], read: Prefix | None) -> None:
    for b in batches:
        led.add_batch(b, intent=True)
    if read is not None:
        led.set_meta("input_prefix", read.as_meta())


def _check_journaled(new: list[Batch], sent: Mapping[int, frozenset[str]]) -> None:
    """A new batch the journal records sent must hold the IDs it sent."""
    for b in new:
        if b.seq in sent and not sent[b.seq] <= set(b.ids):
            raise LedgerMismatch(
                f"the audit journal records batch {b.seq} sent with IDs the input's batch "
                f"{b.seq} does not hold: the input or its options (--batch-size, --id-type, "
                "--format, …) differ from the run that sent it"
            )


async def _check_known(ckpt: Checkpointer, batches: list[Batch], *, lines: bool) -> None:
    """Batches an earlier run recorded must come out of the input exactly as recorded.

    Their line numbers too when the input is not bound by its hash (``lines``); a hashed input
    has the same lines wherever its batches match, and the replay of a restart is spared them.
    """
    first, last = batches[0].seq, batches[-1].seq
    stored = await ckpt.read(lambda led: led.batch_texts(first, last, lines=lines))
    for b in batches:
        if stored.get(b.seq) != (join_ids(b.ids), join_lines(b.lines) if lines else ""):
            raise LedgerMismatch(
                f"batch {b.seq} in the state file differs from the input's batch {b.seq}: "
                "the input changed since the run began"
            )
