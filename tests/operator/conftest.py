"""An emulator in a thread, credentials in the environment, and a sample input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    RunningServer,
    serve_in_thread,
    synthetic_user_id,
)

USERS = 400


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """A clean emulator with 400 users; GENAUTH_* point at it."""
    emu = Emulator(EmulatorConfig(rate_limit=None))
    emu.generate(USERS)
    with serve_in_thread(emu) as running:
        monkeypatch.setenv("GENAUTH_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
        monkeypatch.setenv("GENAUTH_ACCESS_KEY_SECRET", DEMO_ACCESS_KEY_SECRET)
        monkeypatch.setenv("GENAUTH_HOST", running.url)
        yield running


@pytest.fixture
def ids_file(tmp_path: Path) -> Path:
    """300 known users, 2 unknown ones, a duplicate and a junk line."""
    ids = [synthetic_user_id(i) for i in range(300)]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join([*ids, "f" * 24, "e" * 24, ids[0], "junk"]) + "\n")
    return path
