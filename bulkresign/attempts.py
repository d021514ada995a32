"""One batch's life under the dispatch protocol (:mod:`bulkresign.dispatch`): intent, slot, send,
outcome, and what each class of outcome leads to — a resend, a read-back, a split, or a stop.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from bulkresign.crashpoints import crash_point
from bulkresign.errors import ApiError, Fatal, InDoubt, NotApplied, Rejected, Throttled
from bulkresign.ledger import BatchRecord, IdOutcome, Ledger
from bulkresign.models import BatchState, LineOutcome
from bulkresign.reconcile import (
    THROTTLE_CAP,
    USER_NOT_FOUND,
    ReadBack,
    absent_rows,
    failed_row,
    resigned_rows,
    split_rejected,
    terminal_state,
)
from bulkresign.retry import OutcomeKind

if TYPE_CHECKING:
    from bulkresign.dispatch import Dispatcher

__all__ = ["NOT_SENT", "BatchJob"]


class _NotSent:
    """The type of :data:`NOT_SENT`."""


#: What :meth:`BatchJob._send` returns when the run stopped before the request could leave.
NOT_SENT = _NotSent()


class BatchJob:
    """The state of one batch while a worker carries it."""

    def __init__(self, d: Dispatcher, record: BatchRecord) -> None:
        self.d = d
        self.seq = record.batch.seq
        self.all_ids = record.batch.ids
        self.rows: dict[str, IdOutcome] = dict(record.outcomes)
        self.used_read_back = False
        self.closed = False

    async def run(self, read_first: bool, intent_committed: bool = False) -> None:
        rows = self.rows
        pending = tuple(i for i in self.all_ids if i not in rows) if rows else self.all_ids
        if read_first and pending:
            found = await self._read_back(pending, why="resume")
            if found is None:
                return
            pending = found.pending
        groups: list[tuple[str, ...]] = [pending] if pending else []
        tries = throttles = 0
        while groups:
            if self.d.stopping.is_set():
                return
            ids = groups.pop()
            outcome = await self._send(ids, intent_committed)
            intent_committed = False
            if outcome is NOT_SENT:
                return
            if outcome is None:
                tries = throttles = 0
            elif isinstance(outcome, Throttled):
                throttles += 1
                if throttles >= THROTTLE_CAP:
                    self.d.stop(f"batch {self.seq}: throttled {throttles} times in a row")
                    return
                groups.append(ids)
            elif isinstance(outcome, NotApplied):
                tries += 1
                if not self._may_retry(tries, outcome):
                    return
                await anyio.sleep(self.d.settings.retry.delay(tries, self.d.rng, None))
                groups.append(ids)
            elif isinstance(outcome, InDoubt):
                await anyio.sleep(self.d.settings.reconcile_delay)
                found = await self._read_back(ids, why="in doubt")
                if found is None:
                    return
                groups.extend([found.pending] if found.pending else [])
            elif isinstance(outcome, Rejected):
                more = await self._isolate(ids, outcome)
                if more is None:
                    return
                groups.extend(more)
            else:
                return
        self._close()

    def _may_retry(self, tries: int, error: NotApplied) -> bool:
        d = self.d
        if tries >= d.settings.retry.max_attempts:
            d.stop(f"batch {self.seq}: {tries} attempts not applied in a row ({error.message})")
            return False
        if not d.retry_budget.try_spend():
            d.stop(f"retry budget exhausted (last: {error.message})")
            return False
        d.stats.retries += 1
        return True

    async def _send(
        self, ids: tuple[str, ...], intent_committed: bool = False
    ) -> ApiError | _NotSent | None:
        """One resign request under the ledger protocol; ``None`` on success, :data:`NOT_SENT`
        when the run stopped before its slot came.

        With ``intent_committed`` the pipeline has already committed this send's intent, as the
        batch's first attempt.
        """
        d = self.d
        # Intent first, then the slot: the request leaves right when its slot is granted, so the
        # server sees the limiter's spacing (a commit between the two would clump sends).
        if intent_committed:
            attempt = 1
        else:
            attempt = await d.checkpoint.write(lambda led: led.begin_attempt(self.seq, ids))
        if attempt == 1:
            d.retry_budget.record_first_attempt()
        crash_point("after_intent_commit")
        sent_at = await self._slot()
        if sent_at is None:
            # Stopped while waiting: the request never leaves. A first attempt the pipeline
            # committed is withdrawn with the others at the run's end; this one, now.
            if not intent_committed:
                with anyio.CancelScope(shield=True):
                    await d.checkpoint.write(lambda led: led.withdraw_intent(self.seq, attempt))
            return NOT_SENT
        # From here on the request may have left: it is no longer the pipeline's to withdraw.
        d.unsent.discard(self.seq)
        d.events.attempt_started(self.seq, attempt, "resign", ids)
        started = time.perf_counter()
        d.stats.requests += 1
        try:
            result = await d.client.resign_batch(
                d.settings.endpoint,
                ids,
                d.settings.id_type,
                on_sent=functools.partial(d.limiter.sent, sent_at),
            )
        except ApiError as exc:
            error: ApiError | None = exc
            request_id = exc.request_id
        else:
            request_id = result.request_id
            error = None
            if not result.success:
                error = InDoubt(f"server answered success=false: {result.message}")
                error.request_id = request_id
        crash_point("after_send_before_commit")
        latency = time.perf_counter() - started
        kind = OutcomeKind.of(error)
        whole = error is None and not self.rows and ids == self.all_ids
        rows = [] if error is not None or whole else resigned_rows(ids, request_id, "partial send")
        if whole:
            state = BatchState.DONE
        elif kind is OutcomeKind.IN_DOUBT:
            state = BatchState.IN_DOUBT
        else:
            state = BatchState.PENDING

        def record(led: Ledger) -> None:
            led.finish_attempt(
                self.seq,
                attempt,
                kind,
                status_code=200 if error is None else error.status_code,
                api_code=None if error is None else error.api_code,
                request_id=request_id,
                message=None if error is None else error.message,
            )
            led.record_ids(self.seq, rows)
            led.set_state(self.seq, state)

        d.checkpoint.post(record)
        crash_point("after_outcome_commit")
        for row in rows:
            self.rows[row.id] = row
        self.closed = whole
        d.events.attempt_finished(
            self.seq, attempt, "resign", ids, kind, latency, error, request_id
        )
        self._account(ids, error, sent_at)
        return error

    async def _slot(self) -> float | None:
        """A send slot, or ``None`` once the run is stopping: the first signal, the breaker or
        a budget stops every send that has not left, not only the batches not yet begun."""
        d = self.d
        if not d.stopping.is_set():
            with anyio.CancelScope() as waiting:  # stop() cancels it
                d.waiting.add(waiting)
                try:
                    sent_at = await d.limiter.acquire()
                    if d.reviews:  # a budget read-back may be about to stop the run
                        await d.cleared()
                finally:
                    d.waiting.discard(waiting)
                if not d.stopping.is_set():  # no await from here to the send
                    return sent_at
        return None

    def _account(self, ids: Sequence[str], error: ApiError | None, sent_at: float) -> None:
        d = self.d
        if error is None:
            d.limiter.on_success(sent_at=sent_at)
            d.breaker.record(OutcomeKind.OK)
            d.stats.resigned += len(ids)
        elif isinstance(error, Throttled):
            d.stats.throttled += 1
            d.limiter.on_throttled(error.retry_after, sent_at=sent_at)
        elif isinstance(error, InDoubt):
            d.stats.in_doubt += 1
            d.breaker.record(OutcomeKind.IN_DOUBT)
        elif isinstance(error, Fatal):
            d.breaker.record(OutcomeKind.FATAL, error.message)
        if d.breaker.is_open:
            d.stop(d.breaker.reason or "circuit breaker open")

    async def _read_back(
        self, ids: tuple[str, ...], *, why: str, refused: int | None = None
    ) -> ReadBack | None:
        """Read ``ids`` back, record the resigned and unknown ones; ``None`` if the run stops.

        ``refused``: the apiCode of the call that refused ``ids``, which the unknown ones keep.
        """
        d = self.d
        self.used_read_back = True
        d.stats.readbacks += 1
        d.events.read_back(self.seq, ids, why)
        try:
            found = await d.read_back(ids)
        except ApiError as exc:
            d.stop(f"batch {self.seq}: read-back failed ({exc.message})")
            return None
        if found.unlisted:
            # Resigned or not cannot be told: sending again might resign them twice.
            d.stop(
                f"batch {self.seq}: read-back: {len(found.unlisted)} users are in a status the "
                "API does not list; the batch stays in doubt (verify shows them)"
            )
            return None
        crash_point("after_readback_before_commit")
        rows = resigned_rows(found.resigned, None, f"read back Resigned ({why})")
        rows += absent_rows(found.absent, refused)
        d.stats.resigned_by_readback += len(found.resigned)
        self._record(rows, state=BatchState.PENDING)
        return found

    async def _isolate(self, ids: tuple[str, ...], error: Rejected) -> list[tuple[str, ...]] | None:
        """Split a rejected group so the IDs the server refuses end up alone."""
        not_found = error.api_code == USER_NOT_FOUND
        if len(ids) == 1 and not not_found and self.used_read_back:
            # A read-back of this batch found it still to resign: the refusal is about it alone.
            # A batch of one ID never read back is read back first, as a group is: the server
            # may refuse a user it has already resigned.
            self._record([failed_row(ids[0], error)])
            return []
        with self.d.reviewing():
            why = f"rejected {error.status_code}/{error.api_code}"
            found = await self._read_back(ids, why=why, refused=error.api_code)
        if found is None:
            return None
        failed, groups = split_rejected(ids, found.pending, not_found=not_found)
        if failed:
            self._record([failed_row(i, error) for i in failed])
        return groups

    def _record(self, rows: list[IdOutcome], state: BatchState | None = None) -> None:
        if not rows and state is None:
            return
        for row in rows:
            self.rows[row.id] = row
        errors = sum(r.outcome in (LineOutcome.NOT_FOUND, LineOutcome.FAILED) for r in rows)
        self.d.stats.not_found += sum(r.outcome is LineOutcome.NOT_FOUND for r in rows)
        self.d.stats.failed += sum(r.outcome is LineOutcome.FAILED for r in rows)

        def write(led: Ledger) -> None:
            led.record_ids(self.seq, rows)
            if state is not None:
                led.set_state(self.seq, state)

        self.d.checkpoint.post(write)
        if errors and self.d.error_budget is not None:
            self.d.stats.errors += errors
            if self.d.error_budget.exceeded(self.d.stats.errors, self.d.stats.ids_processed):
                self.d.stop(
                    f"error budget exceeded ({self.d.stats.errors} IDs not found or failed)"
                )

    def _close(self) -> None:
        """Every ID has an outcome: record the batch's terminal state (once)."""
        state = terminal_state(self.rows.values(), used_read_back=self.used_read_back)
        if not self.closed:
            self.d.checkpoint.post(lambda led: led.set_state(self.seq, state))
        self.d.stats.batches_done += 1
        self.d.stats.ids_processed += len(self.all_ids)
        self.d.events.batch_closed(self.seq, state)
