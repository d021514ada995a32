"""The resign calls: validation, applying, unknown IDs, re-resigning, duplicates, the hook."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from bulkresign.emulator import Emulator, EmulatorConfig, ManualClock, synthetic_user
from bulkresign.emulator import synthetic_user_id as uid

if TYPE_CHECKING:
    from conftest import Api

RESIGN_USER = "/api/v3/resign-user-batch"
RESIGN_PUBLIC = "/api/v3/resign-public-account-batch"


class TestSuccess:
    async def test_envelope(self, api: Api) -> None:
        """HTTP 200, statusCode 200, 操作成功, ``data.success``, a requestId, no apiCode."""
        http, body = await api.resign([uid(0)])
        assert http == 200
        assert body["statusCode"] == 200
        assert body["message"] == "操作成功"
        assert body["data"] == {"success": True}
        assert body["requestId"]
        assert "apiCode" not in body

    @pytest.mark.parametrize("path", [RESIGN_USER, RESIGN_PUBLIC])
    async def test_both_endpoints_resign(self, api: Api, path: str) -> None:
        """The user and the public-account endpoint act on the same users."""
        await api.resign([uid(0), uid(1)], path=path)
        assert await api.statuses([uid(0), uid(1), uid(2)]) == {
            uid(0): "Resigned",
            uid(1): "Resigned",
            uid(2): "Activated",
        }

    async def test_applying_closes_the_user(
        self, api: Api, emulator: Emulator, clock: ManualClock
    ) -> None:
        """Resigned, workStatus Closed, departments cleared, both dates moved to now."""
        before = emulator.user(uid(0))
        assert before is not None and before["departmentIds"] == ["dept-0"]
        clock.advance(60)
        await api.resign([uid(0)])
        after = emulator.user(uid(0))
        assert after is not None
        assert (after["status"], after["workStatus"]) == ("Resigned", "Closed")
        assert after["departmentIds"] == []
        assert after["statusChangedAt"] == after["updatedAt"] != before["updatedAt"]
        assert after["createdAt"] == before["createdAt"]

    @pytest.mark.parametrize(
        "id_type", ["user_id", "email", "phone", "username", "external_id", "identity"]
    )
    async def test_each_id_type_resolves(self, api: Api, id_type: str) -> None:
        """Each ``userIdType`` looks up its own field."""
        _, body = await api.resign([synthetic_user(4)[id_type]], id_type)
        assert body["statusCode"] == 200
        assert await api.statuses([uid(4)]) == {uid(4): "Resigned"}

    async def test_sync_relation_resolves(self, api: Api) -> None:
        """``sync_relation`` takes ``<provider>:<userIdInIdp>``."""
        _, body = await api.resign(["wecom:u5"], "sync_relation")
        assert body["statusCode"] == 200

    async def test_email_is_case_insensitive(self, api: Api) -> None:
        """Emails match whatever their case."""
        _, body = await api.resign(["USER6@Example.COM"], "email")
        assert body["statusCode"] == 200
        assert await api.statuses([uid(6)]) == {uid(6): "Resigned"}


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({}, "参数 userIds 格式错误"),
            ({"userIds": []}, "参数 userIds 格式错误"),
            ({"userIds": "abc"}, "参数 userIds 格式错误"),
            ({"userIds": [uid(0), 7]}, "each value in userIds must be a string"),
            ({"userIds": [uid(0)] * 51}, "userIds must contain no more than 50 elements"),
        ],
    )
    async def test_bad_user_ids_are_400(
        self, api: Api, emulator: Emulator, body: object, message: str
    ) -> None:
        """Missing, empty, non-list, non-string or over-50 ``userIds``: 400, nothing applied."""
        http, answer = await api.post(RESIGN_USER, body)
        assert (http, answer["statusCode"], answer["message"]) == (200, 400, message)
        assert emulator.oracle()["resigned_total"] == 0

    async def test_errors_are_joined(self, api: Api) -> None:
        """Several problems are reported together, comma-joined, as class-validator does."""
        _, answer = await api.resign([uid(0)] * 51, "nickname")
        assert str(answer["message"]).split(",")[0].startswith("userIds must contain")
        assert "userIdType must be one of the following values" in str(answer["message"])

    async def test_bad_id_type_is_400(self, api: Api) -> None:
        """``custom_field`` and anything else outside the seven types is refused."""
        _, answer = await api.resign([uid(0)], "custom_field")
        assert answer["statusCode"] == 400

    async def test_absent_id_type_means_user_id(self, api: Api) -> None:
        """Without ``userIdType`` (the SDK drops None) IDs are user IDs."""
        _, answer = await api.resign([uid(0)])
        assert answer["statusCode"] == 200

    async def test_non_json_body_is_400(self, api: Api) -> None:
        """A body that is not JSON is a 400 envelope."""
        url = api.url + RESIGN_USER
        async with api.session.post(url, data=b"{not json", headers=api.headers()) as resp:
            answer = await resp.json()
        assert answer["statusCode"] == 400

    async def test_largest_batch_counts_refused_calls(self, api: Api, emulator: Emulator) -> None:
        """The oracle sees an over-50 batch even though it was refused."""
        await api.resign([uid(0)] * 51)
        assert emulator.oracle()["largest_batch"] == 51


class TestUnknownIds:
    async def test_fail_batch_is_404_2004_and_applies_nothing(
        self, api: Api, emulator: Emulator
    ) -> None:
        """By default one unknown ID fails the call, naming it; its neighbours stay Activated."""
        _, answer = await api.resign([uid(0), "ffffffffffffffffffffffff"])
        assert (answer["statusCode"], answer["apiCode"]) == (404, 2004)
        assert "ffffffffffffffffffffffff" in str(answer["message"])
        assert await api.statuses([uid(0)]) == {uid(0): "Activated"}
        assert emulator.oracle()["unknown_requested"] == 1

    @pytest.mark.parametrize("config", [EmulatorConfig(unknown_ids="ignore")])
    async def test_ignore_applies_the_known_ones(self, api: Api) -> None:
        """With ``unknown_ids=ignore`` the known IDs are resigned and the call succeeds."""
        _, answer = await api.resign([uid(0), "ffffffffffffffffffffffff"])
        assert answer["statusCode"] == 200
        assert await api.statuses([uid(0)]) == {uid(0): "Resigned"}


class TestReResign:
    async def test_success_counts_twice(self, api: Api, emulator: Emulator) -> None:
        """By default re-resigning succeeds, and the oracle counts the user resigned twice."""
        await api.resign([uid(0)])
        _, answer = await api.resign([uid(0)])
        assert answer["statusCode"] == 200
        oracle = emulator.oracle()
        assert oracle["resign_counts"] == {uid(0): 2}
        assert (oracle["max_resign_count"], oracle["re_resign_requested"]) == (2, 1)

    @pytest.mark.parametrize("config", [EmulatorConfig(re_resign="error")])
    async def test_error_is_422_and_applies_nothing(self, api: Api, emulator: Emulator) -> None:
        """With ``re_resign=error`` the call is refused whole; its other user stays Activated."""
        await api.resign([uid(0)])
        _, answer = await api.resign([uid(1), uid(0)])
        assert answer["statusCode"] == 422
        assert await api.statuses([uid(1)]) == {uid(1): "Activated"}
        assert emulator.oracle()["resign_counts"] == {uid(0): 1}


class TestDuplicates:
    async def test_duplicate_is_recorded_and_applied_once(
        self, api: Api, emulator: Emulator
    ) -> None:
        """The same ID twice in one call: a client bug the oracle records; resigned once."""
        _, answer = await api.resign([uid(0), uid(0)])
        assert answer["statusCode"] == 200
        oracle = emulator.oracle()
        assert oracle["duplicate_id_requests"] == 1
        assert oracle["resign_counts"] == {uid(0): 1}

    async def test_two_spellings_of_one_user_are_a_duplicate(
        self, api: Api, emulator: Emulator
    ) -> None:
        """Two emails differing in case name one user: still a duplicate."""
        await api.resign(["user0@example.com", "USER0@example.com"], "email")
        assert emulator.oracle()["duplicate_id_requests"] == 1


class TestHook:
    async def test_hook_sees_the_call_before_it_is_applied(
        self, api: Api, emulator: Emulator
    ) -> None:
        """``on_resign`` is awaited with path and IDs while the users are still Activated."""
        seen: list[tuple[str, list[str], object]] = []

        async def hook(path: str, user_ids: list[str], request: web.Request) -> None:
            dto = emulator.user(uid(0))
            assert dto is not None
            seen.append((path, user_ids, dto["status"]))

        emulator.on_resign = hook
        await api.resign([uid(0)], path=RESIGN_PUBLIC)
        assert seen == [(RESIGN_PUBLIC, [uid(0)], "Activated")]
        assert await api.statuses([uid(0)]) == {uid(0): "Resigned"}

    async def test_hook_is_not_called_for_malformed_calls(
        self, api: Api, emulator: Emulator
    ) -> None:
        """A 400 never reaches the hook: there is nothing to apply."""
        calls: list[list[str]] = []

        async def hook(path: str, user_ids: list[str], request: web.Request) -> None:
            calls.append(user_ids)

        emulator.on_resign = hook
        await api.resign([])
        assert calls == []


class TestClientGone:
    async def test_a_client_that_dies_mid_body_leaves_no_error_and_no_call(
        self, api: Api, emulator: Emulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Half a body, then the socket closes: nothing applied, counted or logged as an error."""
        host, port = api.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        head = "".join(f"{k}: {v}\r\n" for k, v in api.headers().items())
        writer.write(
            (
                "POST /api/v3/resign-user-batch HTTP/1.1\r\nHost: x\r\n"
                f"content-type: application/json\r\ncontent-length: 500\r\n{head}\r\n"
                '{"userIds": ['
            ).encode()
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await asyncio.sleep(0.2)
        assert emulator.oracle(summary=True)["resign_requests"] == 0
        assert "Error handling request" not in caplog.text
