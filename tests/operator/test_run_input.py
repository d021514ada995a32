"""`bulkresign run` and an input that is bad, changes, or is a pipe: refused before anything, or
stopped at the bad spot and resumed once the input is fixed — one line each time, never twice."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkresign.cli import main, printable
from bulkresign.cli.records import count_problems, read_ingest_stats
from bulkresign.digest import FileStamp, StreamDigest, file_stamp, hash_file
from bulkresign.emulator import RunningServer, synthetic_user_id
from bulkresign.errors import InputError, LedgerMismatch
from bulkresign.ledger import Ledger, Manifest
from bulkresign.source import InputReader

USERS = [synthetic_user_id(i) for i in range(350)]


def run(path: Path, *extra: str) -> list[str]:
    return ["run", str(path), "--yes", "--no-progress", "--rate", "1000", *extra]


def oracle(server: RunningServer) -> dict[str, object]:
    summary = server.oracle(summary=True)
    assert isinstance(summary, dict)
    return summary


def records(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if ".bulkresign" in p.name)


def from_stdin(monkeypatch: pytest.MonkeyPatch, source: Path, argv: list[str]) -> int:
    """``main(argv)`` with the bytes of ``source`` on standard input."""
    with source.open("rb") as stdin:
        monkeypatch.setattr("sys.stdin", type("In", (), {"fileno": stdin.fileno})())
        return main(argv)


def each_resigned_once(server: RunningServer, n: int) -> bool:
    """The emulator resigned ``n`` users in all, none of them twice."""
    summary = oracle(server)
    return summary["resigned_total"] == n and summary["max_resign_count"] == 1


def run_from_fifo(tmp_path: Path, ids: list[str]) -> Path:
    """Run (exit 0 expected) over a FIFO a thread writes ``ids`` into; the FIFO's path."""
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("w") as out:
            out.write("\n".join(ids) + "\n")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    assert main(run(fifo)) == 0
    writer.join(timeout=10)
    return fifo


def jsonl(ids: list[str]) -> list[str]:
    return [json.dumps({"user_id": i}) for i in ids]


