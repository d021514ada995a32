"""Values and states shared by every stage: ID types, endpoints, user statuses, batches, outcomes.

Everything here is a frozen dataclass or an enum, so a value can cross a stream or a thread
without anyone changing it on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "MAX_BATCH",
    "Batch",
    "BatchState",
    "Endpoint",
    "IdType",
    "LineOutcome",
    "ResignResult",
    "UserRecord",
    "UserStatus",
]

#: The API's limit on ``userIds`` in one resign or read-back call.
MAX_BATCH = 50


class IdType(StrEnum):
    """The ``userIdType`` of a call: which field of the user the IDs in a batch name."""

    USER_ID = "user_id"
    PHONE = "phone"
    EMAIL = "email"
    USERNAME = "username"
    EXTERNAL_ID = "external_id"
    IDENTITY = "identity"
    SYNC_RELATION = "sync_relation"


class Endpoint(StrEnum):
    """Which pair of resign / read-back endpoints a run uses."""

    PUBLIC_ACCOUNT = "public-account"
    USER = "user"

    @property
    def resign_path(self) -> str:
        """The path of the batch resign call."""
        if self is Endpoint.PUBLIC_ACCOUNT:
            return "/api/v3/resign-public-account-batch"
        return "/api/v3/resign-user-batch"

    @property
    def read_path(self) -> str:
        """The path of the batch read-back call."""
        if self is Endpoint.PUBLIC_ACCOUNT:
            return "/api/v3/get-public-account-batch"
        return "/api/v3/get-user-batch"

    @property
    def read_id_types(self) -> frozenset[IdType]:
        """The ID types its read-back call takes: ``get-public-account-batch`` documents no
        ``identity`` or ``sync_relation`` (nor ``withIdentities``), unlike ``get-user-batch``."""
        if self is Endpoint.PUBLIC_ACCOUNT:
            return frozenset(IdType) - {IdType.IDENTITY, IdType.SYNC_RELATION}
        return frozenset(IdType)


class UserStatus(StrEnum):
    """``UserDto.status`` as the API reports it."""

    ACTIVATED = "Activated"
    SUSPENDED = "Suspended"
    RESIGNED = "Resigned"
    ARCHIVED = "Archived"
    DEACTIVATED = "Deactivated"


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch of 1..50 normalized IDs, numbered from 0 in input order.

    ``lines`` holds the input line number of each ID's first occurrence, aligned with ``ids``.
    """

    seq: int
    ids: tuple[str, ...]
    lines: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ResignResult:
    """A resign call the server answered with statusCode 200."""

    success: bool
    request_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class UserRecord:
    """The fields of one user returned by a read-back call that bulkresign needs."""

    user_id: str
    status: UserStatus | str
    email: str | None = None
    phone: str | None = None
    username: str | None = None
    external_id: str | None = None
    identities: tuple[str, ...] = ()
    """``<extIdpId>:<userIdInIdp>`` of each identity, when the server returned them."""
    phone_country_code: str | None = None
    """``phoneCountryCode`` (``+86``): the API returns ``phone`` without it."""


class BatchState(StrEnum):
    """Where a batch stands in the ledger.

    ``PENDING → SENDING(attempt) → DONE | REJECTED | IN_DOUBT → RECONCILED``; ``SENDING`` is
    committed before the request leaves, so a crash leaves ``SENDING``, which resume treats as
    ``IN_DOUBT``.
    """

    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    REJECTED = "rejected"
    IN_DOUBT = "in_doubt"
    RECONCILED = "reconciled"


class LineOutcome(StrEnum):
    """The outcome of one input line, as the report states it."""

    RESIGNED = "resigned"
    NOT_FOUND = "not_found"
    REJECTED_INVALID = "rejected_invalid"
    DUPLICATE = "duplicate"
    EXCLUDED = "excluded"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNPROCESSED = "unprocessed"
    """Never sent, or sent and known not applied: safe to send from another run."""
    IN_DOUBT = "in_doubt"
    """Its batch's call was (or may have been) sent, without a recorded answer: only a resume of
    the same run, which reads it back first, may settle it."""
