"""The pool: synthetic users, JSONL users files, implicit mode, and configuration checks."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from bulkresign.emulator import (
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorConfig,
    Faults,
    synthetic_user,
    synthetic_user_id,
)
from bulkresign.emulator.implicit import _ShardedMap
from bulkresign.errors import ConfigError, InputError
from bulkresign.models import IdType

if TYPE_CHECKING:
    from conftest import Api


def write_jsonl(path: Path, records: list[object]) -> Path:
    """Write one JSON value a line."""
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


class TestSynthetic:
    def test_user_is_a_pure_function_of_i(self) -> None:
        """User i is the same every time, with the documented fields."""
        assert synthetic_user(42) == synthetic_user(42)
        assert synthetic_user(42) == {
            "user_id": synthetic_user_id(42),
            "email": "user42@example.com",
            "phone": "5550000042",
            "phone_country_code": "+1",
            "username": "user42",
            "external_id": "ext-42",
            "identity": "idp1:u42",
            "sync_relation": "wecom:u42",
        }

    def test_user_id_is_blake2b_prefix(self) -> None:
        """The user ID is the first 12 bytes of blake2b(str(i)), as 24 lowercase hex."""
        assert synthetic_user_id(7) == hashlib.blake2b(b"7").digest()[:12].hex()

    def test_generate_matches_the_function(self) -> None:
        """``generate(n)`` adds exactly users 0..n-1."""
        emu = Emulator()
        emu.generate(3)
        assert len(emu.store) == 3
        assert emu.store.resolve(IdType.EMAIL, "user2@example.com") == synthetic_user_id(2)
        assert emu.store.resolve(IdType.EMAIL, "user3@example.com") is None


class TestUsersFile:
    def test_loads_records(self, tmp_path: Path) -> None:
        """Each line is a user; optional fields and an initial status are kept."""
        path = write_jsonl(
            tmp_path / "users.jsonl",
            [synthetic_user(0), {"user_id": "a" * 24, "email": "x@y.z", "status": "Suspended"}],
        )
        emu = Emulator()
        assert emu.load_users(path) == 2
        dto = emu.user("a" * 24)
        assert dto is not None and (dto["status"], dto["email"]) == ("Suspended", "x@y.z")

    def test_add_users_takes_dicts(self) -> None:
        """``add_users`` takes the same records from Python."""
        emu = Emulator()
        assert emu.add_users(synthetic_user(i) for i in range(4)) == 4

    @pytest.mark.parametrize(
        ("record", "reason"),
        [
            ({"user_id": "xyz"}, "user_id must be 24 lowercase hex"),
            ({"user_id": "A" * 24}, "user_id must be 24 lowercase hex"),
            ({"user_id": "a" * 24, "email": 5}, "email must be a non-empty string"),
            ({"user_id": "a" * 24, "status": "Gone"}, "status must be one of"),
            ([1, 2], "must be a JSON object"),
        ],
    )
    def test_bad_record_names_file_and_line(
        self, tmp_path: Path, record: object, reason: str
    ) -> None:
        """A bad record is an InputError naming file, line and reason."""
        path = write_jsonl(tmp_path / "users.jsonl", [synthetic_user(0), record])
        with pytest.raises(InputError, match=rf"users\.jsonl:2: .*{reason}"):
            Emulator().load_users(path)

    def test_a_bad_phone_country_code_is_refused(self, tmp_path: Path) -> None:
        """phone_country_code must be '+' and digits, as the API returns it."""
        record = {"user_id": "a" * 24, "phone": "1", "phone_country_code": "86"}
        path = write_jsonl(tmp_path / "users.jsonl", [record])
        with pytest.raises(InputError, match="phone_country_code"):
            Emulator().load_users(path)

    def test_duplicate_lookup_value_is_refused(self, tmp_path: Path) -> None:
        """Two users may not share an email (or any lookup value)."""
        path = write_jsonl(
            tmp_path / "users.jsonl",
            [{"user_id": "a" * 24, "email": "x@y.z"}, {"user_id": "b" * 24, "email": "X@y.z"}],
        )
        with pytest.raises(InputError, match="already belongs to"):
            Emulator().load_users(path)

    def test_not_json_is_refused(self, tmp_path: Path) -> None:
        """A line that is not JSON names its line."""
        path = tmp_path / "users.jsonl"
        path.write_text("{oops\n")
        with pytest.raises(InputError, match=r"users\.jsonl:1: not JSON"):
            Emulator().load_users(path)

    def test_missing_file_is_refused(self, tmp_path: Path) -> None:
        """A missing file is an InputError, not a traceback."""
        with pytest.raises(InputError, match="cannot read users file"):
            Emulator().load_users(tmp_path / "absent.jsonl")


class TestImplicit:
    @pytest.fixture
    def config(self) -> EmulatorConfig:
        """Implicit mode, unlimited rate."""
        return EmulatorConfig(implicit=True, rate_limit=None)

    async def test_any_hex_id_exists_and_resigns(self, api: Api, emulator: Emulator) -> None:
        """Any 24-lowercase-hex user ID is an Activated user that can be resigned."""
        ids = [f"{n:024x}" for n in (1, 2, 3)]
        assert await api.statuses(ids) == dict.fromkeys(ids, "Activated")
        _, body = await api.resign(ids[:2])
        assert body["statusCode"] == 200
        assert await api.statuses(ids) == {
            ids[0]: "Resigned",
            ids[1]: "Resigned",
            ids[2]: "Activated",
        }
        assert emulator.oracle()["resign_counts"] == dict.fromkeys(ids[:2], 1)

    async def test_only_changes_are_stored(self, api: Api, emulator: Emulator) -> None:
        """Reading users stores nothing; resigning stores one entry per user."""
        await api.statuses([f"{n:024x}" for n in range(50)])
        assert len(emulator.store) == 0
        await api.resign([f"{n:024x}" for n in range(50)])
        assert len(emulator.store) == 50

    async def test_malformed_ids_are_unknown(self, api: Api) -> None:
        """Non-hex, uppercase or wrong-length IDs name nobody: 404/2004."""
        for bad in ("z" * 24, "A" * 24, "a" * 23):
            _, body = await api.resign([bad])
            assert (body["statusCode"], body["apiCode"]) == (404, 2004)

    async def test_other_id_types_are_unknown(self, api: Api) -> None:
        """Implicit users have only a user ID."""
        _, body = await api.resign(["user1@example.com"], "email")
        assert body["statusCode"] == 404

    async def test_counts_and_status_changes(self, api: Api, emulator: Emulator) -> None:
        """A second resign counts 2; set_status puts a user back without losing its count."""
        user = "ab" * 12
        await api.resign([user])
        await api.resign([user])
        assert emulator.set_status(user, "Activated")
        assert await api.statuses([user]) == {user: "Activated"}
        assert emulator.oracle()["resign_counts"] == {user: 2}

    def test_ids_that_count_up_fill_the_shards_unevenly(self) -> None:
        """Sequential IDs spread at random over the store's shards, not one each in lockstep."""
        store = _ShardedMap((n * 0x9E3779B1, 1) for n in range(40 * len(_ShardedMap()._maps)))
        sizes = sorted(len(m) for m in store._maps)
        assert sizes[0] < 30 and sizes[-1] > 50, (sizes[0], sizes[-1])

    def test_implicit_takes_no_users(self) -> None:
        """Adding users to an implicit pool is a configuration error."""
        with pytest.raises(ConfigError, match="implicit"):
            Emulator(EmulatorConfig(implicit=True)).generate(1)


