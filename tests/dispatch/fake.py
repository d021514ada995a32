"""An in-memory GenAuth for dispatcher tests: applies resigns, counts them, injects faults."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import anyio

from bulkresign.errors import ConnectFailed, InDoubt, PermissionDenied, Rejected, Throttled
from bulkresign.models import Endpoint, IdType, ResignResult, UserRecord, UserStatus
from bulkresign.transport import SentHook


class Crash(BaseException):
    """Simulates the process dying: not an ApiError, so nothing in the dispatcher catches it."""


#: Faults a resign call can meet, and whether the server applied the call before it.
FAULTS = (
    "ok",
    "throttle",
    "connect",
    "error_before",
    "error_after",
    "reset_after",
    "crash_before",
    "crash_after",
)


@dataclass(eq=False)
class FakeServer:
    """Users that exist, what was applied, and a schedule of faults for the next calls."""

    known: set[str]
    applied: Counter[str] = field(default_factory=Counter)
    faults: Iterator[str] = field(default_factory=lambda: itertools.repeat("ok"))
    resign_calls: int = 0
    read_calls: int = 0
    duplicate_sends: int = 0
    """IDs sent again after the server had applied them."""
    refuse: frozenset[str] = frozenset()
    """IDs whose batch is rejected with statusCode 422 (a business rule the server enforces)."""

    async def resign_batch(
        self,
        endpoint: Endpoint,
        ids: Sequence[str],
        id_type: IdType,
        *,
        on_sent: SentHook | None = None,
    ) -> ResignResult:
        await anyio.sleep(0)
        self.resign_calls += 1
        assert 1 <= len(ids) <= 50 and len(set(ids)) == len(ids)
        fault = next(self.faults, "ok")
        if fault == "crash_before":
            raise Crash
        if fault == "connect":
            raise ConnectFailed("refused")
        if on_sent is not None:
            on_sent()
        if fault == "throttle":
            raise Throttled("throttled")
        if fault == "error_before":
            raise InDoubt("502 before", status_code=502)
        if unknown := [i for i in ids if i not in self.known]:
            raise Rejected(f"user {unknown[0]} not found", status_code=404, api_code=2004)
        if bad := [i for i in ids if i in self.refuse]:
            raise Rejected(f"user {bad[0]} refused", status_code=422, api_code=9999)
        for i in ids:
            if self.applied[i]:
                self.duplicate_sends += 1
            self.applied[i] += 1
        if fault == "crash_after":
            raise Crash
        if fault in ("error_after", "reset_after"):
            raise InDoubt(f"{fault}", status_code=500)
        return ResignResult(True, f"req-{self.resign_calls}", "ok")

    async def get_batch(
        self, endpoint: Endpoint, ids: Sequence[str], id_type: IdType
    ) -> list[UserRecord]:
        await anyio.sleep(0)
        self.read_calls += 1
        return [
            UserRecord(i, UserStatus.RESIGNED if self.applied[i] else UserStatus.ACTIVATED)
            for i in ids
            if i in self.known
        ]


@dataclass(eq=False)
class ForbiddenServer(FakeServer):
    """A server whose key lacks permission: every resign is refused with 403."""

    async def resign_batch(
        self,
        endpoint: Endpoint,
        ids: Sequence[str],
        id_type: IdType,
        *,
        on_sent: SentHook | None = None,
    ) -> ResignResult:
        self.resign_calls += 1
        raise PermissionDenied("forbidden", status_code=403)


@dataclass(eq=False)
class FrozenServer(FakeServer):
    """A server whose read-back reports every user it knows in a status the API does not list."""

    async def get_batch(
        self, endpoint: Endpoint, ids: Sequence[str], id_type: IdType
    ) -> list[UserRecord]:
        self.read_calls += 1
        return [UserRecord(i, "Frozen") for i in ids if i in self.known]
