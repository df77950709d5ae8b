"""HTTP routes the pack adds to ComfyUI's server.

- ``GET  /runware/pixverse/spec``: the node kinds, the capability spec's per-model options, the ComfyUI
  settings the server reads (nodes/config.py: ids, places, names, tooltips, types, defaults) and the cost
  format: the web extension's only source of lists and names.
- ``GET  /runware/pixverse/key``: ``{configured, masked, source}``; never the key itself.
- ``POST /runware/pixverse/key`` ``{"key": "..."}``: checks the key with Runware (an ``authentication``
  task, at ``RUNWARE_BASE_URL``), then stores it in ComfyUI's user directory (mode 0600).
- ``DELETE /runware/pixverse/key``: removes the stored key.
- ``POST /runware/pixverse/estimate`` ``{"node": "<node id>", "values": {widget: value}, "motion": {...}}``:
  the expected cost of a run with these widgets, ``{cost, source, text, limits, today}``: the node's
  draft request (nodes/workflows/draft.py) priced by nodes/money/pricing.py, within nodes/money/limits.py.
- ``GET  /runware/pixverse/spend``: what the job ledger recorded today and this month, per model, and the
  spending limits in force with where each comes from.

The key routes refuse other sites themselves (nodes/comfy/webguard.py): Host must be a loopback name or an
IP literal (or listed in the allowed-hosts variable, nodes/config.py), a browser's Origin must match Host, and
POST/DELETE need ``Content-Type: application/json`` and ``X-PixVerse-Request: 1``.

The key only ever travels browser → this server, once, in a POST body. It is not echoed, logged,
put into a setting, a widget, a workflow or a prompt.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional

from aiohttp import web

from . import keystore, webguard
from .. import config
from ..requests import layouts, widgets
from ..money import limits, pricing
from ..money.balance import cached_balance
from ..client import RetryPolicy, RunwareClient, public_base_url
from ..workflows.draft import draft
from ..errors import PixVerseError, RunwareAuthError, RunwareError
from .http import NO_STORE, ROUTE_PREFIX, ledger_if_present, refused
from ..spec import AUTO, NONE, SET, CapabilitySpec, load_spec
from ..spec.kinds import KINDS, kind_of
from ..spec.options import served

log = logging.getLogger("pixverse")
MAX_KEY_CHARS = 512
# How a cost in US dollars is shown (pricing.usd writes it the same way; a test holds the two together).
COST_FORMAT = {"symbol": "$", "min_decimals": 2, "max_decimals": 4}
_registered = False


def _user_dir() -> str:
    import folder_paths  # ComfyUI's module: only there when the routes are registered in ComfyUI

    return folder_paths.get_user_directory()


def web_spec(spec: Optional[CapabilitySpec] = None) -> dict:
    """What the web extension reads: the node kinds, each generator kind's models with their options,
    defaults, sizes and rules (computed in nodes/spec/options.py), the limits it shows, the ComfyUI
    setting ids the server reads and how a cost is written. Every list the extension shows and every
    name that ties it to the server comes from here."""
    spec = spec or load_spec()
    return {
        "kinds": {k.kind: k.to_json() for k in KINDS},
        "nodes": served(spec),
        "lipsync_limits": spec.lipsync_limits.model_dump(mode="json"),
        "text_limits": {k: v.model_dump() for k, v in spec.text_limits.items()},
        "settings": {s.input: {"kind": s.kind, "via": s.via} for s in spec.settings},
        "ui": {
            "auto": AUTO,
            "none": NONE,
            "set": SET,
            "motion_type": widgets.MOTION_TYPE,
            "models_taking": {s.input: [m.name for m in spec.models_taking(s.input)] for s in spec.settings},
            "setting_ids": config.setting_ids(),  # by key (nodes/config.py): the settings the server reads
            "settings": config.web_settings(),  # each of them as the extension registers it
            "cost_format": dict(COST_FORMAT),
            "layouts": [layouts.AUTO, *spec.layouts],  # the choices of the layout setting
        },
    }


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
    try:
        async with RunwareClient(api_key=key, retry_policy=RetryPolicy(attempts=2, max_delay=2.0)) as client:
            await client.check_key()
    except RunwareAuthError:
        return 401, "Runware did not accept this key (invalidApiKey). Nothing was stored."
    except RunwareError as exc:
        # The client's messages never carry the key (it scrubs them); still, do not echo the value.
        return 502, f"Could not check the key with Runware, so it was not stored: {exc.detail}"
    return 200, None


def add_routes(routes: web.RouteTableDef, user_dir: Callable[[], str]) -> None:
    """Add the pack's routes to `routes`; `user_dir()` is ComfyUI's user directory (where the key lives)."""

    @routes.get(f"{ROUTE_PREFIX}/spec")
    async def get_spec(request: web.Request) -> web.Response:
        return web.json_response(web_spec())

    @routes.get(f"{ROUTE_PREFIX}/key")
    async def get_key(request: web.Request) -> web.Response:
        refused_reply = refused(request)
        if refused_reply is not None:
            return refused_reply
        return web.json_response(key_status(user_dir()), headers=NO_STORE)

    @routes.post(f"{ROUTE_PREFIX}/key")
    async def post_key(request: web.Request) -> web.Response:
        refused_reply = refused(request)
        if refused_reply is not None:
            return refused_reply
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
        refused_reply = refused(request)
        if refused_reply is not None:
            return refused_reply
        folder = user_dir()
        removed = keystore.delete_key(folder)
        return web.json_response({"removed": removed, **key_status(folder)}, headers=NO_STORE)


def estimate_for(body: object, user_dir: str) -> tuple[int, dict]:
    """(HTTP status, reply) of the estimate route: the node's draft request (nodes/workflows/draft.py, in the
    layout a run would use) priced by pricing.estimate; with `count`, each video (seed, seed+1, …)."""
    if not isinstance(body, dict) or not isinstance(body.get("values"), dict):
        return 400, {"error": "POST {\"node\": <node id>, \"values\": {widget: value}}"}
    node = body.get("node")
    kind = kind_of(node) if isinstance(node, str) else None
    motion = body.get("motion") if isinstance(body.get("motion"), dict) else None
    try:
        read = config.load(user_dir=user_dir)
        ledger = ledger_if_present()
        ests = []
        for values in _takes(body["values"]):
            drafted = draft(str(kind or node), values, motion=motion, layout=read.layout, stand_in_bad_text=True,
                            fetch=False)  # on the server's loop: kept schemas only
            ests.append(pricing.estimate(drafted.task, ledger=ledger, endpoint=public_base_url(),
                                         exact=drafted.exact, identity=drafted.built.identity))
        policy = limits.policy_of(read)
        today = ledger.spent_since(limits.day_start()) if ledger is not None else 0.0
    except PixVerseError as exc:  # a choice the node would refuse: say so instead of a figure
        return 200, {"cost": None, "source": "invalid", "text": f"no estimate: {exc}", "today": None, "limits": None}
    reply = {**_together(ests), "today": round(today, 4), "limits": policy.to_json()}
    reply["balance"] = cached_balance(public_base_url())  # the last reading beside the estimate (no network)
    if policy.daily_limit is not None:
        reply["text"] += f" · today {pricing.usd(today)} of {pricing.usd(policy.daily_limit)} a day"
    return 200, reply


def _takes(values: dict) -> list[dict]:
    """The widget values of each video a node's `count` asks for (seeds seed, seed+1, …); one without it."""
    count, seed = values.get("count", 1), values.get("seed")
    if isinstance(count, bool) or not isinstance(count, int) or count <= 1 or not isinstance(seed, int):
        return [values]
    return [{**values, "seed": seed + i} for i in range(min(count, widgets.MAX_COUNT))]