class TestConfig:
    @pytest.mark.parametrize(
        ("fields", "reason"),
        [
            ({"rate_limit": 0.5}, "rate_limit"),
            ({"latency_ms": -1}, "latency_ms"),
            ({"token_ttl": 0}, "token_ttl"),
            ({"unknown_ids": "skip"}, "unknown_ids"),
            ({"re_resign": "maybe"}, "re_resign"),
            ({"access_key_id": ""}, "access_key_id"),
        ],
    )
    def test_bad_values_name_the_field(self, fields: dict[str, object], reason: str) -> None:
        """A bad value is a one-line ConfigError naming the field."""
        with pytest.raises(ConfigError, match=reason):
            EmulatorConfig(**fields)  # type: ignore[arg-type]

    def test_probabilities_are_checked(self) -> None:
        """A fault probability outside [0, 1] is refused."""
        with pytest.raises(ConfigError, match="reset_after"):
            Faults(reset_after=1.5)

    def test_zero_rate_means_unlimited(self) -> None:
        """``rate_limit=0`` is the same as None."""
        assert EmulatorConfig(rate_limit=0).rate_limit is None

    def test_secret_is_not_in_the_repr(self) -> None:
        """The access key secret never shows in a repr."""
        assert DEMO_ACCESS_KEY_SECRET not in repr(EmulatorConfig())
        assert "hunter2" not in repr(EmulatorConfig(access_key_secret="hunter2"))
