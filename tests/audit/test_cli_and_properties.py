"""``bulkresign audit verify`` and the property that no single-byte change goes unnoticed."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkresign.audit import AuditJournal, verify_journal
from bulkresign.cli import main


@pytest.mark.usefixtures("only_audit_command")
class TestVerifyCommand:
    """One line of verdict and a documented exit code."""

    def test_intact_journal_exits_0(
        self, written: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An intact journal prints OK with its entry count and its head, which --head takes."""
        assert main(["audit", "verify", str(written)]) == 0
        head = hashlib.sha256(written.read_bytes().splitlines()[-1]).hexdigest()
        assert capsys.readouterr().out == f"OK: 5 entries, chain intact, head {head}\n"
        assert main(["audit", "verify", str(written), "--head", head]) == 0

    def test_tampered_journal_exits_1(
        self, written: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A tampered journal prints TAMPERED with the first bad line."""
        written.write_bytes(written.read_bytes().replace(b'"u1a"', b'"u1z"'))
        assert main(["audit", "verify", str(written)]) == 1
        out = capsys.readouterr().out
        assert out.startswith("TAMPERED: line 3: ")
        assert out.count("\n") == 1

    @pytest.mark.parametrize("name", ["missing.jsonl", "."])
    def test_unreadable_file_exits_2(
        self, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing file or a directory gives a one-line error on stderr, no traceback."""
        assert main(["audit", "verify", str(tmp_path / name)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith("bulkresign: error: ")
        assert captured.err.count("\n") == 1

    def test_a_file_with_no_sealed_line_is_not_a_journal_exit_2(
        self, written: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A log or a report given by mistake: one error line, exit 2, not TAMPERED."""
        other = tmp_path / "run.log"
        other.write_text('{"event": "batch_sent"}\n')
        assert main(["audit", "verify", str(other)]) == 2
        assert "not an audit journal" in capsys.readouterr().err

    def test_an_empty_file_is_not_a_journal_exit_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Zero bytes is no run's journal: an error, not "OK: 0 entries"."""
        empty = tmp_path / "j.jsonl"
        empty.write_bytes(b"")
        assert main(["audit", "verify", str(empty)]) == 2
        assert "empty" in capsys.readouterr().err

    def test_a_journal_with_its_first_line_edited_is_tampered(
        self, written: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Line 1 no longer sealed, the rest intact: still TAMPERED at line 1, exit 1."""
        first, rest = written.read_bytes().split(b"\n", 1)
        written.write_bytes(first[:-20] + b"}\n" + rest)
        assert main(["audit", "verify", str(written)]) == 1
        assert capsys.readouterr().out.startswith("TAMPERED: line 1: ")

    def test_matching_head_exits_0(self, written: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--head equal to the last line's hash confirms nothing was cut from the end."""
        last = written.read_bytes().splitlines()[-1]
        head = hashlib.sha256(last).hexdigest()
        assert main(["audit", "verify", str(written), "--head", head]) == 0

    def test_other_head_exits_1(self, written: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--head that the journal does not end at means lines were dropped or added."""
        assert main(["audit", "verify", str(written), "--head", "0" * 64]) == 1
        assert capsys.readouterr().out.startswith("TAMPERED: line 6: ")

    def test_malformed_head_exits_2(
        self, written: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--head that is not a SHA-256 is a usage error."""
        assert main(["audit", "verify", str(written), "--head", "xyz"]) == 2
        assert "64 hex digits" in capsys.readouterr().err


def _sample_journal() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.jsonl"
        with AuditJournal.open(path) as journal:
            journal.run_started(reason="T-1", host="https://127.0.0.1", userpool_id="p")
            journal.append("batch_sent", batch=0, attempt=1, ids=["a@example.com", "+861380"])
            journal.append("batch_outcome", batch=0, attempt=1, outcome="done", status=200)
        return path.read_bytes()


SAMPLE = _sample_journal()


class TestEveryByteCounts:
    """The chain plus each line's own hash leave no byte unprotected."""

    @settings(max_examples=300, deadline=None)
    @given(
        position=st.integers(min_value=0, max_value=len(SAMPLE) - 1),
        delta=st.integers(min_value=1, max_value=255),
    )
    def test_any_single_byte_change_is_detected(self, position: int, delta: int) -> None:
        """Changing any one byte of a valid journal to any other value fails verification."""
        mutated = bytearray(SAMPLE)
        mutated[position] = (mutated[position] + delta) % 256
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "j.jsonl"
            path.write_bytes(bytes(mutated))
            assert not verify_journal(path).ok
