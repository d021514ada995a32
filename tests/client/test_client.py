"""The client over MockTransport: wire format, token life cycle, re-authentication, secrecy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import anyio
import orjson
import pytest

from bulkresign import __version__
from bulkresign.classify import CallOutcome
from bulkresign.client import GenAuthClient, GenAuthReader
from bulkresign.config import Credentials, Timeouts
from bulkresign.errors import (
    ApiError,
    AuthFailed,
    ConnectFailed,
    InDoubt,
    NotApplied,
    Rejected,
    Throttled,
)
from bulkresign.mock import MockTransport
from bulkresign.models import Endpoint, IdType, ResignResult, UserStatus
from bulkresign.transport import RawRequest, RawResponse
from tests.client.conftest import POOL, envelope

MakeClient = Callable[..., GenAuthClient]
Reply = Callable[..., RawResponse]
IDS = ["u1", "u2", "u3"]


async def resign(client: GenAuthClient, ids: list[str] = IDS) -> ResignResult:
    return await client.resign_batch(Endpoint.USER, ids, IdType.USER_ID)


class TestLifecycle:
    async def test_use_outside_context_is_an_error(self, make_client: MakeClient) -> None:
        """Calling before 'async with' is a RuntimeError, not a hang or a half-open session."""
        with pytest.raises(RuntimeError, match="outside 'async with'"):
            await make_client().userpool_id()

    def test_reader_cannot_resign(self) -> None:
        """GenAuthReader has no resign method at all."""
        assert not hasattr(GenAuthReader, "resign_batch")
        assert issubclass(GenAuthClient, GenAuthReader)

    async def test_transport_is_entered_and_exited(self, credentials: Credentials) -> None:
        """The client opens its transport on entry and closes it on exit."""
        events: list[str] = []

        class Spy(MockTransport):
            async def __aenter__(self) -> Spy:
                events.append("enter")
                return self

            async def __aexit__(self, *exc: object) -> None:
                events.append("exit")

        async with GenAuthReader("https://h.test", credentials, transport=Spy(lambda r: 0)):  # type: ignore[arg-type, return-value]
            assert events == ["enter"]
        assert events == ["enter", "exit"]


class TestWireFormat:
    async def test_token_request(self, make_client: MakeClient, api: Any, canary: str) -> None:
        """The token request posts the access key as JSON, without an authorization header."""
        async with make_client() as client:
            assert await client.userpool_id() == api.pool
        (request,) = api.requests
        assert (request.method, request.url) == (
            "POST",
            "https://genauth.test/api/v3/get-management-token",
        )
        assert orjson.loads(request.body) == {
            "accessKeyId": "ak-test-id",
            "accessKeySecret": canary,
        }
        assert request.headers["content-type"] == "application/json"
        assert "authorization" not in request.headers

    async def test_on_sent_fires_for_the_resign_request_only(
        self, make_client: MakeClient, api: Any
    ) -> None:
        """The sent hook fires once, as the resign request leaves, not for the token request."""
        seen: list[int] = []
        async with make_client() as client:
            await client.resign_batch(
                Endpoint.PUBLIC_ACCOUNT,
                IDS,
                IdType.EMAIL,
                on_sent=lambda: seen.append(len(api.requests)),
            )
        assert seen == [1]
        assert len(api.token_requests) == 1

    async def test_resign_request(self, make_client: MakeClient, api: Any) -> None:
        """Resign posts {userIds, userIdType} with every header the API expects."""
        async with make_client() as client:
            await client.resign_batch(Endpoint.PUBLIC_ACCOUNT, IDS, IdType.EMAIL)
        request = api.api_requests[0]
        token = api.token_requests and sorted(api.valid_tokens)[0]
        assert (request.method, request.url) == (
            "POST",
            "https://genauth.test/api/v3/resign-public-account-batch",
        )
        assert orjson.loads(request.body) == {"userIds": IDS, "userIdType": "email"}
        assert request.params is None
        assert dict(request.headers) == {
            "accept": "application/json",
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "user-agent": f"bulkresign/{__version__}",
            "x-authing-lang": "en-US",
            "x-authing-sdk-version": f"bulkresign:{__version__}",
            "x-authing-userpool-id": api.pool,
            "x-genauth-lang": "en-US",
            "x-genauth-sdk-version": f"bulkresign:{__version__}",
            "x-genauth-userpool-id": api.pool,
        }

    async def test_user_endpoint_path(self, make_client: MakeClient, api: Any) -> None:
        """The user endpoint resigns through resign-user-batch."""
        async with make_client() as client:
            await resign(client)
        assert api.api_requests[0].path == "/api/v3/resign-user-batch"

    async def test_read_back_request(self, make_client: MakeClient, api: Any) -> None:
        """Read-back is a GET with comma-separated userIds and no body."""
        async with make_client() as client:
            await client.get_batch(Endpoint.USER, IDS, IdType.PHONE)
        request = api.api_requests[0]
        assert (request.method, request.path, request.body) == (
            "GET",
            "/api/v3/get-user-batch",
            None,
        )
        assert request.params == {"userIds": "u1,u2,u3", "userIdType": "phone"}
        assert "content-type" not in request.headers
        assert request.headers["x-authing-userpool-id"] == api.pool

    async def test_read_back_with_identities(self, make_client: MakeClient, api: Any) -> None:
        """Only an identity read-back asks for withIdentities=true."""
        async with make_client() as client:
            await client.get_batch(Endpoint.PUBLIC_ACCOUNT, ["idp:1"], IdType.IDENTITY)
        request = api.api_requests[0]
        assert request.path == "/api/v3/get-public-account-batch"
        assert request.params == {
            "userIds": "idp:1",
            "userIdType": "identity",
            "withIdentities": "true",
        }

    @pytest.mark.parametrize(
        "ids", [[], [f"u{i}" for i in range(51)], "u1", [""], ["u1", 5]], ids=repr
    )
    async def test_invalid_batches_are_programming_errors(
        self, make_client: MakeClient, api: Any, ids: Any
    ) -> None:
        """0 or over 50 IDs, a bare string or a non-string ID is a ValueError; nothing is sent."""
        async with make_client() as client:
            with pytest.raises(ValueError):
                await resign(client, ids)
            with pytest.raises(ValueError):
                await client.get_batch(Endpoint.USER, ids, IdType.USER_ID)
        assert api.requests == []

    async def test_comma_cannot_be_read_back(self, make_client: MakeClient, api: Any) -> None:
        """An ID containing ',' cannot be sent in the comma-separated read-back."""
        async with make_client() as client:
            with pytest.raises(ValueError, match=","):
                await client.get_batch(Endpoint.USER, ["a,b"], IdType.USERNAME)
        assert api.requests == []


class TestResults:
    async def test_resign_success(self, make_client: MakeClient) -> None:
        """A statusCode 200 with data.success gives a ResignResult with the requestId."""
        async with make_client() as client:
            assert await resign(client) == ResignResult(True, "req-resign", "ok")

    async def test_resign_success_false(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """success=false is returned as it is, for the caller to judge."""
        api.resign = lambda r: reply(data={"success": False}, message="partial")
        async with make_client() as client:
            assert await resign(client) == ResignResult(False, None, "partial")

    async def test_resign_without_success_is_in_doubt(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """statusCode 200 without data.success says nothing about what happened: InDoubt."""
        api.resign = lambda r: reply(data={}, request_id="rq-7")
        async with make_client() as client:
            with pytest.raises(InDoubt, match="without data.success") as info:
                await resign(client)
            assert client.stats.calls == {CallOutcome.IN_DOUBT: 1}
        assert info.value.request_id == "rq-7"

    async def test_business_error_is_rejected(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """A 404/2004 envelope is Rejected carrying statusCode, apiCode, message and requestId."""
        api.resign = lambda r: reply(404, api_code=2004, message="user not found", request_id="r4")
        async with make_client() as client:
            with pytest.raises(Rejected) as info:
                await resign(client)
        error = info.value
        assert (error.status_code, error.api_code, error.request_id) == (404, 2004, "r4")
        assert "user not found" in error.message

    async def test_read_back_records(self, make_client: MakeClient, api: Any, reply: Reply) -> None:
        """A read-back returns one UserRecord per returned user."""
        api.read = lambda r: reply(data=[{"userId": "u1", "status": "Resigned"}])
        async with make_client() as client:
            (record,) = await client.get_batch(Endpoint.USER, IDS, IdType.USER_ID)
        assert (record.user_id, record.status) == ("u1", UserStatus.RESIGNED)

    async def test_malformed_read_back_is_not_applied(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """A read-back whose data is not a user list is NotApplied: the read can be repeated."""
        api.read = lambda r: reply(data={"oops": 1}, request_id="r9")
        async with make_client() as client:
            with pytest.raises(NotApplied, match="malformed") as info:
                await client.get_batch(Endpoint.USER, IDS, IdType.USER_ID)
            assert client.stats.calls == {CallOutcome.NOT_APPLIED: 1}
        assert info.value.request_id == "r9"

    async def test_read_back_5xx_is_not_applied(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """A 5xx on a read is NotApplied, never InDoubt."""
        api.read = lambda r: reply(500, message="boom")
        async with make_client() as client:
            with pytest.raises(NotApplied) as info:
                await client.get_batch(Endpoint.USER, IDS, IdType.USER_ID)
        assert not isinstance(info.value, InDoubt)

    async def test_transport_failure_hides_the_aiohttp_exception(
        self, make_client: MakeClient, api: Any
    ) -> None:
        """A transport exception becomes InDoubt with no aiohttp exception chained to it."""

        def drop(request: RawRequest) -> RawResponse:
            raise aiohttp.ServerDisconnectedError()

        api.resign = drop
        async with make_client() as client:
            with pytest.raises(InDoubt) as info:
                await resign(client)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__

    async def test_programming_errors_propagate(self, make_client: MakeClient, api: Any) -> None:
        """An exception that is not a network failure is raised unchanged."""

        def broken(request: RawRequest) -> RawResponse:
            raise KeyError("bug")

        api.resign = broken
        async with make_client() as client:
            with pytest.raises(KeyError):
                await resign(client)

    async def test_a_stalled_server_cannot_hang_a_call(
        self, make_client: MakeClient, api: Any
    ) -> None:
        """A call that never answers ends at the total timeout as InDoubt."""

        async def stall(request: RawRequest) -> RawResponse:
            await anyio.sleep_forever()
            raise AssertionError  # pragma: no cover

        api.resign = stall
        async with make_client(timeouts=Timeouts(connect=0.05, read=0.05, total=0.05)) as client:
            with pytest.raises(InDoubt, match="timed out"):
                await resign(client)


class TestTokenLifeCycle:
    async def test_token_is_reused(self, make_client: MakeClient, api: Any) -> None:
        """Many calls within the token's lifetime share one token request."""
        async with make_client() as client:
            for _ in range(5):
                await resign(client)
            assert client.stats.token_requests == 1
        assert len(api.token_requests) == 1

    async def test_refresh_ahead_of_expiry(
        self, make_client: MakeClient, api: Any, clock: Any
    ) -> None:
        """With expires_in 100 and margin 0.1 a new token is fetched from t+90, not before."""
        api.expires_in = 100
        async with make_client(refresh_margin=0.1) as client:
            await resign(client)
            clock.advance(89.9)
            await resign(client)
            assert len(api.token_requests) == 1
            clock.advance(0.1)
            await resign(client)
            assert len(api.token_requests) == 2
            assert client.stats.reauths == 0

    async def test_single_flight_for_64_callers(
        self, make_client: MakeClient, api: Any, reply: Reply, jwt: Any
    ) -> None:
        """64 concurrent calls with no token yet cause exactly one token request."""
        gate = anyio.Event()

        async def slow_token(request: RawRequest) -> RawResponse:
            await gate.wait()
            token = jwt({"scoped_userpool_id": api.pool})
            api.valid_tokens.add(token)
            return reply(data={"access_token": token, "expires_in": 7200})

        api.token = slow_token
        async with make_client() as client, anyio.create_task_group() as tg:
            for _ in range(64):
                tg.start_soon(resign, client)
            await anyio.wait_all_tasks_blocked()
            gate.set()
        assert len(api.token_requests) == 1
        assert len(api.api_requests) == 64
        assert client.stats.calls == {CallOutcome.OK: 64}

    async def test_401_reauthenticates_once_and_retries(
        self, make_client: MakeClient, api: Any
    ) -> None:
        """A 401 drops the token, fetches a new one and retries the call once."""
        async with make_client() as client:
            await resign(client)
            api.revoke_tokens()
            assert await resign(client) == ResignResult(True, "req-resign", "ok")
            stats = client.stats
        assert (stats.token_requests, stats.reauths) == (2, 1)
        assert stats.calls == {CallOutcome.OK: 2}
        assert len(api.api_requests) == 3

    async def test_second_401_is_auth_failed(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """A 401 that survives one re-authentication is AuthFailed; the call is tried twice."""
        api.resign = lambda r: reply(401, message="token expired")
        async with make_client() as client:
            with pytest.raises(AuthFailed, match="again after re-authenticating"):
                await resign(client)
            stats = client.stats
        assert (stats.token_requests, stats.reauths) == (2, 1)
        assert stats.calls == {CallOutcome.AUTH_FAILED: 1}
        assert len(api.api_requests) == 2

    async def test_http_401_reauthenticates_too(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """A bare HTTP 401 from a gateway also triggers the one re-authentication."""
        answers = iter([RawResponse(401, {}, b"Unauthorized"), reply(data={"success": True})])
        api.resign = lambda r: next(answers)
        async with make_client() as client:
            assert (await resign(client)).success
            assert client.stats.reauths == 1

    async def test_token_without_pool_claim(
        self, make_client: MakeClient, api: Any, reply: Reply, jwt: Any
    ) -> None:
        """A token without scoped_userpool_id fails with AuthFailed before any call."""
        api.token = lambda r: reply(data={"access_token": jwt({"sub": "x"}), "expires_in": 60})
        async with make_client() as client:
            with pytest.raises(AuthFailed, match="scoped_userpool_id"):
                await resign(client)
            assert client.stats.calls == {CallOutcome.AUTH_FAILED: 1}
        assert api.api_requests == []

    @pytest.mark.parametrize("code", [400, 401, 403, 404])
    async def test_refused_access_key(
        self, make_client: MakeClient, api: Any, reply: Reply, canary: str, code: int
    ) -> None:
        """A token answer with a 4xx statusCode is AuthFailed quoting the server, not the key."""
        api.token = lambda r: reply(code, message="accessKeySecret invalid", request_id="rt")
        async with make_client() as client:
            with pytest.raises(AuthFailed) as info:
                await client.userpool_id()
        error = info.value
        assert "the access key was refused" in str(error) and "ak-test-id" not in str(error)
        assert "accessKeySecret invalid" in str(error)
        assert (error.status_code, error.request_id) == (code, "rt")
        assert canary not in str(error) and canary not in repr(error)

    @pytest.mark.parametrize(
        ("answer", "expected"),
        [
            (lambda: RawResponse(429, {"retry-after": "3"}, b""), Throttled),
            (lambda: RawResponse(503, {}, b"<html>"), NotApplied),
            (lambda: RawResponse(200, {}, b"garbage"), NotApplied),
        ],
    )
    async def test_transient_token_failures_are_not_fatal(
        self, make_client: MakeClient, api: Any, answer: Callable[[], RawResponse], expected: type
    ) -> None:
        """Throttling, 5xx or garbage at the token endpoint is retryable, not AuthFailed."""
        api.token = lambda r: answer()
        async with make_client() as client:
            with pytest.raises(expected):
                await resign(client)
        assert api.api_requests == []

    async def test_the_first_token_is_tried_again_after_a_transient_error(
        self, make_client: MakeClient, api: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Two 503s, then a token: userpool_id answers, after pauses of 1 and 2 s (a single 5xx
        at start-up ended the command, exit 2)."""
        pauses: list[float] = []

        async def pause(seconds: float) -> None:
            pauses.append(seconds)

        monkeypatch.setattr("bulkresign.client.anyio.sleep", pause)
        answers = iter([RawResponse(503, {}, b"<html>"), RawResponse(503, {}, b"<html>")])
        minted = api.token
        api.token = lambda r: (
            next(answers, None) or envelope(data={"access_token": api.mint(), "expires_in": 7200})
        )
        async with make_client() as client:
            assert await client.userpool_id() == POOL
        assert pauses == [1.0, 2.0] and len(api.token_requests) == 3
        api.token = minted

    async def test_token_timeout_during_resign_is_not_in_doubt(
        self, make_client: MakeClient, api: Any
    ) -> None:
        """If the token request times out, the resign was never sent: NotApplied, not InDoubt."""

        def timeout(request: RawRequest) -> RawResponse:
            raise aiohttp.SocketTimeoutError("Timeout on reading data from socket")

        api.token = timeout
        async with make_client() as client:
            with pytest.raises(NotApplied) as info:
                await resign(client)
        assert not isinstance(info.value, InDoubt)

    async def test_connection_refused_at_token_time(
        self, make_client: MakeClient, api: Any
    ) -> None:
        """A refused connection while fetching the token is ConnectFailed."""

        def refuse(request: RawRequest) -> RawResponse:
            raise ConnectionRefusedError(111, "Connection refused")

        api.token = refuse
        async with make_client() as client:
            with pytest.raises(ConnectFailed):
                await client.userpool_id()


class TestSecrecy:
    async def test_secret_echoed_by_the_token_endpoint_is_scrubbed(
        self, make_client: MakeClient, api: Any, reply: Reply, canary: str
    ) -> None:
        """A server message quoting the secret is masked before it reaches an exception."""
        api.token = lambda r: reply(400, message=f"bad secret {canary}")
        async with make_client() as client:
            with pytest.raises(AuthFailed) as info:
                await client.userpool_id()
        assert canary not in str(info.value)
        assert "bad secret ***" in str(info.value)

    async def test_token_echoed_in_an_error_is_scrubbed(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """A server message quoting the bearer token is masked."""
        api.resign = lambda r: reply(
            400, message="bad token " + r.headers["authorization"].removeprefix("Bearer ")
        )
        async with make_client() as client:
            with pytest.raises(Rejected) as info:
                await resign(client)
        (token,) = api.valid_tokens
        assert token not in str(info.value) and token not in repr(info.value)
        assert token not in info.value.message

    async def test_no_error_text_ever_holds_a_secret(
        self, make_client: MakeClient, api: Any, reply: Reply, canary: str
    ) -> None:
        """Across every failure kind, no exception's str, repr or args holds the secret or token."""
        answers: list[Callable[[RawRequest], RawResponse]] = [
            lambda r: reply(401),
            lambda r: reply(403),
            lambda r: reply(429),
            lambda r: reply(500),
            lambda r: RawResponse(502, {}, b"<html>"),
        ]
        errors: list[ApiError] = []
        async with make_client() as client:
            for answer in answers:
                api.resign = answer
                try:
                    await resign(client)
                except ApiError as exc:
                    errors.append(exc)
        assert len(errors) == len(answers)
        secrets = [canary, *api.valid_tokens, *(t for t in _tokens_seen(api))]
        for error in errors:
            text = f"{error} {error!r} {error.args} {vars(error)}"
            assert not any(s in text for s in secrets)

    @pytest.mark.parametrize("pad", [260, 280, 295, 430, 450])
    async def test_a_secret_across_the_message_cut_leaves_no_fragment(
        self, make_client: MakeClient, api: Any, reply: Reply, canary: str, pad: int
    ) -> None:
        """A message that puts the secret across a cut (the envelope's old one, the error's):
        scrubbed first, then cut, so no prefix of it survives."""
        api.token = lambda r: reply(400, message="x" * pad + f" secret={canary}")
        async with make_client() as client:
            with pytest.raises(AuthFailed) as info:
                await client.userpool_id()
        assert canary[:8] not in str(info.value)

    async def test_a_long_message_is_cut(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """A server message of 1,000 characters on three lines ends as one line of 500 at most."""
        api.resign = lambda r: reply(400, message="line1\nline2\r\t" + "x" * 1000)
        async with make_client() as client:
            with pytest.raises(Rejected) as info:
                await resign(client)
        assert "\n" not in info.value.message and len(info.value.message) <= 500

    async def test_a_request_id_echoing_secrets_is_scrubbed_and_bounded(
        self, make_client: MakeClient, api: Any, reply: Reply, canary: str
    ) -> None:
        """The requestId, which the ledger and the report keep, is scrubbed of the secret and
        the token like the message, and cut to 100 characters."""
        api.resign = lambda r: reply(
            400, message="no", request_id=f"{r.headers['authorization']}|{canary}|" + "r" * 500
        )
        async with make_client() as client:
            with pytest.raises(Rejected) as info:
                await resign(client)
        (token,) = api.valid_tokens
        kept = info.value.request_id or ""
        assert token[:20] not in kept and canary[:8] not in kept
        assert len(kept) <= 100

    async def test_a_successful_answer_s_request_id_is_scrubbed_and_bounded(
        self, make_client: MakeClient, api: Any, reply: Reply, canary: str
    ) -> None:
        """A success's requestId, which the ledger and the report keep too, is scrubbed and cut
        as an error's is (it was kept whole)."""
        rid = canary.upper() + "r" * 500
        api.resign = lambda r: reply(200, data={"success": True}, request_id=rid)
        async with make_client() as client:
            result = await resign(client)
        kept = result.request_id or ""
        assert canary.upper()[:8] not in kept and len(kept) <= 100

    async def test_a_success_false_message_and_fragments_are_scrubbed(
        self, make_client: MakeClient, api: Any, reply: Reply, canary: str
    ) -> None:
        """A `success: false` answer's message (kept in the ledger as an error's) loses the
        secret, and a requestId holding only part of it (split by a control character, or cut
        short) keeps no run of 8 of its characters."""
        part = canary[2:-2]
        api.resign = lambda r: reply(
            200,
            data={"success": False},
            message=f"ok {canary}|{canary[:10]}\x1b{canary[10:]}",
            request_id=f"rf-{part}",
        )
        async with make_client() as client:
            result = await resign(client)
        kept = f"{result.message} {result.request_id}"
        assert not any(canary[i : i + 8] in kept for i in range(len(canary) - 7)), kept

    async def test_an_id_sharing_a_run_with_the_key_id_is_kept(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """The key ID is scrubbed only whole: an ObjectId sharing a long run with it (a user of
        the same pool) stays readable in the server's message."""
        key, said = await refused_echoing(
            make_client, api, reply, lambda k: f"no such key, did you mean {k[:-1]}X?"
        )
        assert f"{key[:-1]}X" in said

    async def test_a_refused_key_is_not_named(
        self, make_client: MakeClient, api: Any, reply: Reply
    ) -> None:
        """A refused access key: the error says so without quoting the key ID, even when the
        server echoes it in another case."""
        key, said = await refused_echoing(make_client, api, reply, lambda k: f"unknown {k.upper()}")
        assert "access key was refused" in said
        assert key.casefold() not in said.casefold()

    async def test_a_token_that_cannot_be_a_header_is_refused(
        self, make_client: MakeClient, api: Any, reply: Reply, jwt: Any
    ) -> None:
        """A token with a CR/LF (header injection) is AuthFailed at once; nothing else is sent."""
        token = jwt({"scoped_userpool_id": "pool1"}) + "\r\nX-Injected: yes"
        api.token = lambda r: reply(200, data={"access_token": token, "expires_in": 7200})
        async with make_client() as client:
            with pytest.raises(AuthFailed, match="RFC 6750"):
                await resign(client)
        assert api.api_requests == []


async def refused_echoing(
    make_client: MakeClient, api: Any, reply: Reply, echo: Callable[[str], str]
) -> tuple[str, str]:
    """The access key ID sent, and the error of a token call refused (401) with the message
    ``echo(key ID)``."""
    keys: list[str] = []

    def refuse(request: RawRequest) -> RawResponse:
        keys.append(orjson.loads(request.body or b"{}")["accessKeyId"])
        return reply(401, message=echo(keys[-1]))

    api.token = refuse
    async with make_client() as client:
        with pytest.raises(AuthFailed) as info:
            await client.userpool_id()
    return keys[0], str(info.value)


def _tokens_seen(api: Any) -> list[str]:
    return [
        r.headers["authorization"].removeprefix("Bearer ")
        for r in api.api_requests
        if "authorization" in r.headers
    ]


class TestStats:
    async def test_calls_by_outcome(self, make_client: MakeClient, api: Any, reply: Reply) -> None:
        """Calls are counted by their final outcome."""
        async with make_client() as client:
            await resign(client)
            api.resign = lambda r: reply(429)
            with pytest.raises(Throttled):
                await resign(client)
            await client.get_batch(Endpoint.USER, IDS, IdType.USER_ID)
            stats = client.stats
        assert stats.calls == {CallOutcome.OK: 2, CallOutcome.THROTTLED: 1}
        assert stats.total_calls == 3
        assert stats.token_requests == 1

    async def test_snapshot_is_frozen(self, make_client: MakeClient) -> None:
        """A stats snapshot neither changes later nor can be changed."""
        async with make_client() as client:
            before = client.stats
            await resign(client)
        assert before.total_calls == 0
        with pytest.raises(AttributeError):
            before.reauths = 5  # type: ignore[misc]
        with pytest.raises(TypeError):
            before.calls[CallOutcome.OK] = 1  # type: ignore[index]
