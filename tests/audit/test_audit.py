"""The audit journal: hash-chained, private, append-only, and refused when tampered with."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from bulkresign.audit import GENESIS, AuditJournal, verify_journal
from bulkresign.errors import ConfigError, InputError, LedgerError
from bulkresign.logs import REDACTED, add_secret


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def entries(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in lines(path)]


class TestChain:
    """Each entry is numbered and chained to the exact bytes of the one before."""

    def test_fresh_journal_verifies(self, written: Path) -> None:
        """An untouched journal verifies with all its entries."""
        result = verify_journal(written)
        assert (result.ok, result.entries, result.first_bad_line, result.reason) == (
            True,
            5,
            None,
            None,
        )

    def test_entries_are_numbered_and_chained(self, written: Path) -> None:
        """seq counts from 0; prev is 64 zeros, then the SHA-256 of the previous line's bytes."""
        raw = [line.rstrip(b"\n") for line in lines(written)]
        found = entries(written)
        assert [e["seq"] for e in found] == [0, 1, 2, 3, 4]
        assert found[0]["prev"] == GENESIS
        for before, entry in zip(raw, found[1:], strict=False):
            assert entry["prev"] == hashlib.sha256(before).hexdigest()

    def test_entry_layout(self, written: Path) -> None:
        """seq, time (UTC ISO), kind, the fields, prev and hash, in that order."""
        first = entries(written)[0]
        assert list(first) == ["seq", "time", "kind", "reason", "host", "prev", "hash"]
        assert first["time"] == "2025-01-02T03:04:05.678901Z"
        assert first["kind"] == "run_started"

    def test_head_is_the_hash_of_the_last_line(self, journal_path: Path) -> None:
        """head is what the next entry's prev will be, and what verify reports."""
        with AuditJournal.open(journal_path) as journal:
            assert journal.head == GENESIS
            journal.append("run_started", reason="T")
            head = journal.head
        assert head == hashlib.sha256(lines(journal_path)[0].rstrip(b"\n")).hexdigest()
        assert verify_journal(journal_path).head == head

    def test_empty_journal_verifies(self, journal_path: Path) -> None:
        """A journal created but never written to is intact, with no entries."""
        AuditJournal.open(journal_path).close()
        assert verify_journal(journal_path).ok
        assert verify_journal(journal_path).entries == 0


class TestTampering:
    """Any edit, deletion, insertion, reordering or truncation names the first bad line."""

    def rewrite(self, path: Path, new: list[bytes]) -> None:
        path.write_bytes(b"".join(new))

    def test_edited_field_is_detected_on_its_line(self, written: Path) -> None:
        """Changing an outcome breaks that line's own hash."""
        old = lines(written)
        old[3] = old[3].replace(b'"done"', b'"fail"')
        self.rewrite(written, old)
        result = verify_journal(written)
        assert (result.ok, result.first_bad_line) == (False, 4)
        assert "edited" in str(result.reason)

    def test_edited_last_line_is_detected(self, written: Path) -> None:
        """The last line has no successor, but its own hash still gives it away."""
        old = lines(written)
        old[-1] = old[-1].replace(b"502", b"200")
        self.rewrite(written, old)
        assert verify_journal(written).first_bad_line == 5

    def test_deleted_line_is_detected_where_it_was(self, written: Path) -> None:
        """Removing line 2 makes line 2 (formerly 3) out of sequence."""
        old = lines(written)
        del old[1]
        self.rewrite(written, old)
        result = verify_journal(written)
        assert (result.ok, result.first_bad_line, result.entries) == (False, 2, 1)

    def test_swapped_lines_are_detected(self, written: Path) -> None:
        """Swapping lines 2 and 3 breaks the chain at line 2."""
        old = lines(written)
        old[1], old[2] = old[2], old[1]
        self.rewrite(written, old)
        assert verify_journal(written).first_bad_line == 2

    def test_inserted_line_is_detected(self, written: Path) -> None:
        """A copy of line 1 inserted after it is out of sequence."""
        old = lines(written)
        old.insert(1, old[0])
        self.rewrite(written, old)
        assert verify_journal(written).first_bad_line == 2

    def test_forged_line_without_the_right_prev_is_detected(self, written: Path) -> None:
        """A well-formed, self-consistent entry appended with a made-up prev is refused."""
        body = orjson.dumps(
            {"seq": 5, "time": "2025-01-02T03:04:06Z", "kind": "run_finished", "prev": "1" * 64}
        )
        sealed = body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'
        with written.open("ab") as f:
            f.write(sealed)
        result = verify_journal(written)
        assert (result.first_bad_line, result.entries) == (6, 5)
        assert "prev" in str(result.reason)

    def test_truncation_mid_line_is_detected(self, written: Path) -> None:
        """A journal cut in the middle of its last line fails on that line."""
        data = written.read_bytes()
        written.write_bytes(data[:-20])
        result = verify_journal(written)
        assert result.first_bad_line == 5
        assert "truncated" in str(result.reason)

    def test_dropped_trailing_line_needs_the_recorded_head(self, written: Path) -> None:
        """Whole lines cut from the end are only evident against a head kept elsewhere."""
        head = verify_journal(written).head
        self.rewrite(written, lines(written)[:-1])
        assert verify_journal(written).ok
        result = verify_journal(written, head=head)
        assert (result.ok, result.first_bad_line) == (False, 5)

    def test_unreadable_journal_is_an_input_error(self, tmp_path: Path) -> None:
        """A missing file raises one-line InputError naming it."""
        with pytest.raises(InputError, match="missing.jsonl"):
            verify_journal(tmp_path / "missing.jsonl")


