"""The HTTP seam: value types, the mock transport, and the aiohttp transport's guards."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import bulkresign
from bulkresign.classify import classify_exception
from bulkresign.config import Timeouts
from bulkresign.errors import ConfigError, InDoubt
from bulkresign.mock import MockTransport
from bulkresign.transport import AiohttpTransport, RawRequest, RawResponse

TIMEOUTS = Timeouts(connect=1.0, read=1.0, total=2.0)


class TestValues:
    def test_response_header_names_are_lower_cased(self) -> None:
        """RawResponse keeps header names lower-case and read-only."""
        response = RawResponse(200, {"Retry-After": "5", "X-A": "1"})
        assert dict(response.headers) == {"retry-after": "5", "x-a": "1"}
        with pytest.raises(TypeError):
            response.headers["x"] = "y"  # type: ignore[index]

    def test_request_path(self) -> None:
        """RawRequest.path is the URL's path, for routing."""
        request = RawRequest("GET", "https://h/api/v3/x?y=1", {}, None, None, TIMEOUTS)
        assert request.path == "/api/v3/x"


class TestMockTransport:
    async def test_sync_handler(self) -> None:
        """A plain function can answer."""
        async with MockTransport(lambda r: RawResponse(204)) as transport:
            response = await transport.request(
                "GET", "https://h/", headers={}, params=None, body=None, timeout=TIMEOUTS
            )
        assert response.status == 204

    async def test_async_handler_sees_the_request(self) -> None:
        """An async handler receives method, URL, lower-cased headers, params and body."""
        seen: list[RawRequest] = []

        async def handler(request: RawRequest) -> RawResponse:
            seen.append(request)
            return RawResponse(200)

        async with MockTransport(handler) as transport:
            await transport.request(
                "POST",
                "https://h/p",
                headers={"X-Y": "z"},
                params={"a": "b"},
                body=b"{}",
                timeout=TIMEOUTS,
            )
        assert seen == [
            RawRequest("POST", "https://h/p", {"x-y": "z"}, {"a": "b"}, b"{}", TIMEOUTS)
        ]

    async def test_on_sent_fires_before_the_handler(self) -> None:
        """The sent hook is called once, before the handler sees the request."""
        order: list[str] = []

        def handler(request: RawRequest) -> RawResponse:
            order.append("handler")
            return RawResponse(200)

        async with MockTransport(handler) as transport:
            await transport.request(
                "POST",
                "https://h/p",
                headers={},
                params=None,
                body=b"{}",
                timeout=TIMEOUTS,
                on_sent=lambda: order.append("sent"),
            )
        assert order == ["sent", "handler"]

    async def test_total_timeout_is_enforced(self) -> None:
        """A handler slower than the total timeout raises TimeoutError."""

        async def slow(request: RawRequest) -> RawResponse:
            await anyio.sleep_forever()
            raise AssertionError  # pragma: no cover

        async with MockTransport(slow) as transport:
            with pytest.raises(TimeoutError):
                await transport.request(
                    "GET",
                    "https://h/",
                    headers={},
                    params=None,
                    body=None,
                    timeout=Timeouts(connect=0.01, read=0.01, total=0.01),
                )


_UNVERIFIED = re.compile(
    r"ssl\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|verify_ssl|_create_unverified_context"
)


