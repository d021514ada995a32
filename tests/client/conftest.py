"""Fixtures for the client tests: JWTs, a scripted GenAuth behind MockTransport, a manual clock."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import pytest

from bulkresign.client import GenAuthClient
from bulkresign.config import Credentials, Secret, Timeouts
from bulkresign.mock import MockTransport
from bulkresign.transport import RawRequest, RawResponse

#: A secret that must never show up in any output; tests search for it.
CANARY_SECRET = "canary-secret-9f2e61"
KEY_ID = "ak-test-id"
POOL = "pool-0123456789"
HOST = "https://genauth.test"


def b64url(raw: bytes) -> str:
    """Base64url without padding, as JWTs encode their parts."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, object]) -> str:
    """An unsigned-looking JWT with ``claims`` as its payload."""
    header = b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    return f"{header}.{b64url(orjson.dumps(claims))}.{b64url(b'signature')}"


def envelope(
    status_code: int = 200,
    *,
    data: object = None,
    message: str = "ok",
    http: int = 200,
    api_code: int | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    """A GenAuth JSON envelope as a raw response."""
    doc: dict[str, object] = {"statusCode": status_code, "message": message, "data": data}
    if api_code is not None:
        doc["apiCode"] = api_code
    if request_id is not None:
        doc["requestId"] = request_id
    return RawResponse(http, headers or {"content-type": "application/json"}, orjson.dumps(doc))


def user_dto(user_id: str, status: str = "Activated", **extra: object) -> dict[str, object]:
    """A ``UserDto`` with the fields the read-back needs."""
    return {"userId": user_id, "status": status, **extra}


class ManualClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Responder = Callable[[RawRequest], RawResponse | Awaitable[RawResponse]]


@dataclass
class FakeGenAuth:
    """A scripted GenAuth: mints tokens, checks them, records every request.

    ``resign`` and ``read`` answer the two API calls; by default success and no users.
    """

    pool: str = POOL
    expires_in: float = 7200
    resign: Responder | None = None
    read: Responder | None = None
    token: Responder | None = None
    requests: list[RawRequest] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    _serial: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def token_requests(self) -> list[RawRequest]:
        """The token requests received so far."""
        return [r for r in self.requests if r.path.endswith("/get-management-token")]

    @property
    def api_requests(self) -> list[RawRequest]:
        """Every request but the token requests."""
        return [r for r in self.requests if not r.path.endswith("/get-management-token")]

    def revoke_tokens(self) -> None:
        """Make every token minted so far invalid, as an expiry on the server would."""
        self.valid_tokens.clear()

    def mint(self) -> str:
        """A fresh valid token scoped to the pool."""
        token = make_jwt({"scoped_userpool_id": self.pool, "n": next(self._serial)})
        self.valid_tokens.add(token)
        return token

    async def __call__(self, request: RawRequest) -> RawResponse:
        self.requests.append(request)
        if request.path.endswith("/get-management-token"):
            if self.token is not None:
                return await _answer(self.token, request)
            return envelope(data={"access_token": self.mint(), "expires_in": self.expires_in})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return envelope(401, message="token invalid", api_code=2020)
        if "resign" in request.path:
            if self.resign is not None:
                return await _answer(self.resign, request)
            return envelope(data={"success": True}, request_id="req-resign")
        if self.read is not None:
            return await _answer(self.read, request)
        return envelope(data=[])


async def _answer(responder: Responder, request: RawRequest) -> RawResponse:
    result = responder(request)
    if isinstance(result, RawResponse):
        return result
    return await result


@pytest.fixture
def credentials() -> Credentials:
    """An access key whose secret is the canary."""
    return Credentials(KEY_ID, Secret(CANARY_SECRET))


@pytest.fixture
def api() -> FakeGenAuth:
    """A fresh scripted GenAuth."""
    return FakeGenAuth()


@pytest.fixture
def clock() -> ManualClock:
    """A manual monotonic clock."""
    return ManualClock()


@pytest.fixture
def make_client(
    api: FakeGenAuth, credentials: Credentials, clock: ManualClock
) -> Callable[..., GenAuthClient]:
    """Build a client wired to ``api`` through MockTransport; keyword arguments override."""

    def build(**overrides: object) -> GenAuthClient:
        options: dict[str, object] = {
            "transport": MockTransport(api),
            "clock": clock,
            "timeouts": Timeouts(connect=1.0, read=1.0, total=2.0),
        }
        options.update(overrides)
        return GenAuthClient(HOST, credentials, **options)  # type: ignore[arg-type]

    return build


@pytest.fixture
def canary() -> str:
    """The secret that must never appear in any output."""
    return CANARY_SECRET


@pytest.fixture
def jwt() -> Callable[[dict[str, object]], str]:
    """``make_jwt``: a JWT carrying the given claims."""
    return make_jwt


@pytest.fixture
def reply() -> Callable[..., RawResponse]:
    """``envelope``: a GenAuth JSON envelope as a raw response."""
    return envelope


@pytest.fixture
def user() -> Callable[..., dict[str, object]]:
    """``user_dto``: a ``UserDto`` dict."""
    return user_dto
