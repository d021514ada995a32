"""The pure decisions after a read-back: what to send next, what failed, how a batch ends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkresign.errors import (
    ApiError,
    AuthFailed,
    ConnectFailed,
    InDoubt,
    NotApplied,
    Rejected,
    Throttled,
)
from bulkresign.models import BatchState, LineOutcome, UserRecord, UserStatus
from bulkresign.reconcile import (
    USER_NOT_FOUND,
    absent_rows,
    failed_row,
    resigned_rows,
    sort_read_back,
    split_rejected,
    terminal_state,
)
from bulkresign.records import IdOutcome
from bulkresign.retry import OutcomeKind

id_groups = st.lists(
    st.text("abcdef0123456789", min_size=1, max_size=6), min_size=1, max_size=50, unique=True
)


@st.composite
def rejections(draw: st.DrawFn) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """A rejected group, the part of it a read-back left pending (in order), and the error kind."""
    ids = tuple(draw(id_groups))
    keep = draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids)))
    pending = tuple(i for i, k in zip(ids, keep, strict=True) if k)
    return ids, pending, draw(st.booleans())


class TestSplitRejected:
    @given(rejections())
    def test_every_pending_id_is_failed_or_sent_again_once(
        self, case: tuple[tuple[str, ...], tuple[str, ...], bool]
    ) -> None:
        """Failed IDs and the next groups together are exactly the pending IDs."""
        ids, pending, not_found = case
        failed, groups = split_rejected(ids, pending, not_found=not_found)
        assert sorted(failed + tuple(i for g in groups for i in g)) == sorted(pending)

    @given(rejections())
    def test_every_next_group_is_smaller_so_the_split_ends(
        self, case: tuple[tuple[str, ...], tuple[str, ...], bool]
    ) -> None:
        """No next group is empty or as long as the rejected one."""
        ids, pending, not_found = case
        _, groups = split_rejected(ids, pending, not_found=not_found)
        assert all(0 < len(g) < len(ids) for g in groups)

    def test_a_lone_id_the_server_refuses_is_failed(self) -> None:
        """One ID, still pending after its own rejection: it fails, nothing is resent."""
        assert split_rejected(("a",), ("a",), not_found=True) == (("a",), [])

    def test_a_not_found_explained_by_the_read_back_resends_the_rest_together(self) -> None:
        """Some IDs absent: the others go again as one group."""
        assert split_rejected(("a", "b", "c"), ("a", "c"), not_found=True) == ((), [("a", "c")])

    def test_anything_else_is_halved(self) -> None:
        """A rejection the read-back cannot explain splits the group in two."""
        assert split_rejected(("a", "b", "c", "d"), ("a", "b", "c", "d"), not_found=False) == (
            (),
            [("c", "d"), ("a", "b")],
        )


class TestSortReadBack:
    def test_a_status_the_api_does_not_list_is_neither_resigned_nor_pending(self) -> None:
        """Resigned is done, a listed status is to send, any other cannot be told: unlisted."""
        found = {
            "a": UserRecord("a", UserStatus.RESIGNED),
            "b": UserRecord("b", UserStatus.ACTIVATED),
            "c": UserRecord("c", "Frozen"),
        }
        got = sort_read_back(["a", "b", "c", "d"], found)
        assert (got.resigned, got.pending, got.unlisted, got.absent) == (
            ("a",),
            ("b",),
            ("c",),
            ("d",),
        )


class TestRows:
    def test_rows_say_why(self) -> None:
        """Resigned, absent and failed rows carry the outcome, code and request ID."""
        assert resigned_rows(["a"], "r1", "partial send")[0].outcome is LineOutcome.RESIGNED
        absent = absent_rows(["b"], USER_NOT_FOUND)[0]
        assert (absent.outcome, absent.api_code) == (LineOutcome.NOT_FOUND, USER_NOT_FOUND)
        assert absent_rows(["b"])[0].api_code is None  # no call refused it: no code invented
        error = Rejected("bad", status_code=400, api_code=1234, request_id="r2")
        row = failed_row("c", error)
        assert (row.outcome, row.api_code, row.request_id) == (LineOutcome.FAILED, 1234, "r2")


class TestTerminalState:
    @pytest.mark.parametrize(
        ("outcomes", "read_back", "state"),
        [
            ([], False, BatchState.DONE),
            ([LineOutcome.RESIGNED], False, BatchState.DONE),
            ([LineOutcome.RESIGNED], True, BatchState.RECONCILED),
            ([LineOutcome.NOT_FOUND], True, BatchState.REJECTED),
            ([LineOutcome.RESIGNED, LineOutcome.FAILED], False, BatchState.REJECTED),
        ],
    )
    def test_state_follows_the_rows(
        self, outcomes: list[LineOutcome], read_back: bool, state: BatchState
    ) -> None:
        """Any unknown or failed ID rejects the batch; a read-back makes it reconciled."""
        rows = [IdOutcome(str(n), outcome) for n, outcome in enumerate(outcomes)]
        assert terminal_state(rows, used_read_back=read_back) is state


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (None, OutcomeKind.OK),
        (Throttled("slow down", status_code=429), OutcomeKind.NOT_APPLIED),
        (ConnectFailed("refused"), OutcomeKind.NOT_APPLIED),
        (NotApplied("503 on a read"), OutcomeKind.NOT_APPLIED),
        (Rejected("bad", status_code=400), OutcomeKind.REJECTED),
        (InDoubt("timeout"), OutcomeKind.IN_DOUBT),
        (AuthFailed("401", status_code=401), OutcomeKind.FATAL),
    ],
)
def test_outcome_kind_of_an_error(error: ApiError | None, kind: OutcomeKind) -> None:
    """Each class of the error tree maps onto the kind the ledger records."""
    assert OutcomeKind.of(error) is kind