def _together(ests: list) -> dict:
    """One estimate, or those of `count` videos added up: "4 × $0.30 = $1.20"."""
    if len(ests) == 1:
        return ests[0].to_json()
    first = ests[0]
    unknown = next((e for e in ests if e.cost is None), None)
    if unknown is not None:
        return {**unknown.to_json(), "count": len(ests), "text": f"{len(ests)} videos: {unknown.text}"}
    total = round(sum(e.cost for e in ests), 4)
    costs = [e.cost for e in ests]
    how = (f"{len(ests)} × {pricing.usd(costs[0])}" if len(set(costs)) == 1
           else " + ".join(pricing.usd(c) for c in costs))
    basis = f" ({first.basis})" if first.basis and len({e.source for e in ests}) == 1 else ""
    return {**first.to_json(), "cost": total, "count": len(ests), "text": f"{how} = {pricing.usd(total)}{basis}"}


def spend_for(user_dir: str) -> dict:
    from .runtime import ledger_path  # imports ComfyUI

    policy = limits.policy_of(config.load(user_dir=user_dir))
    summary = limits.spend_summary(ledger_if_present())
    return {**summary, "limits": policy.to_json(), "ledger": ledger_path(),
            "text": limits.format_spend(summary, policy)}


def add_budget_routes(routes: web.RouteTableDef, user_dir: Callable[[], str]) -> None:
    """The cost estimate and spend routes (nodes/money/pricing.py, nodes/money/limits.py)."""

    @routes.post(f"{ROUTE_PREFIX}/estimate")
    async def post_estimate(request: web.Request) -> web.Response:
        if (refused := webguard.refused_response(request, "the PixVerse cost estimates")) is not None:
            return refused
        try:
            body = await request.json()
        except Exception:
            body = None
        status, reply = estimate_for(body, user_dir())
        return web.json_response(reply, status=status, headers=NO_STORE)

    @routes.get(f"{ROUTE_PREFIX}/spend")
    async def get_spend(request: web.Request) -> web.Response:
        if (refused := webguard.refused_response(request, "the PixVerse spending figures")) is not None:
            return refused
        try:
            return web.json_response(spend_for(user_dir()), headers=NO_STORE)
        except PixVerseError as exc:  # e.g. a limit setting that is not a number
            return web.json_response({"error": str(exc)}, status=400, headers=NO_STORE)


def register() -> None:
    """Add the routes to ComfyUI's server (once)."""
    global _registered
    if _registered:
        return
    from server import PromptServer  # ComfyUI's server: only there inside ComfyUI

    add_routes(PromptServer.instance.routes, _user_dir)
    add_budget_routes(PromptServer.instance.routes, _user_dir)
    from . import panel_routes  # beside this module, in the package that imports ComfyUI

    panel_routes.register()  # GET /runware/pixverse/balance and /jobs (the PixVerse sidebar tab)
    _registered = True
