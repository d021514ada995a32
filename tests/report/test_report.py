"""The per-line report: every input line once, joined with a hand-built ledger."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bulkresign.binding import input_options
from bulkresign.errors import ConfigError, LedgerError, LedgerMismatch
from bulkresign.inputspec import Format, InputSpec
from bulkresign.ledger import Ledger
from bulkresign.models import IdType, LineOutcome
from bulkresign.report import (
    FIELDS,
    ReportFormat,
    ReportRow,
    report_rows,
    spec_from_manifest,
    write_report,
    write_rows,
)
from tests.report.helpers import LINES, hex_id, make_ledger

WriteInput = Callable[..., Path]


def rows(ledger: Ledger, **kw: object) -> list[ReportRow]:
    return list(report_rows(ledger, **kw))  # type: ignore[arg-type]


class TestSpecFromManifest:
    @pytest.mark.parametrize(
        "changes",
        [
            {},
            {"format": Format.CSV, "column": "email", "id_type": IdType.EMAIL},
            {"format": Format.TSV, "column": 2, "header": False, "delimiter": "\t"},
            {"format": Format.JSONL, "field": "uid", "case_sensitive_email": True},
            {"batch_size": 7, "max_line_bytes": 300, "delimiter": ";"},
        ],
    )
    def test_it_inverts_what_the_run_records(self, changes: dict[str, object]) -> None:
        """Every InputSpec the CLI can build survives the manifest's encoding unchanged."""
        spec = dataclasses.replace(InputSpec("/data/in.csv"), **changes)  # type: ignore[arg-type]
        meta = {"input_options": input_options(spec), "input_path": "/data/in.csv"}
        assert spec_from_manifest(meta) == spec

    def test_an_option_it_does_not_know_is_refused(self) -> None:
        """A manifest from a newer bulkresign names the unknown option instead of guessing."""
        meta = {"input_options": json.dumps({"quoting": "all"}), "input_path": "x"}
        with pytest.raises(LedgerError, match="quoting"):
            spec_from_manifest(meta)

    def test_unreadable_options_are_refused(self) -> None:
        """Garbage in input_options is a ledger error, not a traceback."""
        with pytest.raises(LedgerError, match="input_options"):
            spec_from_manifest({"input_options": "{nope", "input_path": "x"})


class TestOutcomes:
    def test_one_row_per_input_line_in_order(self, ledger: Ledger) -> None:
        """Every line appears exactly once, numbered as an editor numbers it."""
        assert [r.line for r in rows(ledger)] == list(range(1, len(LINES) + 1))

    def test_a_done_batch_is_resigned_by_its_successful_call(self, ledger: Ledger) -> None:
        """IDs without a per-ID row in a terminal batch carry the ok attempt's request id."""
        first = rows(ledger)[0]
        assert (first.outcome, first.batch, first.request_id) == (LineOutcome.RESIGNED, 0, "req-0")
        assert first.time is not None

    def test_per_id_rows_give_outcome_reason_and_api_code(self, ledger: Ledger) -> None:
        """not_found, failed and a partial send each show what the ledger recorded."""
        by_line = {r.line: r for r in rows(ledger)}
        assert (by_line[7].outcome, by_line[7].api_code) == (LineOutcome.NOT_FOUND, 2004)
        failed = by_line[8]
        assert (failed.outcome, failed.reason, failed.api_code) == (
            LineOutcome.FAILED,
            "refused",
            4220,
        )
        assert failed.request_id == "req-f"
        assert (by_line[9].outcome, by_line[9].request_id) == (LineOutcome.RESIGNED, "req-1")

    def test_a_row_a_read_back_settled_has_the_time_it_was_recorded(self, ledger: Ledger) -> None:
        """No request names it, so its time is when the ledger recorded its outcome."""
        by_line = {r.line: r for r in rows(ledger)}
        assert by_line[7].request_id is None
        assert by_line[7].time is not None
        assert abs(by_line[7].time - time.time()) < 60

    def test_an_in_doubt_batch_is_in_doubt_and_says_why(self, ledger: Ledger) -> None:
        """An in-doubt batch's IDs are in_doubt, not unprocessed: the reason names its state
        and the only way to settle it."""
        last = rows(ledger)[-1]
        assert last.outcome is LineOutcome.IN_DOUBT
        assert "in_doubt" in last.reason and "same `bulkresign run`" in last.reason

    def test_a_sending_batch_is_in_doubt_and_a_pending_one_unprocessed(
        self, tmp_path: Path, spec: InputSpec
    ) -> None:
        """An intent a crash left SENDING may have been sent: in_doubt; PENDING: unprocessed."""
        led = make_ledger(tmp_path / "run.state", spec)
        with led.transaction():
            led.begin_attempt(0, led.batch(0).batch.ids)  # type: ignore[union-attr]
        outcomes = {r.batch: r.outcome for r in rows(led) if r.batch is not None}
        assert outcomes == {
            0: LineOutcome.IN_DOUBT,
            1: LineOutcome.UNPROCESSED,
            2: LineOutcome.UNPROCESSED,
        }

    def test_a_batch_never_recorded_is_unprocessed(self, tmp_path: Path, spec: InputSpec) -> None:
        """A run stopped before its last batch: those lines are unprocessed, not missing."""
        led = make_ledger(tmp_path / "run.state", spec, batches=2, ingest_done=False)
        last = rows(led)[-1]
        assert (last.outcome, last.batch) == (LineOutcome.UNPROCESSED, 2)
        assert "not sent yet" in last.reason

    def test_lines_without_an_id_say_why(self, ledger: Ledger) -> None:
        """Junk is rejected_invalid with its reason; blank and comment lines are skipped."""
        by_line = {r.line: r for r in rows(ledger)}
        assert (by_line[3].outcome, by_line[3].reason) == (
            LineOutcome.REJECTED_INVALID,
            "invalid_user_id",
        )
        assert (by_line[4].outcome, by_line[4].reason) == (LineOutcome.SKIPPED, "blank")
        assert (by_line[10].outcome, by_line[10].reason) == (LineOutcome.SKIPPED, "comment")

    def test_a_duplicate_names_its_first_line(self, ledger: Ledger) -> None:
        """Line 6 repeats line 1's ID."""
        dup = rows(ledger)[5]
        assert (dup.outcome, dup.reason, dup.normalized) == (
            LineOutcome.DUPLICATE,
            "duplicate of line 1",
            hex_id(0),
        )

    def test_excluded_lines_need_the_runs_exclude_list(
        self, tmp_path: Path, spec: InputSpec
    ) -> None:
        """Without --exclude the batches would shift: refused; with it, the line is excluded."""
        exclude = frozenset({hex_id(1)})
        led = make_ledger(tmp_path / "run.state", spec, exclude=exclude)
        with pytest.raises(ConfigError, match="--exclude"):
            report_rows(led)
        assert rows(led, exclude=exclude)[1].outcome is LineOutcome.EXCLUDED


