"""Fixtures for the emulator tests: a manual clock, a served emulator and a small API client.

Test modules annotate with :class:`Api` under ``TYPE_CHECKING`` only: with importlib mode this
file is not importable, so everything they need at run time comes through fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
import pytest

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    DEMO_USERPOOL_ID,
    Emulator,
    EmulatorConfig,
    ManualClock,
    RunningServer,
    serve,
)

RESIGN_USER = "/api/v3/resign-user-batch"
READ_USER = "/api/v3/get-user-batch"
TOKEN = "/api/v3/get-management-token"
#: Users every default emulator has: synthetic users 0 .. USERS - 1.
USERS = 20


@dataclass
class Api:
    """The calls a GenAuth client makes, returning ``(HTTP status, JSON body)``."""

    session: aiohttp.ClientSession
    url: str
    token: str = ""

    async def get_token(
        self, key_id: str = DEMO_ACCESS_KEY_ID, secret: str = DEMO_ACCESS_KEY_SECRET
    ) -> tuple[int, dict[str, object]]:
        """Call the token endpoint with these credentials."""
        return await self.post(TOKEN, {"accessKeyId": key_id, "accessKeySecret": secret}, {})

    async def login(self) -> str:
        """Get a token and use it from now on."""
        _, body = await self.get_token()
        data = body["data"]
        assert isinstance(data, dict)
        self.token = data["access_token"]
        return self.token

    def headers(
        self, *, bearer: bool = True, pool: str | None = DEMO_USERPOOL_ID, family: str = "authing"
    ) -> dict[str, str]:
        """What the Python SDK sends: Bearer token, userpool, SDK version and language
        (``family="genauth"``: the names GenAuth's rebranded SDK sends)."""
        headers = {
            "authorization": f"Bearer {self.token}" if bearer else self.token,
            f"x-{family}-sdk-version": f"{family}-py-sdk:5.1.0",
            f"x-{family}-lang": "",
        }
        if pool is not None:
            headers[f"x-{family}-userpool-id"] = pool
        return headers

    async def post(
        self, path: str, body: object, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, object]]:
        """POST ``body`` as JSON."""
        hdrs = self.headers() if headers is None else headers
        async with self.session.post(self.url + path, json=body, headers=hdrs) as resp:
            return resp.status, await resp.json()

    async def resign(
        self, ids: list[str], id_type: str | None = None, path: str = RESIGN_USER
    ) -> tuple[int, dict[str, object]]:
        """A resign call, as the SDK sends it (no ``userIdType`` when it is None)."""
        body: dict[str, object] = {"userIds": ids}
        if id_type is not None:
            body["userIdType"] = id_type
        return await self.post(path, body)

    async def read(
        self, query: list[tuple[str, str]] | str, path: str = READ_USER
    ) -> tuple[int, dict[str, object]]:
        """A read-back call with this query."""
        async with self.session.get(self.url + path, params=query, headers=self.headers()) as r:
            return r.status, await r.json()

    async def statuses(self, ids: list[str], id_type: str = "user_id") -> dict[str, str]:
        """``{userId: status}`` of the named users that exist."""
        _, body = await self.read([("userIds", ",".join(ids)), ("userIdType", id_type)])
        data = body["data"]
        assert isinstance(data, list)
        return {u["userId"]: u["status"] for u in data}


@pytest.fixture
def clock() -> ManualClock:
    """The emulator's clock."""
    return ManualClock()


@pytest.fixture
def config() -> EmulatorConfig:
    """The default configuration; tests override it by redefining this fixture or per test."""
    return EmulatorConfig()


@pytest.fixture
def emulator(config: EmulatorConfig, clock: ManualClock) -> Emulator:
    """An emulator with synthetic users 0 .. USERS - 1 on the manual clock."""
    emu = Emulator(config, clock=clock)
    if not config.implicit:
        emu.generate(USERS)
    return emu


@pytest.fixture
async def server(emulator: Emulator) -> AsyncIterator[RunningServer]:
    """The emulator, listening on a free loopback port."""
    async with serve(emulator) as running:
        yield running


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[Api]:
    """A logged-in client of the served emulator."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = Api(session, server.url)
        await client.login()
        yield client
