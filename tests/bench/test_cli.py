"""``bulkresign bench``: the user-facing table, its options and its errors."""

from __future__ import annotations

import pytest

from bulkresign.bench import RunReport
from bulkresign.cli import ExitCode, main
from bulkresign.cli.bench import _projection


class TestOptions:
    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--rate", "0"], "--rate must be greater than 0, not 0"),
            (["--ids", "-5"], "--ids must be greater than 0, not -5"),
            (["--limit", "0.5"], "--limit must be 0 (unlimited) or at least 1, not 0.5"),
            (["--latency-ms", "-1"], "--latency-ms must be 0 or more, not -1"),
        ],
    )
    def test_bad_values_are_one_line_errors(
        self, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad option exits 2 with one line naming it, before anything runs."""
        assert main(["bench", *argv]) == ExitCode.USAGE
        err = capsys.readouterr().err
        assert err == f"bulkresign: error: {message}\n"

    def test_dir_must_exist(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--dir names a directory to write into; a missing one is refused."""
        assert main(["bench", "--dir", "/nonexistent/bench"]) == ExitCode.USAGE
        assert "--dir /nonexistent/bench: not a directory" in capsys.readouterr().err


class TestRun:
    def test_prints_both_measurements_beside_their_targets(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A one-second run at 50/s prints rate accuracy, end to end and a projection."""
        code = main(
            ["bench", "--rate", "50", "--seconds", "1", "--ids", "2500", "--latency-ms", "2"]
        )
        out = capsys.readouterr().out
        assert code in (ExitCode.OK, ExitCode.PROBLEMS)
        assert "rate accuracy (50 calls)" in out
        assert "end to end (2,500 IDs)" in out
        for name in ("goodput", "busiest 1-s window (sent)", "throttled", "wall time"):
            assert name in out
        assert "1,000,000 users ≈" in out
        assert (code == ExitCode.OK) == ("MISSED" not in out)


def test_the_projection_counts_the_start_up_once() -> None:
    """1M users at 300 calls/s after 0.8 s of start-up: 0.8 + 1,000,000 / 15,000 ≈ 67 s, not the
    short run's users/s (its start-up included) scaled up."""
    report = RunReport(
        ids=30_000, rate=300.0, limit=300.0, latency_ms=20.0, admitted=600, throttled=0,
        goodput=300.0, busiest_offered=300, busiest_admitted=300, first_request=0.8, wall=2.9,
        last_call=0.1, finished=True, timeline=(),
    )  # fmt: skip
    line = _projection(report)
    assert "15,000 users/s after a start-up of 0.8 s" in line
    assert "1,000,000 users ≈ 67 s" in line
