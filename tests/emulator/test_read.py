"""The read-back calls: the three ``userIds`` encodings, unknown IDs, the UserDto, its options."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bulkresign.emulator import Emulator
from bulkresign.emulator import synthetic_user_id as uid

if TYPE_CHECKING:
    from conftest import Api

READ_USER = "/api/v3/get-user-batch"
READ_PUBLIC = "/api/v3/get-public-account-batch"


def ids_of(body: dict[str, object]) -> list[str]:
    """The ``userId`` of each returned user, in order."""
    data = body["data"]
    assert isinstance(data, list)
    return [u["userId"] for u in data]


class TestEncodings:
    async def test_comma_separated(self, api: Api) -> None:
        """``userIds=a,b`` (Java, Go, C# SDKs)."""
        _, body = await api.read(f"userIds={uid(0)},{uid(1)}")
        assert ids_of(body) == [uid(0), uid(1)]

    async def test_repeated_keys(self, api: Api) -> None:
        """``userIds=a&userIds=b`` (Python ``requests`` with a list)."""
        _, body = await api.read([("userIds", uid(0)), ("userIds", uid(1))])
        assert ids_of(body) == [uid(0), uid(1)]

    async def test_bracket_keys(self, api: Api) -> None:
        """``userIds[]=a&userIds[]=b`` (axios)."""
        _, body = await api.read([("userIds[]", uid(0)), ("userIds[]", uid(1))])
        assert ids_of(body) == [uid(0), uid(1)]

    async def test_encodings_combine(self, api: Api) -> None:
        """Mixed forms add up, in order."""
        _, body = await api.read([("userIds", f"{uid(0)},{uid(1)}"), ("userIds[]", uid(2))])
        assert ids_of(body) == [uid(0), uid(1), uid(2)]


class TestAnswer:
    async def test_unknown_ids_are_absent(self, api: Api) -> None:
        """Unknown IDs are simply left out; the call still succeeds."""
        http, body = await api.read(f"userIds=nobody,{uid(3)}")
        assert (http, body["statusCode"], body["message"]) == (200, 200, "操作成功")
        assert ids_of(body) == [uid(3)]

    async def test_unknown_reads_fail_is_a_404_naming_it(
        self, api: Api, emulator: Emulator
    ) -> None:
        """``unknown_reads="fail"``: a read naming an unknown ID is statusCode 404/2004."""
        emulator.reconfigure(unknown_reads="fail")
        _, body = await api.read(f"userIds={uid(3)},nobody")
        assert (body["statusCode"], body["apiCode"]) == (404, 2004)
        assert "nobody" in str(body["message"])
        _, body = await api.read(f"userIds={uid(3)}")
        assert ids_of(body) == [uid(3)]

    async def test_a_user_named_twice_appears_once(self, api: Api) -> None:
        """Duplicates in the query return the user once."""
        _, body = await api.read(f"userIds={uid(3)},{uid(3)}")
        assert ids_of(body) == [uid(3)]

    async def test_user_dto_fields(self, api: Api) -> None:
        """The UserDto carries the profile, status and dates in camelCase."""
        _, body = await api.read(f"userIds={uid(2)}")
        (user,) = body["data"]  # type: ignore[misc]
        assert user["email"] == "user2@example.com"
        assert (user["phone"], user["phoneCountryCode"]) == ("5550000002", "+1")
        assert user["username"] == "user2"
        assert user["externalId"] == "ext-2"
        assert (user["status"], user["workStatus"]) == ("Activated", "Active")
        assert user["createdAt"].endswith("Z")
        for field in ("updatedAt", "statusChangedAt", "gender", "emailVerified", "phoneVerified"):
            assert field in user
        assert "identities" not in user

    async def test_identities_on_request(self, api: Api) -> None:
        """``withIdentities=true`` adds the identity, and only it: a sync relation is not one."""
        _, body = await api.read(f"userIds={uid(2)}&withIdentities=true")
        (user,) = body["data"]  # type: ignore[misc]
        pairs = {f"{i['extIdpId']}:{i['userIdInIdp']}" for i in user["identities"]}
        assert pairs == {"idp1:u2"}

    async def test_departments_on_request(self, api: Api) -> None:
        """``withDepartmentIds=true`` adds the department IDs."""
        _, body = await api.read(f"userIds={uid(2)}&withDepartmentIds=true")
        assert body["data"][0]["departmentIds"] == ["dept-2"]  # type: ignore[index]

    @pytest.mark.parametrize("id_type", ["email", "phone", "username", "external_id"])
    async def test_by_other_id_types(self, api: Api, id_type: str) -> None:
        """Read-back resolves the same ID types as resign."""
        value = {
            "email": "user9@example.com",
            "phone": "+15550000009",
            "username": "user9",
            "external_id": "ext-9",
        }[id_type]
        _, body = await api.read([("userIds", value), ("userIdType", id_type)])
        assert ids_of(body) == [uid(9)]

    @pytest.mark.parametrize("phone", ["+15550000009", "5550000009"])
    async def test_a_phone_with_or_without_its_country_code(self, api: Api, phone: str) -> None:
        """A phone ID names the user as returned (national) or joined to its code."""
        _, body = await api.read([("userIds", phone), ("userIdType", "phone")])
        assert ids_of(body) == [uid(9)]

    async def test_public_account_path_reads_the_same_users(self, api: Api) -> None:
        """``get-public-account-batch`` answers from the same pool."""
        await api.resign([uid(4)])
        _, body = await api.read(f"userIds={uid(4)}", path=READ_PUBLIC)
        assert body["data"][0]["status"] == "Resigned"  # type: ignore[index]


class TestValidation:
    @pytest.mark.parametrize("query", ["", "userIds=", "userIds=,,"])
    async def test_no_ids_is_400(self, api: Api, query: str) -> None:
        """No IDs: statusCode 400, 参数 userIds 格式错误."""
        _, body = await api.read(query)
        assert (body["statusCode"], body["message"]) == (400, "参数 userIds 格式错误")

    async def test_51_ids_is_400(self, api: Api) -> None:
        """More than 50 IDs is refused."""
        _, body = await api.read("userIds=" + ",".join(uid(i) for i in range(51)))
        assert body["statusCode"] == 400

    async def test_bad_id_type_is_400(self, api: Api) -> None:
        """An unknown ``userIdType`` is refused."""
        _, body = await api.read(f"userIds={uid(0)}&userIdType=nickname")
        assert body["statusCode"] == 400

    async def test_bad_flag_is_400(self, api: Api) -> None:
        """``withIdentities`` must be a boolean."""
        _, body = await api.read(f"userIds={uid(0)}&withIdentities=maybe")
        assert body["statusCode"] == 400
