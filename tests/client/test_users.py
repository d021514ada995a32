"""Read-back answers: parsing UserDto and attributing each record to the ID that asked for it."""

from __future__ import annotations

import pytest

from bulkresign.models import IdType, UserRecord, UserStatus
from bulkresign.users import match_users, parse_users


def rec(user_id: str, **fields: object) -> UserRecord:
    return UserRecord(user_id=user_id, status=UserStatus.ACTIVATED, **fields)  # type: ignore[arg-type]


class TestParseUsers:
    def test_fields(self) -> None:
        """userId, status, email, phone, username, externalId and identities are read."""
        data = [
            {
                "userId": "u1",
                "status": "Resigned",
                "email": "A@x.example",
                "phone": "13800000000",
                "phoneCountryCode": "+86",
                "username": "alice",
                "externalId": "e1",
                "identities": [
                    {"extIdpId": "idp1", "userIdInIdp": "wx1", "provider": "wechat"},
                    {"extIdpId": "idp2"},
                    "junk",
                ],
                "gender": "U",
            }
        ]
        (record,) = parse_users(data)
        assert record == UserRecord(
            user_id="u1",
            status=UserStatus.RESIGNED,
            email="A@x.example",
            phone="13800000000",
            username="alice",
            external_id="e1",
            identities=("idp1:wx1",),
            phone_country_code="+86",
        )

    def test_unknown_status_is_kept_as_text(self) -> None:
        """A status outside the enum is kept as its string."""
        (record,) = parse_users([{"userId": "u", "status": "Frozen"}])
        assert record.status == "Frozen"

    def test_a_listed_status_in_another_case_is_that_status(self) -> None:
        """RESIGNED or resigned from a server is Resigned (it read as an unknown status, and a
        run sent the users again)."""
        for spelled in ("RESIGNED", "resigned", " Resigned "):
            (record,) = parse_users([{"userId": "u", "status": spelled}])
            assert record.status is UserStatus.RESIGNED

    def test_null_fields_are_none(self) -> None:
        """Null or empty optional fields become None."""
        (record,) = parse_users(
            [{"userId": "u", "status": "Activated", "email": None, "phone": ""}]
        )
        assert (record.email, record.phone) == (None, None)

    @pytest.mark.parametrize(
        "data",
        [
            None,
            {},
            [1],
            [{"status": "Activated"}],
            [{"userId": "u"}],
            [{"userId": 5, "status": "A"}],
        ],
    )
    def test_malformed(self, data: object) -> None:
        """Anything but a list of objects with userId and status is a ValueError."""
        with pytest.raises(ValueError, match="data"):
            parse_users(data)


class TestMatchUsers:
    def test_by_user_id_in_any_order(self) -> None:
        """Records are attributed by userId whatever order they come in."""
        records = [rec("b"), rec("a")]
        assert match_users(["a", "b", "c"], IdType.USER_ID, records) == {
            "a": records[1],
            "b": records[0],
        }

    def test_a_record_returned_twice_counts_once(self) -> None:
        """The same record twice still answers its ID (it was left out as ambiguous, and the
        user recorded not found); two different records claiming one ID are left out."""
        assert match_users(["a"], IdType.USER_ID, [rec("a"), rec("a")]) == {"a": rec("a")}
        other = UserRecord(user_id="a", status=UserStatus.RESIGNED)
        assert match_users(["a", "b"], IdType.USER_ID, [rec("a"), other]) == {}

    def test_email_is_case_insensitive(self) -> None:
        """An email matches whatever its case on either side."""
        record = rec("u1", email="Alice@Example.COM")
        assert match_users(["alice@example.com", "x@y.z"], IdType.EMAIL, [record]) == {
            "alice@example.com": record
        }

    @pytest.mark.parametrize(
        ("id_type", "field", "value"),
        [
            (IdType.PHONE, "phone", "+8613800000000"),
            (IdType.USERNAME, "username", "alice"),
            (IdType.EXTERNAL_ID, "external_id", "ext-1"),
        ],
    )
    def test_by_field(self, id_type: IdType, field: str, value: str) -> None:
        """phone, username and external_id match their own field exactly."""
        record = rec("u1", **{field: value})
        assert match_users([value, "other"], id_type, [record, rec("u2")]) == {value: record}

    @pytest.mark.parametrize("asked", ["13800000000", "+8613800000000"])
    @pytest.mark.parametrize("code", ["+86", "86"])
    def test_phone_with_or_without_its_country_code(self, asked: str, code: str) -> None:
        """The API returns ``phone`` without ``phoneCountryCode``: either form is matched."""
        record = rec("u1", phone="13800000000", phone_country_code=code)
        assert match_users([asked, "+8613900000000"], IdType.PHONE, [record]) == {asked: record}

    def test_username_is_case_sensitive(self) -> None:
        """Only email is compared case-insensitively."""
        assert match_users(["Alice", "bob"], IdType.USERNAME, [rec("u", username="alice")]) == {}

    def test_identity(self) -> None:
        """An identity ID matches any of the record's <extIdpId>:<userIdInIdp>."""
        record = rec("u1", identities=("idp1:a", "idp2:b"))
        assert match_users(["idp2:b", "idp1:z"], IdType.IDENTITY, [record]) == {"idp2:b": record}

    def test_ambiguous_match_is_left_out(self) -> None:
        """An ID two records claim is not attributed."""
        records = [rec("u1", email="a@x.example"), rec("u2", email="A@x.example")]
        assert match_users(["a@x.example"], IdType.EMAIL, records) == {}

    def test_sync_relation_single_id(self) -> None:
        """A sync_relation ID is attributed when it was asked alone and one record came back."""
        record = rec("u1")
        assert match_users(["wechat:1"], IdType.SYNC_RELATION, [record]) == {"wechat:1": record}

    def test_sync_relation_several_ids_cannot_be_attributed(self) -> None:
        """Several sync_relation IDs cannot be matched to records from UserDto."""
        assert match_users(["p:1", "p:2"], IdType.SYNC_RELATION, [rec("u1"), rec("u2")]) == {}

    def test_single_id_without_the_field(self) -> None:
        """One ID, one record lacking the field (no identities returned): attributed."""
        record = rec("u1")
        assert match_users(["idp:x"], IdType.IDENTITY, [record]) == {"idp:x": record}

    def test_single_id_with_a_contradicting_field(self) -> None:
        """One ID, one record whose field says otherwise: not attributed."""
        assert match_users(["a@x.example"], IdType.EMAIL, [rec("u", email="b@x.example")]) == {}

    def test_nothing_returned(self) -> None:
        """No records, no attributions."""
        assert match_users(["a"], IdType.USER_ID, []) == {}
