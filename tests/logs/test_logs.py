"""Structured logs: JSON lines in a private file, secrets redacted, personal IDs pseudonymized."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

import orjson
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bulkresign.errors import ConfigError
from bulkresign.logs import (
    REDACTED,
    Pseudonymizer,
    Redactor,
    add_secret,
    configure_logging,
    get_logger,
    pseudonym,
    redact,
    reset_logging,
)

CANARY = "CANARY-7f3e9a-s3cr3t"
KEY = bytes(range(16))
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.c2lnbmF0dXJlLWJ5dGVz"

Events = Callable[[], list[dict[str, object]]]


class TestFile:
    """The log is one JSON object per line in a private file."""

    def test_lines_carry_timestamp_level_and_event(
        self, log_path: Path, read_events: Events
    ) -> None:
        """Each event has an ISO-8601 UTC timestamp, its level and its name."""
        configure_logging(log_path, pseudonym_key=KEY)
        get_logger().warning("batch_sent", seq=3)
        [event] = read_events()
        assert event["event"] == "batch_sent"
        assert event["level"] == "warning"
        assert event["seq"] == 3
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", str(event["timestamp"]))

    def test_file_is_private_under_umask_022(self, log_path: Path, umask_022: None) -> None:
        """The log is created with mode 0600 even when the umask would allow 0644."""
        configure_logging(log_path)
        assert stat.S_IMODE(log_path.stat().st_mode) == 0o600

    def test_existing_shared_file_is_refused(self, log_path: Path) -> None:
        """A log file others can read is not appended to."""
        log_path.touch()
        os.chmod(log_path, 0o644)
        with pytest.raises(ConfigError, match="chmod 600"):
            configure_logging(log_path)

    def test_a_symbolic_link_is_refused(self, log_path: Path, tmp_path: Path) -> None:
        """A log named by a symbolic link is refused: its target is left as it was."""
        target = tmp_path / "private.txt"
        target.write_text("precious\n")
        os.chmod(target, 0o600)
        log_path.symlink_to(target)
        with pytest.raises(ConfigError, match="symbolic link"):
            configure_logging(log_path)
        assert target.read_text() == "precious\n"

    def test_a_directory_is_refused_by_name(self, tmp_path: Path) -> None:
        """--log naming a folder says so, with its path (it said "3: Is a directory")."""
        with pytest.raises(ConfigError, match=rf"{tmp_path}: is a directory"):
            configure_logging(tmp_path)

    def test_a_file_that_is_not_a_log_is_refused(self, log_path: Path) -> None:
        """An existing private file whose first line is not a log event is never appended to."""
        log_path.write_text("precious\n")
        os.chmod(log_path, 0o600)
        with pytest.raises(ConfigError, match="not a bulkresign log"):
            configure_logging(log_path)
        assert log_path.read_text() == "precious\n"

    def test_existing_private_file_is_appended(self, log_path: Path, read_events: Events) -> None:
        """A resumed run's log continues after the previous run's lines."""
        configure_logging(log_path)
        get_logger().info("first")
        configure_logging(log_path)
        get_logger().info("second")
        assert [e["event"] for e in read_events()] == ["first", "second"]

    def test_level_filters_lower_events(self, log_path: Path, read_events: Events) -> None:
        """Events below the configured level are not written."""
        configure_logging(log_path, level="warning")
        get_logger().info("quiet")
        get_logger().error("loud")
        assert [e["event"] for e in read_events()] == ["loud"]

    def test_unknown_level_is_a_config_error(self, log_path: Path) -> None:
        """A misspelt level is refused with a one-line error naming it."""
        with pytest.raises(ConfigError, match="'verbose'"):
            configure_logging(log_path, level="verbose")

    def test_reconfiguring_moves_loggers_to_the_new_file(self, tmp_path: Path) -> None:
        """A logger fetched before a reconfiguration writes to the new file."""
        log = structlog.get_logger()
        configure_logging(tmp_path / "a.log")
        log.info("to_a")
        configure_logging(tmp_path / "b.log")
        log.info("to_b")
        reset_logging()
        assert b"to_a" in (tmp_path / "a.log").read_bytes()
        assert b"to_b" not in (tmp_path / "a.log").read_bytes()
        assert b"to_b" in (tmp_path / "b.log").read_bytes()

    def test_no_path_logs_nothing(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a path, events are dropped rather than printed."""
        configure_logging(None)
        get_logger().error("nowhere", detail=1)
        assert capsys.readouterr() == ("", "")
        assert list(tmp_path.iterdir()) == []


