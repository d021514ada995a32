"""`make demo` works: the whole rehearsal finishes and every user is resigned exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkresign import demo


@pytest.mark.timeout(120)
def test_the_demo_runs_to_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """plan, run, status, verify and audit verify all give their expected exit codes."""
    monkeypatch.chdir(tmp_path)
    assert demo.main() == 0
    assert (tmp_path / "demo-run" / "report.csv").stat().st_mode & 0o077 == 0
