"""The benchmarks' harness: child processes measured alone, and RESULTS.md sections."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import common, plots
from benchmarks.common import Section, run_child
from benchmarks.ingest import measure
from bulkresign.bench import Check

INGEST = "<!-- ingest:start -->\n## Ingest: 10 lines\n\nfigures\n<!-- ingest:end -->\n"


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RESULTS.md in a temp dir, already holding another helper's ingest section."""
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# Benchmark results\n\n{INGEST}")
    monkeypatch.setattr(common, "RESULTS", path)
    return path


class TestPublish:
    def test_appends_a_new_section_and_keeps_the_others(
        self, results: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A first publish adds the section after what is there; ingest's stays intact."""
        common.publish(Section("Rate accuracy", "python -m benchmarks", "| a |\n|---|\n| 1 |"))
        text = results.read_text()
        assert INGEST in text
        assert text.index(INGEST) < text.index("## Rate accuracy")
        assert "| a |" in capsys.readouterr().out

    def test_replaces_only_its_own_previous_version(self, results: Path) -> None:
        """Publishing again swaps the old figures for the new, in place."""
        common.publish(Section("Resume", "cmd", "old figures"))
        common.publish(Section("Rate accuracy", "cmd", "rate figures"))
        common.publish(Section("Resume", "cmd", "new figures"))
        text = results.read_text()
        assert "old figures" not in text
        assert text.count("## Resume") == 1
        assert text.index("new figures") < text.index("rate figures")
        assert INGEST in text

    def test_a_big_run_keeps_a_section_of_its_own(self, results: Path) -> None:
        """The quick and the --big run of one benchmark sit side by side: neither replaces the
        other, and a PNG name is told apart the same way."""
        common.publish(Section("Resume", "cmd --big", "big figures", big=True))
        common.publish(Section("Resume", "cmd", "quick figures"))
        text = results.read_text()
        assert "big figures" in text and "quick figures" in text
        assert "## Resume (`--big`)" in text
        assert common.image_name("resume.png", True) == "resume-big.png"
        assert common.image_name("resume.png", False) == "resume.png"

    def test_records_command_machine_targets_and_images(self, results: Path) -> None:
        """The section names its command and machine, marks missed targets and links its PNG."""
        checks = (Check("goodput", "80 req/s", "≥ 99 %", False), Check("x", "1", "1", True))
        common.publish(
            Section("Adaptive pacing", "python -m benchmarks.adaptive", "b", checks, ("a.png",))
        )
        text = results.read_text()
        assert "`python -m benchmarks.adaptive`" in text
        assert common.machine() in text
        assert "| goodput | 80 req/s | ≥ 99 % | **NO** |" in text
        assert "| x | 1 | 1 | yes |" in text
        assert "![Adaptive pacing](a.png)" in text


class TestRunChild:
    def test_peak_rss_is_the_childs_own(self) -> None:
        """A child that touches 64 MiB reports at least that, and not this process's peak."""
        ballast = b"x" * (200 * 2**20)  # this process's peak, which vfork would hand on
        code = "b = b'x' * (64 * 2**20); import time; time.sleep(0.1)"
        child = run_child([sys.executable, "-c", code], env=dict(os.environ), timeout=30)
        assert child.returncode == 0 and not child.killed
        assert 64 * 2**20 <= child.max_rss < 150 * 2**20
        del ballast

    def test_the_ingest_benchmark_measures_the_childs_own_peak(self) -> None:
        """The ingest benchmark's measure() reads the child's peak too, not this process's."""
        ballast = b"x" * (200 * 2**20)
        code = "b = b'x' * (64 * 2**20); import time; time.sleep(0.1); print('done')"
        run = measure([sys.executable, "-c", code])
        assert run.output == "done\n"
        assert 64 * 2**20 <= run.peak_rss < 150 * 2**20
        del ballast

    def test_kill_when_stops_the_child(self) -> None:
        """Once ``kill_when()`` is true the child is SIGKILLed and reported killed."""
        argv = [sys.executable, "-c", "import time; time.sleep(30)"]
        child = run_child(argv, env=dict(os.environ), timeout=30, kill_when=lambda: True)
        assert child.killed and child.returncode == -9
        assert child.wall < 10

    def test_a_crash_is_an_error_not_a_figure(self) -> None:
        """A child that dies with a traceback raises instead of being measured."""
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            run_child([sys.executable, "-c", "1 / 0"], env=dict(os.environ), timeout=30)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class TestPlots:
    def test_the_resume_plot_is_a_png(self, tmp_path: Path) -> None:
        """Both runs' calls, a kill, a restart and a gap make one PNG."""
        rng = np.random.default_rng(0)
        first = np.sort(rng.uniform(0.0, 10.0, 4000))
        second = np.sort(rng.uniform(14.0, 30.0, 6000))
        calls = np.concatenate([first, second])
        path = tmp_path / "resume.png"
        drawn = plots.plot_resume(
            path, calls, second + 0.02, started=0.0, killed=10.0, restarted=10.1
        )
        assert drawn
        assert path.read_bytes().startswith(PNG_MAGIC)

    def test_the_bar_chart_is_a_png(self, tmp_path: Path) -> None:
        """Medians with every run and a target line make one PNG."""
        path = tmp_path / "bars.png"
        runs = [("ours", [1_100.0, 1_050.0, 1_200.0]), ("theirs", [480.0, 530.0])]
        assert plots.plot_bars(path, "ceiling", "requests/s", runs, target=3_000.0)
        assert path.read_bytes().startswith(PNG_MAGIC)

    def test_the_rss_plot_is_a_png(self, tmp_path: Path) -> None:
        """Peak RSS against input size makes one PNG."""
        path = tmp_path / "rss.png"
        assert plots.plot_rss(path, [(1_000_000, 144.0), (10_000_000, 341.0)])
        assert path.read_bytes().startswith(PNG_MAGIC)
