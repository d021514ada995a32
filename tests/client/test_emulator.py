"""End to end against the emulator: token, resign, read-back, expiry mid-run, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bulkresign.client import GenAuthClient, match_users
from bulkresign.config import Credentials, Secret, Timeouts
from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    DEMO_USERPOOL_ID,
    Emulator,
    EmulatorConfig,
    Faults,
    serve,
    synthetic_user,
    synthetic_user_id,
)
from bulkresign.errors import AuthFailed, InDoubt, Rejected, Throttled
from bulkresign.models import Endpoint, IdType, UserStatus

DEMO = Credentials(DEMO_ACCESS_KEY_ID, Secret(DEMO_ACCESS_KEY_SECRET))
TIMEOUTS = Timeouts(connect=2.0, read=2.0, total=5.0)
USERS = [synthetic_user_id(i) for i in range(5)]


class Clock:
    """A wall clock that moves only when told to (emulator and client can share one)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def running(
    config: EmulatorConfig | None = None,
    *,
    server_clock: Callable[[], float] | None = None,
    credentials: Credentials = DEMO,
    **client_options: Any,
) -> AsyncIterator[tuple[Emulator, GenAuthClient]]:
    """An emulator with 5 synthetic users, served on loopback, and a client pointed at it."""
    emu = Emulator(config, clock=server_clock) if server_clock else Emulator(config)
    emu.generate(5)
    async with (
        serve(emu, port=0) as server,
        GenAuthClient(server.url, credentials, timeouts=TIMEOUTS, **client_options) as client,
    ):
        yield emu, client


class TestAgainstEmulator:
    async def test_token_names_the_userpool(self) -> None:
        """The emulator's token is scoped to its userpool."""
        async with running() as (_, client):
            assert await client.userpool_id() == DEMO_USERPOOL_ID

    async def test_tokens_with_url_alphabet(self) -> None:
        """Tokens whose payload has '-'/'_' (which crash the vendor SDK) are read."""
        async with running(EmulatorConfig(jwt_sdk_safe=False)) as (_, client):
            assert await client.userpool_id() == DEMO_USERPOOL_ID

    async def test_resign_then_read_back(self) -> None:
        """A resign is applied exactly once and the read-back shows every user Resigned."""
        async with running() as (emu, client):
            result = await client.resign_batch(Endpoint.USER, USERS[:3], IdType.USER_ID)
            records = await client.get_batch(Endpoint.USER, USERS, IdType.USER_ID)
        assert result.success and result.request_id
        status = {r.user_id: r.status for r in records}
        assert [status[u] for u in USERS] == [UserStatus.RESIGNED] * 3 + [UserStatus.ACTIVATED] * 2
        assert emu.oracle()["resign_counts"] == dict.fromkeys(USERS[:3], 1)

    @pytest.mark.parametrize(
        ("id_type", "field"),
        [(IdType.EMAIL, "email"), (IdType.PHONE, "phone"), (IdType.IDENTITY, "identity")],
    )
    async def test_read_back_attribution(self, id_type: IdType, field: str) -> None:
        """Read-backs by email (any case), phone ('+' survives) and identity are attributed."""
        asked = [synthetic_user(i)[field] for i in range(3)] + ["nobody:x"]
        if id_type is IdType.EMAIL:
            asked[0] = asked[0].upper()
        async with running() as (_, client):
            records = await client.get_batch(Endpoint.USER, asked, id_type)
        found = match_users(asked, id_type, records)
        assert {k: v.user_id for k, v in found.items()} == {
            asked[i]: synthetic_user_id(i) for i in range(3)
        }

    @pytest.mark.parametrize("id_type", [IdType.IDENTITY, IdType.SYNC_RELATION])
    async def test_public_read_back_refuses_what_it_does_not_document(
        self, id_type: IdType
    ) -> None:
        """get-public-account-batch takes no identity or sync_relation: 400, Rejected."""
        async with running() as (_, client):
            with pytest.raises(Rejected, match="userIdType must be one of"):
                await client.get_batch(Endpoint.PUBLIC_ACCOUNT, ["idp1:u1"], id_type)

    async def test_unknown_id_is_rejected(self) -> None:
        """Resigning an unknown ID is Rejected with 404/2004 and a requestId."""
        async with running() as (emu, client):
            with pytest.raises(Rejected) as info:
                await client.resign_batch(Endpoint.USER, ["f" * 24], IdType.USER_ID)
        assert (info.value.status_code, info.value.api_code) == (404, 2004)
        assert info.value.request_id
        assert emu.oracle()["resigned_total"] == 0

    async def test_wrong_secret_is_auth_failed(self) -> None:
        """A wrong access key secret is AuthFailed, and the secret is not in the message."""
        wrong = Credentials(DEMO_ACCESS_KEY_ID, Secret("wrong-secret-123"))
        async with running(credentials=wrong) as (_, client):
            with pytest.raises(AuthFailed) as info:
                await client.userpool_id()
        assert "wrong-secret-123" not in str(info.value)


