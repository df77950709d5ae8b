"""What the pack's two route modules share (nodes/comfy/routes.py, nodes/comfy/panel_routes.py): the prefix,
the no-store header, the key routes' guard as a response, and ComfyUI's job ledger when it exists.

Imports aiohttp (ComfyUI ships it), not ComfyUI: `ledger_if_present` asks nodes/comfy/runtime.py for the
ledger's path only when called, inside ComfyUI.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

from aiohttp import web

from ..money.ledger import Ledger, open_ledger
from . import webguard

log = logging.getLogger("pixverse")
ROUTE_PREFIX = "/runware/pixverse"
NO_STORE = {"Cache-Control": "no-store"}


def refused(request: web.Request) -> Optional[web.Response]:
    """The key routes' own check against other sites and DNS rebinding (nodes/comfy/webguard.py `refusal`):
    None when `request` may proceed, else the JSON response to return (logged)."""
    why = webguard.refusal(request.method, request.headers, request.scheme)
    if why is None:
        return None
    status, message = why
    log.warning("PixVerse: refused %s %s (Host %r, Origin %r): %s", request.method, request.path,
                request.headers.get("Host"), request.headers.get("Origin"), message)
    return web.json_response({"error": message}, status=status, headers=NO_STORE)


def ledger_if_present() -> Optional[Ledger]:
    """ComfyUI's job ledger when it exists (an estimate, a figure or a panel never creates it)."""
    from .runtime import ledger_path  # imports ComfyUI (folder_paths): only inside ComfyUI

    path = ledger_path()
    return open_ledger(path) if os.path.isfile(path) else None
