"""A run whose terminal or stderr reader goes away: it goes on, or on a hangup stops as on
SIGTERM; a reader of stdout that stops (`| head`) is not an error; a damaged state file is one
line."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkresign.cli import main
from bulkresign.cli.streams import Forgiving
from bulkresign.emulator import RunningServer, synthetic_user_id

USERS = [synthetic_user_id(i) for i in range(350)]


class _Broken(io.StringIO):
    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def write(self, text: str) -> int:
        raise OSError(self.code, os.strerror(self.code))


def bulkresign(*argv: str) -> list[str]:
    return [sys.executable, "-m", "bulkresign", *argv]


def each_resigned_once(server: RunningServer, n: int) -> bool:
    summary = server.oracle(summary=True)
    assert isinstance(summary, dict)
    return summary["resigned_total"] == n and summary["max_resign_count"] == 1


class TestForgiving:
    @pytest.mark.parametrize("code", [errno.EPIPE, errno.EIO])
    def test_writes_after_the_reader_left_are_dropped(self, code: int) -> None:
        """A broken pipe or a hung-up terminal ends the writes, silently, not the command."""
        stream = Forgiving(_Broken(code))
        assert stream.write("plan\n") == 5 and stream.gone
        stream.write("summary\n")
        stream.flush()

    def test_any_other_error_is_raised(self) -> None:
        """A full disk under a redirected stderr is not a reader gone: it is raised."""
        with pytest.raises(OSError, match="space"):
            Forgiving(_Broken(errno.ENOSPC)).write("x")


class TestReadersGone:
    @pytest.mark.timeout(60)
    def test_a_run_whose_stderr_reader_left_finishes(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """`run … 2>&1 | head -3`: the plan, the progress and the summary fail to write; the
        run finishes anyway, exit 0, each user once (it died half way, exit 1)."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS) + "\n")
        argv = bulkresign("run", str(path), "--yes", "--rate", "1000", "--report", "r.csv")
        proc = subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        proc.stderr.close()  # the reader is gone before the first line
        assert proc.wait(timeout=60) == 0
        assert each_resigned_once(server, len(USERS))
        assert (tmp_path / "r.csv").exists()

    @pytest.mark.timeout(60)
    def test_a_hangup_stops_the_run_as_sigterm_does(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """SIGHUP (the terminal closed): a graceful stop, exit 3, resumable; the resume sends
        the rest, each user once (it killed the run on the spot, calls in doubt)."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS) + "\n")
        argv = bulkresign("run", str(path), "--yes", "--no-progress", "--rate", "2")
        proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        journal = Path(f"{path}.bulkresign.journal")
        deadline = time.monotonic() + 30
        while b"batch_sent" not in (journal.read_bytes() if journal.exists() else b""):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=30) == 3
        entries = [json.loads(line) for line in journal.read_text().splitlines()]
        stops = [e["reason"] for e in entries if e["kind"] == "run_stopped"]
        assert stops == ["signal SIGHUP"]
        done = subprocess.run([*argv[:-1], "1000"], capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert each_resigned_once(server, len(USERS))

    def test_a_reader_of_stdout_that_stops_is_not_an_error(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """`status | head -1`: exit 0 and nothing on stderr (it said "Broken pipe", exit 2)."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(USERS[:60]) + "\n")
        assert subprocess.run(bulkresign("run", str(path), "--yes"), timeout=60).returncode == 0
        status = bulkresign("status", "--state", f"{path}.bulkresign")
        proc = subprocess.Popen(status, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        assert proc.wait(timeout=30) == 0
        assert proc.stderr.read() == b""
        proc.stderr.close()


def test_a_damaged_state_file_is_one_line(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SQLite's "malformed" met by a command reading a state file: one line naming it, exit 2
    (a zeroed page made status, report and run print sqlite3's traceback)."""
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(USERS[:60]) + "\n")
    assert main(["run", str(path), "--yes", "--no-progress"]) == 0

    def damaged(ledger: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr("bulkresign.cli.status.run_status", damaged)
    capsys.readouterr()
    state = f"{path}.bulkresign"
    assert main(["status", "--state", state]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"bulkresign: error: {state}: not a usable state file (database disk image is malformed)"
    ]


def test_a_report_that_cannot_be_written_after_the_run_says_how_to_write_it(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A full disk as the finished run writes --report: exit 1 and the command that writes it
    later (it was exit 2, "an error before any resign call", after resigning everyone)."""
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(USERS[:60]) + "\n")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r.csv"))

    monkeypatch.setattr("bulkresign.cli.run.write_report", full)
    argv = ["run", str(path), "--yes", "--no-progress", "--report", str(tmp_path / "r.csv")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "r.csv: No space left on device" in err and "bulkresign report --state" in err
    assert each_resigned_once(server, 60)


def test_a_full_disk_under_the_log_names_the_log(tmp_path: Path) -> None:
    """A write to the log that fails says which file (it said only "No space left")."""
    from bulkresign.logs import _Named

    class Full(io.BytesIO):
        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    log = tmp_path / "run.log"
    with pytest.raises(OSError) as info:
        _Named(Full(), log).write(b"{}\n")
    assert info.value.filename == str(log)
