"""The emulator's users: synthetic generation, JSONL loading, and the fields each ID type looks up.

Synthetic user ``i`` is a pure function of ``i`` (:func:`synthetic_user`), so tests, samples and
benchmarks can write input files that match an emulator started with ``--generate N``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bulkresign.errors import InputError
from bulkresign.models import IdType, UserStatus

__all__ = [
    "LOOKUP_FIELDS",
    "USER_ID_RE",
    "User",
    "iso_time",
    "load_users_file",
    "lookup_key",
    "parse_user",
    "synthetic_user",
    "synthetic_user_id",
]

#: ``phoneCountryCode`` as the API returns it: ``+`` and 1-4 digits.
_COUNTRY_CODE = re.compile(r"\+[0-9]{1,4}")
#: A GenAuth user ID as the emulator stores it: a MongoDB ObjectId, 24 lowercase hex digits.
USER_ID_RE = re.compile(r"[0-9a-f]{24}")

#: For each ID type except ``user_id``: the user field (as in the JSONL file) it looks up.
LOOKUP_FIELDS: dict[IdType, str] = {
    IdType.EMAIL: "email",
    IdType.PHONE: "phone",
    IdType.USERNAME: "username",
    IdType.EXTERNAL_ID: "external_id",
    IdType.IDENTITY: "identity",
    IdType.SYNC_RELATION: "sync_relation",
}

_STATUSES = {s.value: s for s in UserStatus}


def synthetic_user_id(i: int) -> str:
    """The ``user_id`` of synthetic user ``i``: the first 12 bytes of blake2b(str(i)), in hex."""
    return hashlib.blake2b(str(i).encode()).digest()[:12].hex()


def synthetic_user(i: int) -> dict[str, str]:
    """Synthetic user ``i`` as a JSONL-shaped record (the same fields ``--users`` files carry)."""
    return {
        "user_id": synthetic_user_id(i),
        "email": f"user{i}@example.com",
        "phone": f"555{i:07d}",
        "phone_country_code": "+1",
        "username": f"user{i}",
        "external_id": f"ext-{i}",
        "identity": f"idp1:u{i}",
        "sync_relation": f"wecom:u{i}",
    }


def lookup_key(id_type: IdType, value: str) -> str:
    """The index key of ``value``: emails compare case-insensitively, everything else exactly."""
    return value.lower() if id_type is IdType.EMAIL else value


class User:
    """One user of an explicit pool; mutable, because resigning changes it in place."""

    __slots__ = (
        "created_at",
        "department_ids",
        "email",
        "external_id",
        "identity",
        "phone",
        "phone_country_code",
        "status",
        "status_changed_at",
        "sync_relation",
        "updated_at",
        "user_id",
        "username",
    )

    def __init__(
        self,
        user_id: str,
        *,
        status: UserStatus,
        created_at: float,
        email: str | None = None,
        phone: str | None = None,
        phone_country_code: str | None = None,
        username: str | None = None,
        external_id: str | None = None,
        identity: str | None = None,
        sync_relation: str | None = None,
        department_ids: tuple[str, ...] = (),
    ) -> None:
        self.user_id = user_id
        self.status = status
        self.email = email
        self.phone = phone
        self.phone_country_code = phone_country_code
        self.username = username
        self.external_id = external_id
        self.identity = identity
        self.sync_relation = sync_relation
        self.department_ids = department_ids
        self.created_at = created_at
        self.updated_at = created_at
        self.status_changed_at = created_at

    def __repr__(self) -> str:
        return f"User({self.user_id}, {self.status.value})"

    def lookup_values(self, id_type: IdType) -> tuple[str, ...]:
        """What an ID of ``id_type`` may give to name this user: the field, and for a phone
        kept apart from its country code (as the API returns it) the two joined too."""
        value = getattr(self, LOOKUP_FIELDS[id_type])
        if value is None:
            return ()
        if id_type is IdType.PHONE and self.phone_country_code is not None:
            return (value, self.phone_country_code + value)
        return (value,)


def parse_user(record: object, *, created_at: float, where: str) -> User:
    """Validate one user record (a JSONL object) and build its :class:`User`.

    Raises:
        InputError: naming ``where`` and the offending field.
    """
    if not isinstance(record, Mapping):
        raise InputError(f"{where}: a user must be a JSON object")
    user_id = record.get("user_id")
    if not (isinstance(user_id, str) and USER_ID_RE.fullmatch(user_id)):
        raise InputError(f"{where}: user_id must be 24 lowercase hex digits, not {user_id!r}")
    fields: dict[str, str | None] = {}
    for name in LOOKUP_FIELDS.values():
        value = record.get(name)
        if value is not None and not (isinstance(value, str) and value):
            raise InputError(f"{where}: {name} must be a non-empty string, not {value!r}")
        fields[name] = value
    code = record.get("phone_country_code")
    if code is not None and not (isinstance(code, str) and _COUNTRY_CODE.fullmatch(code)):
        raise InputError(f"{where}: phone_country_code must look like '+86', not {code!r}")
    status = record.get("status", UserStatus.ACTIVATED.value)
    if status not in _STATUSES:
        raise InputError(f"{where}: status must be one of {', '.join(_STATUSES)}, not {status!r}")
    departments = record.get("department_ids", ())
    if not (isinstance(departments, list | tuple) and all(isinstance(d, str) for d in departments)):
        raise InputError(f"{where}: department_ids must be a list of strings")
    return User(
        user_id,
        status=_STATUSES[str(status)],
        created_at=created_at,
        department_ids=tuple(departments),
        email=fields["email"],
        phone=fields["phone"],
        phone_country_code=code,
        username=fields["username"],
        external_id=fields["external_id"],
        identity=fields["identity"],
        sync_relation=fields["sync_relation"],
    )


def load_users_file(path: Path) -> Iterator[tuple[str, object]]:
    """Yield ``(where, record)`` for each non-blank line of a JSONL users file.

    Raises:
        InputError: the file cannot be read, or a line is not JSON.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read users file: {exc.strerror}", path=str(path)) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"not JSON: {exc}", path=str(path), line=number) from None
            yield f"{path}:{number}", record


_ISO_CACHE: dict[float, str] = {}


def iso_time(epoch: float) -> str:
    """``epoch`` as the API writes dates: ISO 8601, milliseconds, UTC ``Z``.

    Memoized: a read-back of 50 users formats a handful of distinct instants (every user created
    at start, every user of a batch resigned at once), and formatting costs ~2 µs.
    """
    text = _ISO_CACHE.get(epoch)
    if text is None:
        if len(_ISO_CACHE) > 4096:
            _ISO_CACHE.clear()
        text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        _ISO_CACHE[epoch] = text
    return text
