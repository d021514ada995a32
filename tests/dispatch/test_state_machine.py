"""Hypothesis drives send, fault, crash and resume; nothing is ever applied twice or lost."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import anyio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bulkresign.ledger import Ledger
from bulkresign.models import LineOutcome
from tests.dispatch.fake import FAULTS, Crash, FakeServer
from tests.dispatch.harness import Harness, make_batches, make_ids

IDS = make_ids(160)
UNKNOWN = frozenset(IDS[5:12])
REFUSED = frozenset({IDS[90]})


class ResignRuns(RuleBasedStateMachine):
    """Each rule is one process lifetime of ``bulkresign run`` against a faulty server."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.harness = Harness(Path(self._dir.name) / "run.state")
        self.server = FakeServer(set(IDS) - UNKNOWN, refuse=REFUSED)
        self.batches = make_batches(IDS, size=50)

    def _run(self, concurrency: int) -> bool:
        try:
            result = anyio.run(
                lambda: self.harness.run(self.server, self.batches, concurrency=concurrency)
            )
        except BaseExceptionGroup as group:
            assert group.subgroup(Crash) is not None, group
            return False
        return result.finished

    @rule(
        faults=st.lists(st.sampled_from(FAULTS), max_size=12),
        concurrency=st.integers(1, 4),
    )
    def run_with_faults(self, faults: list[str], concurrency: int) -> None:
        """Run with the given faults on the next calls (a crash ends the process)."""
        self.server.faults = itertools.chain(faults, itertools.repeat("ok"))
        self._run(concurrency)

    @invariant()
    def nothing_applied_twice(self) -> None:
        """No ID was ever sent again after the server had applied it."""
        assert self.server.duplicate_sends == 0
        assert all(n <= 1 for n in self.server.applied.values())
        assert not any(self.server.applied[i] for i in UNKNOWN | REFUSED)

    def teardown(self) -> None:
        """A final clean resume finishes the job: every resignable ID applied exactly once."""
        try:
            self.server.faults = itertools.repeat("ok")
            assert self._run(4)
            for i in IDS:
                expected = 0 if i in UNKNOWN | REFUSED else 1
                assert self.server.applied[i] == expected, i
            ledger: Ledger = self.harness.ledger()
            outcomes = {i: o.outcome for r in ledger.iter_batches() for i, o in r.outcomes.items()}
            ledger.close()
            assert all(outcomes[i] is LineOutcome.NOT_FOUND for i in UNKNOWN)
            assert outcomes[next(iter(REFUSED))] is LineOutcome.FAILED
        finally:
            self._dir.cleanup()


ResignRuns.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestResignRuns = ResignRuns.TestCase
