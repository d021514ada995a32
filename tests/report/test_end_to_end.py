"""After a real run against the emulator: report every line, verify every resignation, rerun."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bulkresign.cli import main
from bulkresign.config import Credentials, Secret
from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    DEMO_USERPOOL_ID,
    RunningServer,
    synthetic_user_id,
)
from bulkresign.emulator.emulator import Verdict
from bulkresign.errors import LedgerError, NotApplied
from bulkresign.inputspec import Format, InputSpec
from bulkresign.ledger import Ledger
from bulkresign.models import Batch, IdType
from bulkresign.report import write_report
from bulkresign.retry import RetryPolicy
from bulkresign.sqlfile import RunLock
from bulkresign.verify import Finding, verify_ledger
from tests.report.helpers import make_ledger, resign_ok

#: The user whose resignation the emulator refuses (statusCode 422), so the run ends it failed.
REFUSED = synthetic_user_id(7)

KNOWN = [synthetic_user_id(i) for i in range(120)]
#: 120 known users, two the pool does not know, a duplicate, junk, a blank and a comment line.
LINES = [*KNOWN[:60], "f" * 24, KNOWN[3], "junk", "", "# note", *KNOWN[60:], "e" * 24]


def run(path: Path, *extra: str) -> list[str]:
    return ["run", str(path), "--yes", "--no-progress", "--rate", "1000", *extra]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def status_of(server: RunningServer, user_id: str) -> object:
    user = server.call(lambda: server.emulator.user(user_id))
    assert user is not None
    return user["status"]


@pytest.fixture
def refused(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Users whose resignation the emulator refuses (statusCode 422), as a business rule would;
    REFUSED at first, and the test may lift it."""
    emu = server.emulator
    resign = emu.resign
    blocked = {REFUSED}

    def refuse(user_ids: list[str], id_type: IdType) -> Verdict:
        if blocked.intersection(user_ids):
            return Verdict(422, "this account is protected", 4220)
        return resign(user_ids, id_type)

    monkeypatch.setattr(emu, "resign", refuse)
    return blocked


@pytest.fixture
def state(refused: set[str], tmp_path: Path) -> Path:
    """A finished run with two unknown users, one refused user and four lines without an ID."""
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(LINES) + "\n")
    assert main(run(path)) == 1
    return Path(f"{path}.bulkresign")


