"""``/__emulator/``: the oracle and the test controls. A client of the real API never needs these.

- ``GET oracle[?summary=1]``: the oracle (``summary`` omits the per-user resign counts);
- ``GET users/{userId}``: one user's ``UserDto``;
- ``POST users/{userId}/status`` ``{"status": "Activated"}``: change it behind the client's back;
- ``GET config`` / ``POST config`` ``{...}``: read / change rate, latency, switches, faults;
- ``POST reset-counters``: zero the counters and resign counts.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from bulkresign.emulator.config import public_view
from bulkresign.emulator.emulator import Emulator
from bulkresign.emulator.wire import BadRequest, parse_json_object
from bulkresign.errors import ConfigError
from bulkresign.models import UserStatus

__all__ = ["CONTROL_PREFIX", "control_routes"]

CONTROL_PREFIX = "/__emulator"


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


def control_routes(emu: Emulator) -> list[web.RouteDef]:
    """The control routes of ``emu``."""

    async def oracle(request: web.Request) -> web.Response:
        summary = request.query.get("summary", "").lower() in {"1", "true"}
        return _json(emu.oracle(summary=summary))

    async def get_user(request: web.Request) -> web.Response:
        dto = emu.user(request.match_info["user_id"])
        return _error("no such user", 404) if dto is None else _json(dto)

    async def set_status(request: web.Request) -> web.Response:
        try:
            body = parse_json_object(await request.read())
        except BadRequest as exc:
            return _error(exc.message, 400)
        try:
            status = UserStatus(str(body.get("status")))
        except ValueError:
            choices = ", ".join(s.value for s in UserStatus)
            return _error(f"status must be one of {choices}", 400)
        user_id = request.match_info["user_id"]
        if not emu.set_status(user_id, status):
            return _error("no such user", 404)
        return _json(emu.user(user_id))

    async def get_config(request: web.Request) -> web.Response:
        return _json(public_view(emu.config))

    async def set_config(request: web.Request) -> web.Response:
        try:
            emu.reconfigure(parse_json_object(await request.read()))
        except BadRequest as exc:
            return _error(exc.message, 400)
        except ConfigError as exc:
            return _error(str(exc), 400)
        return _json(public_view(emu.config))

    async def reset_counters(request: web.Request) -> web.Response:
        emu.reset_counters()
        return _json({"ok": True})

    p = CONTROL_PREFIX
    return [
        web.get(f"{p}/oracle", oracle),
        web.get(f"{p}/users/{{user_id}}", get_user),
        web.post(f"{p}/users/{{user_id}}/status", set_status),
        web.get(f"{p}/config", get_config),
        web.post(f"{p}/config", set_config),
        web.post(f"{p}/reset-counters", reset_counters),
    ]
