"""The GenAuth V3 management API paths the emulator serves, as aiohttp handlers.

Order of checks for every call but the token call: authentication (401/2020), the userpool
header (403/2224), the rate limit (HTTP 429), latency, then the call itself. Each handler is
straight-line code with O(1) work per ID and no logging: the benchmarks drive thousands of
calls a second through it.
"""

from __future__ import annotations

import asyncio
import hmac
import math

import orjson
from aiohttp import web

from bulkresign.emulator.config import UnknownReads
from bulkresign.emulator.emulator import Emulator
from bulkresign.emulator.faults import FaultKind, gateway_page, reset_connection
from bulkresign.emulator.wire import (
    THROTTLED_MESSAGE,
    BadRequest,
    envelope,
    parse_json_object,
    parse_read_query,
    parse_resign_body,
)
from bulkresign.models import Endpoint

__all__ = [
    "API_BAD_CREDENTIALS",
    "API_NOT_LOGGED_IN",
    "API_USERPOOL_MISMATCH",
    "API_USER_NOT_FOUND",
    "POOL_HEADERS",
    "READ_PATHS",
    "RESIGN_PATHS",
    "TOKEN_PATH",
    "GenAuthApi",
]

TOKEN_PATH = "/api/v3/get-management-token"  # noqa: S105 - a path, not a password
RESIGN_PATHS = ("/api/v3/resign-public-account-batch", "/api/v3/resign-user-batch")
READ_PATHS = ("/api/v3/get-public-account-batch", "/api/v3/get-user-batch")
#: The ID types each read-back path takes (the public one: no identity, no sync_relation).
_READ_TYPES = {e.read_path: e.read_id_types for e in Endpoint}
#: Where Authing's SDKs and GenAuth's name the token's userpool.
POOL_HEADERS = ("x-authing-userpool-id", "x-genauth-userpool-id")

#: apiCodes the emulator answers with (GenAuth's published list, docs/reference/error-code.md).
API_NOT_LOGGED_IN = 2020
"""statusCode 401: no token, a token this server did not mint, or an expired one."""
API_USERPOOL_MISMATCH = 2224
"""statusCode 403: ``x-authing-userpool-id`` is missing or is not the token's userpool."""
API_BAD_CREDENTIALS = 2333
"""statusCode 401 from the token call: wrong access key ID or secret."""
API_USER_NOT_FOUND = 2004
"""statusCode 404: a resign call named an unknown user (``unknown_ids="fail-batch"``)."""

_JSON = "application/json"


