"""The ingest benchmark's generated input has the promised shape (checked small)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.ingest import Run as BenchRun
from benchmarks.ingest import generate, report
from tests.ingest.helpers import accounted, drain


def test_generated_file_has_the_stated_mix(tmp_path: Path) -> None:
    """20k lines: every line counted, about 10% duplicates and 0.1% junk."""
    path = tmp_path / "ids.txt"
    generate(path, 20_000)
    stats = drain(path)
    assert stats.lines == 20_000 and accounted(stats)
    assert 0.08 < stats.duplicates / stats.lines < 0.12
    assert 0 < stats.rejected + stats.skipped < 0.004 * stats.lines


def test_report_states_ratios_and_targets() -> None:
    """The RESULTS.md section gives both commands, the ratios and the targets."""
    plan = [
        BenchRun(
            4.0,
            400_000_000,
            '{"lines": 1, "accepted": 1, "duplicates": 0, '
            '"rejected": 0, "skipped": 0, "batches": 1}',
        )
    ]
    sort = [BenchRun(5.0, 1_000_000_000, "")]
    text = report(10_000_000, 250_000_000, plan, sort, "bulkresign plan FILE --json")
    assert "**0.80×** (target ≤ 1.0)" in text and "**0.40×** (target ≤ 0.5)" in text
    assert text.startswith("<!-- bench:ingest:start -->")
