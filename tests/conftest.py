"""Fixtures every test shares: the asyncio backend, a hermetic environment, an emulator pool."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    RunningServer,
    serve_in_thread,
)

#: Users in the pool of the ``server`` fixture (``synthetic_user_id(0..399)``).
POOL_USERS = 400
_LEAKY_PREFIXES = ("GENAUTH_", "BULKRESIGN_")
_LEAKY_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
)


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp and aiolimiter are asyncio-only, so every async test runs on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Strip credentials, proxies and TLS overrides so no test depends on the caller's shell."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES) or name in _LEAKY_NAMES:
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """A clean emulator of 400 users in a thread; GENAUTH_* credentials and host point at it."""
    emu = Emulator(EmulatorConfig(rate_limit=None))
    emu.generate(POOL_USERS)
    with serve_in_thread(emu) as running:
        monkeypatch.setenv("GENAUTH_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
        monkeypatch.setenv("GENAUTH_ACCESS_KEY_SECRET", DEMO_ACCESS_KEY_SECRET)
        monkeypatch.setenv("GENAUTH_HOST", running.url)
        yield running