class _Kind(StrEnum):
    OK = "ok"


_TEXT = st.sampled_from(["", "plain", f"a{CANARY}b", CANARY, f"x {JWT}", "k", "ey", "\0"])
_TEXT |= st.text()
_KEYS = st.sampled_from(["batch", "ids", "token", "accessKeySecret", "note", CANARY, "k", "ey"])
_VALUES = (
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | _TEXT
    | st.just(_Kind.OK)
    | st.lists(_TEXT, max_size=5)
    | st.lists(_TEXT, max_size=5).map(tuple)
    | st.lists(st.integers() | _TEXT, max_size=3)
    | st.dictionaries(_KEYS, _TEXT, max_size=2)
)
_EVENTS = st.dictionaries(_KEYS | st.text(max_size=5), _VALUES, max_size=6)


class TestRedaction:
    """No secret reaches the log, whatever shape it arrives in."""

    @pytest.mark.parametrize(
        "name",
        [
            "authorization",
            "Authorization",
            "access_token",
            "accessToken",
            "token",
            "secret",
            "accessKeySecret",
            "password",
            "cookie",
            "Set-Cookie",
            "refresh_token",
            "api_key",
        ],
    )
    def test_secret_named_fields_are_redacted(self, name: str) -> None:
        """A field named like a credential loses its value, whatever the value is."""
        assert redact({name: "abc", "nested": {name: {"x": 1}}}) == {
            name: REDACTED,
            "nested": {name: REDACTED},
        }

    def test_canary_in_nested_structures_never_reaches_the_file(self, log_path: Path) -> None:
        """A registered secret is cut out of strings inside dicts, lists, tuples, bytes and sets."""
        configure_logging(log_path, secrets=[CANARY])
        get_logger().info(
            "request",
            headers={"X-Debug": f"Bearer {CANARY}"},
            body=[{"note": f"x{CANARY}y"}, (CANARY,)],
            raw=CANARY.encode(),
            tags={f"k={CANARY}"},
            **{f"key-{CANARY}": 1},
        )
        reset_logging()
        text = log_path.read_text()
        assert CANARY not in text
        assert f"x{REDACTED}y" in text

    def test_a_secret_among_many_plain_strings_is_redacted(self, log_path: Path) -> None:
        """A list of IDs (scanned in one pass) still loses a secret hidden at any position."""
        configure_logging(log_path, secrets=[CANARY])
        ids = [f"{i:024x}" for i in range(50)]
        for at in (0, 25, 49):
            get_logger().info("batch", notes=[*ids[:at], f"x{CANARY}", *ids[at:]])
        get_logger().info("clean", notes=ids)
        reset_logging()
        text = log_path.read_text()
        assert CANARY not in text
        assert text.count(f"x{REDACTED}") == 3
        assert ids[7] in text

    def test_canary_in_exception_message_and_traceback_is_redacted(self, log_path: Path) -> None:
        """Exceptions, logged as a field or with their traceback, lose the secret too."""
        configure_logging(log_path, secrets=[CANARY])
        try:
            raise RuntimeError(f"login failed with {CANARY}")
        except RuntimeError as exc:
            get_logger().exception("auth_failed", error=exc)
        reset_logging()
        text = log_path.read_text()
        assert CANARY not in text
        assert "RuntimeError" in text

    def test_tracebacks_carry_no_locals(self, log_path: Path) -> None:
        """An unregistered secret held in a local variable does not appear in a traceback."""
        configure_logging(log_path)
        password_in_a_local = "hunter2-local-only"
        try:
            raise ValueError("boom")
        except ValueError:
            get_logger().exception("failed")
        reset_logging()
        assert password_in_a_local not in log_path.read_text()
        assert '"frames"' in log_path.read_text()

    def test_secret_added_later_is_redacted(self, log_path: Path) -> None:
        """A token minted after configuration is redacted once the client registers it."""
        configure_logging(log_path)
        add_secret("minted-token-0042")
        get_logger().info("refreshed", detail="new token minted-token-0042 ok")
        reset_logging()
        assert "minted-token-0042" not in log_path.read_text()

    def test_jwt_looking_strings_are_redacted(self) -> None:
        """A JWT is redacted even when nobody registered it."""
        assert redact({"detail": f"got {JWT} back"}) == {"detail": f"got {REDACTED} back"}

    def test_other_objects_are_scrubbed_after_conversion(self) -> None:
        """Dataclasses become dicts (so field names count) and other objects their str()."""

        @dataclass(frozen=True)
        class Creds:
            access_key_id: str
            access_key_secret: str

        class Leaky:
            def __str__(self) -> str:
                return f"Leaky({CANARY})"

        add_secret(CANARY)
        assert redact({"c": Creds("id1", "s"), "o": Leaky()}) == {
            "c": {"access_key_id": "id1", "access_key_secret": REDACTED},
            "o": f"Leaky({REDACTED})",
        }

    def test_integers_orjson_cannot_hold_become_text(self) -> None:
        """An integer wider than 64 bits is logged as its digits instead of failing the call."""
        assert redact({"n": 2**70, "m": 5}) == {"n": str(2**70), "m": 5}

    def test_self_referencing_structure_does_not_crash(self) -> None:
        """A structure that contains itself is cut off instead of recursing forever."""
        loop: dict[str, object] = {}
        loop["self"] = loop
        assert "[too deep]" in repr(redact(loop))

    @settings(max_examples=300, deadline=None)
    @given(event=_EVENTS)
    def test_flat_events_redact_as_the_full_walk_does(self, event: dict[str, object]) -> None:
        """The one-search path for flat events gives what walking every value gives."""
        reset_logging()
        add_secret(CANARY)
        add_secret("k\0ey")
        walked = redact(MappingProxyType(event))  # not a dict: always the full walk
        assert orjson.dumps(redact(event)) == orjson.dumps(walked)

    def test_reset_forgets_secrets(self) -> None:
        """reset_logging() clears the registry, so tests do not leak secrets into each other."""
        add_secret("forget-me")
        reset_logging()
        assert redact("forget-me") == "forget-me"


