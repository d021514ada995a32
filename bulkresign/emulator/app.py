"""The aiohttp application: the GenAuth API routes plus the ``/__emulator/`` controls."""

from __future__ import annotations

from aiohttp import web

from bulkresign.emulator.api import GenAuthApi
from bulkresign.emulator.control import control_routes
from bulkresign.emulator.emulator import Emulator

__all__ = ["API", "make_app"]

#: Where the application keeps its :class:`GenAuthApi` (tests reach ``closing`` through it).
API = web.AppKey("api", GenAuthApi)

#: A 50-ID body is a few kB; anything near this is not a GenAuth call.
_MAX_BODY = 1 << 20


def make_app(emulator: Emulator) -> web.Application:
    """A fresh application serving ``emulator`` (one per server start)."""
    api = GenAuthApi(emulator)
    app = web.Application(client_max_size=_MAX_BODY)
    app[API] = api
    app.add_routes(api.routes())
    app.add_routes(control_routes(emulator))

    async def wake_stalled(app: web.Application) -> None:
        # Stalled answers would otherwise hold the shutdown for stall_seconds.
        app[API].closing.set()

    app.on_shutdown.append(wake_stalled)
    return app
