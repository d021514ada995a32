"""The rate limit (HTTP 429), latency, and each injected fault at probability 1."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import anyio
import pytest

from bulkresign.emulator import (
    DEMO_USERPOOL_ID,
    Emulator,
    EmulatorConfig,
    Faults,
    ManualClock,
    serve,
    serve_in_thread,
)
from bulkresign.emulator import synthetic_user_id as uid
from bulkresign.emulator.faults import FaultInjector
from bulkresign.errors import ConfigError

if TYPE_CHECKING:
    from conftest import Api

RESIGN_USER = "/api/v3/resign-user-batch"
THROTTLED = "您的请求已超过最大数量限制，请稍后重试"


class TestRateLimit:
    @pytest.fixture
    def config(self) -> EmulatorConfig:
        """Three calls per sliding second."""
        return EmulatorConfig(rate_limit=3)

    async def test_over_the_limit_is_http_429(self, api: Api) -> None:
        """The 4th call within a second gets HTTP 429 with the documented body."""
        for i in range(3):
            assert (await api.resign([uid(i)]))[0] == 200
        http, body = await api.resign([uid(3)])
        assert http == 429
        assert (body["statusCode"], body["message"]) == (429, THROTTLED)

    async def test_throttled_calls_are_not_applied(self, api: Api, emulator: Emulator) -> None:
        """A 429 resigns nobody and is counted as throttled."""
        for i in range(4):
            await api.resign([uid(i)])
        oracle = emulator.oracle()
        assert (oracle["throttled"], oracle["resigned_total"]) == (1, 3)
        assert uid(3) not in oracle["resign_counts"]  # type: ignore[operator]

    async def test_window_slides(self, api: Api, clock: ManualClock) -> None:
        """Room frees up exactly one second after each admitted call, not at a boundary."""
        await api.resign([uid(0)])
        await api.resign([uid(1)])
        clock.advance(0.5)
        await api.resign([uid(2)])
        clock.advance(0.5)  # the first two leave the window; the third is still in it
        assert [(await api.resign([uid(i)]))[0] for i in (3, 4, 5)] == [200, 200, 429]

    async def test_read_backs_count_too(self, api: Api) -> None:
        """Read-back calls share the userpool's window with resign calls."""
        for _ in range(3):
            await api.read(f"userIds={uid(0)}")
        assert (await api.resign([uid(0)]))[0] == 429

    async def test_token_call_is_not_limited(self, api: Api) -> None:
        """The token call never counts and is never throttled."""
        for _ in range(5):
            await api.get_token()
        assert (await api.resign([uid(0)]))[0] == 200

    async def test_no_retry_after_by_default(self, api: Api) -> None:
        """GenAuth documents no Retry-After, so none is sent unless asked for."""
        for i in range(3):
            await api.resign([uid(i)])
        async with api.session.post(
            api.url + RESIGN_USER, json={"userIds": [uid(4)]}, headers=api.headers()
        ) as resp:
            assert resp.status == 429
            assert "Retry-After" not in resp.headers

    @pytest.mark.parametrize("config", [EmulatorConfig(rate_limit=1, retry_after=2.5)])
    async def test_retry_after_when_configured(self, api: Api) -> None:
        """With ``retry_after`` the 429 carries it, rounded up to whole seconds."""
        await api.resign([uid(0)])
        async with api.session.post(
            api.url + RESIGN_USER, json={"userIds": [uid(1)]}, headers=api.headers()
        ) as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (429, "3")

    async def test_per_second_counts_accepted_calls(
        self, api: Api, emulator: Emulator, clock: ManualClock
    ) -> None:
        """The histogram buckets admitted calls by whole second since start; 429s are left out."""
        for i in range(4):
            await api.resign([uid(i)])
        clock.advance(1.5)
        await api.resign([uid(5)])
        assert emulator.oracle()["per_second"] == {"0": 3, "1": 1}

    @pytest.mark.parametrize("config", [EmulatorConfig(rate_limit=None)])
    async def test_none_is_unlimited(self, api: Api) -> None:
        """``rate_limit=None`` never throttles."""
        statuses = [(await api.resign([uid(i % 20)]))[0] for i in range(400)]
        assert set(statuses) == {200}


