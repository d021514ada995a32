"""The dispatcher keeps the promise: every known ID resigned exactly once, whatever happens."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterable, Iterator, Sequence

import pytest

from bulkresign.errors import LedgerMismatch
from bulkresign.limiter import RateLimiter
from bulkresign.models import Batch, BatchState, Endpoint, IdType, LineOutcome, ResignResult
from bulkresign.pipeline import CHUNK
from bulkresign.retry import ErrorBudget
from bulkresign.transport import SentHook
from tests.dispatch.fake import Crash, FakeServer, ForbiddenServer, FrozenServer
from tests.dispatch.harness import Harness, make_batches, make_ids


def schedule(*faults: str) -> Iterable[str]:
    """The given faults for the first calls, then success forever."""
    return itertools.chain(faults, itertools.repeat("ok"))


def assert_exactly_once(server: FakeServer, ids: Iterable[str]) -> None:
    for i in ids:
        assert server.applied[i] == (1 if i in server.known else 0), i
    assert server.duplicate_sends == 0


class TestHappyPath:
    async def test_every_id_resigned_once_in_batches_of_50(self, harness: Harness) -> None:
        """120 known IDs go out in three calls and every batch ends DONE."""
        ids = make_ids(120)
        server = FakeServer(set(ids))
        result = await harness.run(server, make_batches(ids))
        assert result.finished
        assert_exactly_once(server, ids)
        assert server.resign_calls == 3
        assert harness.ledger().state_counts() == {BatchState.DONE: 3}

    async def test_the_limiter_hears_when_each_request_leaves(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every resign call reports its send to the limiter, with the slot it was granted."""
        reported: list[float] = []
        monkeypatch.setattr(
            RateLimiter, "sent", lambda self, granted_at: reported.append(granted_at)
        )
        ids = make_ids(120)
        server = FakeServer(set(ids))
        assert (await harness.run(server, make_batches(ids))).finished
        assert len(reported) == server.resign_calls == 3


class _CountedBatches(list[Batch]):
    """Batches that count how many the pipeline has taken."""

    taken = 0

    def __iter__(self) -> Iterator[Batch]:
        for batch in super().__iter__():
            self.taken += 1
            yield batch


class TestFirstRequest:
    async def test_it_leaves_before_a_whole_chunk_is_read(self, harness: Harness) -> None:
        """The first chunk is small: the first request waits for a few intents, not CHUNK."""
        ids = make_ids(50 * 3 * CHUNK)
        batches = _CountedBatches(make_batches(ids))
        taken_then: list[int] = []

        class Watching(FakeServer):
            async def resign_batch(
                self,
                endpoint: Endpoint,
                ids: Sequence[str],
                id_type: IdType,
                *,
                on_sent: SentHook | None = None,
            ) -> ResignResult:
                if not taken_then:
                    taken_then.append(batches.taken)
                return await super().resign_batch(endpoint, ids, id_type, on_sent=on_sent)

        server = Watching(set(ids))
        assert (await harness.run(server, batches)).finished
        assert taken_then[0] < CHUNK
        assert_exactly_once(server, ids)


class TestRejections:
    async def test_unknown_ids_are_not_found_and_the_rest_resigned(self, harness: Harness) -> None:
        """A 404/2004 batch is read back: unknown IDs recorded not_found, the others resent."""
        ids = make_ids(50)
        server = FakeServer(set(ids[:47]))
        result = await harness.run(server, make_batches(ids))
        assert result.finished
        assert_exactly_once(server, ids)
        rec = harness.ledger().batch(0)
        assert rec is not None and rec.state is BatchState.REJECTED
        assert {i for i, o in rec.outcomes.items() if o.outcome is LineOutcome.NOT_FOUND} == set(
            ids[47:]
        )

    async def test_one_refused_id_never_blocks_the_other_49(self, harness: Harness) -> None:
        """Bisection isolates the ID the server refuses; it is failed with the server's apiCode."""
        ids = make_ids(50)
        server = FakeServer(set(ids), refuse=frozenset({ids[17]}))
        result = await harness.run(server, make_batches(ids))
        assert result.finished
        assert all(server.applied[i] == 1 for i in ids if i != ids[17])
        assert server.applied[ids[17]] == 0
        rec = harness.ledger().batch(0)
        assert rec is not None
        assert rec.outcomes[ids[17]].outcome is LineOutcome.FAILED
        assert rec.outcomes[ids[17]].api_code == 9999

    async def test_a_lone_refused_id_is_read_back_first(self, harness: Harness) -> None:
        """A batch of one ID the server refuses because it resigned it already is read back and
        recorded resigned, as it would be in a group (it was failed unread)."""
        ids = make_ids(1)
        server = FakeServer(set(ids), refuse=frozenset(ids))
        server.applied[ids[0]] = 1  # resigned before the run, and refused again
        result = await harness.run(server, make_batches(ids))
        assert result.finished and server.read_calls == 1
        rec = harness.ledger().batch(0)
        assert rec is not None and rec.outcomes[ids[0]].outcome is LineOutcome.RESIGNED

    async def test_an_isolated_refused_id_is_not_read_back_again(self, harness: Harness) -> None:
        """Halved down to the refused ID, it is failed on the group's read-back alone."""
        ids = make_ids(2)
        server = FakeServer(set(ids), refuse=frozenset({ids[1]}))
        result = await harness.run(server, make_batches(ids))
        assert result.finished and server.read_calls == 1
        rec = harness.ledger().batch(0)
        assert rec is not None and rec.outcomes[ids[1]].outcome is LineOutcome.FAILED


