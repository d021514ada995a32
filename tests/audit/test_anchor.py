"""Anchors: the ledger's record of how far the journal reached, checked on resume and by verify."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkresign.audit import AuditJournal
from bulkresign.chain import GENESIS, JournalAnchor, verify_journal
from bulkresign.errors import LedgerError


def anchored(path: Path, clock: Callable[[], datetime], before: int, after: int) -> JournalAnchor:
    """Write ``before`` entries, anchor, write ``after`` more; the anchor."""
    with AuditJournal.open(path, now=clock) as journal:
        for n in range(before):
            journal.append("batch_sent", batch=n, ids=[f"u{n}"])
        mark = journal.anchor()
        for n in range(before, before + after):
            journal.append("batch_sent", batch=n, ids=[f"u{n}"])
    assert mark is not None
    return mark


def cut(path: Path, keep: int) -> None:
    """Keep only the first ``keep`` lines."""
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:keep]))


def edit_line(path: Path, number: int, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) in 1-based line ``number``."""
    raw = path.read_bytes().splitlines(keepends=True)
    raw[number - 1] = raw[number - 1].replace(old, new)
    path.write_bytes(b"".join(raw))


class TestAnchor:
    """What :meth:`AuditJournal.anchor` reports."""

    def test_anchor_marks_the_entries_written_so_far(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """Entries, byte offset and head are those of the file as written up to the anchor."""
        mark = anchored(journal_path, clock, 3, 0)
        assert (mark.entries, mark.offset) == (3, journal_path.stat().st_size)
        assert mark.head == verify_journal(journal_path).head
        assert mark.path == str(journal_path.absolute())

    def test_empty_journal_anchors_genesis(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """Before any entry the anchor is entry 0 at offset 0, chained from GENESIS."""
        assert anchored(journal_path, clock, 0, 0) == JournalAnchor(
            0, 0, GENESIS, str(journal_path.absolute())
        )

    def test_closed_journal_anchors_nothing(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """A closed journal has no anchor to give."""
        journal = AuditJournal.open(journal_path, now=clock)
        journal.close()
        assert journal.anchor() is None

    def test_reopened_journal_counts_bytes_on(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """A journal opened from an anchor reports offsets of the whole file."""
        first = anchored(journal_path, clock, 2, 2)
        with AuditJournal.open(journal_path, since=first, now=clock) as journal:
            journal.append("run_started", reason="resume")
            mark = journal.anchor()
        assert mark is not None
        assert (mark.entries, mark.offset) == (5, journal_path.stat().st_size)

    def test_json_round_trip(self) -> None:
        """The ledger's JSON form reads back as the same anchor; anything else reads as None."""
        mark = JournalAnchor(7, 700, "ab" * 32, "/x/run.journal")
        assert JournalAnchor.from_json(mark.as_json()) == mark
        assert JournalAnchor.from_json({"entries": "7"}) is None
        assert JournalAnchor.from_json(None) is None


class TestSince:
    """A resumed run checks the anchored line and what follows, not the whole file."""

    def test_intact_journal_verifies_from_the_anchor(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """Same verdict, count and head as a whole-file check."""
        mark = anchored(journal_path, clock, 4, 3)
        since, whole = verify_journal(journal_path, since=mark), verify_journal(journal_path)
        assert (since.ok, since.entries, since.head) == (True, 7, whole.head)

    @pytest.mark.parametrize(
        ("before", "after", "damage", "bad_line", "reason"),
        [
            (4, 3, lambda p: edit_line(p, 6, b'"u5"', b'"u9"'), 6, "line edited"),
            (4, 3, lambda p: edit_line(p, 4, b'"u3"', b'"u9"'), 4, "anchored"),
            (4, 0, lambda p: cut(p, 3), 4, "lines lost"),
            (4, 2, lambda p: edit_line(p, 1, b'"u0"', b'"u00"'), 4, "no entry ends where"),
        ],
        ids=["edit after the anchor", "anchored line edited", "cut before it", "lines moved"],
    )
    def test_damage_from_the_anchor_on_is_found(
        self,
        journal_path: Path,
        clock: Callable[[], datetime],
        before: int,
        after: int,
        damage: Callable[[Path], None],
        bad_line: int,
        reason: str,
    ) -> None:
        """An edit after the anchor, of the anchored line, or lines lost or moved before it."""
        mark = anchored(journal_path, clock, before, after)
        damage(journal_path)
        result = verify_journal(journal_path, since=mark)
        assert (result.ok, result.first_bad_line) == (False, bad_line)
        assert reason in (result.reason or "")

    def test_a_line_longer_than_a_read_block_is_found(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """The anchored line is read backwards across blocks when it is long."""
        with AuditJournal.open(journal_path, now=clock) as journal:
            journal.append("run_started", reason="x")
            journal.append("batch_sent", ids=[f"user{n:07d}" for n in range(20_000)])
            mark = journal.anchor()
            journal.append("run_finished")
        assert mark is not None
        assert mark.offset > 1 << 17
        assert verify_journal(journal_path, since=mark).entries == 3

    def test_open_refuses_a_journal_that_lost_anchored_lines(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """A resumed run will not extend a journal that ends before its anchor."""
        mark = anchored(journal_path, clock, 4, 0)
        cut(journal_path, 2)
        with pytest.raises(LedgerError, match="lines lost"):
            AuditJournal.open(journal_path, since=mark, now=clock)

    def test_another_journal_than_the_anchored_one_is_refused(
        self, tmp_path: Path, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """A resume naming another journal would split the run's chain: refused, naming both."""
        mark = anchored(journal_path, clock, 4, 0)
        other = tmp_path / "other.jsonl"
        anchored(other, clock, 1, 0)
        with pytest.raises(LedgerError, match=f"give --journal {journal_path}"):
            AuditJournal.open(other, since=mark, now=clock)

    def test_a_missing_anchored_journal_is_refused_not_started_afresh(
        self, tmp_path: Path, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """No journal where the state file anchored entries: refused, and nothing created."""
        mark = anchored(journal_path, clock, 4, 0)
        elsewhere = tmp_path / "new.jsonl"
        with pytest.raises(LedgerError, match="no audit journal here"):
            AuditJournal.open(elsewhere, since=mark, now=clock)
        assert not elsewhere.exists()

    def test_a_copy_while_the_anchored_journal_is_still_there_is_refused(
        self, tmp_path: Path, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """A copy passes through the anchor, but extending it would leave the original short."""
        mark = anchored(journal_path, clock, 4, 2)
        copy = tmp_path / "copy.jsonl"
        copy.write_bytes(journal_path.read_bytes())
        copy.chmod(0o600)
        with pytest.raises(LedgerError, match=f"give --journal {journal_path}"):
            AuditJournal.open(copy, since=mark, now=clock)

    def test_the_same_journal_moved_with_its_run_continues(
        self, tmp_path: Path, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """Moved to another folder, the journal still passes through its anchor: extended."""
        mark = anchored(journal_path, clock, 4, 2)
        moved = tmp_path / "moved.jsonl"
        journal_path.rename(moved)
        with AuditJournal.open(moved, since=mark, now=clock) as journal:
            assert journal.entries == 6


class TestThrough:
    """``audit verify --state``: the chain must pass through the ledger's anchor."""

    def test_chain_through_the_anchor_verifies(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """Lines after the anchor are allowed: they were written after the last anchored commit."""
        mark = anchored(journal_path, clock, 3, 2)
        assert verify_journal(journal_path, through=mark).ok

    def test_truncation_before_the_anchor_is_found(
        self, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """Dropping whole lines the ledger anchored is evident without --head."""
        mark = anchored(journal_path, clock, 3, 0)
        cut(journal_path, 2)
        assert verify_journal(journal_path).ok
        result = verify_journal(journal_path, through=mark)
        assert (result.ok, result.first_bad_line) == (False, 3)

    def test_another_journal_is_found(
        self, tmp_path: Path, journal_path: Path, clock: Callable[[], datetime]
    ) -> None:
        """A well-formed journal whose line at the anchor differs is not the anchored one."""
        mark = anchored(journal_path, clock, 3, 0)
        other = tmp_path / "other.jsonl"
        with AuditJournal.open(other, now=clock) as journal:
            for n in range(3):
                journal.append("batch_sent", batch=n, ids=[f"v{n}"])
        result = verify_journal(other, through=mark)
        assert (result.ok, result.first_bad_line) == (False, 3)


@settings(max_examples=40, deadline=None)
@given(before=st.integers(0, 12), after=st.integers(0, 12))
def test_since_agrees_with_the_whole_file(before: int, after: int) -> None:
    """For any anchor point, checking from it gives the whole file's count and head."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.jsonl"
        mark = anchored(path, lambda: datetime(2025, 1, 1), before, after)
        since, whole = verify_journal(path, since=mark), verify_journal(path)
        assert since.ok and whole.ok
        assert (since.entries, since.head) == (whole.entries, whole.head)
        assert verify_journal(path, through=mark).ok