class TestRefusedBeforeAnything:
    @pytest.mark.parametrize(
        "content", [b"", "\ufeffuser\n".encode("utf-16")], ids=["empty", "utf-16"]
    )
    def test_an_unusable_start_is_refused_before_any_file_or_call(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        content: bytes,
    ) -> None:
        """Exit 2, one line naming the file; no ledger, log or journal; no call at all."""
        path = tmp_path / "ids.txt"
        path.write_bytes(content)
        assert main(run(path)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0]
        assert records(tmp_path) == []
        assert oracle(server)["requests"] == {}

    @pytest.mark.parametrize("via", ["stdin", "fifo"])
    @pytest.mark.parametrize(
        "content",
        [b"", "\ufeffuser\n".encode("utf-16"), f"{USERS[0]}\n{USERS[1]}\n".encode()],
        ids=["empty", "utf-16", "csv-without-header"],
    )
    def test_a_pipe_with_an_unusable_start_is_refused_before_any_file(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        content: bytes,
        via: str,
    ) -> None:
        """A pipe is checked like a file before the state file exists: exit 2, one line."""
        state = tmp_path / "ids.bulkresign"
        argv = ["--state", str(state), "--format", "csv"]
        if via == "stdin":
            source = tmp_path / "ids.csv"
            source.write_bytes(content)
            assert from_stdin(monkeypatch, source, run(Path("-"), *argv)) == 2
        else:
            fifo = tmp_path / "ids.fifo"
            os.mkfifo(fifo)
            writer = threading.Thread(target=fifo.write_bytes, args=(content,), daemon=True)
            writer.start()
            assert main(run(fifo, *argv)) == 2
            writer.join(timeout=10)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0]
        assert records(tmp_path) == []
        assert oracle(server)["requests"] == {}

    def test_a_journal_that_is_not_one_is_refused_before_any_file(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--journal naming someone's file: exit 2, one line, no state file or log (both were
        left behind), the file unchanged."""
        path = tmp_path / "ids.txt"
        path.write_text(f"{USERS[0]}\n")
        notes = tmp_path / "notes.jsonl"
        notes.write_text('{"a": 1}\n')
        assert main(run(path, "--journal", str(notes))) == 2
        assert "is not an audit journal" in capsys.readouterr().err
        assert records(tmp_path) == [] and notes.read_text() == '{"a": 1}\n'

    @pytest.mark.timeout(30)
    @pytest.mark.parametrize("option", ["--state", "--log", "--journal"])
    def test_a_fifo_as_an_output_is_refused_at_once(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        option: str,
    ) -> None:
        """A named pipe at --state, --log or --journal: exit 2, one line (the run waited on it
        for a writer, deaf to SIGTERM)."""
        path = tmp_path / "ids.txt"
        path.write_text(f"{USERS[0]}\n")
        fifo = tmp_path / "out.fifo"
        os.mkfifo(fifo, 0o600)
        assert main(run(path, option, str(fifo))) == 2
        assert "is not a regular file" in capsys.readouterr().err
        assert records(tmp_path) == []

    def test_a_report_of_a_piped_run_is_refused_up_front(
        self,
        server: RunningServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`run - --report r.csv`: refused before anything (it resigned everyone, then could
        not read stdin again for the report: exit 2, no report, on every rerun)."""
        source = tmp_path / "ids.txt"
        source.write_text("\n".join(USERS[:60]) + "\n")
        argv = ["--state", str(tmp_path / "s.bulkresign"), "--report", str(tmp_path / "r.csv")]
        assert from_stdin(monkeypatch, source, run(Path("-"), *argv)) == 2
        assert "can be read only once" in capsys.readouterr().err
        assert records(tmp_path) == [] and oracle(server)["requests"] == {}

    def test_a_missing_input_creates_nothing(self, server: RunningServer, tmp_path: Path) -> None:
        """run on a file that is not there: exit 2, and no ledger, log or journal appears."""
        assert main(run(tmp_path / "missing.txt")) == 2
        assert records(tmp_path) == []

    @pytest.mark.parametrize("option", ["--log", "--report", "--journal", "--state"])
    def test_an_output_naming_the_input_is_refused(
        self, server: RunningServer, tmp_path: Path, option: str
    ) -> None:
        """An output file that is the input would overwrite it: exit 2, the input untouched."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:10]) + "\n")
        before = path.read_bytes()
        assert main(run(path, option, str(path))) == 2
        assert path.read_bytes() == before
        assert oracle(server)["requests"] == {}

    @pytest.mark.parametrize(
        "extra",
        [
            ["--report", "{tmp}/nowhere/report.csv"],
            ["--report", "{tmp}"],
            ["--log", "{tmp}/ids.txt.bulkresign-wal"],
            ["--grace", "-1"],
            ["--reconcile-delay", "-1"],
            ["--reconcile-delay", "inf"],
            ["--rate", "1e-300"],
            ["--concurrency", "100000"],
            ["--max-users", "-1"],
            ["--timeout", "nan"],
            ["--max-line-bytes", "99999999999999999999"],
        ],
        ids=[
            "report-folder-missing",
            "report-is-a-folder",
            "log-is-the-wal",
            "grace",
            "delay",
            "delay-inf",
            "rate-tiny",
            "concurrency-huge",
            "max-users-negative",
            "timeout-nan",
            "max-line-bytes-huge",
        ],
    )
    def test_options_the_run_could_not_honour_are_refused_first(
        self, server: RunningServer, tmp_path: Path, extra: list[str]
    ) -> None:
        """A report it could not write at the end, a log on the ledger's WAL, a negative delay."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:10]) + "\n")
        assert main(run(path, *(e.format(tmp=tmp_path) for e in extra))) == 2
        assert oracle(server)["requests"] == {}

    def test_a_hard_link_to_the_input_or_the_exclude_list_is_refused(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """Outputs are compared by inode: a hard link of the input, or the --exclude file."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:10]) + "\n")
        path.chmod(0o600)
        os.link(path, tmp_path / "run.log")
        protect = tmp_path / "protect.txt"
        protect.write_text(USERS[0] + "\n")
        before = path.read_bytes()
        assert main(run(path, "--log", str(tmp_path / "run.log"))) == 2
        assert main(run(path, "--exclude", str(protect), "--report", str(protect))) == 2
        assert path.read_bytes() == before and protect.read_text() == USERS[0] + "\n"
        assert oracle(server)["requests"] == {}

    def test_plan_refuses_rejects_naming_the_input_or_a_shared_file(self, tmp_path: Path) -> None:
        """plan --rejects may not cut the input, nor take over a file others can read."""
        path = tmp_path / "ids.txt"
        path.write_text(f"{USERS[0]}\nnot-an-id\n")
        before = path.read_bytes()
        assert main(["plan", str(path), "--rejects", str(path)]) == 2
        assert path.read_bytes() == before
        shared = tmp_path / "rejects.csv"
        shared.write_text("keep\n")
        shared.chmod(0o644)
        assert main(["plan", str(path), "--rejects", str(shared)]) == 2
        assert shared.read_text() == "keep\n"

    @pytest.mark.parametrize("suffix", ["", ".journal", ".log"])
    def test_report_and_rejects_never_replace_a_runs_records(
        self, server: RunningServer, tmp_path: Path, suffix: str
    ) -> None:
        """report --output / plan --rejects on the ledger, its journal or log: exit 2, kept."""
        path = tmp_path / "ids.txt"
        path.write_text(f"{USERS[0]}\nnot-an-id\n")
        assert main(run(path)) == 1
        state = Path(f"{path}.bulkresign")
        record = Path(f"{state}{suffix}")
        before = record.read_bytes()
        assert main(["report", "--state", str(state), "--output", str(record)]) == 2
        assert main(["plan", str(path), "--rejects", str(record)]) == 2
        assert record.read_bytes() == before

    def test_report_and_rejects_replace_only_their_own_files(
        self, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A custom --journal, a -wal, any file bulkresign did not write as a report (or the
        rejects file) is refused, stdin input too; an earlier report is replaced."""
        path = tmp_path / "ids.txt"
        path.write_text(f"{USERS[0]}\nnot-an-id\n")
        journal, log = tmp_path / "audit.jrnl", tmp_path / "events.log"
        assert main(run(path, "--journal", str(journal), "--log", str(log))) == 1
        state = f"{path}.bulkresign"
        wal = tmp_path / "other.db-wal"
        wal.write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 28)
        wal.chmod(0o600)
        for target in (journal, log, wal):
            before = target.read_bytes()
            assert main(["report", "--state", state, "--output", str(target)]) == 2
            assert from_stdin(monkeypatch, path, ["plan", "-", "--rejects", str(target)]) == 2
            assert target.read_bytes() == before
        fifo, link = tmp_path / "fifo", tmp_path / "link.csv"
        os.mkfifo(fifo, 0o600)
        link.symlink_to(tmp_path / "nowhere.csv")
        for target in (fifo, link):
            assert main(["plan", str(path), "--rejects", str(target)]) == 2
            assert main(["report", "--state", state, "--output", str(target)]) == 2
        assert not (tmp_path / "nowhere.csv").exists()
        report, rejects = tmp_path / "report.csv", tmp_path / "rejects.csv"
        for again in ([], ["--replace"]):
            assert main(["report", "--state", state, "--output", str(report), *again]) == 0
            assert main(["plan", str(path), "--rejects", str(rejects)]) == 1
        assert main(["report", "--state", state, "--output", str(report)]) == 2  # no --replace

    def test_report_never_replaces_another_state_file(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """Any SQLite database (another run's ledger, say) is refused as --output."""
        path = tmp_path / "ids.txt"
        path.write_text(f"{USERS[0]}\n")
        other = tmp_path / "other.txt"
        other.write_text(f"{USERS[1]}\n")
        assert main(run(path)) == 0
        assert main(run(other)) == 0
        ledger = Path(f"{other}.bulkresign")
        before = ledger.read_bytes()
        assert main(["report", "--state", f"{path}.bulkresign", "--output", str(ledger)]) == 2
        assert ledger.read_bytes() == before

    @pytest.mark.parametrize("blank", ["empty", "no tables"])
    def test_a_state_file_killed_as_it_was_made_starts_afresh(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        blank: str,
    ) -> None:
        """SIGKILL while the ledger is created leaves an empty file or a database without
        tables: status says what it is, and the same run starts the job (every command refused
        it for good: "not a bulkresign state file")."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:60]) + "\n")
        state = Path(f"{path}.bulkresign")
        if blank == "empty":
            state.touch(mode=0o600)
        else:
            sqlite3.connect(state).execute("PRAGMA user_version=0").connection.close()
            state.chmod(0o600)
        assert main(["status", "--state", str(state)]) == 2
        assert "an empty state file" in capsys.readouterr().err
        assert main(run(path)) == 0
        assert each_resigned_once(server, 60)


class TestStoppedAtTheBadSpot:
    def test_a_bad_record_mid_file_stops_the_run_and_the_fixed_file_resumes(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 3 at the bad line, then the fixed file finishes: every ID resigned once."""
        path = tmp_path / "ids.jsonl"
        # Blank lines put the bad record past the first batch the run checks before it starts.
        good, rest = jsonl(USERS[:300]), jsonl(USERS[300:])
        lines = [*good, *[""] * 5000, '{"user_id": 5}', *rest]
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path)) == 3
        err = capsys.readouterr().err
        assert f"{path}:5301:" in err and "fix the input" in err
        assert "Traceback" not in err
        assert oracle(server)["resigned_total"] <= 300  # type: ignore[operator]

        lines[5300] = ""
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path)) == 0
        assert "changed since the last run stopped" in capsys.readouterr().err
        assert each_resigned_once(server, 350)

    def test_the_report_of_a_run_stopped_there_has_every_line_before_it(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """report after an input error: a row for each line before the bad one, then exit 1."""
        path = tmp_path / "ids.jsonl"
        lines = [*jsonl(USERS[:300]), *[""] * 5000, '{"user_id": 5}', *jsonl(USERS[300:])]
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path)) == 3
        out = tmp_path / "report.csv"
        capsys.readouterr()
        assert main(["report", "--state", f"{path}.bulkresign", "--output", str(out)]) == 1
        assert "the report ends after 5,300 lines" in capsys.readouterr().err
        rows = out.read_text().splitlines()[1:]
        assert [int(r.split(",")[0]) for r in rows] == list(range(1, 5301))
        resigned = sum(",resigned," in r for r in rows)
        assert resigned == oracle(server)["resigned_total"]

    def test_a_fixed_input_is_checked_before_the_open_batches_are_sent(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 'fix' dropping an ID of a recorded, unsent batch: refused, nothing sent, not stuck."""
        path = tmp_path / "ids.jsonl"
        lines = [*jsonl(USERS[:300]), *[""] * 5000, '{"user_id": 5}', *jsonl(USERS[300:])]
        path.write_text("\n".join(lines) + "\n")
        # One worker at 1/s: the bad record stops the run in its first second, leaving some of
        # the first chunk's four batches (IDs 0-199) recorded and unsent.
        assert main(run(path, "--rate", "1", "--concurrency", "1")) == 3
        before = server.oracle()["resign_counts"]
        assert isinstance(before, dict) and len(before) < 200
        dropped = next(u for u in USERS[:200] if u not in before)
        bad = [line for line in lines if dropped not in line]
        bad[bad.index('{"user_id": 5}')] = ""
        path.write_text("\n".join(bad) + "\n")
        capsys.readouterr()
        assert main(run(path)) == 2
        assert "differs" in capsys.readouterr().err
        assert server.oracle()["resign_counts"] == before
        lines[lines.index('{"user_id": 5}')] = ""
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path)) == 0  # the right fix is still accepted
        assert each_resigned_once(server, 350)

    @pytest.mark.parametrize("change", ["shorter", "shifted"])
    def test_a_fixed_input_must_hold_every_recorded_batch_where_it_was(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        change: str,
    ) -> None:
        """Recorded batches missing from the fixed input, or on other lines: refused first."""
        path = tmp_path / "ids.jsonl"
        lines = [*jsonl(USERS[:300]), *[""] * 5000, '{"user_id": 5}']
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path, "--rate", "1")) == 3
        before = server.oracle()["resign_counts"]
        fixed = lines[:100] if change == "shorter" else ["", *lines[:-1]]
        path.write_text("\n".join(fixed) + "\n")
        capsys.readouterr()
        assert main(run(path)) == 2
        err = capsys.readouterr().err
        assert ("input ends after batch" if change == "shorter" else "differs") in err
        assert server.oracle()["resign_counts"] == before

    def test_a_changed_input_without_an_input_error_is_still_refused(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A finished run's input edited afterwards: the rerun is refused in one line."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:100]) + "\n")
        assert main(run(path)) == 0
        path.write_text("\n".join(USERS[:101]) + "\n")
        capsys.readouterr()
        assert main(run(path)) == 2
        assert "the input changed" in capsys.readouterr().err
        assert oracle(server)["resigned_total"] == 100

    def test_a_fixed_input_that_changes_recorded_batches_is_refused_in_one_line(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """After an input error, a new input must repeat every recorded batch: exit 2 if not."""
        path = tmp_path / "ids.jsonl"
        lines = [*jsonl(USERS[:300]), *[""] * 5000, '{"user_id": 5}']
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path)) == 3
        before = oracle(server)["resigned_total"]
        lines[0], lines[-1] = jsonl([synthetic_user_id(399)])[0], ""
        path.write_text("\n".join(lines) + "\n")
        capsys.readouterr()
        assert main(run(path)) == 2
        err = capsys.readouterr().err
        assert "batch 0 in the state file differs" in err and "Traceback" not in err
        assert oracle(server)["resigned_total"] == before

    @pytest.mark.parametrize(
        ("stop", "tail", "message"),
        [
            (["--canary", "1"], USERS[200:250], "differ from those the earlier run read"),
            (["--max-errors", "0"], USERS[200:210], "goes on past the"),
        ],
        ids=["other-bytes-than-read", "longer-than-read-to-its-end"],
    )
    def test_a_stdin_resume_fed_other_bytes_is_refused(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        stop: list[str],
        tail: list[str],
        message: str,
    ) -> None:
        """Bytes past the ledger's batches that the first run read must come again, and no more.

        The first run stops at its unknown first ID: after batch 0 (--canary 1), having read
        100 lines; or after reading the stream to its end (--max-errors 0).
        """
        state = str(tmp_path / "stdin.bulkresign")
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(["f" * 24, *USERS[:99]]) + "\n")
        argv = ["run", "-", "--yes", "--no-progress", "--state", state]
        assert from_stdin(monkeypatch, ids, [*argv, *stop]) == 3
        kept = USERS[:49] if stop[0] == "--canary" else USERS[:99]
        ids.write_text("\n".join(["f" * 24, *kept, *tail]) + "\n")
        capsys.readouterr()
        assert from_stdin(monkeypatch, ids, argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        # The batches the ledger held may finish; nothing the first run never read is sent.
        assert not set(tail) & set(server.oracle()["resign_counts"])  # type: ignore[arg-type]


class TestPipes:
    @pytest.mark.timeout(120)
    def test_a_piped_run_killed_in_its_canary_resumes_the_canary_after_the_replay(
        self, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Killed with canary batch 1 recorded but unsent: the resume replays the stream up to
        it, finishes batch 1, sends batch 2 alone and reads both back: the unknown ID in batch 2
        stops the run; a second resume finishes the stream, each user resigned once."""
        server.call(lambda: server.emulator.reconfigure(unknown_ids="ignore"))
        state = str(tmp_path / "stdin.bulkresign")
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join([*USERS[:100], "f" * 24, *USERS[100:299]]) + "\n")
        argv = ["run", "-", "--yes", "--no-progress", "--state", state, "--canary", "3"]
        env = {**os.environ, "BULKRESIGN_CRASH_AT": "after_batch_insert:2"}
        with ids.open("rb") as stdin:
            killed = subprocess.run(
                [sys.executable, "-m", "bulkresign", *argv],
                env=env,
                stdin=stdin,
                capture_output=True,
                timeout=60,
            )
        assert killed.returncode == -signal.SIGKILL
        assert oracle(server)["resigned_total"] == 50
        assert from_stdin(monkeypatch, ids, argv) == 3
        assert oracle(server)["resigned_total"] == 149
        assert from_stdin(monkeypatch, ids, argv) == 1  # the unknown ID, not_found
        assert each_resigned_once(server, 299)

    def test_a_piped_input_that_failed_resumes_with_the_fixed_stream(
        self, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Bytes read ahead past the bad spot are not a prefix the fixed stream must repeat."""
        state = str(tmp_path / "stdin.bulkresign")
        ids = tmp_path / "ids.jsonl"
        lines = [*jsonl(USERS[:300]), *[""] * 5000, '{"user_id": 5}', *jsonl(USERS[300:])]
        ids.write_text("\n".join(lines) + "\n")
        argv = ["run", "-", "--format", "jsonl", "--yes", "--no-progress", "--state", state]
        assert from_stdin(monkeypatch, ids, argv) == 3
        lines[lines.index('{"user_id": 5}')] = ""
        ids.write_text("\n".join(lines) + "\n")
        assert from_stdin(monkeypatch, ids, argv) == 0
        assert each_resigned_once(server, 350)

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("fmt", ["lines", "csv"])
    def test_a_slow_producers_first_batch_goes_out_at_once(
        self, server: RunningServer, tmp_path: Path, fmt: str
    ) -> None:
        """60 IDs, then a pause: batch 0 is sent while the writer waits (it waited for four
        batches, 200 IDs; a CSV for 2,048 records); the rest follows, each user once."""
        state = tmp_path / "pipe.bulkresign"
        argv = [sys.executable, "-m", "bulkresign", "run", "-", "--yes", "--no-progress"]
        argv += ["--state", str(state), "--rate", "1000", "--format", fmt]
        head = "user_id\n" if fmt == "csv" else ""
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert proc.stdin is not None
            proc.stdin.write((head + "\n".join(USERS[:60]) + "\n").encode())
            proc.stdin.flush()
            deadline = time.monotonic() + 20
            while oracle(server)["resigned_total"] != 50:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            proc.stdin.write(("\n".join(USERS[60:200]) + "\n").encode())
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
            proc.wait()
        assert each_resigned_once(server, 200)

    def test_a_named_pipe_is_read_once(self, server: RunningServer, tmp_path: Path) -> None:
        """A FIFO cannot be read twice: the run hashes what it reads and finishes."""
        run_from_fifo(tmp_path, USERS[:120])
        assert each_resigned_once(server, 120)

    def test_the_report_of_a_named_pipe_asks_for_the_bytes(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The report of a run that read a pipe by name (`run <(…)`) asks for a file with the
        same bytes, instead of saying the pipe is missing."""
        fifo = run_from_fifo(tmp_path, USERS[:60])
        fifo.unlink()
        capsys.readouterr()
        assert main(["report", "--state", f"{fifo}.bulkresign"]) == 2
        assert "a pipe, once; give --input FILE" in capsys.readouterr().err

    @pytest.mark.timeout(60)
    def test_a_signal_while_a_pipe_is_silent_stops_at_once(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """A writer that sent 120 IDs and then went quiet without closing: SIGTERM ends the run
        within seconds (exit 3, no abort at shutdown); the resume sends what it was given."""
        state = tmp_path / "pipe.bulkresign"
        argv = [sys.executable, "-m", "bulkresign", "run", "-", "--yes", "--no-progress"]
        argv += ["--state", str(state), "--rate", "1000"]
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        try:
            assert proc.stdin is not None
            proc.stdin.write(("\n".join(USERS[:120]) + "\n").encode())
            proc.stdin.flush()
            journal = Path(f"{state}.journal")
            deadline = time.monotonic() + 30
            while b"run_started" not in (journal.read_bytes() if journal.exists() else b""):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            time.sleep(0.5)  # waiting on the pipe now
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 3  # while the writer still holds the pipe open
            err = proc.stderr.read().decode() if proc.stderr else ""
            assert "Fatal Python error" not in err and "Traceback" not in err
        finally:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stderr):
                if stream is not None:
                    stream.close()
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(USERS[:120]) + "\n")
        with ids.open("rb") as again:
            done = subprocess.run([*argv], stdin=again, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert each_resigned_once(server, 120)


class TestFileStamp:
    def test_a_rewrite_between_blocks_stops_the_read(self, tmp_path: Path) -> None:
        """A block read after another program wrote to the file raises InputError."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS) + "\n")
        with InputReader(str(path), block_size=1024) as reader:
            pieces = reader.pieces(1024)
            next(pieces)
            with path.open("r+b") as f:
                f.seek(9000)
                f.write(b"cd" * 12)
            with pytest.raises(InputError, match="changed while it was being read"):
                list(pieces)

    def test_hashing_checks_the_stamp_taken_before(self, tmp_path: Path) -> None:
        """A file whose stamp differs from the one taken before is not hashed."""
        path = tmp_path / "ids.txt"
        path.write_text("a\n")
        stamp = file_stamp(str(path))
        assert isinstance(stamp, FileStamp)
        assert hash_file(path, stamp) == hash_file(path)
        path.write_text("b\n")
        with pytest.raises(InputError, match="changed"):
            hash_file(path, stamp)

    def test_a_pipe_has_no_stamp(self, tmp_path: Path) -> None:
        """Standard input and a FIFO have no stamp: they are read once."""
        fifo = tmp_path / "p"
        os.mkfifo(fifo)
        assert file_stamp("-") is None and file_stamp(str(fifo)) is None


class TestOneRunAtATime:
    def test_a_second_run_on_the_same_state_file_is_refused(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """While a run holds the state file, another is refused in one line before any call."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:100]) + "\n")
        state = tmp_path / "ids.txt.bulkresign"
        other = Manifest("x", None, "user_id", "public-account", "h", "p", 50, "{}", "0", "00")
        held = Ledger.open(state, other)  # what the first run holds while it runs
        try:
            assert main(run(path)) == 2
        finally:
            held.close()
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "another bulkresign run is using" in err[0]
        assert "/api/v3/resign-public-account-batch" not in oracle(server)["requests"]  # type: ignore[operator]


class TestFilesThatFail:
    def test_a_log_that_cannot_be_created_is_one_line(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--log in a missing directory: exit 2, one line naming it, no resign call."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:10]) + "\n")
        assert main(run(path, "--log", str(tmp_path / "nowhere" / "run.log"))) == 2
        err = capsys.readouterr().err
        assert "nowhere/run.log" in err and "Traceback" not in err
        assert oracle(server)["resigned_total"] == 0

    def test_a_ledger_write_failing_mid_run_stops_it_resumably(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A full disk after some calls: exit 3 with the resume command; the rerun ends exact."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:300]) + "\n")
        calls = itertools.count()
        finish = Ledger.finish_attempt

        def filling(self: Ledger, *args: Any, **kwargs: Any) -> None:
            if next(calls) == 2:
                raise sqlite3.OperationalError("database or disk is full")
            finish(self, *args, **kwargs)

        monkeypatch.setattr(Ledger, "finish_attempt", filling)
        assert main(run(path)) == 3
        err = capsys.readouterr().err
        assert "resume with:" in err and "Traceback" not in err
        monkeypatch.setattr(Ledger, "finish_attempt", finish)
        assert main(run(path)) == 0
        assert each_resigned_once(server, 300)

    def test_a_resumed_run_sums_up_the_whole_job(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The summary of a resume counts every run's IDs, apart from this run's share."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(["f" * 24, *USERS[:299]]) + "\n")
        assert main(run(path, "--max-errors", "0")) == 3  # stops at the unknown ID
        capsys.readouterr()
        assert main(run(path)) == 1
        err = capsys.readouterr().err
        assert re.search(r"resigned, all runs\s*│\s*299\b", err)
        assert re.search(r"not found, all runs\s*│\s*1\b", err)
        assert re.search(r"this run: resigned by the call\s*│\s*(\d+)", err)

    def test_a_state_file_moved_away_mid_run_stops_it(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Renaming the ledger under a run stops the run (exit 3) and says to put it back."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:350]) + "\n")
        state = tmp_path / "ids.txt.bulkresign"

        def move_after_the_first_call() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not oracle(server)["resigned_total"]:
                time.sleep(0.01)
            state.rename(tmp_path / "moved.bulkresign")

        mover = threading.Thread(target=move_after_the_first_call, daemon=True)
        mover.start()
        assert main(run(path, "--rate", "3", "--concurrency", "1")) == 3
        mover.join(timeout=10)
        err = capsys.readouterr().err
        assert "was moved, replaced or deleted" in err and "Traceback" not in err
        assert oracle(server)["resigned_total"] < 350  # type: ignore[operator]

    @pytest.mark.parametrize("how", ["deleted", "emptied"])
    def test_a_journal_deleted_mid_run_stops_it(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
    ) -> None:
        """Deleting the audit journal under a run, or emptying it in place, stops the run (exit
        3), saying so (it went on and listed it as written); the resume wants --new-journal
        (the emptied one moved aside), then finishes, each user once."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:350]) + "\n")
        journal = tmp_path / "ids.txt.bulkresign.journal"

        def delete_after_the_first_call() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not oracle(server)["resigned_total"]:
                time.sleep(0.01)
            if how == "deleted":
                journal.unlink()
            else:
                journal.write_bytes(b"")

        deleter = threading.Thread(target=delete_after_the_first_call, daemon=True)
        deleter.start()
        assert main(run(path, "--rate", "3", "--concurrency", "1")) == 3
        deleter.join(timeout=10)
        err = capsys.readouterr().err
        assert "the audit journal was moved, deleted or cut" in err and "Traceback" not in err
        assert main(run(path)) == 2  # the anchored journal is gone: said, not started anew
        if journal.exists():
            journal.rename(tmp_path / "aside.journal")  # evidence, moved aside
        assert main(run(path, "--new-journal")) == 0
        assert each_resigned_once(server, 350)

    def test_the_end_of_run_reads_survive_a_vanished_state_file(self, tmp_path: Path) -> None:
        """Moved away as the run ended: the counts are unknown (None), not a crash."""
        gone = tmp_path / "gone.bulkresign"
        assert read_ingest_stats(gone) is None and count_problems(gone) is None


class TestCanary:
    def test_an_input_error_met_by_the_canary_stops_the_run_as_anywhere_else(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The canary reads into the bad record: its batches go, then the input-error stop."""
        path = tmp_path / "ids.jsonl"
        # Blank lines put the bad record past the first batch the run checks before it starts.
        lines = [*jsonl(USERS[:100]), *[""] * 3000, '{"user_id": 5}', *jsonl(USERS[100:150])]
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path, "--canary", "3")) == 3
        err = capsys.readouterr().err
        assert "fix the input" in err and "Traceback" not in err
        assert oracle(server)["resigned_total"] == 100  # the two batches before it
        lines[3100] = ""
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path, "--canary", "3")) == 0
        assert each_resigned_once(server, 150)

    def test_a_declined_start_leaves_the_canary_in_place(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """'no' at the prompt leaves a state file; the next run still sends its canary first."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(["f" * 24, *USERS[:149]]) + "\n")

        class Declines(io.StringIO):
            def isatty(self) -> bool:
                return True

        monkeypatch.setattr("sys.stdin", Declines("no\n"))
        monkeypatch.setattr("bulkresign.cli.run.stderr_is_terminal", lambda: True)
        assert main(["run", str(path), "--no-progress", "--canary", "2"]) == 2
        capsys.readouterr()
        assert main(run(path, "--canary", "2")) == 3
        assert "canary: batch 0" in capsys.readouterr().err
        assert oracle(server)["resigned_total"] == 49  # the first canary batch, no more


class TestStreamDigest:
    @given(data=st.binary(min_size=1, max_size=200), cuts=st.lists(st.integers(0, 200)))
    def test_the_same_bytes_pass_in_any_blocks(self, data: bytes, cuts: list[int]) -> None:
        """Fed the same stream in any blocks, the digest matches the recorded prefix."""
        first = StreamDigest("in")
        first.update(data[: len(data) // 2])
        again = StreamDigest("in", expect=first.prefix)
        edges = sorted({0, len(data), *(c for c in cuts if c < len(data))})
        for start, end in itertools.pairwise(edges):
            again.update(data[start:end])
        again.finish()
        assert again.prefix.sha256 == hashlib.sha256(data).hexdigest()

    @pytest.mark.parametrize(
        ("stream", "error", "said"),
        [(b"abcX", "update", "first 4 bytes differ"), (b"ab", "finish", "ends after 2 bytes")],
        ids=["differs", "shorter"],
    )
    def test_other_bytes_are_refused(self, stream: bytes, error: str, said: str) -> None:
        """A stream that departs from the prefix, or ends before it, is a LedgerMismatch that
        says which."""
        first = StreamDigest("in")
        first.update(b"abcd")
        again = StreamDigest("in", expect=first.prefix)
        with pytest.raises(LedgerMismatch, match=said):
            again.update(stream)
            if error == "finish":
                again.finish()


class TestOneLine:
    def test_control_characters_in_a_message_are_escaped(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file name with a newline and an escape code still gives one printable line."""
        assert main(["plan", "no\nsuch\x1b[31mfile.txt"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "\x1b" not in err
        assert printable("a\tb") == "a\\tb"
