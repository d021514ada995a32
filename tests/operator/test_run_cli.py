"""`bulkresign run` from the operator's side: confirm, guard, record, and keep secrets."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkresign.chain import JournalAnchor
from bulkresign.cli import main
from bulkresign.cli.options import load_exclude
from bulkresign.client import GenAuthReader
from bulkresign.emulator import DEMO_ACCESS_KEY_SECRET, RunningServer, synthetic_user_id
from bulkresign.errors import ConfigError
from bulkresign.inputspec import InputSpec
from bulkresign.ledger import Ledger
from bulkresign.models import IdType


class FakeTTY(io.StringIO):
    """Standard input that claims to be a terminal and answers the prompt."""

    def isatty(self) -> bool:
        return True


def resigned(server: RunningServer) -> int:
    return int(server.oracle(summary=True)["resigned_total"])  # type: ignore[call-overload]


def run(path: Path, *extra: str) -> list[str]:
    return ["run", str(path), "--no-progress", "--rate", "1000", *extra]


def killed_in_the_canary(
    server: RunningServer, tmp_path: Path, *, unknown_at: int, crash_at: str
) -> Path:
    """A `--canary 3` run of 299 known IDs and one the server accepts unknown (at index
    ``unknown_at``), SIGKILLed at ``crash_at``; the input's path."""
    server.call(lambda: server.emulator.reconfigure(unknown_ids="ignore"))
    path = tmp_path / "ids.txt"
    ids = [synthetic_user_id(i) for i in range(299)]
    path.write_text("\n".join([*ids[:unknown_at], "f" * 24, *ids[unknown_at:]]) + "\n")
    argv = [sys.executable, "-m", "bulkresign", *run(path, "--yes", "--canary", "3")]
    env = {**os.environ, "BULKRESIGN_CRASH_AT": crash_at}
    killed = subprocess.run(argv, env=env, capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    return path


@pytest.fixture
def stderr_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan and the prompt go to a terminal (pytest captures stderr)."""
    monkeypatch.setattr("bulkresign.cli.run.stderr_is_terminal", lambda: True)


class TestConfirmation:
    def test_without_a_terminal_or_yes_it_refuses_and_sends_nothing(
        self, server: RunningServer, ids_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No TTY and no --yes: exit 2, one line, and the emulator saw no call at all."""
        assert main(run(ids_file)) == 2
        err = capsys.readouterr().err
        assert "--yes" in err and len(err.strip().splitlines()) == 1
        assert server.oracle(summary=True)["requests"] == {}

    @pytest.mark.usefixtures("stderr_on_a_terminal")
    def test_typing_the_count_confirms(
        self, server: RunningServer, ids_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The operator types the number of accounts (302) and the run goes ahead."""
        monkeypatch.setattr("sys.stdin", FakeTTY("302\n"))
        assert main(run(ids_file)) == 1  # finished; junk line and two unknown IDs reported
        assert resigned(server) == 300

    @pytest.mark.usefixtures("stderr_on_a_terminal")
    @pytest.mark.parametrize("typed", ["yes\n", ""], ids=["wrong-count", "end-of-input"])
    def test_any_other_answer_declines(
        self,
        server: RunningServer,
        ids_file: Path,
        typed: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A wrong count, or Ctrl-D: exit 2, "not confirmed", and no resign call."""
        monkeypatch.setattr("sys.stdin", FakeTTY(typed))
        assert main(run(ids_file)) == 2
        assert "not confirmed" in capsys.readouterr().err
        assert resigned(server) == 0

    @pytest.mark.usefixtures("stderr_on_a_terminal")
    def test_a_declined_start_binds_none_of_its_options(
        self, server: RunningServer, ids_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Declined with one --exclude list, the same state file takes another next time."""
        first, second = tmp_path / "first.txt", tmp_path / "second.txt"
        first.write_text(synthetic_user_id(3) + "\n")
        second.write_text(synthetic_user_id(4) + "\n")
        monkeypatch.setattr("sys.stdin", FakeTTY("no\n"))
        assert main(run(ids_file, "--exclude", str(first))) == 2
        assert main(run(ids_file, "--yes", "--exclude", str(second))) == 1
        counts = server.oracle()["resign_counts"]
        assert synthetic_user_id(4) not in counts and synthetic_user_id(3) in counts  # type: ignore[operator]

    @pytest.mark.usefixtures("stderr_on_a_terminal")
    def test_a_declined_start_on_another_input_leaves_no_trace_of_it(
        self, server: RunningServer, ids_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Declined on a.txt, then run on b.txt with the same --state: report reads b.txt."""
        other = tmp_path / "b.txt"
        other.write_text(synthetic_user_id(7) + "\n")
        state = str(tmp_path / "s.state")
        monkeypatch.setattr("sys.stdin", FakeTTY("no\n"))
        assert main(run(ids_file, "--state", state)) == 2
        assert main(run(other, "--yes", "--state", state)) == 0
        assert main(["report", "--state", state, "--output", str(tmp_path / "r.csv")]) == 0
        assert (tmp_path / "r.csv").read_text().count("\n") == 2  # header and b.txt's one line

    def test_a_run_that_accepted_no_id_binds_none_of_its_options(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """Emails read as user_ids: every line rejected, nothing recorded; the same state file
        then takes --id-type email."""
        path = tmp_path / "emails.txt"
        path.write_text("".join(f"user{i}@example.com\n" for i in range(10)))
        assert main(run(path, "--yes")) == 1
        assert main(run(path, "--yes", "--id-type", "email")) == 0
        assert resigned(server) == 10

    def test_a_prompt_that_would_not_be_seen_is_refused(
        self, server: RunningServer, ids_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """stdin on a terminal but stderr redirected: exit 2 before anything, as without one."""
        monkeypatch.setattr("sys.stdin", FakeTTY("302\n"))
        assert main(run(ids_file)) == 2
        assert resigned(server) == 0

    @pytest.mark.parametrize(
        ("signum", "sigint_ignored"),
        [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
        ids=["ctrl-c", "sigterm", "sigterm-in-a-background-job"],
    )
    @pytest.mark.timeout(60)
    def test_a_signal_at_the_prompt_ends_the_command_at_once(
        self,
        server: RunningServer,
        ids_file: Path,
        signum: signal.Signals,
        sigint_ignored: bool,
    ) -> None:
        """Ctrl-C or SIGTERM while the prompt waits: exit 3 within seconds, nothing sent; also
        where SIGINT is ignored, as in a shell's background job (asyncio then has no Ctrl-C
        handling for SIGTERM to borrow, and it killed the process)."""
        main_end, child_end = pty.openpty()

        def ignore_sigint() -> None:
            if sigint_ignored:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

        proc = subprocess.Popen(
            [sys.executable, "-m", "bulkresign", *run(ids_file)],
            stdin=child_end, stdout=child_end, stderr=child_end, preexec_fn=ignore_sigint,
        )  # fmt: skip
        os.close(child_end)
        try:
            shown = read_terminal(main_end, until=b"to continue: ", seconds=30)
            proc.send_signal(signum)
            assert proc.wait(timeout=10) == 3
            shown += read_terminal(main_end, until=None, seconds=5)
        finally:
            proc.kill()
            proc.wait()
            os.close(main_end)
        assert b"Traceback" not in shown
        assert resigned(server) == 0


class TestStartUp:
    @pytest.mark.parametrize(
        ("signum", "said"), [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")]
    )
    def test_a_signal_while_the_command_loads_is_one_line(
        self,
        signum: signal.Signals,
        said: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Ctrl-C or SIGTERM before the sub-command runs: exit 3 and one line, no traceback."""

        def signalled(only: str | None = None) -> None:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler runs first

        before = signal.getsignal(signal.SIGTERM)
        monkeypatch.setattr("bulkresign.cli.build_parser", signalled)
        assert main(["plan", "ids.txt"]) == 3
        assert capsys.readouterr().err == f"bulkresign: {said}\n"
        assert signal.getsignal(signal.SIGTERM) == before

    def test_a_second_sigterm_while_the_first_unwinds_is_ignored(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A second SIGTERM as the first one's message is printed: still one line and exit 3
        (it raised out of the handler's own cleanup: a traceback and exit 1)."""
        said = io.StringIO()

        class SignalsOnWrite(io.StringIO):
            def write(self, text: str) -> int:
                os.kill(os.getpid(), signal.SIGTERM)  # lands while the first unwinds
                return said.write(text)

        def signalled(only: str | None = None) -> None:
            monkeypatch.setattr("sys.stderr", SignalsOnWrite())
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)

        monkeypatch.setattr("bulkresign.cli.build_parser", signalled)
        assert main(["plan", "ids.txt"]) == 3
        assert said.getvalue() == "bulkresign: terminated\n"


class TestTheEnd:
    @pytest.mark.timeout(60)
    def test_a_signal_after_the_summary_keeps_the_exit_code(
        self, server: RunningServer, ids_file: Path
    ) -> None:
        """SIGTERM as the summary ends: exit 1 (finished, a junk line), neither "terminated" (3)
        nor death by the signal (143)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "bulkresign", *run(ids_file, "--yes")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.strip().endswith(b".journal"):  # the summary's last line
                    proc.send_signal(signal.SIGTERM)
                    break
            assert proc.wait(timeout=30) == 1
        finally:
            proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("where", ["as the run ends", "in the summary"])
    def test_a_signal_once_the_run_finished_keeps_its_exit_code(
        self, server: RunningServer, ids_file: Path, monkeypatch: pytest.MonkeyPatch, where: str
    ) -> None:
        """A SIGTERM after the run finished, in its event loop or while the summary prints: the
        finished run's exit code (1, a junk line), not "terminated"."""
        import bulkresign.cli.run as cli_run

        real_job, real_finish = cli_run.run_job, cli_run.finish

        async def job_then_signal(*args: object, **kwargs: object) -> object:
            outcome = await real_job(*args, **kwargs)  # type: ignore[arg-type]
            os.kill(os.getpid(), signal.SIGTERM)
            return outcome

        def signal_then_finish(*args: object) -> int:
            os.kill(os.getpid(), signal.SIGTERM)
            return real_finish(*args)  # type: ignore[arg-type]

        if where == "as the run ends":
            monkeypatch.setattr(cli_run, "run_job", job_then_signal)
        else:
            monkeypatch.setattr(cli_run, "finish", signal_then_finish)
        assert main(run(ids_file, "--yes")) == 1


def read_terminal(fd: int, until: bytes | None, seconds: float) -> bytes:
    """What a terminal shows: up to the text ``until`` (or its end), within ``seconds``."""
    shown, deadline = b"", time.monotonic() + seconds
    while until is None or until not in shown:
        assert time.monotonic() < deadline, shown
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                chunk = b""
            if not chunk and until is None:
                break
            shown += chunk
    return shown


class TestGuards:
    def test_a_changed_plan_hash_is_refused(
        self, server: RunningServer, ids_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--plan-sha256 that does not match the input's ID set: exit 2, nothing sent."""
        assert main(run(ids_file, "--yes", "--plan-sha256", "0" * 64)) == 2
        assert "changed since" in capsys.readouterr().err
        assert resigned(server) == 0

    def test_the_reviewed_plan_hash_is_accepted(
        self, server: RunningServer, ids_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The SHA-256 printed by `plan --json` lets the scripted run through."""
        assert main(["plan", str(ids_file), "--json"]) == 1  # 1: a junk line was rejected
        digest = json.loads(capsys.readouterr().out)["sha256"]
        assert main(run(ids_file, "--yes", "--plan-sha256", digest)) == 1
        assert resigned(server) == 300

    def test_a_plan_of_another_id_type_is_refused(
        self,
        server: RunningServer,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Values reviewed as external IDs do not pass as usernames: the hash covers the type."""
        path = tmp_path / "staff.txt"
        path.write_text("".join(f"emp{i}\n" for i in range(100)))
        assert main(["plan", str(path), "--json", "--id-type", "external_id"]) == 0
        digest = json.loads(capsys.readouterr().out)["sha256"]
        guard = ["--yes", "--plan-sha256", digest]
        assert main(run(path, "--id-type", "username", *guard)) == 2
        assert "other options" in capsys.readouterr().err
        assert server.oracle(summary=True)["requests"] == {}

    def test_an_exclude_list_protects_what_a_comment_could_hide(self, tmp_path: Path) -> None:
        """`#kim` (a valid username) is protected, not only skipped as a comment, and `kim  #
        the CEO` protects `kim` (both were resigned); a list of comments alone is refused."""
        exclude = tmp_path / "protect.txt"
        exclude.write_text("#kim\nlee  # the CEO\n")
        spec = InputSpec(str(tmp_path / "in.csv"), IdType.USERNAME)
        assert {"#kim", "lee"} <= load_exclude(exclude, spec)
        exclude.write_text("# nobody yet\n")
        for id_type in (IdType.EMAIL, IdType.USERNAME):  # `# nobody yet` is a valid username
            with pytest.raises(ConfigError, match=f"holds no {id_type}"):
                load_exclude(exclude, InputSpec(str(tmp_path / "in.csv"), id_type))

    def test_a_plan_with_the_same_exclude_list_gives_the_hash_run_checks(
        self,
        server: RunningServer,
        ids_file: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """plan --exclude counts the excluded IDs and hashes what run --exclude will send."""
        exclude = tmp_path / "protected.txt"
        exclude.write_text(synthetic_user_id(3) + "\n")
        assert main(["plan", str(ids_file), "--json", "--exclude", str(exclude)]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["excluded"] == 1
        guard = ["--exclude", str(exclude), "--plan-sha256", doc["sha256"]]
        assert main(run(ids_file, "--yes", *guard)) == 1
        assert resigned(server) == 299

    def test_a_resume_is_held_to_the_plan_the_run_began_with(
        self,
        server: RunningServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Guarded by --plan-sha256, stopped, then resumed without it on an input that gained an
        ID nobody reviewed (accepted as fixed after an input error): refused, nothing sent."""
        path = tmp_path / "ids.txt"
        ids = ["f" * 24] + [synthetic_user_id(i) for i in range(200)]
        path.write_text("\n".join(ids) + "\n")
        assert main(["plan", str(path), "--json"]) == 0
        digest = json.loads(capsys.readouterr().out)["sha256"]
        assert main(run(path, "--yes", "--canary", "1", "--plan-sha256", digest)) == 3
        state = Ledger.open(Path(f"{path}.bulkresign"))
        assert state.meta()["plan_sha256"] == digest
        with state.transaction():
            state.set_meta("input_error", "as if the run had stopped at a bad line")
        state.close()
        before = resigned(server)
        path.write_text("\n".join([*ids, synthetic_user_id(300)]) + "\n")
        capsys.readouterr()
        assert main(run(path, "--yes")) == 2
        assert f"not the reviewed {digest}" in capsys.readouterr().err
        assert resigned(server) == before

    def test_a_plan_hash_that_is_no_sha256_is_refused(
        self, server: RunningServer, ids_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--plan-sha256 abc: exit 2 naming the option, not a "changed input"."""
        assert main(run(ids_file, "--yes", "--plan-sha256", "abc")) == 2
        assert "64 hex digits" in capsys.readouterr().err

    def test_more_ids_than_max_users_is_refused(
        self, server: RunningServer, ids_file: Path
    ) -> None:
        """--max-users below the accepted count: exit 2 before any call."""
        assert main(run(ids_file, "--yes", "--max-users", "100")) == 2
        assert resigned(server) == 0

    def test_excluded_ids_are_never_sent(
        self, server: RunningServer, ids_file: Path, tmp_path: Path
    ) -> None:
        """Protected accounts in --exclude stay untouched."""
        protected = [synthetic_user_id(i) for i in (3, 7)]
        exclude = tmp_path / "protected.txt"
        exclude.write_text("\n".join(p.upper() for p in protected) + "\n")
        assert main(run(ids_file, "--yes", "--exclude", str(exclude))) == 1
        counts = server.oracle()["resign_counts"]
        assert resigned(server) == 298
        assert not set(protected) & set(counts)  # type: ignore[arg-type]

    @pytest.mark.timeout(120)
    def test_an_interrupted_canary_finishes_its_check_on_resume(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Killed after the first canary batch was done but before its read-back: the resume
        reads that batch back first, finds the ID the server accepted without knowing it, and
        stops (it went on without the check, reporting that ID resigned)."""
        path = killed_in_the_canary(server, tmp_path, unknown_at=0, crash_at="after_batch_insert:2")
        assert main(run(path, "--yes", "--canary", "3")) == 3
        assert "does not know (first at line 1)" in capsys.readouterr().err
        assert resigned(server) == 49

    @pytest.mark.timeout(120)
    def test_a_canary_interrupted_before_its_sends_sends_the_rest_one_at_a_time(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Killed before the canary's first send: the resume still sends the canary batches one
        at a time and reads them back, so the unknown ID in the third stops the run there (it
        went on with the rest at full concurrency)."""
        path = killed_in_the_canary(
            server, tmp_path, unknown_at=100, crash_at="after_batch_insert:1"
        )
        assert resigned(server) == 0
        assert main(run(path, "--yes", "--canary", "3")) == 3
        assert "does not know (first at line 101)" in capsys.readouterr().err
        assert resigned(server) == 149

    def test_a_sync_relation_given_as_an_identity_is_not_found(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """`wecom:u16` is user 16's sync relation, not an identity: the server refuses it as
        unknown, and the read-back of its batch, which holds user 16 (already resigned) by their
        identity, must not take it for theirs (it reported the line resigned)."""
        first, second = tmp_path / "first.txt", tmp_path / "ids.txt"
        first.write_text("idp1:u16\n")
        second.write_text("idp1:u16\nwecom:u16\nidp1:u17\n")
        options = ("--yes", "--id-type", "identity", "--endpoint", "user")
        assert main(run(first, *options)) == 0
        assert main(run(second, *options)) == 1  # one line not found
        assert resigned(server) == 2
        report = tmp_path / "r.csv"
        assert main(["report", "--state", f"{second}.bulkresign", "--output", str(report)]) == 0
        row = report.read_text().splitlines()[2]
        assert row.startswith("2,wecom:u16,wecom:u16,not_found,"), row

    @pytest.mark.timeout(120)
    def test_a_canary_whose_last_batch_was_in_flight_judges_it_on_resume(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Killed with the last canary batch sent but not recorded: the resume reads it back,
        finds the unknown ID and stops there (it cleared the canary and sent the rest)."""
        path = killed_in_the_canary(
            server, tmp_path, unknown_at=120, crash_at="after_send_before_commit:3"
        )
        assert main(run(path, "--yes", "--canary", "3")) == 3
        said = capsys.readouterr().err
        assert (
            "canary: batch 2 ended with 1 ID(s) unknown to the server (first at line 121)" in said
        )
        assert resigned(server) == 149

    @pytest.mark.parametrize("command", ["run", "plan"])
    @pytest.mark.parametrize("id_type", ["identity", "sync_relation"])
    def test_an_id_type_the_public_read_back_lacks_is_refused(
        self,
        server: RunningServer,
        tmp_path: Path,
        command: str,
        id_type: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """identity or sync_relation with the public-account endpoint: exit 2, nothing sent."""
        path = tmp_path / "ids.txt"
        path.write_text("idp1:u1\nidp1:u2\n")
        argv = run(path, "--yes") if command == "run" else ["plan", str(path)]
        assert main([*argv, "--id-type", id_type]) == 2
        assert "use --endpoint user" in capsys.readouterr().err
        assert server.oracle(summary=True)["requests"] == {}

    def test_a_canary_that_fails_stops_the_run(self, server: RunningServer, tmp_path: Path) -> None:
        """--canary 3 with an unknown ID in the first batch: the run stops right after it; the
        other canary batches are never sent."""
        path = tmp_path / "ids.txt"
        ids = ["f" * 24] + [synthetic_user_id(i) for i in range(300)]
        path.write_text("\n".join(ids) + "\n")
        assert main(run(path, "--yes", "--canary", "3")) == 3
        assert resigned(server) == 49

    def test_a_canary_reads_its_batches_back_and_the_run_goes_on(
        self, server: RunningServer, ids_file: Path
    ) -> None:
        """--canary 2, every ID known and Resigned after its call: two read-backs, then the rest."""
        assert main(run(ids_file, "--yes", "--canary", "2")) == 1  # junk line, two unknown IDs
        assert resigned(server) == 300
        assert server.oracle(summary=True)["read_requests"] >= 2

    def test_a_canary_finds_unknown_ids_the_server_accepted_silently(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A server that answers success for unknown IDs: the canary records them not_found
        and stops (exit 3) before the rest; a resume goes on and finishes."""
        server.call(lambda: server.emulator.reconfigure(unknown_ids="ignore"))
        path = tmp_path / "ids.txt"
        ids = [synthetic_user_id(i) for i in range(300)]
        path.write_text("\n".join([ids[0], "f" * 24, *ids[1:]]) + "\n")
        assert main(run(path, "--yes", "--canary", "2")) == 3
        assert "does not know (first at line 2)" in capsys.readouterr().err
        assert resigned(server) == 99
        state = f"{path}.bulkresign"
        assert main(["report", "--state", state, "--output", str(tmp_path / "r.csv")]) == 0
        rows = (tmp_path / "r.csv").read_text().splitlines()
        assert rows[2].startswith(f"2,{'f' * 24},{'f' * 24},not_found,")
        assert "unknown to the server" in rows[2]
        assert main(run(path, "--yes", "--canary", "2")) == 1
        assert resigned(server) == 300
        assert max(server.oracle()["resign_counts"].values()) == 1  # type: ignore[union-attr]

    def test_a_canary_killed_before_telling_its_unknown_ids_tells_them_on_resume(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The unknown IDs recorded, the process killed before its stop was shown (the ledger as
        such a kill leaves it: the note is written once the stop is printed): the resume shows
        it and stops again (it passed the canary, and sent the rest); the next one goes on."""
        server.call(lambda: server.emulator.reconfigure(unknown_ids="ignore"))
        path = tmp_path / "ids.txt"
        ids = [synthetic_user_id(i) for i in range(300)]
        path.write_text("\n".join([ids[0], "f" * 24, *ids[1:]]) + "\n")
        assert main(run(path, "--yes", "--canary", "2")) == 3
        db = sqlite3.connect(f"{path}.bulkresign")
        told = db.execute("SELECT value FROM meta WHERE key = 'canary_told'").fetchone()
        assert told == ("1",)  # printed, then noted: one unknown ID shown
        with db:
            db.execute("UPDATE meta SET value = '' WHERE key = 'canary_told'")
        db.close()
        capsys.readouterr()
        assert main(run(path, "--yes", "--canary", "2")) == 3
        assert "does not know (first at line 2)" in capsys.readouterr().err
        assert resigned(server) == 99
        assert main(run(path, "--yes", "--canary", "2")) == 1
        assert resigned(server) == 300


class TestReadBack:
    @pytest.mark.parametrize("form", ["+1555{i:07d}", "555{i:07d}"])
    def test_phones_read_back_with_or_without_the_country_code(
        self, server: RunningServer, tmp_path: Path, form: str
    ) -> None:
        """Every call applied then answered 500: the read-back, which returns the phone apart
        from its phoneCountryCode, finds each user Resigned (not absent); each resigned once."""
        server.call(lambda: server.emulator.reconfigure(faults={"error_after": 1.0}))
        path = tmp_path / "phones.txt"
        path.write_text("".join(form.format(i=i) + "\n" for i in range(120)))
        argv = run(path, "--yes", "--id-type", "phone", "--reconcile-delay", "0")
        assert main(argv) == 0
        counts = server.oracle()["resign_counts"]
        assert len(counts) == 120 and set(counts.values()) == {1}  # type: ignore[union-attr]

    def test_a_phone_in_both_spellings_is_resigned_once(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """555… and +1555… name one user: the second spelling is a duplicate, never resent."""
        path = tmp_path / "phones.txt"
        lines = [f"555{i:07d}" for i in range(100)] + [f"+1555{i:07d}" for i in range(0, 100, 7)]
        path.write_text("\n".join(lines) + "\n")
        assert main(run(path, "--yes", "--id-type", "phone", "--batch-size", "10")) == 0
        counts = server.oracle()["resign_counts"]
        assert len(counts) == 100 and set(counts.values()) == {1}  # type: ignore[union-attr]

    def test_a_breaker_that_opens_once_everything_is_settled_finishes_the_run(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Five calls in doubt open the breaker, but their read-backs settle every ID: finished,
        exit 0, no "resume with" for a job with nothing left."""
        server.call(lambda: server.emulator.reconfigure(faults={"error_after": 1.0}))
        path = tmp_path / "ids.txt"
        path.write_text("".join(synthetic_user_id(i) + "\n" for i in range(250)))
        assert main(run(path, "--yes", "--reconcile-delay", "0")) == 0
        assert "resume with" not in capsys.readouterr().err
        assert max(server.oracle()["resign_counts"].values()) == 1  # type: ignore[union-attr]

    def test_a_server_that_refuses_reads_naming_an_unknown_id(
        self, server: RunningServer, tmp_path: Path
    ) -> None:
        """Reads with an unknown ID answered 404/2004, every call in doubt: the reads are halved
        until the unknown ID stands alone; it ends not_found, the rest resigned once."""
        server.call(
            lambda: server.emulator.reconfigure(unknown_reads="fail", faults={"error_after": 1.0})
        )
        ids = [synthetic_user_id(i) for i in range(120)]
        path = tmp_path / "ids.txt"
        path.write_text("\n".join([*ids[:10], "f" * 24, *ids[10:]]) + "\n")
        assert main(run(path, "--yes", "--reconcile-delay", "0")) == 1
        counts = server.oracle()["resign_counts"]
        assert counts == dict.fromkeys(ids, 1)
        report = tmp_path / "r.csv"
        assert main(["report", "--state", f"{path}.bulkresign", "--output", str(report)]) == 0
        assert ",not_found," in report.read_text().splitlines()[11]


class TestRecords:
    def test_files_are_private_and_hold_no_secret(
        self,
        server: RunningServer,
        ids_file: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Ledger, log and journal are 0600; the secret and tokens appear nowhere."""
        state = tmp_path / "run.state"
        assert main(run(ids_file, "--yes", "--state", str(state), "--reason", "T-1")) == 1
        out = capsys.readouterr()
        files = [state, Path(f"{state}.log"), Path(f"{state}.journal")]
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert DEMO_ACCESS_KEY_SECRET.encode() not in path.read_bytes(), path
        assert DEMO_ACCESS_KEY_SECRET not in out.out + out.err
        assert "eyJ" not in Path(f"{state}.log").read_text()
        log = Path(f"{state}.log").read_text()
        assert synthetic_user_id(5) not in log
        # The unknown IDs, which the server's 404 message names, are pseudonymized there too.
        assert "user_not_found" in log or "2004" in log
        assert "f" * 24 not in log and "e" * 24 not in log
        assert main(["audit", "verify", f"{state}.journal"]) == 0

    def test_the_journal_names_each_attempts_ids_once(
        self, server: RunningServer, ids_file: Path, tmp_path: Path
    ) -> None:
        """batch_sent lists the IDs; batch_outcome of the same attempt gives only their count."""
        state = tmp_path / "run.state"
        assert main(run(ids_file, "--yes", "--state", str(state))) == 1
        entries = [json.loads(line) for line in Path(f"{state}.journal").read_text().splitlines()]
        sent = {(e["batch"], e["attempt"]): e["ids"] for e in entries if e["kind"] == "batch_sent"}
        outcomes = [e for e in entries if e["kind"] == "batch_outcome"]
        assert outcomes and all("ids" not in e for e in outcomes)
        assert all(e["size"] == len(sent[e["batch"], e["attempt"]]) for e in outcomes)

    def test_the_ledger_anchors_the_journal(
        self, server: RunningServer, ids_file: Path, tmp_path: Path
    ) -> None:
        """The state file records a point of the journal; verify --state checks the chain there."""
        state = tmp_path / "run.state"
        assert main(run(ids_file, "--yes", "--state", str(state))) == 1
        with sqlite3.connect(state) as conn:
            (raw,) = conn.execute("SELECT value FROM meta WHERE key = 'journal_anchor'").fetchone()
        anchor = JournalAnchor.from_json(json.loads(raw))
        assert anchor is not None and anchor.entries >= 1
        assert main(["audit", "verify", f"{state}.journal", "--state", str(state)]) == 0

    def test_a_short_runs_journal_is_anchored_at_its_last_line(
        self, server: RunningServer, ids_file: Path, tmp_path: Path
    ) -> None:
        """A run of under a second anchors its end: cutting any line of it shows under --state."""
        state = tmp_path / "run.state"
        journal = Path(f"{state}.journal")
        assert main(run(ids_file, "--yes", "--state", str(state))) == 1
        lines = journal.read_bytes().splitlines(keepends=True)
        with sqlite3.connect(state) as conn:
            (raw,) = conn.execute("SELECT value FROM meta WHERE key = 'journal_anchor'").fetchone()
        anchor = JournalAnchor.from_json(json.loads(raw))
        assert anchor is not None and anchor.entries == len(lines)
        journal.write_bytes(b"".join(lines[:-1]))
        assert main(["audit", "verify", str(journal), "--state", str(state)]) != 0

    def test_a_rerun_refuses_a_journal_cut_before_its_anchor(
        self,
        server: RunningServer,
        ids_file: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Lines lost from the journal stop the next run with one line naming the file."""
        state = tmp_path / "run.state"
        journal = Path(f"{state}.journal")
        assert main(run(ids_file, "--yes", "--state", str(state))) == 1
        journal.write_bytes(b"")
        capsys.readouterr()
        assert main(run(ids_file, "--yes", "--state", str(state))) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert any(str(journal) in line and "lines lost" in line for line in err), err


class TestLostJournal:
    def test_a_lost_journal_is_replaced_only_when_asked_and_named_in_the_new_one(
        self, server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Journal gone after a stop: the resume is refused, then --new-journal begins one whose
        first entry names the lost one, and the run finishes; audit verify passes."""
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(["f" * 24, *[synthetic_user_id(i) for i in range(200)]]) + "\n")
        assert main(run(path, "--yes", "--canary", "1")) == 3
        state = Path(f"{path}.bulkresign")
        journal = Path(f"{state}.journal")
        other = str(tmp_path / "other.journal")
        assert main(run(path, "--yes", "--new-journal", "--journal", other)) == 2  # still there
        journal.rename(tmp_path / "aside.journal")
        assert main(run(path, "--yes")) == 2
        assert "--new-journal" in capsys.readouterr().err
        assert main(run(path, "--yes", "--new-journal")) == 1
        first, second = (json.loads(line) for line in journal.read_text().splitlines()[:2])
        assert first["kind"] == "run_started"
        assert second["kind"] == "journal_replaces" and second["entries"] > 0
        assert main(["audit", "verify", str(journal), "--state", str(state)]) == 0


class TestPreflight:
    def test_preflight_counts_without_resigning(
        self, server: RunningServer, ids_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """plan --preflight reads back: 2 unknown, 300 active; the emulator saw no resign call."""
        server.call(lambda: server.emulator.resign([synthetic_user_id(0)], IdType.USER_ID))
        assert main(["plan", str(ids_file), "--preflight", "--json"]) == 1
        found = json.loads(capsys.readouterr().out)["preflight"]
        assert found["unknown"] == 2 and found["already_resigned"] == 1
        assert found["active"] == 299
        requests = server.oracle(summary=True)["requests"]
        assert not any("resign" in path for path in requests), requests  # type: ignore[union-attr]

    def test_preflight_lists_the_unknown_ids_with_their_lines(
        self, server: RunningServer, ids_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The unknown IDs are named with their lines, to be removed before the run, in the
        table and in --json (it gave only their count)."""
        assert main(["plan", str(ids_file), "--preflight"]) == 1
        out = capsys.readouterr().out
        assert f"301: {'f' * 24}" in out and f"302: {'e' * 24}" in out
        assert main(["plan", str(ids_file), "--preflight", "--json"]) == 1
        found = json.loads(capsys.readouterr().out)["preflight"]
        assert found["unknown_ids"] == [
            {"line": 301, "id": "f" * 24},
            {"line": 302, "id": "e" * 24},
        ]

    def test_the_rejects_file_lists_every_unknown_id_after_the_rejected_lines(
        self,
        server: RunningServer,
        ids_file: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--rejects with --preflight holds every unknown ID (reason unknown), past the few
        --json keeps."""
        monkeypatch.setattr("bulkresign.preflight.KEEP_UNKNOWN", 1)
        rejects = tmp_path / "rejects.csv"
        assert main(["plan", str(ids_file), "--preflight", "--rejects", str(rejects)]) == 1
        rows = rejects.read_text().splitlines()
        assert rows[0] == "line,reason,value" and rows[1] == "304,invalid_user_id,junk"
        assert rows[2:] == [f"301,unknown,{'f' * 24}", f"302,unknown,{'e' * 24}"]
        capsys.readouterr()
        assert main(["plan", str(ids_file), "--preflight", "--json"]) == 1
        assert len(json.loads(capsys.readouterr().out)["preflight"]["unknown_ids"]) == 1

    def test_the_read_only_client_has_no_resign_method(self) -> None:
        """plan's client is structurally unable to resign anyone."""
        assert not hasattr(GenAuthReader, "resign_batch")


class TestRerun:
    def test_running_a_finished_job_again_sends_nothing_and_keeps_its_exit_code(
        self, server: RunningServer, ids_file: Path, tmp_path: Path
    ) -> None:
        """The same command after the end: no new resign call, still exit 1 (unknown IDs)."""
        state = tmp_path / "run.state"
        assert main(run(ids_file, "--yes", "--state", str(state))) == 1
        calls = server.oracle(summary=True)["resign_requests"]
        assert main(run(ids_file, "--yes", "--state", str(state))) == 1
        assert server.oracle(summary=True)["resign_requests"] == calls