class TestLatency:
    @pytest.fixture
    def delays(self) -> list[float]:
        """The delays the emulator asked to sleep."""
        return []

    @pytest.fixture
    def emulator(self, clock: ManualClock, delays: list[float]) -> Emulator:
        """20 users, 40 ms ± 10 ms of latency, sleeping through a spy."""

        async def sleep(seconds: float) -> None:
            delays.append(seconds)

        emu = Emulator(
            EmulatorConfig(latency_ms=40, latency_jitter_ms=10), clock=clock, sleep=sleep
        )
        emu.generate(20)
        return emu

    async def test_every_call_waits(self, api: Api, delays: list[float]) -> None:
        """Token, resign and read-back calls each wait once, within mean ± jitter."""
        delays.clear()
        await api.resign([uid(0)])
        await api.read(f"userIds={uid(0)}")
        await api.get_token()
        assert len(delays) == 3
        assert all(0.030 <= d <= 0.050 for d in delays)

    async def test_no_latency_no_sleep(
        self, api: Api, emulator: Emulator, delays: list[float]
    ) -> None:
        """With zero latency the emulator does not sleep at all."""
        emulator.reconfigure(latency_ms=0, latency_jitter_ms=0)
        delays.clear()
        await api.resign([uid(0)])
        assert delays == []


def html(text: str) -> bool:
    """Whether a body is an HTML page rather than JSON."""
    return text.lstrip().startswith("<html>")


class TestFaults:
    async def post_raw(self, api: Api, ids: list[str]) -> tuple[int, str, str]:
        """A resign call's HTTP status, content type and body text."""
        async with api.session.post(
            api.url + RESIGN_USER, json={"userIds": ids}, headers=api.headers()
        ) as resp:
            return resp.status, resp.content_type, await resp.text()

    @pytest.mark.parametrize("config", [EmulatorConfig(faults=Faults(error_before=1))])
    async def test_error_before_applies_nothing(self, api: Api, emulator: Emulator) -> None:
        """A 502/503 HTML page, and the user is still Activated."""
        status, content_type, text = await self.post_raw(api, [uid(0)])
        assert status in (502, 503)
        assert (content_type, html(text)) == ("text/html", True)
        assert await api.statuses([uid(0)]) == {uid(0): "Activated"}
        assert emulator.oracle()["faults_injected"] == {"error_before": 1}

    @pytest.mark.parametrize("config", [EmulatorConfig(faults=Faults(error_after=1))])
    async def test_error_after_applies_then_fails(self, api: Api, emulator: Emulator) -> None:
        """A 500/502 HTML page, but the user was resigned."""
        status, _, text = await self.post_raw(api, [uid(0)])
        assert status in (500, 502) and html(text)
        assert await api.statuses([uid(0)]) == {uid(0): "Resigned"}
        assert emulator.oracle()["faults_injected"] == {"error_after": 1}

    @pytest.mark.parametrize("config", [EmulatorConfig(faults=Faults(reset_after=1))])
    async def test_reset_after_applies_then_drops_the_connection(
        self, api: Api, emulator: Emulator
    ) -> None:
        """The client gets a connection error and no response; the user was resigned."""
        with pytest.raises(aiohttp.ClientConnectionError):
            await self.post_raw(api, [uid(0)])
        assert await api.statuses([uid(0)]) == {uid(0): "Resigned"}
        assert emulator.oracle()["faults_injected"] == {"reset_after": 1}

    @pytest.mark.parametrize("config", [EmulatorConfig(faults=Faults(stall_after=1))])
    async def test_stall_after_outlasts_the_client(self, api: Api, emulator: Emulator) -> None:
        """The answer is held past the client's timeout; the user was resigned meanwhile."""
        with pytest.raises(TimeoutError):
            async with api.session.post(
                api.url + RESIGN_USER,
                json={"userIds": [uid(0)]},
                headers=api.headers(),
                timeout=aiohttp.ClientTimeout(total=0.2),
            ):
                pass
        assert await api.statuses([uid(0)]) == {uid(0): "Resigned"}
        assert emulator.oracle()["faults_injected"] == {"stall_after": 1}

    @pytest.mark.parametrize("config", [EmulatorConfig(faults=Faults(read_error=1))])
    async def test_read_error_hits_read_backs_only(self, api: Api) -> None:
        """Read-backs get a 502/503 page; resign calls are untouched."""
        status, _, _ = await self.post_raw(api, [uid(0)])
        assert status == 200
        async with api.session.get(
            api.url + "/api/v3/get-user-batch", params={"userIds": uid(0)}, headers=api.headers()
        ) as resp:
            assert resp.status in (502, 503) and html(await resp.text())

    @pytest.mark.parametrize("config", [EmulatorConfig(faults=Faults(error_after=1))])
    async def test_after_faults_spare_refused_calls(self, api: Api, emulator: Emulator) -> None:
        """A call refused with a business error (here 404) is answered normally."""
        status, content_type, _ = await self.post_raw(api, ["nobody"])
        assert (status, content_type) == (200, "application/json")
        assert emulator.oracle()["faults_injected"] == {}

    async def test_faults_change_at_runtime(self, api: Api, emulator: Emulator) -> None:
        """``reconfigure`` turns a fault on for the next call."""
        emulator.reconfigure(faults={"error_before": 1.0})
        assert (await self.post_raw(api, [uid(0)]))[0] in (502, 503)


