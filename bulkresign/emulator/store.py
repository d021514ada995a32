"""Where the emulator keeps its users: the store protocol, and the explicit pool.

(:mod:`bulkresign.emulator.implicit` holds the other store.) Both stores speak canonical
``userId`` strings: a request's IDs are resolved once, and every later step (the re-resign check,
resigning, reading back, the oracle) is one dict lookup per user.
"""

from __future__ import annotations

from typing import Protocol

from bulkresign.emulator.users import LOOKUP_FIELDS, User, iso_time, lookup_key
from bulkresign.errors import InputError
from bulkresign.models import IdType, UserStatus

__all__ = ["ExplicitStore", "StateRow", "UserStore", "work_status"]

#: What the state file keeps per changed user: userId, status, statusChangedAt, updatedAt, count.
StateRow = tuple[str, str, float, float, int]

_RESIGNED = UserStatus.RESIGNED


def work_status(status: UserStatus) -> str:
    """``workStatus`` follows ``status``: Closed once Resigned, Active otherwise."""
    return "Closed" if status is _RESIGNED else "Active"


class UserStore(Protocol):
    """What the request handlers and the oracle need from a pool of users."""

    resigned_total: int
    """Users resigned at least once since the counters were last reset."""
    max_resign_count: int

    def __len__(self) -> int: ...
    def resolve(self, id_type: IdType, value: str) -> str | None: ...
    def resolve_many(self, id_type: IdType, values: list[str]) -> tuple[list[str], list[str]]: ...
    def resign(self, user_ids: list[str], now: float, *, refuse_resigned: bool) -> list[str]: ...
    def set_status(self, user_id: str, status: UserStatus, now: float) -> bool: ...
    def dto(self, user_id: str, *, identities: bool, departments: bool) -> dict[str, object]: ...
    def resign_counts(self) -> dict[str, int]: ...
    def reset_counts(self) -> None: ...
    def row(self, user_id: str) -> StateRow | None: ...
    def restore(self, row: StateRow) -> bool: ...


class ExplicitStore:
    """Users loaded from a file or generated; each ID type has its own index to the ``userId``."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._index: dict[IdType, dict[str, str]] = {t: {} for t in LOOKUP_FIELDS}
        self._counts: dict[str, int] = {}
        self.resigned_total = 0
        self.max_resign_count = 0

    def __len__(self) -> int:
        return len(self._users)

    def add(self, user: User, *, where: str) -> None:
        """Add ``user``; refuse a ``userId`` or any lookup value another user already has."""
        if user.user_id in self._users:
            raise InputError(f"{where}: user_id {user.user_id} appears twice")
        keys: list[tuple[dict[str, str], str]] = []
        for id_type, name in LOOKUP_FIELDS.items():
            for value in user.lookup_values(id_type):
                index, key = self._index[id_type], lookup_key(id_type, value)
                if key in index:
                    raise InputError(f"{where}: {name} {value!r} already belongs to {index[key]}")
                keys.append((index, key))
        self._users[user.user_id] = user
        for index, key in keys:
            index[key] = user.user_id

    def resolve(self, id_type: IdType, value: str) -> str | None:
        """The ``userId`` that ``value`` names under ``id_type``, or ``None``."""
        if id_type is IdType.USER_ID:
            return value if value in self._users else None
        return self._index[id_type].get(lookup_key(id_type, value))

    def resolve_many(self, id_type: IdType, values: list[str]) -> tuple[list[str], list[str]]:
        """The ``userId`` of each value that names a user, in order, and the values that do not."""
        if id_type is IdType.USER_ID:
            users = self._users
            found = [v for v in values if v in users]
            if len(found) == len(values):
                return found, []
            return found, [v for v in values if v not in users]
        index = self._index[id_type]
        known: list[str] = []
        unknown: list[str] = []
        for value in values:
            uid = index.get(lookup_key(id_type, value))
            if uid is None:
                unknown.append(value)
            else:
                known.append(uid)
        return known, unknown

    def resign(self, user_ids: list[str], now: float, *, refuse_resigned: bool) -> list[str]:
        """Resign each user: status Resigned, departments cleared, times set, count + 1.

        With ``refuse_resigned``, nothing is applied if one is already Resigned. Returns the
        users that were already Resigned.
        """
        users, counts = self._users, self._counts
        targets = [users[uid] for uid in user_ids]
        already = [u.user_id for u in targets if u.status is _RESIGNED]
        if already and refuse_resigned:
            return already
        for user in targets:
            user.status = _RESIGNED
            user.department_ids = ()
            user.updated_at = user.status_changed_at = now
            count = counts.get(user.user_id, 0) + 1
            counts[user.user_id] = count
            if count == 1:
                self.resigned_total += 1
            if count > self.max_resign_count:
                self.max_resign_count = count
        return already

    def set_status(self, user_id: str, status: UserStatus, now: float) -> bool:
        """Change a user's status behind the client's back; ``False`` if no such user."""
        user = self._users.get(user_id)
        if user is None:
            return False
        user.status = status
        user.updated_at = user.status_changed_at = now
        return True

    def dto(self, user_id: str, *, identities: bool, departments: bool) -> dict[str, object]:
        """The user as a ``UserDto``."""
        u = self._users[user_id]
        dto: dict[str, object] = {
            "userId": u.user_id,
            "status": u.status.value,
            "workStatus": work_status(u.status),
            "email": u.email,
            "phone": u.phone,
            "phoneCountryCode": u.phone_country_code,
            "username": u.username,
            "externalId": u.external_id,
            "createdAt": iso_time(u.created_at),
            "updatedAt": iso_time(u.updated_at),
            "statusChangedAt": iso_time(u.status_changed_at),
            "gender": "U",
            "emailVerified": False,
            "phoneVerified": False,
            "userSourceType": "adminCreated",
        }
        if identities:
            dto["identities"] = _identities(u)
        if departments:
            dto["departmentIds"] = list(u.department_ids)
        return dto

    def resign_counts(self) -> dict[str, int]:
        """``{userId: times resigned}`` for every user resigned at least once."""
        return self._counts.copy()

    def reset_counts(self) -> None:
        """Forget resign counts (statuses stay)."""
        self._counts = {}
        self.resigned_total = self.max_resign_count = 0

    def row(self, user_id: str) -> StateRow | None:
        """What the state file keeps about ``user_id``."""
        u = self._users.get(user_id)
        if u is None:
            return None
        count = self._counts.get(user_id, 0)
        return (user_id, u.status.value, u.status_changed_at, u.updated_at, count)

    def restore(self, row: StateRow) -> bool:
        """Apply a saved row; ``False`` if the user is not in this pool."""
        user_id, status, changed_at, updated_at, count = row
        user = self._users.get(user_id)
        if user is None:
            return False
        user.status = UserStatus(status)
        if user.status is _RESIGNED:
            user.department_ids = ()
        user.status_changed_at, user.updated_at = changed_at, updated_at
        if count:
            self._counts[user_id] = count
            self.resigned_total += 1
            self.max_resign_count = max(self.max_resign_count, count)
        return True


def _identities(u: User) -> list[dict[str, object]]:
    """The user's identity, as ``IdentityDto``. A sync relation is not an identity: UserDto
    carries none (listing it here, its provider as ``extIdpId``, let a read-back take a sync
    relation spelled as an identity for one the server knows)."""
    if u.identity is None:
        return []
    idp, _, in_idp = u.identity.partition(":")
    return [
        {
            "identityId": f"{u.user_id}-generic",
            "extIdpId": idp,
            "provider": "oidc",
            "type": "generic",
            "userIdInIdp": in_idp,
            "originConnIds": [],
        }
    ]