class TestRefusals:
    def test_a_changed_input_is_refused_before_any_row(
        self, ledger: Ledger, spec: InputSpec
    ) -> None:
        """One byte appended: the SHA-256 no longer matches the run's."""
        with open(spec.path, "a") as f:
            f.write("x\n")
        with pytest.raises(LedgerMismatch, match="SHA-256"):
            report_rows(ledger)

    def test_a_ledger_that_disagrees_with_the_input_is_refused(
        self, tmp_path: Path, write_input: WriteInput
    ) -> None:
        """Without a recorded hash, the batch check still catches a different input."""
        path = write_input("\n".join(hex_id(i) for i in range(5)) + "\n")
        spec = InputSpec(str(path), batch_size=3)
        led = make_ledger(tmp_path / "run.state", spec, record_hash=False, ingest_done=False)
        path.write_text("\n".join(hex_id(i) for i in (0, 2, 1, 3, 4)) + "\n")
        with pytest.raises(LedgerMismatch, match="line 2"):
            rows(led)

    def test_a_run_from_stdin_needs_input(self, tmp_path: Path, spec: InputSpec) -> None:
        """The manifest says "-": the report asks for --input, and works with it."""
        led = make_ledger(tmp_path / "run.state", spec, stdin=True)
        with pytest.raises(ConfigError, match="--input"):
            report_rows(led)
        assert len(rows(led, input_path=spec.path)) == len(LINES)


class TestWriters:
    def test_csv_has_a_header_and_defuses_formulas_but_not_the_id(self) -> None:
        """A value a spreadsheet would run is quoted in `id`; `normalized` stays exact."""
        out = io.StringIO()
        row = ReportRow(1, "+8613800000000", "+8613800000000", LineOutcome.FAILED, "=bad", 4220)
        write_rows([row], out, ReportFormat.CSV)
        header, line = out.getvalue().splitlines()
        assert header == ",".join(FIELDS)
        assert line == "1,'+8613800000000,+8613800000000,failed,'=bad,4220,,,"

    def test_jsonl_keeps_types_and_nulls(self) -> None:
        """Numbers stay numbers, absent values are null, time is ISO 8601 UTC."""
        out = io.StringIO()
        write_rows(
            [ReportRow(2, "a", "a", LineOutcome.RESIGNED, time=0.0)], out, ReportFormat.JSONL
        )
        record = json.loads(out.getvalue())
        assert list(record) == list(FIELDS)
        assert record["line"] == 2 and record["batch"] is None
        assert record["time"] == "1970-01-01T00:00:00.000+00:00"

    def test_the_report_file_is_private_and_complete(self, ledger: Ledger, tmp_path: Path) -> None:
        """Created 0600 under umask 022, one row per line, no temporary file left beside it."""
        out = tmp_path / "report.csv"
        old = os.umask(0o022)
        try:
            summary = write_report(ledger.path, out)
        finally:
            os.umask(old)
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert summary.lines == summary.written == len(LINES)
        assert len(out.read_text().splitlines()) == len(LINES) + 1
        assert sorted(p.name for p in tmp_path.iterdir() if "report" in p.name) == ["report.csv"]

    def test_the_report_never_overwrites_the_input(self, ledger: Ledger, spec: InputSpec) -> None:
        """--output naming the run's input is refused, and the input is left as it was."""
        before = Path(spec.path).read_bytes()
        with pytest.raises(ConfigError, match="input"):
            write_report(ledger.path, Path(spec.path))
        assert Path(spec.path).read_bytes() == before

    def test_a_failed_report_leaves_no_file(self, ledger: Ledger, spec: InputSpec) -> None:
        """Refused before the first row: the output file is never created."""
        Path(spec.path).write_text("changed\n")
        out = Path(spec.path).with_name("report.csv")
        with pytest.raises(LedgerMismatch):
            write_report(ledger.path, out)
        assert not any(p.name.endswith((".tmp", "report.csv")) for p in out.parent.iterdir())

    def test_outcomes_filter_rows_but_every_line_is_counted(
        self, ledger: Ledger, tmp_path: Path
    ) -> None:
        """--outcome failed,in_doubt keeps two rows; the summary still counts all 11."""
        out = tmp_path / "retry.jsonl"
        wanted = {LineOutcome.FAILED, LineOutcome.IN_DOUBT}
        summary = write_report(ledger.path, out, outcomes=wanted)
        kept = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["line"] for r in kept] == [8, 11]
        assert summary.lines == len(LINES) and summary.written == 2
