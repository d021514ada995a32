"""The client over real loopback HTTP: resets, stalls, gateway pages, throttling, refusal, TLS."""

from __future__ import annotations

import base64
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import orjson
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer

from bulkresign.client import GenAuthClient
from bulkresign.config import Credentials, Secret, Timeouts
from bulkresign.errors import ConnectFailed, InDoubt, NotApplied, Throttled, TLSFailed
from bulkresign.models import Endpoint, IdType

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAST = Timeouts(connect=2.0, read=0.2, total=5.0)
CREDS = Credentials("ak", Secret("sk-loopback"))
IDS = ["u1", "u2"]


def _token() -> str:
    def enc(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()

    return f"{enc({'alg': 'none'})}.{enc({'scoped_userpool_id': 'pool-http'})}.sig"


async def token_endpoint(request: web.Request) -> web.Response:
    return web.json_response(
        {"statusCode": 200, "message": "ok", "data": {"access_token": _token(), "expires_in": 60}}
    )


async def ok_resign(request: web.Request) -> web.Response:
    return web.json_response({"statusCode": 200, "message": "ok", "data": {"success": True}})


async def ok_read(request: web.Request) -> web.Response:
    users = [{"userId": u, "status": "Resigned"} for u in request.query["userIds"].split(",")]
    return web.json_response({"statusCode": 200, "message": "ok", "data": users})


def app_with(resign: Handler = ok_resign, read: Handler = ok_read) -> web.Application:
    app = web.Application()
    app.router.add_post("/api/v3/get-management-token", token_endpoint)
    app.router.add_post("/api/v3/resign-user-batch", resign)
    app.router.add_get("/api/v3/get-user-batch", read)
    return app


@asynccontextmanager
async def serving(app: web.Application, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 at an ephemeral port; yields the origin."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=tls)
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def reset_after_reading(request: web.Request) -> web.Response:
    """Read the whole request, then tear the connection down with a TCP RST."""
    await request.read()
    transport = request.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return web.Response()


async def stall(request: web.Request) -> web.Response:
    """Read the request and never answer (the server cancels this when the client leaves)."""
    await request.read()
    await anyio.sleep(30)
    return web.Response()  # pragma: no cover


async def bad_gateway(request: web.Request) -> web.Response:
    return web.Response(
        status=502, text="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"
    )


async def throttle(request: web.Request) -> web.Response:
    body = {"statusCode": 429, "message": "您的请求已超过最大数量限制，请稍后重试"}
    return web.json_response(body, status=429, headers={"Retry-After": "7"})


def client(host: str, **options: object) -> GenAuthClient:
    return GenAuthClient(host, CREDS, timeouts=FAST, **options)  # type: ignore[arg-type]


class TestSuccess:
    async def test_resign_and_read_back(self) -> None:
        """A token, a resign and a read-back round-trip over real HTTP."""
        async with serving(app_with()) as host, client(host) as c:
            assert await c.userpool_id() == "pool-http"
            assert (await c.resign_batch(Endpoint.USER, IDS, IdType.USER_ID)).success
            records = await c.get_batch(Endpoint.USER, ["+86 1", "a@b"], IdType.PHONE)
        assert [r.user_id for r in records] == ["+86 1", "a@b"]


class TestConnectionReset:
    async def test_post_is_in_doubt(self) -> None:
        """A reset after the server read the POST is InDoubt: it may have been applied."""
        async with serving(app_with(resign=reset_after_reading)) as host, client(host) as c:
            with pytest.raises(InDoubt):
                await c.resign_batch(Endpoint.USER, IDS, IdType.USER_ID)

    async def test_get_is_not_applied(self) -> None:
        """The same reset on a read-back is NotApplied: a read can be repeated."""
        async with serving(app_with(read=reset_after_reading)) as host, client(host) as c:
            with pytest.raises(NotApplied) as info:
                await c.get_batch(Endpoint.USER, IDS, IdType.USER_ID)
        assert not isinstance(info.value, InDoubt)


class TestStall:
    async def test_post_past_read_timeout_is_in_doubt(self) -> None:
        """A POST with no answer within the 0.2 s read timeout is InDoubt."""
        async with serving(app_with(resign=stall)) as host, client(host) as c:
            with pytest.raises(InDoubt, match="timed out"):
                await c.resign_batch(Endpoint.USER, IDS, IdType.USER_ID)

    async def test_get_past_read_timeout_is_not_applied(self) -> None:
        """A read-back with no answer within the read timeout is NotApplied."""
        async with serving(app_with(read=stall)) as host, client(host) as c:
            with pytest.raises(NotApplied, match="timed out") as info:
                await c.get_batch(Endpoint.USER, IDS, IdType.USER_ID)
        assert not isinstance(info.value, InDoubt)


class TestGatewayAndThrottle:
    async def test_502_html_is_in_doubt(self) -> None:
        """A 502 HTML page from a gateway is InDoubt with the HTTP status recorded."""
        async with serving(app_with(resign=bad_gateway)) as host, client(host) as c:
            with pytest.raises(InDoubt) as info:
                await c.resign_batch(Endpoint.USER, IDS, IdType.USER_ID)
        assert info.value.http_status == 502
        assert "Bad Gateway" not in str(info.value)

    async def test_502_on_read_is_not_applied(self) -> None:
        """The same 502 on a read-back is NotApplied."""
        async with serving(app_with(read=bad_gateway)) as host, client(host) as c:
            with pytest.raises(NotApplied):
                await c.get_batch(Endpoint.USER, IDS, IdType.USER_ID)

    async def test_429_with_retry_after(self) -> None:
        """HTTP 429 with Retry-After: 7 is Throttled with retry_after 7."""
        async with serving(app_with(resign=throttle)) as host, client(host) as c:
            with pytest.raises(Throttled) as info:
                await c.resign_batch(Endpoint.USER, IDS, IdType.USER_ID)
        assert info.value.retry_after == 7.0
        assert info.value.http_status == 429


class TestRefused:
    async def test_closed_port_is_connect_failed(self) -> None:
        """Nothing listening on the port is ConnectFailed: nothing was sent."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        async with client(f"http://127.0.0.1:{port}") as c:
            with pytest.raises(ConnectFailed, match="nothing was sent"):
                await c.resign_batch(Endpoint.USER, IDS, IdType.USER_ID)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 signed by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


class TestTLS:
    async def test_unknown_ca_is_tls_failed(self, server_tls: ssl.SSLContext) -> None:
        """A server certificate from an unknown CA fails verification: TLSFailed."""
        async with serving(app_with(), server_tls) as host, client(host) as c:
            assert host.startswith("https://")
            with pytest.raises(TLSFailed, match="--ca-file"):
                await c.userpool_id()

    async def test_ca_file_makes_it_verify(
        self, ca: trustme.CA, server_tls: ssl.SSLContext, tmp_path: Path
    ) -> None:
        """With the private CA passed as ca_file the same server is trusted."""
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        async with serving(app_with(), server_tls) as host, client(host, ca_file=ca_file) as c:
            assert (await c.resign_batch(Endpoint.USER, IDS, IdType.USER_ID)).success
