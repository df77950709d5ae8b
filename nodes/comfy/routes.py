"""HTTP routes the pack adds to ComfyUI's server: the capability spec for the web UI."""
from __future__ import annotations

import logging

from aiohttp import web

from ..spec import load_spec

log = logging.getLogger("pixverse")
ROUTE_PREFIX = "/runware/pixverse"
_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    from server import PromptServer

    routes = PromptServer.instance.routes

    @routes.get(f"{ROUTE_PREFIX}/spec")
    async def get_spec(request: web.Request) -> web.Response:
        return web.json_response(load_spec().to_public_json())

    _registered = True