class TestTokenExpiry:
    async def test_expiry_mid_run_reauthenticates_once(self) -> None:
        """A token the server expired before the client expected is renewed after one 401."""
        server_clock = Clock()
        client_clock = Clock()  # never moves: the client believes its token is still fresh
        config = EmulatorConfig(token_ttl=60)
        async with running(config, server_clock=server_clock, clock=client_clock) as (emu, client):
            await client.resign_batch(Endpoint.USER, USERS[:1], IdType.USER_ID)
            server_clock.now += 61
            await client.resign_batch(Endpoint.USER, USERS[1:2], IdType.USER_ID)
            stats = client.stats
        assert (stats.token_requests, stats.reauths) == (2, 1)
        assert emu.oracle()["resign_counts"] == dict.fromkeys(USERS[:2], 1)

    async def test_renewal_ahead_of_expiry_avoids_the_401(self) -> None:
        """With a shared clock the client renews at 90 % of token_ttl and never sees a 401."""
        clock = Clock()
        config = EmulatorConfig(token_ttl=60)
        async with running(config, server_clock=clock, clock=clock, refresh_margin=0.1) as (
            _,
            client,
        ):
            for user in USERS:
                await client.resign_batch(Endpoint.USER, [user], IdType.USER_ID)
                clock.now += 20
            stats = client.stats
        assert stats.reauths == 0
        assert stats.token_requests == 2  # at 0, and at 60 (due from 54, fresh until 114)


class TestFaults:
    async def test_reset_after_apply_is_in_doubt_and_read_back_resolves_it(self) -> None:
        """'Apply, then RST' is InDoubt; the read-back shows the users were resigned."""
        config = EmulatorConfig(faults=Faults(reset_after=1.0))
        async with running(config) as (emu, client):
            with pytest.raises(InDoubt):
                await client.resign_batch(Endpoint.USER, USERS[:2], IdType.USER_ID)
            records = await client.get_batch(Endpoint.USER, USERS[:2], IdType.USER_ID)
        assert {r.status for r in records} == {UserStatus.RESIGNED}
        assert emu.oracle()["resign_counts"] == dict.fromkeys(USERS[:2], 1)

    async def test_error_after_apply_is_in_doubt(self) -> None:
        """'Apply, then 502 page' is InDoubt, never a retryable NotApplied."""
        config = EmulatorConfig(faults=Faults(error_after=1.0))
        async with running(config) as (_, client):
            with pytest.raises(InDoubt) as info:
                await client.resign_batch(Endpoint.USER, USERS[:1], IdType.USER_ID)
        assert info.value.http_status in (500, 502)

    async def test_rate_limit_is_throttled_with_retry_after(self) -> None:
        """Past the emulator's rate limit a call is Throttled carrying its Retry-After."""
        clock = Clock()
        config = EmulatorConfig(rate_limit=1, retry_after=3)
        async with running(config, server_clock=clock) as (_, client):
            await client.get_batch(Endpoint.USER, USERS[:1], IdType.USER_ID)
            with pytest.raises(Throttled) as info:
                await client.get_batch(Endpoint.USER, USERS[:1], IdType.USER_ID)
        assert info.value.retry_after == 3.0