class TestUnlistedStatus:
    async def test_a_status_the_api_does_not_list_stops_the_run_without_a_resend(
        self, harness: Harness
    ) -> None:
        """Applied, then in doubt; the read-back says "Frozen": the batch stays in doubt and the
        run stops (any status but Resigned was taken for "still to send": resigned twice)."""
        ids = make_ids(50)
        server = FrozenServer(set(ids), faults=iter(schedule("error_after")))
        result = await harness.run(server, make_batches(ids), concurrency=1)
        assert not result.finished and "does not list" in (result.stop_reason or "")
        assert server.resign_calls == 1 and server.duplicate_sends == 0
        rec = harness.ledger().batch(0)
        assert rec is not None and rec.state in (BatchState.SENDING, BatchState.IN_DOUBT)


class TestDoubt:
    @pytest.mark.parametrize("fault", ["error_after", "reset_after"])
    async def test_applied_then_failed_is_read_back_not_resent(
        self, harness: Harness, fault: str
    ) -> None:
        """A batch applied before a 5xx or reset is resolved by read-back, never resent."""
        ids = make_ids(50)
        server = FakeServer(set(ids), faults=iter(schedule(fault)))
        result = await harness.run(server, make_batches(ids), concurrency=1)
        assert result.finished
        assert_exactly_once(server, ids)
        assert server.resign_calls == 1
        assert harness.ledger().state_counts() == {BatchState.RECONCILED: 1}

    async def test_failed_before_applying_is_read_back_then_resent(self, harness: Harness) -> None:
        """A 5xx before applying leaves users Activated; the read-back resends them once."""
        ids = make_ids(50)
        server = FakeServer(set(ids), faults=iter(schedule("error_before")))
        result = await harness.run(server, make_batches(ids), concurrency=1)
        assert result.finished
        assert_exactly_once(server, ids)
        assert server.resign_calls == 2

    @pytest.mark.parametrize("fault", ["throttle", "connect"])
    async def test_not_applied_is_simply_retried(self, harness: Harness, fault: str) -> None:
        """Throttling and refused connections are retried without a read-back."""
        ids = make_ids(50)
        server = FakeServer(set(ids), faults=iter(schedule(fault, fault)))
        result = await harness.run(server, make_batches(ids), concurrency=1)
        assert result.finished
        assert_exactly_once(server, ids)
        assert server.read_calls == 0


class TestCrashAndResume:
    @pytest.mark.parametrize("fault", ["crash_before", "crash_after"])
    async def test_a_crash_mid_request_is_resolved_on_resume(
        self, harness: Harness, fault: str
    ) -> None:
        """The attempt left SENDING is read back on resume; nobody is resigned twice."""
        ids = make_ids(200)
        server = FakeServer(set(ids), faults=iter(schedule("ok", fault)))
        with pytest.raises(BaseExceptionGroup) as info:
            await harness.run(server, make_batches(ids), concurrency=2)
        assert info.group_contains(Crash)
        ledger = harness.ledger()
        assert any(r.state is BatchState.SENDING for r in ledger.open_batches())
        ledger.close()
        result = await harness.run(server, make_batches(ids), concurrency=2)
        assert result.finished
        assert_exactly_once(server, ids)

    async def test_intents_committed_ahead_of_a_kill_are_read_back_then_sent_once(
        self, harness: Harness
    ) -> None:
        """Batches a killed run recorded SENDING but never sent are read back, then sent once."""
        ids = make_ids(150)
        batches = make_batches(ids)
        ledger = harness.ledger()
        with ledger.transaction():
            for b in batches:
                ledger.add_batch(b, intent=True)  # what a SIGKILL right after the commit leaves
        ledger.close()
        server = FakeServer(set(ids))
        result = await harness.run(server, batches, concurrency=2)
        assert result.finished
        assert_exactly_once(server, ids)
        assert server.read_calls == len(batches)
        assert server.resign_calls == len(batches)


def record_done(harness: Harness, batches: Sequence[Batch]) -> None:
    """Leave the ledger as a run that resigned ``batches`` and was then killed leaves it."""
    ledger = harness.ledger()
    with ledger.transaction():
        for b in batches:
            ledger.add_batch(b)
            ledger.set_state(b.seq, BatchState.DONE)
    ledger.close()


