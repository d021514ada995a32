"""`bulkresign status` and the IDs `verify` reads back, from a hand-built ledger."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from bulkresign.cli import main
from bulkresign.cli.status import run_status
from bulkresign.inputspec import InputSpec
from bulkresign.ledger import Ledger
from bulkresign.models import BatchState, LineOutcome
from bulkresign.verify import Resigned, reported_resigned
from tests.report.helpers import hex_id, make_ledger, resign_ok


class TestCounts:
    def test_ids_by_outcome(self, ledger: Ledger) -> None:
        """Resigned counts the done batch's bare IDs and the resigned rows; an in-doubt batch's
        IDs are in doubt."""
        assert run_status(ledger).ids == {
            LineOutcome.RESIGNED: 4,
            LineOutcome.NOT_FOUND: 1,
            LineOutcome.FAILED: 1,
            LineOutcome.UNPROCESSED: 0,
            LineOutcome.IN_DOUBT: 1,
        }

    def test_batches_by_state_and_attempts(self, ledger: Ledger) -> None:
        """Every state is listed; each batch made one attempt."""
        status = run_status(ledger)
        assert {s: n for s, n in status.batches.items() if n} == {
            BatchState.DONE: 1,
            BatchState.REJECTED: 1,
            BatchState.IN_DOUBT: 1,
        }
        assert status.attempts == 3

    def test_an_open_batch_leaves_the_run_resumable(self, ledger: Ledger) -> None:
        """Input read to its end, but one batch in doubt: not finished."""
        status = run_status(ledger)
        assert status.ingest is not None and not status.finished

    def test_every_batch_terminal_and_input_read_is_finished(
        self, tmp_path: Path, spec: InputSpec
    ) -> None:
        """All batches done and the ingest counts recorded: finished."""
        led = make_ledger(tmp_path / "run.state", spec)
        for seq in range(3):
            resign_ok(led, seq, f"req-{seq}")
        assert run_status(led).finished

    def test_an_input_not_read_to_its_end_is_resumable(
        self, tmp_path: Path, spec: InputSpec
    ) -> None:
        """Every recorded batch done, but more input to come: resumable."""
        led = make_ledger(tmp_path / "run.state", spec, batches=2, ingest_done=False)
        for seq in range(2):
            resign_ok(led, seq, f"req-{seq}")
        status = run_status(led)
        assert status.ingest is None and not status.finished


class TestCommand:
    def test_text_names_the_run_and_its_state(
        self, ledger: Ledger, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The text shows host, userpool, the counts and "resumable"."""
        assert main(["status", "--state", str(ledger.path)]) == 0
        out = capsys.readouterr().out
        assert "http://127.0.0.1:9" in out and "pool" in out
        assert "resigned 4, not found 1, failed 1, unprocessed 0, in doubt 1" in out
        assert "resumable" in out

    def test_json_carries_the_counts_and_never_the_pseudonym_key(
        self, ledger: Ledger, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json is one object; the log pseudonym key stays in the ledger."""
        assert main(["status", "--state", str(ledger.path), "--json"]) == 0
        out = capsys.readouterr().out
        doc = json.loads(out)
        assert doc["ids"]["resigned"] == 4 and doc["status"] == "resumable"
        assert doc["ingest_complete"] is True
        assert doc["manifest"]["input_options"]["batch_size"] == "3"
        assert "ab" * 16 not in out and "pseudonym" not in out

    @pytest.mark.parametrize("command", ["status", "report", "verify"])
    def test_a_missing_state_file_is_one_line_and_exit_2(
        self, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No state file: a one-line error naming it, never a traceback."""
        missing = tmp_path / "nope.bulkresign"
        assert main([command, "--state", str(missing)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(missing) in err

    @pytest.mark.parametrize("command", ["status", "report", "verify"])
    @pytest.mark.parametrize("content", [b"", b"line,reason\n"], ids=["empty", "text"])
    def test_a_file_that_is_no_database_is_refused_untouched(
        self, command: str, content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An empty or text file as --state: exit 2, one line, and the file left as it was (an
        empty one is what a run killed as it made its state file leaves, and is said so)."""
        path = tmp_path / "e.db"
        path.write_bytes(content)
        path.chmod(0o600)
        assert main([command, "--state", str(path)]) == 2
        said = "an empty state file" if not content else "not a bulkresign state file"
        assert said in capsys.readouterr().err
        assert path.read_bytes() == content
        assert sorted(p.name for p in tmp_path.iterdir()) == ["e.db"]

    @pytest.mark.parametrize("command", ["status", "report", "verify", "run"])
    @pytest.mark.usefixtures("server")  # run logs in before it opens the state file
    def test_another_programs_sqlite_file_is_refused_unchanged(
        self, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A SQLite database that is not a ledger: refused, its bytes (journal mode) unchanged."""
        path = tmp_path / "o.db"
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE t (x)")
            db.commit()
        path.chmod(0o600)
        before = path.read_bytes()
        ids = tmp_path / "ids.txt"
        ids.write_text(hex_id(1) + "\n")
        argv = ["run", str(ids), "--yes"] if command == "run" else [command]
        assert main([*argv, "--state", str(path)]) == 2
        assert "not a bulkresign state file" in capsys.readouterr().err
        assert path.read_bytes() == before


class TestReportedResigned:
    def test_bare_ids_of_terminal_batches_and_resigned_rows(self, ledger: Ledger) -> None:
        """Batch 0 whole, plus the partial send of batch 1; never not_found, failed or open IDs."""
        assert list(reported_resigned(ledger)) == [
            Resigned(hex_id(0), 1),
            Resigned(hex_id(1), 2),
            Resigned(hex_id(2), 5),
            Resigned(hex_id(5), 9),
        ]