class TestPseudonyms:
    """Personal IDs appear in the log only as keyed pseudonyms."""

    def test_pseudonym_is_truncated_hmac_sha256(self) -> None:
        """pseudonym() is p: plus the first 12 hex digits of HMAC-SHA256(key, id)."""
        expected = hmac.new(KEY, b"ann@example.com", hashlib.sha256).hexdigest()[:12]
        assert pseudonym(KEY, "ann@example.com") == f"p:{expected}"

    def test_pseudonym_depends_on_the_key(self) -> None:
        """Another run's key gives another pseudonym, so logs of two runs cannot be joined."""
        assert pseudonym(KEY, "ann@example.com") != pseudonym(b"other key", "ann@example.com")

    def test_emails_phones_and_ids_are_pseudonymized(
        self, log_path: Path, read_events: Events
    ) -> None:
        """ID fields, single or lists, nested or not, hold pseudonyms; other fields stay."""
        configure_logging(log_path, pseudonym_key=KEY)
        get_logger().info(
            "batch_outcome",
            email="ann@example.com",
            phone="+8613800000000",
            ids=["u1", "u2"],
            detail={"user_id": "u3"},
            request_id="req-1",
            userpool_id="pool-1",
        )
        [event] = read_events()
        assert event["email"] == pseudonym(KEY, "ann@example.com")
        assert event["phone"] == pseudonym(KEY, "+8613800000000")
        assert event["ids"] == [pseudonym(KEY, "u1"), pseudonym(KEY, "u2")]
        assert event["detail"] == {"user_id": pseudonym(KEY, "u3")}
        assert (event["request_id"], event["userpool_id"]) == ("req-1", "pool-1")
        assert "ann@example.com" not in log_path.read_text()

    def test_ids_a_server_message_names_are_pseudonymized(
        self, log_path: Path, read_events: Events
    ) -> None:
        """The server's text names an unknown ID: given in text_ids, it is replaced there."""
        configure_logging(log_path, pseudonym_key=KEY)
        get_logger().info(
            "attempt_finished",
            message="用户不存在: ghost@nowhere.org",
            text_ids=["ghost@nowhere.org"],
        )
        [event] = read_events()
        assert event["message"] == f"用户不存在: {pseudonym(KEY, 'ghost@nowhere.org')}"
        assert "text_ids" not in event and "ghost@" not in log_path.read_text()

    def test_a_user_id_a_server_message_names_is_pseudonymized(
        self, log_path: Path, read_events: Events
    ) -> None:
        """The server names the account's user_id, not the email sent: it is hidden as well."""
        configure_logging(log_path, pseudonym_key=KEY)
        uid = "f2e74cbc3eff574bbc45333c"
        get_logger().info(
            "attempt_finished", message=f"不能重复离职: {uid}", text_ids=["ann@example.com"]
        )
        [event] = read_events()
        assert event["message"] == f"不能重复离职: {pseudonym(KEY, uid)}"

    @pytest.mark.parametrize(
        ("sent", "echoed"),
        [("ann@example.com", "ANN@EXAMPLE.COM"), ("+15550004001", "5550004001")],
    )
    def test_an_id_the_server_spells_otherwise_is_pseudonymized(
        self, log_path: Path, read_events: Events, sent: str, echoed: str
    ) -> None:
        """The server echoes an ID as it stores it (another case, a phone's national number):
        still replaced by the pseudonym of the ID sent."""
        configure_logging(log_path, pseudonym_key=KEY)
        get_logger().info("attempt_finished", message=f"no such user: {echoed}", text_ids=[sent])
        [event] = read_events()
        assert event["message"] == f"no such user: {pseudonym(KEY, sent)}"

    def test_log_ids_turns_pseudonyms_off(self, log_path: Path, read_events: Events) -> None:
        """With log_ids=True the IDs are logged as given."""
        configure_logging(log_path, pseudonym_key=KEY, log_ids=True)
        get_logger().info("batch_sent", ids=["ann@example.com"])
        [event] = read_events()
        assert event["ids"] == ["ann@example.com"]

    def test_pseudonym_key_never_appears(self, log_path: Path) -> None:
        """The run's key is itself redacted if something logs it."""
        configure_logging(log_path, pseudonym_key=KEY)
        get_logger().info("manifest", detail={"key": KEY.hex()}, pseudonym_key=KEY.hex())
        reset_logging()
        assert KEY.hex() not in log_path.read_text()

    def test_processors_compose_under_capture_logs(self) -> None:
        """The processors work on their own, e.g. in front of structlog's LogCapture."""
        add_secret(CANARY)
        with capture_logs(processors=[Redactor(), Pseudonymizer(KEY)]) as logs:
            get_logger().info("sent", value="ann@example.com", note=CANARY)
        assert logs == [
            {
                "event": "sent",
                "log_level": "info",
                "value": pseudonym(KEY, "ann@example.com"),
                "note": REDACTED,
            }
        ]