class TestReport:
    def test_one_row_per_line_with_every_outcome(self, state: Path, tmp_path: Path) -> None:
        """Each input line once; the outcomes are those the run produced."""
        out = tmp_path / "report.csv"
        assert main(["report", "--state", str(state), "--output", str(out)]) == 0
        rows = read_csv(out)
        assert [int(r["line"]) for r in rows] == list(range(1, len(LINES) + 1))
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        assert counts == {
            "resigned": 119,
            "failed": 1,
            "not_found": 2,
            "duplicate": 1,
            "rejected_invalid": 1,
            "skipped": 2,
        }

    def test_rows_agree_with_the_emulator(self, state: Path, server: RunningServer) -> None:
        """Every row reported resigned is Resigned there; the failed one is not."""
        main(["report", "--state", str(state), "--output", str(state.with_suffix(".csv"))])
        for row in read_csv(state.with_suffix(".csv")):
            if row["outcome"] == "resigned":
                assert status_of(server, row["normalized"]) == "Resigned"
                assert row["request_id"] and row["time"]
            elif row["outcome"] == "failed":
                assert row["normalized"] == REFUSED and row["api_code"] == "4220"
                assert status_of(server, REFUSED) != "Resigned"

    def test_the_report_file_is_private(self, state: Path, tmp_path: Path) -> None:
        """--output creates the file 0600."""
        out = tmp_path / "report.jsonl"
        assert main(["report", "--state", str(state), "--output", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600

    def test_an_unknown_outcome_is_one_line_and_exit_2(
        self, state: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--outcome names only known outcomes."""
        assert main(["report", "--state", str(state), "--outcome", "failed,oops"]) == 2
        assert "'oops'" in capsys.readouterr().err


class TestAfterTheRun:
    def test_run_writes_the_report_when_asked(self, server: RunningServer, tmp_path: Path) -> None:
        """`run --report FILE` leaves the per-line report, 0600, once the run finishes."""
        path, out = tmp_path / "ids.txt", tmp_path / "out.jsonl"
        path.write_text("\n".join(LINES) + "\n")
        assert main(run(path, "--report", str(out))) == 1
        assert len(out.read_text().splitlines()) == len(LINES)
        assert stat.S_IMODE(out.stat().st_mode) == 0o600

    def test_a_temp_file_a_killed_report_left_is_removed(self, state: Path, tmp_path: Path) -> None:
        """The next report to the same file removes the temp file a SIGKILL left behind (full of
        IDs, it stayed for good); a file merely like it is left alone."""
        out = tmp_path / "r.csv"
        left, other = tmp_path / ".r.csv.0badc0de.tmp", tmp_path / ".r.csv.notours.tmp"
        for f in (left, other):
            f.write_text("line,id\n")
        assert main(["report", "--state", str(state), "--output", str(out)]) == 0
        assert not left.exists() and other.exists() and out.exists()

    def test_a_report_over_a_foreign_file_is_refused_before_any_call(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`run --report notes.csv` where notes.csv is someone's file: refused up front, exit 2,
        nothing sent (it resigned everyone, then refused to write the report, exit 2)."""
        path, out = tmp_path / "ids.txt", tmp_path / "notes.csv"
        path.write_text("\n".join(LINES) + "\n")
        out.write_text("my notes\n")
        assert main(run(path, "--report", str(out))) == 2
        assert "not a file it wrote" in capsys.readouterr().err
        assert server.oracle(summary=True)["resign_requests"] == 0
        assert out.read_text() == "my notes\n" and not Path(f"{path}.bulkresign").exists()

    def test_a_report_another_run_wrote_is_refused_before_any_call(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Another run's report is its record: a new run naming it is refused up front, exit 2;
        the run that wrote it may write it again when run again."""
        first, second = tmp_path / "first.txt", tmp_path / "second.txt"
        first.write_text("\n".join(LINES[:10]) + "\n")
        second.write_text("\n".join(LINES[10:20]) + "\n")
        out = tmp_path / "report.csv"
        assert main(run(first, "--report", str(out))) == 0
        kept = out.read_bytes()
        sent = server.oracle(summary=True)["resign_requests"]
        capsys.readouterr()
        assert main(run(second, "--report", str(out))) == 2
        assert "this run did not write it" in capsys.readouterr().err
        assert server.oracle(summary=True)["resign_requests"] == sent
        assert out.read_bytes() == kept and not Path(f"{second}.bulkresign").exists()
        assert main(run(first, "--report", str(out))) == 0  # its own: written again

    def test_status_of_the_finished_run(
        self, state: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Finished, with the IDs the run resigned, could not find, and failed."""
        assert main(["status", "--state", str(state), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["status"] == "finished"
        assert doc["ids"] == {
            "resigned": 119,
            "not_found": 2,
            "failed": 1,
            "unprocessed": 0,
            "in_doubt": 0,
        }


class TestVerify:
    def test_every_resigned_user_is_resigned(
        self, state: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 0, and the count of IDs read back."""
        assert main(["verify", "--state", str(state)]) == 0
        assert "119 IDs reported resigned; 119 are Resigned" in capsys.readouterr().out

    @pytest.mark.parametrize(
        ("status", "said"),
        [
            ("Suspended", "is Suspended, not Resigned"),
            ("emulator-demo-secret", "is in a status the API does not list, not Resigned"),
        ],
    )
    def test_a_status_outside_the_api_s_list_is_not_echoed(self, status: str, said: str) -> None:
        """A status the API lists is shown; any other text from the server is not (it could
        hold anything: a server echoing the key secret had it printed)."""
        from bulkresign.cli.verify import _describe
        from bulkresign.verify import Discrepancy, Finding

        shown = _describe(Discrepancy("u1", 1, Finding.NOT_RESIGNED, status))
        assert shown == said

    def test_a_concurrency_out_of_bounds_is_refused(
        self, state: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """verify --concurrency takes the bounds run does (100,000 was accepted)."""
        assert main(["verify", "--state", str(state), "--concurrency", "100000"]) == 2
        assert "--concurrency must be from 1 to 1024" in capsys.readouterr().err

    def test_a_user_reactivated_behind_its_back_is_listed(
        self, state: Path, server: RunningServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 1, naming the user, its input line and its status now."""
        user = KNOWN[70]
        assert server.call(lambda: server.emulator.set_status(user, "Activated"))
        assert main(["verify", "--state", str(state)]) == 1
        out = capsys.readouterr().out
        line = LINES.index(user) + 1
        assert f"line {line}: {user} is Activated, not Resigned" in out
        assert "1 are not" in out

    def test_without_a_host_it_reads_from_the_runs(
        self, state: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No --host and no GENAUTH_HOST: the host recorded in the ledger, not the default."""
        monkeypatch.delenv("GENAUTH_HOST")
        assert main(["verify", "--state", str(state)]) == 0

    @pytest.mark.anyio
    async def test_reads_that_keep_failing_end_it_with_their_error(
        self, state: Path, server: RunningServer
    ) -> None:
        """Every read-back answers 502: after the retries, the error itself is raised."""
        server.call(lambda: server.emulator.reconfigure(faults={"read_error": 1.0}))
        credentials = Credentials(DEMO_ACCESS_KEY_ID, Secret(DEMO_ACCESS_KEY_SECRET))
        quick = RetryPolicy(base=0.001, cap=0.001, max_attempts=2)
        with pytest.raises(NotApplied):
            await verify_ledger(state, server.url, credentials, rate=1000, retry=quick)

    @pytest.mark.anyio
    async def test_an_id_with_a_comma_is_reported_unreadable(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """A ledger holding an ID with a comma (input now rejects them): listed, never hidden."""
        names = tmp_path / "names.txt"
        names.write_text("ann\n")
        spec = InputSpec(str(names), id_type=IdType.USERNAME, format=Format.LINES)
        led = make_ledger(
            tmp_path / "u.state", spec, host=server.url, userpool=DEMO_USERPOOL_ID, batches=0
        )
        with led.transaction():
            led.add_batch(Batch(0, ("a,b",), (1,)))
        resign_ok(led, 0, "req-0")
        led.close()
        credentials = Credentials(DEMO_ACCESS_KEY_ID, Secret(DEMO_ACCESS_KEY_SECRET))
        result = await verify_ledger(led.path, server.url, credentials, rate=1000)
        assert result.findings[Finding.UNREADABLE] == 1 and not result.ok

    def test_another_host_in_the_environment_is_refused(
        self, state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """GENAUTH_HOST contradicts the run's host: exit 2 unless --host says so."""
        monkeypatch.setenv("GENAUTH_HOST", "http://127.0.0.1:9")
        assert main(["verify", "--state", str(state)]) == 2
        assert "--host" in capsys.readouterr().err

    def test_missing_credentials_are_one_line_and_exit_2(
        self, state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Credentials come from the environment, as for run."""
        monkeypatch.delenv("GENAUTH_ACCESS_KEY_SECRET")
        assert main(["verify", "--state", str(state)]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


class TestRerun:
    def test_failed_rows_are_an_input_for_run(
        self, state: Path, refused: set[str], server: RunningServer, tmp_path: Path
    ) -> None:
        """Once the refusal is lifted, `run retry.csv --column normalized` resigns the rest."""
        retry = tmp_path / "retry.csv"
        report = ["report", "--state", str(state), "--outcome", "failed,unprocessed"]
        assert main([*report, "--output", str(retry)]) == 0
        assert [r["normalized"] for r in read_csv(retry)] == [REFUSED]
        refused.clear()
        assert main(run(retry, "--column", "normalized")) == 0
        assert status_of(server, REFUSED) == "Resigned"

    def test_unprocessed_rows_of_a_stopped_run_are_an_input_for_run(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """A canary that fails stops the run; exporting its unprocessed rows is refused while it
        can be resumed, and with --abandon-run they rerun as an input and the run is closed."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(["f" * 24, *KNOWN]) + "\n")
        assert main(run(path, "--canary", "1")) == 3
        state = Path(f"{path}.bulkresign")
        retry = tmp_path / "retry.csv"
        report = ["report", "--state", str(state), "--outcome", "unprocessed"]
        assert main([*report, "--output", str(retry)]) == 2
        assert not retry.exists()
        assert main([*report, "--output", str(retry), "--abandon-run"]) == 0
        pending = [r["normalized"] for r in read_csv(retry)]
        assert pending == KNOWN[49:]
        assert main(run(retry, "--column", "normalized")) == 0
        assert all(status_of(server, user) == "Resigned" for user in pending)
        assert main(run(path)) == 2  # the abandoned run cannot be resumed
        assert max(server.oracle()["resign_counts"].values()) == 1  # type: ignore[union-attr]

    @pytest.mark.timeout(120)
    def test_a_run_with_batches_in_doubt_is_not_abandoned(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Killed with a batch in doubt: --abandon-run is refused (a closed run never reads it
        back), and so is a hand-off holding in_doubt rows; verify says what it did not check;
        the resume settles it, once each."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(KNOWN) + "\n")
        env = {**os.environ, "BULKRESIGN_CRASH_AT": "after_send_before_commit"}
        argv = [sys.executable, "-m", "bulkresign", *run(path, "--concurrency", "1")]
        killed = subprocess.run(argv, env=env, capture_output=True, timeout=60)
        assert killed.returncode == -signal.SIGKILL
        state = Path(f"{path}.bulkresign")
        out = tmp_path / "handoff.csv"
        report = ["report", "--state", str(state), "--output", str(out), "--abandon-run"]
        capsys.readouterr()
        assert main([*report, "--outcome", "unprocessed"]) == 2
        assert "in doubt" in capsys.readouterr().err
        assert main([*report, "--outcome", "unprocessed,in_doubt"]) == 2
        assert "never go into a hand-off" in capsys.readouterr().err
        assert not out.exists() and not Ledger.open(state).meta().get("abandoned")
        assert main(["verify", "--state", str(state)]) == 0
        said = capsys.readouterr().out
        assert "the run is resumable, not finished: 120 IDs in doubt" in said
        assert main(run(path)) == 0
        counts = server.oracle()["resign_counts"]
        assert len(counts) == len(KNOWN) and max(counts.values()) == 1  # type: ignore[union-attr]

    def test_abandon_run_without_unprocessed_rows_is_refused(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--abandon-run with an --outcome that hands nothing over: exit 2, nothing abandoned
        (it did nothing, silently, exit 0)."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(["f" * 24, *KNOWN]) + "\n")
        assert main(run(path, "--canary", "1")) == 3
        state = Path(f"{path}.bulkresign")
        out = tmp_path / "r.csv"
        argv = ["report", "--state", str(state), "--outcome", "failed", "--output", str(out)]
        assert main([*argv, "--abandon-run"]) == 2
        assert "goes with --outcome" in capsys.readouterr().err
        assert main(run(path)) in (0, 1)  # still resumable: nothing was abandoned

    def test_unprocessed_rows_of_a_live_run_are_not_handed_over(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """While a run holds the state file its unprocessed rows are its own: refused, even
        with --abandon-run."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(["f" * 24, *KNOWN]) + "\n")
        assert main(run(path, "--canary", "1")) == 3
        state = Path(f"{path}.bulkresign")
        held = RunLock(state)
        try:
            report = ["report", "--state", str(state), "--outcome", "unprocessed"]
            assert main([*report, "--output", str(tmp_path / "r.csv"), "--abandon-run"]) == 2
            assert "a run is using this state file" in capsys.readouterr().err
        finally:
            held.release()

    def test_no_resume_can_start_while_the_rows_are_handed_over(
        self, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While --abandon-run writes its file the run is locked and already closed: a resume
        started in between is refused (it resigned the handed rows a second time)."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(["f" * 24, *KNOWN]) + "\n")
        assert main(run(path, "--canary", "1")) == 3
        state = Path(f"{path}.bulkresign")
        seen: list[bool] = []

        def writing(*args: Any, **kwargs: Any) -> Any:
            with pytest.raises(LedgerError, match="another bulkresign run"):
                RunLock(state)
            seen.append(bool(Ledger.open(state).meta().get("abandoned")))
            return write_report(*args, **kwargs)

        monkeypatch.setattr("bulkresign.cli.report.write_report", writing)
        report = ["report", "--state", str(state), "--outcome", "unprocessed", "--abandon-run"]
        assert main([*report, "--output", str(tmp_path / "retry.csv")]) == 0
        assert seen == [True]

    def test_a_hand_off_needs_a_file(self, server: RunningServer, tmp_path: Path) -> None:
        """--abandon-run to stdout is refused: a reader that stops early would lose rows."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(["f" * 24, *KNOWN]) + "\n")
        assert main(run(path, "--canary", "1")) == 3
        state = f"{path}.bulkresign"
        assert main(["report", "--state", state, "--outcome", "unprocessed", "--abandon-run"]) == 2
        assert not Ledger.open(Path(state)).meta().get("abandoned")
