"""The implicit pool: every 24-lowercase-hex ``userId`` exists, and only changes are stored.

It lets a benchmark resign 10M users without loading 10M users first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator

from bulkresign.emulator.store import StateRow, work_status
from bulkresign.emulator.users import USER_ID_RE, iso_time
from bulkresign.models import IdType, UserStatus

__all__ = ["ImplicitStore"]

#: A comma-joined batch of valid user IDs (the fast path of :meth:`ImplicitStore.resolve_many`).
_ALL_IDS_RE = re.compile(r"[0-9a-f]{24}(?:,[0-9a-f]{24})*")
_STATUS_LIST = tuple(UserStatus)
_RESIGNED_BITS = _STATUS_LIST.index(UserStatus.RESIGNED)
_COUNT_SHIFT, _COUNT_MASK, _TICK_SHIFT = 4, 0xFFFFF, 24


#: Shards of the changed-users map (a power of two; keys are routed by a hash of the key).
_SHARD_BITS = 12
_SHARDS = 1 << _SHARD_BITS
_WORD = (1 << 64) - 1


def _shard(key: int) -> int:
    """MurmurHash3's 64-bit finalizer (fmix64) of the key's low word, top bits.

    Keys that count up (an ObjectId's counter, the benchmarks' IDs) must land at random: routed
    by their low bits, or by any hash linear in the key (Python's int and tuple hashes, a
    multiplicative hash), they fill the shards evenly, and so all at once.
    https://github.com/aappleby/smhasher/blob/master/src/MurmurHash3.cpp
    """
    x = key & _WORD
    x = ((x ^ (x >> 33)) * 0xFF51AFD7ED558CCD) & _WORD
    x = ((x ^ (x >> 33)) * 0xC4CEB9FE1A85EC53) & _WORD
    return (x ^ (x >> 33)) >> (64 - _SHARD_BITS)


class _ShardedMap:
    """``dict[int, int]`` split in :data:`_SHARDS` dicts by a hash of the key.

    One dict of millions of users doubles in one go when it fills (a copy of every entry: 7-10 ms
    at 150k users, hundreds at 10M), and the emulator answers nothing meanwhile; the requests that
    queue up then reach the rate window together, as a burst the client never sent. Shards grow a
    little at a time — if they fill unevenly. Routed by the key's low bits, IDs that count up
    (ObjectIds, the benchmarks' IDs) filled every shard in lockstep, and all 4,096 doubled within a
    quarter of a second: at 1.4M, 2.8M and 5.6M users of a 10M run, the same burst.
    """

    __slots__ = ("_maps",)

    def __init__(self, items: Iterable[tuple[int, int]] = ()) -> None:
        self._maps: list[dict[int, int]] = [{} for _ in range(_SHARDS)]
        for key, value in items:
            self[key] = value

    def get(self, key: int, default: int | None = None) -> int | None:
        return self._maps[_shard(key)].get(key, default)

    def __setitem__(self, key: int, value: int) -> None:
        self._maps[_shard(key)][key] = value

    def __len__(self) -> int:
        return sum(map(len, self._maps))

    def items(self) -> Iterator[tuple[int, int]]:
        return itertools.chain.from_iterable(m.items() for m in self._maps)


class ImplicitStore:
    """Every 24-lowercase-hex ``userId`` exists and is Activated until something changes it.

    Only changed users are stored, each as one ``int`` key (the ID's 96 bits: 40 B against 73 B for
    the string) mapped to one packed ``int``: status index (4 bits), resign count (20 bits) and an
    index into ``_ticks``, the list of distinct change instants. Every user a request resigns
    shares one value object, so 10M resigned users cost about 75 B each. Other ID types name no
    one: implicit mode is for ``user_id`` runs.
    """

    def __init__(self, created_at: float) -> None:
        self._created_at = created_at
        self._changed = _ShardedMap()
        self._ticks: list[float] = []
        self.resigned_total = 0
        self.max_resign_count = 0

    def __len__(self) -> int:
        return len(self._changed)

    def _tick(self, now: float) -> int:
        ticks = self._ticks
        if not ticks or ticks[-1] != now:
            ticks.append(now)
        return len(ticks) - 1

    def resolve(self, id_type: IdType, value: str) -> str | None:
        """``value`` itself if it is a 24-lowercase-hex ``user_id``, else ``None``."""
        if id_type is IdType.USER_ID and USER_ID_RE.fullmatch(value):
            return value
        return None

    def resolve_many(self, id_type: IdType, values: list[str]) -> tuple[list[str], list[str]]:
        """The valid user IDs among ``values``, in order, and the others.

        One regex match over the comma-joined batch settles the usual case (all valid) in C. If
        the join is exactly ``len(values)`` IDs long, no value can hold a comma of its own.
        """
        if id_type is not IdType.USER_ID:
            return [], list(values)
        joined = ",".join(values)
        if len(joined) == 25 * len(values) - 1 and _ALL_IDS_RE.fullmatch(joined):
            return values, []
        known: list[str] = []
        unknown: list[str] = []
        for value in values:
            (known if USER_ID_RE.fullmatch(value) else unknown).append(value)
        return known, unknown

    def resign(self, user_ids: list[str], now: float, *, refuse_resigned: bool) -> list[str]:
        """Resign each user (count + 1), unless ``refuse_resigned`` and one already is.

        Returns the users that were already Resigned.
        """
        changed = self._changed
        keys = [int(uid, 16) for uid in user_ids]
        before = list(map(changed.get, keys))
        if before.count(None) == len(keys):  # the usual case: nobody here has changed before
            first = (self._tick(now) << _TICK_SHIFT) | (1 << _COUNT_SHIFT) | _RESIGNED_BITS
            for key in keys:
                changed[key] = first
            self.resigned_total += len(keys)
            self.max_resign_count = max(self.max_resign_count, 1)
            return []
        already = [
            uid
            for uid, packed in zip(user_ids, before, strict=True)
            if packed is not None and packed & 15 == _RESIGNED_BITS
        ]
        if already and refuse_resigned:
            return already
        base = (self._tick(now) << _TICK_SHIFT) | _RESIGNED_BITS
        for key, packed in zip(keys, before, strict=True):
            count = 1 if packed is None else ((packed >> _COUNT_SHIFT) & _COUNT_MASK) + 1
            changed[key] = base | (min(count, _COUNT_MASK) << _COUNT_SHIFT)
            if count == 1:
                self.resigned_total += 1
            if count > self.max_resign_count:
                self.max_resign_count = count
        return already

    def set_status(self, user_id: str, status: UserStatus, now: float) -> bool:
        """Change a user's status; ``False`` if ``user_id`` is not 24 lowercase hex digits."""
        if not USER_ID_RE.fullmatch(user_id):
            return False
        key = int(user_id, 16)
        count = ((self._changed.get(key) or 0) >> _COUNT_SHIFT) & _COUNT_MASK
        self._changed[key] = (
            (self._tick(now) << _TICK_SHIFT) | (count << _COUNT_SHIFT) | _STATUS_LIST.index(status)
        )
        return True

    def dto(self, user_id: str, *, identities: bool, departments: bool) -> dict[str, object]:
        """The user as a ``UserDto``; implicit users have no profile fields."""
        packed = self._changed.get(int(user_id, 16))
        status = UserStatus.ACTIVATED if packed is None else _STATUS_LIST[packed & 15]
        changed_at = self._created_at if packed is None else self._ticks[packed >> _TICK_SHIFT]
        dto: dict[str, object] = {
            "userId": user_id,
            "status": status.value,
            "workStatus": work_status(status),
            "email": None,
            "phone": None,
            "phoneCountryCode": None,
            "username": None,
            "externalId": None,
            "createdAt": iso_time(self._created_at),
            "updatedAt": iso_time(changed_at),
            "statusChangedAt": iso_time(changed_at),
            "gender": "U",
            "emailVerified": False,
            "phoneVerified": False,
            "userSourceType": "adminCreated",
        }
        if identities:
            dto["identities"] = []
        if departments:
            dto["departmentIds"] = []
        return dto

    def resign_counts(self) -> dict[str, int]:
        """``{userId: times resigned}`` for every user resigned at least once."""
        counts = {}
        for key, packed in list(self._changed.items()):
            count = (packed >> _COUNT_SHIFT) & _COUNT_MASK
            if count:
                counts[format(key, "024x")] = count
        return counts

    def reset_counts(self) -> None:
        """Forget resign counts (statuses stay)."""
        keep = ~(_COUNT_MASK << _COUNT_SHIFT)
        self._changed = _ShardedMap((key, packed & keep) for key, packed in self._changed.items())
        self.resigned_total = self.max_resign_count = 0

    def row(self, user_id: str) -> StateRow | None:
        """What the state file keeps about ``user_id``, if it changed."""
        packed = self._changed.get(int(user_id, 16))
        if packed is None:
            return None
        at = self._ticks[packed >> _TICK_SHIFT]
        count = (packed >> _COUNT_SHIFT) & _COUNT_MASK
        return (user_id, _STATUS_LIST[packed & 15].value, at, at, count)

    def restore(self, row: StateRow) -> bool:
        """Apply a saved row."""
        user_id, status, changed_at, _, count = row
        if not USER_ID_RE.fullmatch(user_id):
            return False
        self._changed[int(user_id, 16)] = (
            (self._tick(changed_at) << _TICK_SHIFT)
            | (min(count, _COUNT_MASK) << _COUNT_SHIFT)
            | _STATUS_LIST.index(UserStatus(status))
        )
        if count:
            self.resigned_total += 1
            self.max_resign_count = max(self.max_resign_count, count)
        return True
