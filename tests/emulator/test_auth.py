"""The token call, both authorization header forms, the userpool header, and token expiry."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import orjson
import pytest

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_USERPOOL_ID,
    EmulatorConfig,
    ManualClock,
)
from bulkresign.emulator import synthetic_user_id as uid

if TYPE_CHECKING:
    from conftest import Api

RESIGN_USER = "/api/v3/resign-user-batch"
TOKEN = "/api/v3/get-management-token"


def claims(token: str) -> dict[str, object]:
    """The JWT's payload, decoded the way the Python SDK does (standard alphabet)."""
    payload = token.split(".")[1]
    decoded: dict[str, object] = orjson.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


class TestTokenCall:
    async def test_success_envelope(self, api: Api) -> None:
        """HTTP 200, statusCode 200, 获取成功, a requestId, a token and its TTL."""
        http, body = await api.get_token()
        assert http == 200
        assert body["statusCode"] == 200
        assert body["message"] == "获取成功"
        assert body["requestId"]
        assert "apiCode" not in body
        data = body["data"]
        assert isinstance(data, dict)
        assert data["expires_in"] == 7200
        assert str(data["access_token"]).count(".") == 2

    async def test_token_claims_name_the_pool(self, api: Api, clock: ManualClock) -> None:
        """The payload scopes the token to the userpool and dates it by the emulator's clock."""
        found = claims(api.token)
        assert found["token_type"] == "management_token"
        assert found["scoped_userpool_id"] == DEMO_USERPOOL_ID
        assert found["access_key_id"] == DEMO_ACCESS_KEY_ID
        assert found["iat"] == int(clock.now)
        assert found["exp"] == int(clock.now) + 7200

    async def test_every_response_has_a_fresh_request_id(self, api: Api) -> None:
        """Two calls, two different requestIds."""
        _, first = await api.get_token()
        _, second = await api.get_token()
        assert first["requestId"] != second["requestId"]

    async def test_wrong_secret_gets_401_and_no_token(self, api: Api) -> None:
        """HTTP 200 with statusCode 401, apiCode 2333 and no data."""
        http, body = await api.get_token(secret="wrong")
        assert (http, body["statusCode"], body["apiCode"]) == (200, 401, 2333)
        assert body["data"] is None

    async def test_wrong_key_id_gets_401(self, api: Api) -> None:
        """The access key ID is checked too."""
        _, body = await api.get_token(key_id="someone-else")
        assert body["statusCode"] == 401

    async def test_malformed_body_gets_400(self, api: Api) -> None:
        """A body without string credentials is a 400, not a 500."""
        _, body = await api.post(TOKEN, {"accessKeyId": 1}, {})
        assert body["statusCode"] == 400


class TestAuthorizationHeader:
    async def test_bearer_form_is_accepted(self, api: Api) -> None:
        """``authorization: Bearer <token>`` (Python, Go, old Node SDKs)."""
        _, body = await api.post(RESIGN_USER, {"userIds": [uid(0)]}, api.headers(bearer=True))
        assert body["statusCode"] == 200

    async def test_raw_form_is_accepted(self, api: Api) -> None:
        """``authorization: <token>`` (Java SDK, the spec's curl example)."""
        _, body = await api.post(RESIGN_USER, {"userIds": [uid(0)]}, api.headers(bearer=False))
        assert body["statusCode"] == 200

    async def test_missing_token_is_401_2020(self, api: Api) -> None:
        """No authorization header: HTTP 200, statusCode 401, apiCode 2020, nothing applied."""
        headers = {"x-authing-userpool-id": DEMO_USERPOOL_ID}
        http, body = await api.post(RESIGN_USER, {"userIds": [uid(0)]}, headers)
        assert (http, body["statusCode"], body["apiCode"]) == (200, 401, 2020)
        assert await api.statuses([uid(0)]) == {uid(0): "Activated"}

    async def test_forged_token_is_401(self, api: Api) -> None:
        """A token this emulator did not mint is refused."""
        api.token = api.token[:-4] + "AAAA"
        _, body = await api.resign([uid(0)])
        assert (body["statusCode"], body["apiCode"]) == (401, 2020)

    async def test_wrong_pool_header_is_403_2224(self, api: Api) -> None:
        """``x-authing-userpool-id`` must be the token's pool: 403 with apiCode 2224."""
        headers = api.headers(pool="000000000000000000000000")
        _, body = await api.post(RESIGN_USER, {"userIds": [uid(0)]}, headers)
        assert (body["statusCode"], body["apiCode"]) == (403, 2224)

    async def test_missing_pool_header_is_403(self, api: Api) -> None:
        """No userpool header at all is refused the same way."""
        _, body = await api.post(RESIGN_USER, {"userIds": [uid(0)]}, api.headers(pool=None))
        assert body["statusCode"] == 403

    async def test_genauth_header_names_are_accepted(self, api: Api) -> None:
        """GenAuth's SDK names the pool in ``x-genauth-userpool-id``: accepted alike."""
        headers = api.headers(family="genauth")
        _, body = await api.post(RESIGN_USER, {"userIds": [uid(0)]}, headers)
        assert body["statusCode"] == 200
        assert await api.statuses([uid(0)]) == {uid(0): "Resigned"}

    async def test_a_pool_header_given_twice_must_name_the_tokens_pool_both_times(
        self, api: Api
    ) -> None:
        """Two x-genauth-userpool-id values, one of them another pool: 403 (the first alone
        was looked at)."""
        headers = [*api.headers(family="genauth").items(), ("x-genauth-userpool-id", "0" * 24)]
        async with api.session.post(
            api.url + RESIGN_USER, json={"userIds": [uid(0)]}, headers=headers
        ) as resp:
            body = await resp.json()
        assert (body["statusCode"], body["apiCode"]) == (403, 2224)

    async def test_both_pool_headers_must_name_the_tokens_pool(self, api: Api) -> None:
        """Both header families given, one naming another pool: 403 naming that header."""
        headers = {
            **api.headers(),
            "x-genauth-userpool-id": "000000000000000000000000",
        }
        _, body = await api.post(RESIGN_USER, {"userIds": [uid(0)]}, headers)
        assert (body["statusCode"], body["apiCode"]) == (403, 2224)
        assert str(body["message"]).startswith("x-genauth-userpool-id")


class TestExpiry:
    @pytest.fixture
    def config(self) -> EmulatorConfig:
        """Tokens live 2 seconds."""
        return EmulatorConfig(token_ttl=2)

    async def test_short_ttl_is_announced(self, api: Api) -> None:
        """``expires_in`` carries the configured TTL."""
        _, body = await api.get_token()
        assert body["data"]["expires_in"] == 2  # type: ignore[index]

    async def test_token_works_until_it_expires(self, api: Api, clock: ManualClock) -> None:
        """A token is good just before ``exp`` and answers 401/2020 from ``exp`` on."""
        clock.advance(1.9)
        _, body = await api.resign([uid(0)])
        assert body["statusCode"] == 200
        clock.advance(0.1)
        _, body = await api.resign([uid(1)])
        assert (body["statusCode"], body["apiCode"]) == (401, 2020)

    async def test_a_new_token_works_after_expiry(self, api: Api, clock: ManualClock) -> None:
        """Re-authenticating after expiry is all a client needs to do."""
        clock.advance(5)
        await api.login()
        _, body = await api.resign([uid(0)])
        assert body["statusCode"] == 200