class TestResumeReplay:
    async def test_the_batches_the_ledger_holds_done_are_not_sent_again(
        self, harness: Harness
    ) -> None:
        """A resume replays the input: recorded batches are checked and skipped, the rest sent."""
        ids = make_ids(50 * (3 * CHUNK + 7))
        batches = make_batches(ids)
        record_done(harness, batches[: 2 * CHUNK + 3])
        server = FakeServer(set(ids))
        assert (await harness.run(server, batches)).finished
        assert server.resign_calls == len(batches) - (2 * CHUNK + 3)
        assert all(server.applied[i] == 1 for i in ids[50 * (2 * CHUNK + 3) :])

    async def test_a_batch_unlike_the_ledger_s_stops_the_run(self, harness: Harness) -> None:
        """An input whose batch differs from the recorded one is refused, and nothing is sent."""
        ids = make_ids(500)
        record_done(harness, make_batches(ids)[:5])
        changed = make_batches([*ids[:120], "b" * 24, *ids[121:]])
        server = FakeServer(set(ids))
        with pytest.raises(LedgerMismatch, match="batch 2 in the state file differs"):
            await harness.run(server, changed)
        assert server.resign_calls == 0


class TestStopping:
    @pytest.mark.timeout(20)
    async def test_a_stop_sends_nothing_more_not_even_a_request_waiting_for_its_slot(
        self, harness: Harness
    ) -> None:
        """Stopped after the first call while three workers wait for slots 100 s apart: no other
        call leaves, at once, and their intents are withdrawn (the batches PENDING again)."""
        ids = make_ids(500)

        class StopsAfterOne(FakeServer):
            async def resign_batch(
                self,
                endpoint: Endpoint,
                ids: Sequence[str],
                id_type: IdType,
                *,
                on_sent: SentHook | None = None,
            ) -> ResignResult:
                result = await super().resign_batch(endpoint, ids, id_type, on_sent=on_sent)
                assert harness.last is not None
                harness.last.stop("the operator pressed Ctrl-C")
                return result

        server = StopsAfterOne(set(ids))
        result = await harness.run(server, make_batches(ids), rate=0.01)
        assert not result.finished
        assert server.resign_calls == 1
        assert harness.ledger().state_counts() == {BatchState.DONE: 1, BatchState.PENDING: 9}

    async def test_the_signal_handlers_from_before_the_run_are_put_back(
        self, harness: Harness
    ) -> None:
        """Watching signals resets them to Python's defaults when it ends (a later SIGTERM
        would kill the process, a Ctrl-C raise anywhere): the handlers from before return."""

        def mine(signum: int, frame: object) -> None:
            """Stands for the command's own handlers."""

        before = {s: signal.signal(s, mine) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            ids = make_ids(100)
            assert (
                await harness.run(FakeServer(set(ids)), make_batches(ids), signals=True)
            ).finished
            assert signal.getsignal(signal.SIGINT) is mine
            assert signal.getsignal(signal.SIGTERM) is mine
        finally:
            for s, h in before.items():
                signal.signal(s, h)

    @pytest.mark.timeout(30)
    async def test_an_error_budget_read_back_holds_every_send(self, harness: Harness) -> None:
        """--max-errors 10, batch 0 rejected for 30 unknown IDs, 15 workers queued for slots:
        the read-back that finds them goes first and stops the run; no other batch is sent."""
        unknown = make_ids(30, prefix="f")
        ids = unknown + make_ids(2000)
        server = FakeServer(set(ids[30:]))
        budget = ErrorBudget.parse("10")
        result = await harness.run(
            server, make_batches(ids), concurrency=16, rate=20.0, error_budget=budget
        )
        assert result.stop_reason is not None and "error budget" in result.stop_reason
        assert server.resign_calls == 1
        assert server.applied.total() == 0

    async def test_a_stopped_run_withdraws_the_intents_it_never_sent(
        self, harness: Harness
    ) -> None:
        """Batches whose intent was committed ahead but whose request never left end PENDING."""
        ids = make_ids(2000)
        server = ForbiddenServer(set(ids))
        result = await harness.run(server, make_batches(ids), concurrency=2)
        assert not result.finished
        ledger = harness.ledger()
        sent = {r.batch.seq for r in ledger.open_batches() if r.attempts}
        assert len(sent) == server.resign_calls <= 2
        for rec in ledger.open_batches():
            assert rec.state is BatchState.PENDING
            if rec.batch.seq not in sent:
                assert rec.attempts == 0 and ledger.attempts(rec.batch.seq) == []

    async def test_a_fatal_error_stops_the_run_with_batches_left_open(
        self, harness: Harness
    ) -> None:
        """A 403 opens the breaker: the run stops unfinished and nothing is marked done."""
        ids = make_ids(100)
        server = ForbiddenServer(set(ids))
        result = await harness.run(server, make_batches(ids), concurrency=1)
        assert not result.finished
        assert result.stop_reason is not None and "forbidden" in result.stop_reason
        assert server.resign_calls == 1
        assert all(r.state is BatchState.PENDING for r in harness.ledger().open_batches())


class TestEndlessThrottling:
    async def test_a_pool_that_always_throttles_stops_the_run(self, harness: Harness) -> None:
        """Throttled on every call, the run stops resumably instead of spinning forever."""
        ids = make_ids(50)
        server = FakeServer(set(ids), faults=itertools.repeat("throttle"))
        result = await harness.run(server, make_batches(ids), concurrency=1)
        assert not result.finished
        assert result.stop_reason is not None and "throttled" in result.stop_reason
        assert server.applied.total() == 0