class TestSeed:
    def test_same_seed_same_faults(self) -> None:
        """Two injectors with one seed draw the same faults in the same order."""
        faults = Faults(error_before=0.5, error_after=0.3)
        first, second = FaultInjector(7), FaultInjector(7)
        draws = [(first.before(faults), first.after(faults)) for _ in range(50)]
        assert draws == [(second.before(faults), second.after(faults)) for _ in range(50)]

    def test_other_seed_other_faults(self) -> None:
        """Another seed gives another sequence."""
        faults = Faults(error_before=0.5)
        first, second = FaultInjector(7), FaultInjector(8)
        assert [first.before(faults) for _ in range(50)] != [
            second.before(faults) for _ in range(50)
        ]


class TestShutdown:
    async def test_shutdown_ends_a_stall(self) -> None:
        """Stopping the server resets a stalled connection instead of waiting out the stall."""
        emu = Emulator(EmulatorConfig(faults=Faults(stall_after=1, stall_seconds=600)))
        emu.generate(1)
        outcome: list[object] = []

        async def call(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
            try:
                async with session.post(url, json={"userIds": [uid(0)]}, headers=headers) as r:
                    outcome.append(r.status)
            except aiohttp.ClientConnectionError as exc:
                outcome.append(exc)

        # Exits run inside out: the server stops first, then the task group awaits the call.
        async with (
            aiohttp.ClientSession() as session,
            anyio.create_task_group() as tg,
            serve(emu) as server,
        ):
            token = f"Bearer {emu.tokens.mint(emu.clock(), 60)}"
            headers = {"authorization": token, "x-authing-userpool-id": DEMO_USERPOOL_ID}
            tg.start_soon(call, session, server.url + RESIGN_USER, headers)
            with anyio.fail_after(10):
                while not emu.oracle()["faults_injected"]:
                    await anyio.sleep(0.01)
        assert len(outcome) == 1 and isinstance(outcome[0], aiohttp.ClientConnectionError)
        assert emu.oracle()["resign_counts"] == {uid(0): 1}

    async def test_errors_in_the_block_reach_the_caller_unwrapped(self) -> None:
        """An exception raised inside ``serve`` is the caller's own, not an ExceptionGroup."""
        with pytest.raises(LookupError, match="mine"):
            async with serve(Emulator()):
                raise LookupError("mine")

    def test_thread_server_reports_startup_errors(self, tmp_path: Path) -> None:
        """``serve_in_thread`` raises the error that stopped the server from starting."""
        state = tmp_path / "bad.sqlite"
        state.write_bytes(b"not a database" * 200)
        state.chmod(0o600)
        with (
            pytest.raises(ConfigError, match="not an emulator state file"),
            serve_in_thread(Emulator(EmulatorConfig(state_file=state))),
        ):
            pass
