"""The GenAuth wire format: request validation (class-validator style messages) and envelopes.

Business errors travel as HTTP 200 with the error in the body's ``statusCode`` (GenAuth's error
handling guide: "所有接口返回的 HTTP 状态码均为 200"); only throttling uses a real HTTP 429.
Validation messages follow the vendor's tests: ``"参数 userIds 格式错误"`` for a missing or empty
list, class-validator's English for the rest, several joined with ``","``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import orjson
from aiohttp import web
from multidict import MultiMapping

from bulkresign.models import MAX_BATCH, IdType

__all__ = [
    "BAD_USER_IDS",
    "THROTTLED_MESSAGE",
    "BadRequest",
    "IdsRequest",
    "envelope",
    "parse_json_object",
    "parse_read_query",
    "parse_resign_body",
]

BAD_USER_IDS = "参数 userIds 格式错误"
TOO_MANY = f"userIds must contain no more than {MAX_BATCH} elements"
NOT_STRINGS = "each value in userIds must be a string"
THROTTLED_MESSAGE = "您的请求已超过最大数量限制，请稍后重试"
_ID_TYPES = {t.value: t for t in IdType}
_BAD_ID_TYPE = "userIdType must be one of the following values: " + ", ".join(_ID_TYPES)
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0", ""})
_JSON = "application/json"


class BadRequest(Exception):
    """A request the API refuses with statusCode 400; ``size`` is how many IDs it carried."""

    def __init__(self, messages: list[str], size: int = 0) -> None:
        super().__init__(",".join(messages))
        self.message = ",".join(messages)
        self.size = size


@dataclass(frozen=True, slots=True)
class IdsRequest:
    """A well-formed resign or read-back request."""

    ids: list[str]
    id_type: IdType
    with_identities: bool = False
    with_departments: bool = False


def envelope(
    request_id: str,
    status_code: int,
    message: str,
    data: object = None,
    *,
    api_code: int | None = None,
    http_status: int = 200,
) -> web.Response:
    """The API's JSON envelope ``{statusCode, message, apiCode?, requestId, data}``."""
    body: dict[str, object] = {"statusCode": status_code, "message": message}
    if api_code is not None:
        body["apiCode"] = api_code
    body["requestId"] = request_id
    body["data"] = data
    return web.Response(body=orjson.dumps(body), status=http_status, content_type=_JSON)


def parse_json_object(raw: bytes) -> dict[str, object]:
    """The request body as a JSON object, or :class:`BadRequest`."""
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise BadRequest(["请求体不是合法的 JSON"]) from None
    if not isinstance(body, dict):
        raise BadRequest(["请求体必须是 JSON 对象"])
    return body


def _id_type(value: object, errors: list[str]) -> IdType:
    if value is None:
        return IdType.USER_ID
    id_type = _ID_TYPES.get(value) if isinstance(value, str) else None
    if id_type is None:
        errors.append(_BAD_ID_TYPE)
        return IdType.USER_ID
    return id_type


def parse_resign_body(raw: bytes) -> IdsRequest:
    """``{"userIds": [1..50 strings], "userIdType"?: enum}``, or :class:`BadRequest`."""
    body = parse_json_object(raw)
    ids = body.get("userIds")
    errors: list[str] = []
    size = len(ids) if isinstance(ids, list) else 0
    if not isinstance(ids, list) or not ids:
        errors.append(BAD_USER_IDS)
    else:
        if size > MAX_BATCH:
            errors.append(TOO_MANY)
        if not set(map(type, ids)) <= {str}:  # in C: this runs on every call
            errors.append(NOT_STRINGS)
    id_type = _id_type(body.get("userIdType"), errors)
    if errors:
        raise BadRequest(errors, size)
    return IdsRequest(cast(list[str], ids), id_type)


def _flag(query: MultiMapping[str], name: str, errors: list[str]) -> bool:
    value = query.get(name, "").lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        errors.append(f"{name} must be a boolean value")
    return False


def parse_read_query(
    query: MultiMapping[str], id_types: frozenset[IdType] = frozenset(IdType)
) -> IdsRequest:
    """The read-back query, or :class:`BadRequest`; ``id_types``: what this path takes.

    ``userIds`` arrives in three encodings, all accepted and combined: comma-separated
    (``userIds=a,b``: the Java, Go and C# SDKs pass a string), repeated keys
    (``userIds=a&userIds=b``: Python ``requests`` given a list) and ``userIds[]=a`` (axios).
    """
    ids: list[str] = []
    for key in ("userIds", "userIds[]"):
        for value in query.getall(key, ()):
            ids.extend(part for part in value.split(",") if part)
    errors: list[str] = []
    if not ids:
        errors.append(BAD_USER_IDS)
    elif len(ids) > MAX_BATCH:
        errors.append(TOO_MANY)
    id_type = _id_type(query.get("userIdType"), errors)
    if id_type not in id_types:
        errors.append(
            "userIdType must be one of the following values: "
            + ", ".join(t for t in _ID_TYPES if _ID_TYPES[t] in id_types)
        )
    identities = _flag(query, "withIdentities", errors)
    departments = _flag(query, "withDepartmentIds", errors)
    if errors:
        raise BadRequest(errors, len(ids))
    return IdsRequest(ids, id_type, identities, departments)
