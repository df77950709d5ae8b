"""HTTP routes the pack adds to ComfyUI's server.

- ``GET  /runware/pixverse/spec``: the capability spec (+ node/label names), the web extension's only
  source of lists.
- ``GET  /runware/pixverse/key``: ``{configured, masked, source}``; never the key itself.
- ``POST /runware/pixverse/key`` ``{"key": "..."}``: checks the key with Runware (an ``authentication``
  task, at ``RUNWARE_BASE_URL``), then stores it in ComfyUI's user directory (mode 0600).
- ``DELETE /runware/pixverse/key``: removes the stored key.

The key routes refuse other sites themselves (nodes/webguard.py): Host must be a loopback name or an
IP literal (or listed in RUNWARE_PIXVERSE_ALLOWED_HOSTS), a browser's Origin must match Host, and
POST/DELETE need ``Content-Type: application/json`` and ``X-PixVerse-Request: 1``.

The key only ever travels browser → this server, once, in a POST body. It is not echoed, logged,
put into a setting, a widget, a workflow or a prompt.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional

from aiohttp import web

from .. import keystore, webguard
from ..spec import CapabilitySpec, load_spec

log = logging.getLogger("pixverse")
ROUTE_PREFIX = "/runware/pixverse"
MAX_KEY_CHARS = 512
NO_STORE = {"Cache-Control": "no-store"}
_registered = False


def _user_dir() -> str:
    import folder_paths

    return folder_paths.get_user_directory()


def web_spec(spec: Optional[CapabilitySpec] = None) -> dict:
    """The capability spec as the web extension reads it, plus the names that tie it to the nodes:
    node ids, each model widget label, the auto/none choices, and which input or node carries each
    provider setting. Every option list the extension shows comes from here."""
    from .. import widgets
    from ..requests import AUTO, NONE, SETTING_INPUTS

    spec = spec or load_spec()
    data = spec.to_public_json()
    data["ui"] = {
        "node_ids": dict(widgets.NODE_IDS),
        "model_labels": {m.label: m.air for m in spec.models},
        "auto": AUTO,
        "none": NONE,
        "motion_type": widgets.MOTION_TYPE,
        "setting_inputs": dict(SETTING_INPUTS),
        "motion_nodes": {widgets.NODE_IDS["effect"]: "effect", widgets.NODE_IDS["camera"]: "cameraMovement"},
    }
    return data


def key_status(user_dir: str) -> dict:
    """What the browser may know about the key: whether there is one, its mask, and where it comes from."""
    env_key = os.environ.get(keystore.ENV_VAR, "").strip()
    if env_key:
        return {"configured": True, "masked": keystore.mask(env_key), "source": "env"}
    key = keystore.load_key(user_dir) if keystore.key_path(user_dir).is_file() else None
    if key:
        return {"configured": True, "masked": keystore.mask(key), "source": "file"}
    return {"configured": False, "masked": "", "source": None}


def _clean_key(value: object) -> tuple[Optional[str], Optional[str]]:
    """(key, None) or (None, why it is refused). Says nothing about the value itself."""
    if not isinstance(value, str) or not value.strip():
        return None, "Enter a Runware API key."
    key = value.strip()
    if len(key) > MAX_KEY_CHARS:
        return None, f"That is not a Runware API key (longer than {MAX_KEY_CHARS} characters)."
    if any(c.isspace() or not c.isprintable() for c in key):
        return None, "That is not a Runware API key (it contains spaces or control characters)."
    return key, None


async def check_key(key: str) -> tuple[int, Optional[str]]:
    """Ask Runware whether it accepts `key`: (200, None) or (HTTP status for the browser, message)."""
    from ..client import RetryPolicy, RunwareClient
    from ..errors import RunwareAuthError, RunwareError

    try:
        async with RunwareClient(api_key=key, retry_policy=RetryPolicy(attempts=2, max_delay=2.0)) as client:
            await client.check_key()
    except RunwareAuthError:
        return 401, "Runware did not accept this key (invalidApiKey). Nothing was stored."
    except RunwareError as exc:
        # The client's messages never carry the key (it scrubs them); still, do not echo the value.
        return 502, f"Could not check the key with Runware, so it was not stored: {exc.detail}"
    return 200, None


def _refused(request: web.Request) -> Optional[web.Response]:
    """The key routes' own check against other sites and DNS rebinding (see nodes/webguard.py)."""
    why = webguard.refusal(request.method, request.headers, request.scheme)
    if why is None:
        return None
    status, message = why
    log.warning("PixVerse: refused %s %s (Host %r, Origin %r): %s", request.method, request.path,
                request.headers.get("Host"), request.headers.get("Origin"), message)
    return web.json_response({"error": message}, status=status, headers=NO_STORE)


def add_routes(routes: web.RouteTableDef, user_dir: Callable[[], str]) -> None:
    """Add the pack's routes to `routes`; `user_dir()` is ComfyUI's user directory (where the key lives)."""

    @routes.get(f"{ROUTE_PREFIX}/spec")
    async def get_spec(request: web.Request) -> web.Response:
        return web.json_response(web_spec())

    @routes.get(f"{ROUTE_PREFIX}/key")
    async def get_key(request: web.Request) -> web.Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        return web.json_response(key_status(user_dir()), headers=NO_STORE)

    @routes.post(f"{ROUTE_PREFIX}/key")
    async def post_key(request: web.Request) -> web.Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except Exception:
            body = None
        key, problem = _clean_key(body.get("key") if isinstance(body, dict) else None)
        if problem:
            return web.json_response({"error": problem, **key_status(user_dir())}, status=400, headers=NO_STORE)
        status, problem = await check_key(key)
        if problem:
            return web.json_response({"error": problem, **key_status(user_dir())}, status=status, headers=NO_STORE)
        folder = user_dir()
        keystore.save_key(folder, key)
        log.info("PixVerse: Runware API key checked and stored in the user directory (%s)", keystore.mask(key))
        result = key_status(folder)
        if result["source"] == "env":
            result["note"] = (f"Stored, but {keystore.ENV_VAR} is set in ComfyUI's environment and is used "
                              "instead while it is set.")
        return web.json_response(result, headers=NO_STORE)

    @routes.delete(f"{ROUTE_PREFIX}/key")
    async def delete_key(request: web.Request) -> web.Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        folder = user_dir()
        removed = keystore.delete_key(folder)
        return web.json_response({"removed": removed, **key_status(folder)}, headers=NO_STORE)


def register() -> None:
    """Add the routes to ComfyUI's server (once)."""
    global _registered
    if _registered:
        return
    from server import PromptServer

    add_routes(PromptServer.instance.routes, _user_dir)
    _registered = True
