"""The vendor's own Python SDK (authing 5.1.0) drives the emulator as it would drive GenAuth."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

import pytest
from authing import ManagementClient
from authing.AuthingException import AuthingException

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    RunningServer,
    serve_in_thread,
    synthetic_user,
    synthetic_user_id,
)


@pytest.fixture
def threaded() -> Iterator[RunningServer]:
    """An emulator with 60 synthetic users, served from its own thread."""
    emu = Emulator(EmulatorConfig())
    emu.generate(60)
    with serve_in_thread(emu) as server:
        yield server


@pytest.fixture
def sdk(threaded: RunningServer) -> ManagementClient:
    """The SDK's management client pointed at the emulator."""
    return ManagementClient(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, host=threaded.url)


def status_of(server: RunningServer, i: int) -> str:
    """Synthetic user ``i``'s status, read inside the server's thread."""
    dto = server.call(lambda: server.emulator.user(synthetic_user_id(i)))
    assert dto is not None
    return str(dto["status"])


class TestResign:
    def test_resign_user_batch_by_user_id(
        self, sdk: ManagementClient, threaded: RunningServer
    ) -> None:
        """``resign_user_batch`` with default ID type answers 操作成功 and resigns the users."""
        answer = sdk.resign_user_batch([synthetic_user_id(0), synthetic_user_id(1)])
        assert answer["statusCode"] == 200
        assert answer["data"] == {"success": True}
        assert answer["requestId"]
        assert status_of(threaded, 0) == status_of(threaded, 1) == "Resigned"

    @pytest.mark.parametrize(
        "id_type", ["email", "phone", "username", "external_id", "identity", "sync_relation"]
    )
    def test_resign_public_account_batch_by_each_id_type(
        self, sdk: ManagementClient, threaded: RunningServer, id_type: str
    ) -> None:
        """``resign_public_account_batch`` resolves every documented ``userIdType``."""
        answer = sdk.resign_public_account_batch([synthetic_user(7)[id_type]], id_type)
        assert answer["statusCode"] == 200
        assert status_of(threaded, 7) == "Resigned"

    def test_more_than_50_ids_is_refused_whole(
        self, sdk: ManagementClient, threaded: RunningServer
    ) -> None:
        """51 IDs: statusCode 400 with class-validator's message, and nobody resigned."""
        answer = sdk.resign_user_batch([synthetic_user_id(i) for i in range(51)])
        assert answer["statusCode"] == 400
        assert answer["message"] == "userIds must contain no more than 50 elements"
        assert threaded.oracle()["resigned_total"] == 0

    def test_bad_id_type_is_refused(self, sdk: ManagementClient, threaded: RunningServer) -> None:
        """An unknown ``userIdType`` answers statusCode 400 and applies nothing."""
        answer = sdk.resign_user_batch([synthetic_user_id(0)], "nickname")
        assert answer["statusCode"] == 400
        assert "userIdType" in answer["message"]
        assert status_of(threaded, 0) == "Activated"

    def test_unknown_user_answers_2004(
        self, sdk: ManagementClient, threaded: RunningServer
    ) -> None:
        """An unknown user fails the whole batch with apiCode 2004; its neighbour stays."""
        answer = sdk.resign_user_batch([synthetic_user_id(0), "ffffffffffffffffffffffff"])
        assert answer["statusCode"] != 200
        assert answer["apiCode"] == 2004
        assert status_of(threaded, 0) == "Activated"


class TestReadBack:
    def test_get_user_batch_shows_resigned(self, sdk: ManagementClient) -> None:
        """The SDK's list (sent as repeated ``userIds``) reads back both users, one Resigned."""
        sdk.resign_user_batch([synthetic_user_id(3)])
        answer = sdk.get_user_batch(
            [synthetic_user_id(3), synthetic_user_id(4)], with_identities=True
        )
        assert answer["statusCode"] == 200
        statuses = {u["userId"]: u["status"] for u in answer["data"]}
        assert statuses == {synthetic_user_id(3): "Resigned", synthetic_user_id(4): "Activated"}
        assert answer["data"][0]["identities"][0]["userIdInIdp"] == "u3"

    def test_get_public_account_batch_takes_a_comma_string(self, sdk: ManagementClient) -> None:
        """A comma-separated string (the Java/Go SDKs' form) works through the Python SDK too."""
        answer = sdk.get_public_account_batch("user5@example.com,user6@example.com", "email")
        assert [u["email"] for u in answer["data"]] == ["user5@example.com", "user6@example.com"]


class TestCredentials:
    def test_wrong_secret_raises_and_applies_nothing(self, threaded: RunningServer) -> None:
        """A wrong secret gets no token: the SDK raises AuthingException(401) before resigning."""
        sdk = ManagementClient(DEMO_ACCESS_KEY_ID, "not-the-secret", host=threaded.url)
        with pytest.raises(AuthingException) as caught:
            sdk.resign_user_batch([synthetic_user_id(0)])
        assert caught.value.statusCode == 401
        assert threaded.oracle()["resign_requests"] == 0


class TestTokenAlphabet:
    def test_default_tokens_decode_with_the_standard_alphabet(self, sdk: ManagementClient) -> None:
        """The SDK's ``b64decode`` of the payload works on the emulator's default tokens."""
        token, pool = sdk.http_client.token_provider.get_access_token()
        assert pool == EmulatorConfig().userpool_id
        payload = token.split(".")[1]
        assert "-" not in payload and "_" not in payload

    def test_unsafe_tokens_reproduce_the_sdk_crash(self) -> None:
        """With ``jwt_sdk_safe=False`` the SDK's standard-alphabet decode fails on every token."""
        with serve_in_thread(Emulator(EmulatorConfig(jwt_sdk_safe=False))) as server:
            sdk = ManagementClient(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, host=server.url)
            with pytest.raises(binascii.Error):
                sdk.resign_user_batch([synthetic_user_id(0)])

    def test_unsafe_payloads_still_decode_as_base64url(self) -> None:
        """An unsafe token is a valid JWT: only the SDK's choice of alphabet is wrong."""
        emu = Emulator(EmulatorConfig(jwt_sdk_safe=False))
        token = emu.tokens.mint(0.0, 60, sdk_safe=False)
        payload = token.split(".")[1]
        assert "-" in payload or "_" in payload
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert b"management_token" in decoded
