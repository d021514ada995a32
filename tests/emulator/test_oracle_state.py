"""The ``/__emulator/`` controls, the oracle's counts, and the state file across restarts."""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from bulkresign.emulator import Emulator, EmulatorConfig, ManualClock, serve
from bulkresign.emulator import synthetic_user_id as uid
from bulkresign.errors import ConfigError
from bulkresign.models import IdType

if TYPE_CHECKING:
    from conftest import Api


async def control(api: Api, method: str, path: str, body: object = None) -> tuple[int, object]:
    """Call a ``/__emulator/`` endpoint (no credentials needed)."""
    url = f"{api.url}/__emulator/{path}"
    async with api.session.request(method, url, json=body) as resp:
        return resp.status, await resp.json()


class TestOracle:
    async def test_endpoint_matches_the_method(self, api: Api, emulator: Emulator) -> None:
        """``GET /__emulator/oracle`` has the same content as ``Emulator.oracle()``."""
        await api.resign([uid(0), uid(1)])
        _, body = await control(api, "GET", "oracle")
        assert body == emulator.oracle()

    async def test_counts(self, api: Api, emulator: Emulator) -> None:
        """Requests by path, resign calls, users resigned and the largest batch."""
        await api.resign([uid(0), uid(1), uid(2)])
        await api.resign([uid(3)], path="/api/v3/resign-public-account-batch")
        await api.read(f"userIds={uid(0)}")
        oracle = emulator.oracle()
        assert oracle["requests"] == {
            "/api/v3/get-management-token": 1,
            "/api/v3/resign-user-batch": 1,
            "/api/v3/resign-public-account-batch": 1,
            "/api/v3/get-user-batch": 1,
        }
        assert (oracle["resign_requests"], oracle["read_requests"]) == (2, 1)
        assert (oracle["resigned_total"], oracle["max_resign_count"]) == (4, 1)
        assert oracle["largest_batch"] == 3
        assert oracle["resign_counts"] == dict.fromkeys([uid(0), uid(1), uid(2), uid(3)], 1)

    async def test_summary_omits_the_per_user_map(self, api: Api) -> None:
        """``?summary=1`` leaves ``resign_counts`` out, for huge runs."""
        await api.resign([uid(0)])
        _, body = await control(api, "GET", "oracle?summary=1")
        assert isinstance(body, dict)
        assert "resign_counts" not in body and body["resigned_total"] == 1

    async def test_reset_counters(self, api: Api, emulator: Emulator) -> None:
        """Counters and resign counts go to zero; statuses stay."""
        await api.resign([uid(0)])
        assert (await control(api, "POST", "reset-counters"))[0] == 200
        oracle = emulator.oracle()
        assert (oracle["resign_requests"], oracle["resigned_total"]) == (0, 0)
        assert oracle["resign_counts"] == {}
        assert await api.statuses([uid(0)]) == {uid(0): "Resigned"}


class TestControls:
    async def test_set_status_behind_the_clients_back(self, api: Api) -> None:
        """A resigned user can be put back to Activated, and reads back so."""
        await api.resign([uid(0)])
        status, body = await control(api, "POST", f"users/{uid(0)}/status", {"status": "Activated"})
        assert status == 200 and isinstance(body, dict) and body["workStatus"] == "Active"
        assert await api.statuses([uid(0)]) == {uid(0): "Activated"}

    async def test_set_status_of_nobody_is_404(self, api: Api) -> None:
        """An unknown user cannot be changed."""
        status, _ = await control(api, "POST", "users/nobody/status", {"status": "Activated"})
        assert status == 404

    async def test_set_status_refuses_a_bad_status(self, api: Api) -> None:
        """Only the five UserDto statuses are accepted."""
        status, _ = await control(api, "POST", f"users/{uid(0)}/status", {"status": "Gone"})
        assert status == 400

    async def test_get_user(self, api: Api) -> None:
        """``GET /__emulator/users/{id}`` shows one user."""
        status, body = await control(api, "GET", f"users/{uid(1)}")
        assert status == 200 and isinstance(body, dict) and body["email"] == "user1@example.com"

    async def test_config_changes_at_runtime(self, api: Api, emulator: Emulator) -> None:
        """``POST /__emulator/config`` changes switches and faults; the secret is never shown."""
        status, body = await control(
            api, "POST", "config", {"unknown_ids": "ignore", "faults": {"error_after": 0.25}}
        )
        assert status == 200 and isinstance(body, dict)
        assert emulator.config.unknown_ids == "ignore"
        assert emulator.config.faults.error_after == 0.25
        assert "access_key_secret" not in body

    @pytest.mark.parametrize(
        "update",
        [{"rate_limit": -1}, {"faults": {"error_before": 2}}, {"implicit": True}, {"nope": 1}],
    )
    async def test_bad_config_is_400(self, api: Api, update: dict[str, object]) -> None:
        """Out-of-range or fixed fields are refused with a message."""
        status, body = await control(api, "POST", "config", update)
        assert status == 400 and isinstance(body, dict) and body["error"]


class TestStateFile:
    async def test_statuses_and_counts_survive_a_restart(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """Resigned users and their counts are back after the emulator restarts."""
        state = tmp_path / "emu.sqlite"
        first = Emulator(EmulatorConfig(state_file=state), clock=clock)
        first.generate(5)
        async with serve(first):
            first.resign([uid(0), uid(1)], IdType.USER_ID)
        second = Emulator(EmulatorConfig(state_file=state), clock=clock)
        second.generate(5)
        async with serve(second):
            oracle = second.oracle()
        assert oracle["resign_counts"] == {uid(0): 1, uid(1): 1}
        dto = second.user(uid(0))
        assert dto is not None and dto["status"] == "Resigned"
        assert second.user(uid(2))["status"] == "Activated"  # type: ignore[index]

    async def test_file_is_private(self, tmp_path: Path) -> None:
        """The state file is created 0600."""
        state = tmp_path / "emu.sqlite"
        async with serve(Emulator(EmulatorConfig(state_file=state))):
            pass
        assert stat.S_IMODE(state.stat().st_mode) == 0o600

    async def test_foreign_file_is_refused(self, tmp_path: Path) -> None:
        """A file that is not an emulator state file is a one-line ConfigError."""
        state = tmp_path / "other.sqlite"
        state.write_bytes(b"this is not sqlite at all, just some bytes" * 100)
        state.chmod(0o600)
        with pytest.raises(ConfigError, match="not an emulator state file"):
            async with serve(Emulator(EmulatorConfig(state_file=state))):
                pass

    async def test_changes_are_written_while_serving(self, tmp_path: Path) -> None:
        """The flusher writes a resigned user without waiting for shutdown."""
        state = tmp_path / "emu.sqlite"
        emu = Emulator(EmulatorConfig(state_file=state))
        emu.generate(3)
        async with serve(emu):
            emu.resign([uid(2)], IdType.USER_ID)
            with anyio.fail_after(10):
                while not saved_rows(state):
                    await anyio.sleep(0.05)
        assert saved_rows(state) == [(uid(2), "Resigned", 1)]


def saved_rows(path: Path) -> list[tuple[str, str, int]]:
    """The state file's rows, read with a separate connection."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT user_id, status, resign_count FROM users").fetchall()