class TestAiohttpTransport:
    def test_no_code_path_disables_verification(self) -> None:
        """No module of the package turns TLS verification off."""
        package = Path(bulkresign.__file__).parent
        offenders = [
            f"{path.relative_to(package)}:{number}"
            for path in sorted(package.rglob("*.py"))
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if _UNVERIFIED.search(line)
        ]
        assert offenders == []

    async def test_missing_ca_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A --ca-file that does not exist is a one-line ConfigError naming it."""
        with pytest.raises(ConfigError, match="absent.pem: CA file not found"):
            async with AiohttpTransport(ca_file=tmp_path / "absent.pem"):
                pass  # pragma: no cover

    async def test_garbage_ca_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A CA file without certificates is a ConfigError naming it."""
        path = tmp_path / "junk.pem"
        path.write_text("not a certificate\n")
        with pytest.raises(ConfigError, match="junk.pem: cannot load CA certificates"):
            async with AiohttpTransport(ca_file=path):
                pass  # pragma: no cover

    def test_connection_limit_must_be_positive(self) -> None:
        """max_connections below 1 is a programming error."""
        with pytest.raises(ValueError, match="max_connections"):
            AiohttpTransport(max_connections=0)

    async def test_use_outside_context_is_an_error(self) -> None:
        """A request before 'async with' is a RuntimeError."""
        with pytest.raises(RuntimeError, match="outside 'async with'"):
            await AiohttpTransport().request(
                "GET", "http://127.0.0.1:1/", headers={}, params=None, body=None, timeout=TIMEOUTS
            )

    async def test_oversized_answer_is_in_doubt(self) -> None:
        """A response body beyond the size cap is a broken answer: InDoubt for a POST."""

        async def huge(request: web.Request) -> web.Response:
            return web.Response(body=b"x" * 4096)

        app = web.Application()
        app.router.add_post("/api/v3/resign-user-batch", huge)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            host = str(server.make_url("")).rstrip("/")
            transport = AiohttpTransport(max_response_bytes=1024)
            async with transport:
                with pytest.raises(aiohttp.ClientPayloadError) as info:
                    await transport.request(
                        "POST",
                        f"{host}/api/v3/resign-user-batch",
                        headers={},
                        params=None,
                        body=b"{}",
                        timeout=TIMEOUTS,
                    )
        finally:
            await server.close()
        error = classify_exception(info.value, what="POST /x", idempotent=False)
        assert isinstance(error, InDoubt)
        assert "ClientPayloadError" in str(error)


class TestSentHook:
    @pytest.mark.parametrize(("method", "body"), [("POST", b'{"userIds": []}'), ("GET", None)])
    async def test_it_fires_once_before_the_server_reads_the_request(
        self, method: str, body: bytes | None
    ) -> None:
        """Over loopback the hook fires once per request, before the server has it."""
        calls: list[str] = []

        async def answer(request: web.Request) -> web.Response:
            assert await request.read() == (body or b"")
            calls.append("server")
            return web.Response(body=b"{}")

        app = web.Application()
        app.router.add_route(method, "/api/v3/x", answer)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            host = str(server.make_url("")).rstrip("/")
            async with AiohttpTransport() as transport:
                response = await transport.request(
                    method,
                    f"{host}/api/v3/x",
                    headers={"Content-Type": "application/json"},
                    params=None,
                    body=body,
                    timeout=TIMEOUTS,
                    on_sent=lambda: calls.append("sent"),
                )
        finally:
            await server.close()
        assert response.status == 200
        assert calls == ["sent", "server"]

    async def test_the_body_goes_out_as_given(self) -> None:
        """A hooked body reaches the server byte for byte, with its length and content type."""
        seen: list[tuple[bytes, str | None, int | None]] = []

        async def answer(request: web.Request) -> web.Response:
            seen.append((await request.read(), request.content_type, request.content_length))
            return web.Response(body=b"{}")

        app = web.Application()
        app.router.add_post("/api/v3/x", answer)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        body = b'{"userIds": ["a", "b"], "userIdType": "email"}'
        try:
            host = str(server.make_url("")).rstrip("/")
            async with AiohttpTransport() as transport:
                await transport.request(
                    "POST",
                    f"{host}/api/v3/x",
                    headers={"Content-Type": "application/json"},
                    params=None,
                    body=body,
                    timeout=TIMEOUTS,
                    on_sent=lambda: None,
                )
        finally:
            await server.close()
        assert seen == [(body, "application/json", len(body))]