class TestReopen:
    """A resumed run verifies the journal, then continues its chain."""

    def test_reopening_continues_the_chain(self, written: Path) -> None:
        """New entries follow the old ones in sequence, and the whole file still verifies."""
        with AuditJournal.open(written) as journal:
            assert journal.entries == 5
            journal.append("run_started", reason="resume")
        assert entries(written)[-1]["seq"] == 5
        assert verify_journal(written).entries == 6

    def test_a_path_given_as_text_works_too(self, written: Path) -> None:
        """The documented calls take a str path as well as a Path, new file or existing one."""
        with AuditJournal.open(str(written)) as journal:
            journal.append("run_started", reason="resume")
        assert verify_journal(str(written)).entries == 6

    def test_tampered_journal_is_refused_with_its_line(self, written: Path) -> None:
        """A journal that fails verification is not extended; the error names the bad line."""
        old = lines(written)
        del old[2]
        written.write_bytes(b"".join(old))
        with pytest.raises(LedgerError, match=r"run\.audit\.jsonl:3: audit journal fails"):
            AuditJournal.open(written)
        assert len(lines(written)) == 4

    def test_shared_journal_is_refused(self, written: Path) -> None:
        """A journal others can read is refused, as every private file is."""
        os.chmod(written, 0o644)
        with pytest.raises(ConfigError, match="chmod 600"):
            AuditJournal.open(written)


class TestWriting:
    """What append writes, and what it refuses."""

    def test_journal_is_private_under_umask_022(self, journal_path: Path, umask_022: None) -> None:
        """The journal is created with mode 0600 even when the umask would allow 0644."""
        AuditJournal.open(journal_path).close()
        assert stat.S_IMODE(journal_path.stat().st_mode) == 0o600

    def test_ids_are_kept_as_given(self, written: Path) -> None:
        """The journal is the audit record: it holds the IDs themselves, not pseudonyms."""
        assert entries(written)[1]["ids"] == ["u0a", "u0b"]

    def test_secrets_are_redacted(self, journal_path: Path) -> None:
        """A secret handed to append by mistake is not written."""
        add_secret("CANARY-journal")
        with AuditJournal.open(journal_path) as journal:
            journal.append("note", detail="token CANARY-journal", authorization="Bearer x")
        assert b"CANARY-journal" not in journal_path.read_bytes()
        assert entries(journal_path)[0]["authorization"] == REDACTED

    def test_durable_append_fsyncs(
        self, journal_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """durable=True syncs that entry; the default does not."""
        synced: list[int] = []
        monkeypatch.setattr(os, "fsync", synced.append)
        with AuditJournal.open(journal_path) as journal:
            journal.append("batch_sent", batch=0)
            journal.append("run_stopped", durable=True, why="signal")
        assert len(synced) == 1

    def test_after_a_failed_write_every_append_is_a_ledger_error(
        self, journal_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A write that fails (a full disk) closes the journal; every writer after it gets the
        same LedgerError, never a ValueError that turned the run's stop into a traceback."""
        journal = AuditJournal.open(journal_path)

        def full(fd: int, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", full)
        for _ in range(2):
            with pytest.raises(LedgerError, match="cannot append to audit journal"):
                journal.append("batch_sent", batch=0)

    def test_reserved_field_names_are_refused(self, journal_path: Path) -> None:
        """A field named like the chain's own fields would make the entry ambiguous."""
        with AuditJournal.open(journal_path) as journal, pytest.raises(ValueError, match="seq"):
            journal.append("batch_sent", seq=1)

    def test_append_after_close_is_refused(self, journal_path: Path) -> None:
        """A closed journal cannot be written to."""
        journal = AuditJournal.open(journal_path)
        journal.close()
        with pytest.raises(ValueError, match="closed"):
            journal.append("late")

    def test_run_started_says_who_where_and_why(
        self,
        journal_path: Path,
        clock: Callable[[], datetime],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """run_started records the operator, the reason, the tool version and the caller's facts."""
        monkeypatch.setattr("getpass.getuser", lambda: "alice")
        with AuditJournal.open(journal_path, now=clock) as journal:
            journal.run_started(reason="CHG-42", userpool_id="pool-1", plan_sha256="ab" * 32)
        entry = entries(journal_path)[0]
        assert entry["kind"] == "run_started"
        assert (entry["operator"], entry["reason"], entry["userpool_id"]) == (
            "alice",
            "CHG-42",
            "pool-1",
        )
        assert {"tool_version", "machine", "pid", "plan_sha256"} <= set(entry)
