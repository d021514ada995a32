"""Per-type validation and normalization: never repair a value into a different one."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkresign.models import IdType
from bulkresign.validate import RejectReason, normalizer, preview_bytes, preview_text, printable

R = RejectReason


def check(id_type: IdType, raw: str, **options: bool) -> str | RejectReason:
    return normalizer(id_type, **options)(raw)


class TestUserId:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("5F0C5D6F1D2E3F4A5B6C7D8E", "5f0c5d6f1d2e3f4a5b6c7d8e"),
            ("  5f0c5d6f1d2e3f4a5b6c7d8e\t", "5f0c5d6f1d2e3f4a5b6c7d8e"),
            ("5f0c5d6f1d2e3f4a5b6c7d8", R.INVALID_USER_ID),
            ("5f0c5d6f1d2e3f4a5b6c7d8e0", R.INVALID_USER_ID),
            ("5f0c5d6f1d2e3f4a5b6c7d8g", R.INVALID_USER_ID),
            ("5f0c5d6f 1d2e3f4a5b6c7d8e", R.INVALID_USER_ID),
            ("５f0c5d6f1d2e3f4a5b6c7d8e", R.INVALID_USER_ID),  # a fullwidth digit is not hex
            ("", R.EMPTY),
        ],
    )
    def test_rules(self, raw: str, expected: str | RejectReason) -> None:
        """24 hex digits, lowercased; anything else is rejected."""
        assert check(IdType.USER_ID, raw) == expected


class TestEmail:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Jane.Doe@Example.COM", "jane.doe@example.com"),
            (" a+tag@sub.example.co ", "a+tag@sub.example.co"),
            ("josé@exämple.de", "josé@exämple.de"),
            ("a@b", R.INVALID_EMAIL),
            ("a..b@example.com", R.INVALID_EMAIL),
            (".a@example.com", R.INVALID_EMAIL),
            ("a@-example.com", R.INVALID_EMAIL),
            ("a@10.0.0.1", R.INVALID_EMAIL),
            ('"john doe"@example.com', R.INVALID_EMAIL),
            ("a b@example.com", R.INVALID_EMAIL),
            ("a\u00a0b@example.com", R.INVALID_EMAIL),
            ("a@example.com\u200b", R.CONTROL),
            ("x" * 65 + "@example.com", R.INVALID_EMAIL),
        ],
    )
    def test_rules(self, raw: str, expected: str | RejectReason) -> None:
        """A dot-atom address on a dotted domain, lowercased whole."""
        assert check(IdType.EMAIL, raw) == expected

    @given(raw=st.text(alphabet='aZ0.-@_+!#"()[]:;, ', max_size=16))
    def test_agrees_with_the_rfc_pattern(self, raw: str) -> None:
        """On ASCII input the rules are exactly the dot-atom / LDH-domain pattern."""
        atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+"
        label = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
        match = re.fullmatch(rf"({atom}(?:\.{atom})*)@({label}(?:\.{label})+)", raw)
        ok = match is not None and len(match[1]) <= 64
        ok = ok and match is not None and not match[2].rsplit(".", 1)[1].isdigit()
        assert (check(IdType.EMAIL, raw) == raw.lower()) == ok

    def test_case_sensitive_option_keeps_case(self) -> None:
        """--case-sensitive-email sends the address as written."""
        assert check(IdType.EMAIL, "Jane@Example.com", case_sensitive_email=True) == (
            "Jane@Example.com"
        )


class TestPhone:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("+86 138-0013-8000", "+8613800138000"),
            ("(555) 123.4567", "5551234567"),
            ("13800138000", "13800138000"),
            ("1234", R.INVALID_PHONE),
            ("+1234567890123456", R.INVALID_PHONE),
            ("1-800-FLOWERS", R.INVALID_PHONE),
            ("12+34567", R.INVALID_PHONE),
            ("+0015550000007", R.INVALID_PHONE),  # no country code begins with 0: it was cut as +1
            ("١٢٣٤٥٦٧", R.INVALID_PHONE),  # Arabic-Indic digits are not sent as ASCII ones
        ],
    )
    def test_rules(self, raw: str, expected: str | RejectReason) -> None:
        """Digits with an optional leading +; spaces, dashes, dots and parentheses dropped."""
        assert check(IdType.PHONE, raw) == expected


class TestPairs:
    @pytest.mark.parametrize(
        ("id_type", "raw", "expected"),
        [
            (
                IdType.IDENTITY,
                "62a0c1d2e3f4a5b6c7d8e9f0:oid-123",
                "62a0c1d2e3f4a5b6c7d8e9f0:oid-123",
            ),
            (IdType.IDENTITY, "idp:urn:a:b", "idp:urn:a:b"),
            (IdType.IDENTITY, ":user", R.INVALID_IDENTITY),
            (IdType.IDENTITY, "idp:", R.INVALID_IDENTITY),
            (IdType.IDENTITY, "idp user", R.INVALID_IDENTITY),
            (IdType.IDENTITY, "idp : user", R.INVALID_IDENTITY),
            (IdType.SYNC_RELATION, "wecom:zhangsan", "wecom:zhangsan"),
            (IdType.SYNC_RELATION, "wecom", R.INVALID_SYNC_RELATION),
        ],
    )
    def test_rules(self, id_type: IdType, raw: str, expected: str | RejectReason) -> None:
        """Split at the first colon; both sides non-empty and not padded."""
        assert check(id_type, raw) == expected


class TestFreeText:
    @pytest.mark.parametrize("id_type", [IdType.USERNAME, IdType.EXTERNAL_ID])
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Zhang San", "Zhang San"),
            ("  Zhang San ", R.PADDED),  # " kim" and "kim" may be two accounts
            ("kim\t", R.PADDED),
            ("ext-001", "ext-001"),
            ("\t\t", R.EMPTY),
            ("a\x00b", R.CONTROL),
            ("a\rb", R.CONTROL),
            ("bo\u2028b", R.CONTROL),
            ("\u202eevil", R.CONTROL),  # a bidi override could disguise the ID in a report
            ("a\x85b", R.CONTROL),
        ],
    )
    def test_rules(self, id_type: IdType, raw: str, expected: str | RejectReason) -> None:
        """Unpadded, non-empty, no control, format or separator characters; case kept."""
        assert check(id_type, raw) == expected


class TestIdempotence:
    @pytest.mark.parametrize("id_type", list(IdType))
    @given(raw=st.text(max_size=40))
    def test_normalizing_twice_changes_nothing(self, id_type: IdType, raw: str) -> None:
        """A normalized ID normalizes to itself."""
        normalize = normalizer(id_type)
        once = normalize(raw)
        if not isinstance(once, RejectReason):
            assert normalize(once) == once

    @given(raw=st.from_regex(r"[0-9a-fA-F]{24}", fullmatch=True))
    def test_user_ids_differing_only_in_case_merge(self, raw: str) -> None:
        """Hex case never makes two user IDs."""
        normalize = normalizer(IdType.USER_ID)
        assert normalize(raw) == normalize(raw.upper()) == raw.lower()


class TestPreviews:
    def test_controls_are_escaped(self) -> None:
        """A preview shows hidden characters as escapes."""
        assert printable("a\x00b\rc\u2028d\u202e") == "a\\x00b\\x0dc\\u2028d\\u202e"

    def test_invalid_utf8_shows_bytes(self) -> None:
        """Bytes that are not UTF-8 show as \\xNN."""
        assert preview_bytes(b"caf\xe9") == "caf\\xe9"

    def test_long_values_are_cut(self) -> None:
        """Previews stop at 80 bytes or characters, with an ellipsis."""
        assert preview_bytes(b"x" * 81) == "x" * 80 + "…"
        assert preview_text("é" * 100) == "é" * 80 + "…"


class TestComma:
    @pytest.mark.parametrize("id_type", [IdType.USERNAME, IdType.EXTERNAL_ID, IdType.IDENTITY])
    def test_an_id_with_a_comma_is_rejected(self, id_type: IdType) -> None:
        """A comma would split the ID in the read-back's comma-separated userIds."""
        assert normalizer(id_type)("a,b:c") is RejectReason.COMMA