class GenAuthApi:
    """Handlers for the token, resign and read-back calls of one :class:`Emulator`."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.closing = asyncio.Event()
        """Set when the server shuts down: stalled answers stop waiting."""

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp routes of the API."""
        defs = [web.post(TOKEN_PATH, self.token)]
        defs += [web.post(path, self.resign) for path in RESIGN_PATHS]
        defs += [web.get(path, self.read) for path in READ_PATHS]
        return defs

    def _reply(
        self,
        status_code: int,
        message: str,
        data: object = None,
        *,
        api_code: int | None = None,
    ) -> web.Response:
        return envelope(self.emu.request_id(), status_code, message, data, api_code=api_code)

    async def _latency(self) -> None:
        cfg = self.emu.config
        if cfg.latency_ms or cfg.latency_jitter_ms:
            await self.emu.sleep(self.emu.faults.latency(cfg.latency_ms, cfg.latency_jitter_ms))

    async def token(self, request: web.Request) -> web.Response:
        """``POST /api/v3/get-management-token``: trade the access key for a token.

        Not rate limited: the client asks for one token per TTL, and a throttled token call would
        only test the client's patience.
        """
        emu = self.emu
        emu.counters.requests[TOKEN_PATH] += 1
        await self._latency()
        try:
            body = parse_json_object(await request.read())
        except BadRequest as exc:
            return self._reply(400, exc.message)
        key_id, secret = body.get("accessKeyId"), body.get("accessKeySecret")
        if not (isinstance(key_id, str) and isinstance(secret, str)):
            return self._reply(400, "accessKeyId must be a string,accessKeySecret must be a string")
        cfg = emu.config
        if not (
            hmac.compare_digest(key_id.encode(), cfg.access_key_id.encode())
            and hmac.compare_digest(secret.encode(), cfg.access_key_secret.encode())
        ):
            return self._reply(
                401, "accessKeyId 或 accessKeySecret 错误", api_code=API_BAD_CREDENTIALS
            )
        token = emu.tokens.mint(emu.clock(), cfg.token_ttl, sdk_safe=cfg.jwt_sdk_safe)
        data = {"access_token": token, "expires_in": int(cfg.token_ttl)}
        return self._reply(200, "获取成功", data)

    async def _admit(self, request: web.Request) -> web.Response | None:
        """Authenticate, rate-limit and delay a call; a response means it was refused."""
        emu = self.emu
        now = emu.clock()
        headers = request.headers
        auth = headers.get("authorization")
        pool = None
        if auth:
            token = auth[7:] if auth[:7].lower() == "bearer " else auth
            pool = emu.tokens.verify(token.strip(), now)
        if pool is None:
            return self._reply(401, "请先登录，或 token 已过期", api_code=API_NOT_LOGGED_IN)
        # Authing's SDKs name the pool in x-authing-userpool-id, GenAuth's in
        # x-genauth-userpool-id: either will do, and every one given must be the token's pool.
        named = [(h, v) for h in POOL_HEADERS for v in headers.getall(h, ())]
        wrong = next((h for h, v in named if v != pool), None)
        if not named or wrong is not None:
            header = wrong or POOL_HEADERS[0]
            return self._reply(
                403, f"{header} 与 token 的用户池不符", api_code=API_USERPOOL_MISMATCH
            )
        if not emu.window.admit(now):
            emu.counters.throttled += 1
            body = {
                "statusCode": 429,
                "message": THROTTLED_MESSAGE,
                "requestId": emu.request_id(),
            }
            retry_after = emu.config.retry_after
            extra = {} if retry_after is None else {"Retry-After": str(math.ceil(retry_after))}
            return web.Response(
                body=orjson.dumps(body), status=429, content_type=_JSON, headers=extra
            )
        emu.counters.per_second[int(now - emu.counters.started)] += 1
        await self._latency()
        return None

    async def resign(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/v3/resign-*-batch``: resign up to 50 users, all or nothing."""
        emu = self.emu
        path = request.path
        emu.counters.requests[path] += 1
        refused = await self._admit(request)
        if refused is not None:
            return refused
        try:
            raw = await request.read()
        except ConnectionResetError:  # the client died mid-body: nothing applied, nobody to tell
            return web.Response(status=400)
        counters = emu.counters  # after the latency: a reset may have replaced them meanwhile
        counters.resign_requests += 1
        try:
            call = parse_resign_body(raw)
        except BadRequest as exc:
            counters.largest_batch = max(counters.largest_batch, exc.size)
            return self._reply(400, exc.message)
        if len(call.ids) > counters.largest_batch:
            counters.largest_batch = len(call.ids)
        if emu.on_resign is not None:
            await emu.on_resign(path, call.ids, request)
        faults = emu.config.faults
        status = emu.faults.before(faults)
        if status is not None:
            counters.faults_injected[FaultKind.ERROR_BEFORE] += 1
            return gateway_page(status)
        verdict = emu.resign(call.ids, call.id_type)
        if verdict.status_code != 200:
            return self._reply(verdict.status_code, verdict.message, api_code=verdict.api_code)
        fault = emu.faults.after(faults)
        if fault is not None:
            kind, status = fault
            counters.faults_injected[kind] += 1
            if kind is FaultKind.ERROR_AFTER:
                return gateway_page(status)
            if kind is FaultKind.RESET_AFTER or await self._stall(faults.stall_seconds):
                reset_connection(request)
                return web.Response(status=500)  # never sent: the connection is gone
        return self._reply(200, "操作成功", {"success": True})

    async def _stall(self, seconds: float) -> bool:
        """Hold the answer for ``seconds``; ``True`` if the server began shutting down first."""
        try:
            await asyncio.wait_for(self.closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def read(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v3/get-*-batch``: the users named, in request order; unknown ones absent."""
        emu = self.emu
        emu.counters.requests[request.path] += 1
        refused = await self._admit(request)
        if refused is not None:
            return refused
        counters = emu.counters
        counters.read_requests += 1
        status = emu.faults.read(emu.config.faults)
        if status is not None:
            counters.faults_injected[FaultKind.READ_ERROR] += 1
            return gateway_page(status)
        try:
            call = parse_read_query(request.query, _READ_TYPES[request.path])
        except BadRequest as exc:
            return self._reply(400, exc.message)
        store = emu.store
        known, unknown = store.resolve_many(call.id_type, call.ids)
        if unknown and emu.config.unknown_reads is UnknownReads.FAIL:
            return self._reply(404, f"用户不存在: {unknown[0]}", api_code=API_USER_NOT_FOUND)
        identities, departments = call.with_identities, call.with_departments
        data = [
            store.dto(uid, identities=identities, departments=departments)
            for uid in dict.fromkeys(known)
        ]
        return self._reply(200, "操作成功", data)
