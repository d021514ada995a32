"""`bulkresign plan`: counts on stdout, JSON, the rejects file, one-line errors, no network."""

from __future__ import annotations

import csv
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bulkresign.cli import main
from tests.ingest.helpers import SAMPLES, Write, object_ids

IDS = object_ids(4)
HOSTILE = SAMPLES / "hostile"


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


class TestOutput:
    def test_table(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The table names the format and gives every count and the plan hash."""
        code, out, _ = plan(capsys, str(SAMPLES / "users.txt"))
        assert code == 0
        for needle in (
            "lines       115",
            "accepted    100 in 2 batches",
            "duplicates  10",
            "skipped     5 (blank 2, comment 3)",
            "format      lines",
            "sha256",
        ):
            assert needle in out

    def test_json_keys(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints one object with the documented keys."""
        code, out, _ = plan(capsys, str(SAMPLES / "users.csv"), "--json")
        data = json.loads(out)
        assert code == 0 and out.count("\n") == 1
        assert {
            "lines",
            "accepted",
            "duplicates",
            "rejected",
            "skipped",
            "batches",
            "sha256",
        } <= set(data)
        assert (
            data["lines"]
            == data["accepted"] + data["duplicates"] + data["rejected"] + data["skipped"]
        )

    def test_rejections_listed_with_lines_and_exit_1(
        self, capsys: pytest.CaptureFixture[str], write: Write
    ) -> None:
        """Rejected lines are counted by reason with their first line numbers; exit code 1."""
        path = write(f"{IDS[0]}\nbad\n{IDS[1]}\nworse\n")
        code, out, _ = plan(capsys, str(path))
        assert code == 1
        assert "invalid_user_id          2  lines 2, 4" in out


class TestRejectsFile:
    def test_content_and_mode(
        self, capsys: pytest.CaptureFixture[str], write: Write, tmp_path: Path
    ) -> None:
        """--rejects writes line,reason,value as CSV, created 0600."""
        path = write(f"{IDS[0]}\nbad\x00\n=cmd|' /C calc'!A0\n")
        out_file = tmp_path / "rejects.csv"
        old = os.umask(0o022)
        try:
            code, _, _ = plan(capsys, str(path), "--rejects", str(out_file))
        finally:
            os.umask(old)
        rows = list(csv.reader(out_file.read_text().splitlines()))
        assert code == 1
        assert rows == [
            ["line", "reason", "value"],
            ["2", "nul_byte", "bad\\x00"],
            ["3", "invalid_user_id", "'=cmd|' /C calc'!A0"],
        ]
        assert stat.S_IMODE(out_file.stat().st_mode) == 0o600


class TestErrors:
    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["empty.txt"], "empty.txt: empty file"),
            (["binary.bin"], "binary.bin: not a text file"),
            (["utf16.txt"], "utf16.txt: not a text file: UTF-16"),
            (["no-column.csv", "--column", "email"], "no-column.csv:1: no column named 'email'"),
            (["non-string.jsonl"], "non-string.jsonl:3: field 'userId' holds a number"),
            (["missing.txt"], "missing.txt: no such file"),
            (["."], ": is a directory"),
        ],
    )
    def test_one_line_and_exit_2(
        self, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
    ) -> None:
        """Each unusable input gives one line naming the file (and line), exit code 2."""
        code, out, err = plan(capsys, str(HOSTILE / argv[0]), *argv[1:])
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and message in err and "Traceback" not in err

    @pytest.mark.parametrize("rate", ["nan", "0", "-1"])
    def test_a_rate_out_of_bounds_is_refused(
        self, capsys: pytest.CaptureFixture[str], rate: str
    ) -> None:
        """plan --rate takes the bounds run does (NaN and 0 were accepted silently)."""
        code, _, err = plan(capsys, str(SAMPLES / "users.csv"), "--rate", rate)
        assert code == 2 and "--rate must be from 0.01 to 100000" in err

    def test_contradictory_options(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--field on a CSV is a usage error, exit code 2."""
        code, _, err = plan(capsys, str(SAMPLES / "users.csv"), "--field", "id")
        assert code == 2 and "--field applies to JSONL" in err


class TestOffline:
    def test_no_socket_is_opened(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """plan runs with every socket call failing."""

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("plan tried to use the network")

        monkeypatch.setattr(socket, "socket", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)
        code, out, _ = plan(capsys, str(SAMPLES / "users.jsonl"))
        assert code == 0 and "accepted    25" in out

    def test_plan_imports_nothing_networked(self) -> None:
        """The plan command's modules do not import aiohttp or the API client."""
        probe = (
            "import sys, bulkresign.cli.plan; "
            "bad = [m for m in sys.modules if m.startswith(('aiohttp', 'bulkresign.client'))]; "
            "print(','.join(bad))"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == ""
