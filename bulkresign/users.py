"""Read-back answers: ``UserDto`` JSON to :class:`UserRecord`, and which record answers which ID.

``get-user-batch`` returns the users it found, in no promised order, and omits unknown IDs, so
the caller must attribute each record to the ID it asked for by the field the ID type names.
"""

from __future__ import annotations

from collections.abc import Sequence

from bulkresign.models import IdType, UserRecord, UserStatus

__all__ = ["match_users", "parse_users"]

#: By their casefolded names: ``RESIGNED`` from a server means Resigned, not an unknown state.
_STATUSES = {s.value.casefold(): s for s in UserStatus}


def _opt_str(item: dict[str, object], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) and value else None


def _identities(item: dict[str, object]) -> tuple[str, ...]:
    raw = item.get("identities")
    if not isinstance(raw, list):
        return ()
    out = []
    for identity in raw:
        if not isinstance(identity, dict):
            continue
        idp, uid = identity.get("extIdpId"), identity.get("userIdInIdp")
        if isinstance(idp, str) and isinstance(uid, str) and idp and uid:
            out.append(f"{idp}:{uid}")
    return tuple(out)


def parse_users(data: object) -> list[UserRecord]:
    """The records in a read-back's ``data``; ``ValueError`` if it is not a list of users.

    A user needs a string ``userId`` and ``status``; a status outside :class:`UserStatus` is kept
    as its string, so a new server state is reported rather than crashing the run.
    """
    if not isinstance(data, list):
        raise ValueError("data is not a list of users")
    records = []
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"data[{position}] is not an object")
        user_id, status = item.get("userId"), item.get("status")
        if not isinstance(user_id, str) or not user_id:
            raise ValueError(f"data[{position}] has no userId")
        if not isinstance(status, str) or not status:
            raise ValueError(f"data[{position}] has no status")
        records.append(
            UserRecord(
                user_id=user_id,
                status=_STATUSES.get(status.strip().casefold(), status),
                email=_opt_str(item, "email"),
                phone=_opt_str(item, "phone"),
                username=_opt_str(item, "username"),
                external_id=_opt_str(item, "externalId"),
                identities=_identities(item),
                phone_country_code=_opt_str(item, "phoneCountryCode"),
            )
        )
    return records


def _keys(record: UserRecord, id_type: IdType) -> tuple[str, ...]:
    """The values of ``record`` an ID of ``id_type`` can equal, normalized for comparison."""
    if id_type is IdType.IDENTITY:
        return record.identities
    if id_type is IdType.PHONE:
        return _phones(record)
    value = {
        IdType.USER_ID: record.user_id,
        IdType.EMAIL: record.email,
        IdType.PHONE: record.phone,
        IdType.USERNAME: record.username,
        IdType.EXTERNAL_ID: record.external_id,
    }.get(id_type)
    if value is None:
        return ()
    return (value.casefold(),) if id_type is IdType.EMAIL else (value,)


def _phones(record: UserRecord) -> tuple[str, ...]:
    """The record's phone as returned (``188xxxx8888``) and with its ``phoneCountryCode``
    (``+86188xxxx8888``): the API keeps the two apart, an input may give either form."""
    phone, code = record.phone, record.phone_country_code
    if phone is None:
        return ()
    if code is None or phone.startswith("+"):
        return (phone,)
    return (phone, f"+{code.lstrip('+')}{phone}")


def match_users(
    asked: Sequence[str], id_type: IdType, records: Sequence[UserRecord]
) -> dict[str, UserRecord]:
    """Which returned record answers which asked ID; IDs without an answer are left out.

    A record answers an ID when the field named by ``id_type`` equals it (``email`` compared
    case-insensitively; ``identity`` against each ``<extIdpId>:<userIdInIdp>`` of the record,
    which the read-back returns only with ``withIdentities=true``). A record returned twice,
    identical, counts once; an ID two different records claim is ambiguous and left out.
    ``UserDto`` carries no sync relations, so a ``sync_relation`` ID — or any ID whose field
    the record lacks — can be attributed only when exactly one ID was asked and exactly one
    record came back: the server's own lookup then answers it.

    Callers that cannot attribute every returned record (an ID absent from the result while an
    unattributed record came back) fall back to reading each such ID back on its own.
    """
    found: dict[str, UserRecord] = {}
    records = list(dict.fromkeys(records))  # the same record twice is one answer, not two
    if id_type is not IdType.SYNC_RELATION:
        index: dict[str, list[UserRecord]] = {}
        for record in records:
            for key in set(_keys(record, id_type)):
                index.setdefault(key, []).append(record)
        for user_id in asked:
            key = user_id.casefold() if id_type is IdType.EMAIL else user_id
            candidates = index.get(key, [])
            if len(candidates) == 1:
                found[user_id] = candidates[0]
    if len(asked) == 1 and len(records) == 1 and asked[0] not in found:
        only = records[0]
        if id_type is IdType.SYNC_RELATION or not _keys(only, id_type):
            found[asked[0]] = only
    return found
