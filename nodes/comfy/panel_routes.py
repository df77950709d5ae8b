"""Routes of the PixVerse sidebar tab and of Settings → Runware's balance (nodes/money/balance.py, the job ledger).

- ``GET /runware/pixverse/balance``: ``{balance, currency, checked_at, organization, dry_run, error, floor}``
  (read from Runware at most once a minute and after a task; only the balance and the organization's
  name of Runware's account details are ever kept). ``?refresh=1`` asks for a new reading (still at most
  one a minute).
- ``GET /runware/pixverse/jobs?limit=N&offset=M``: the job ledger's jobs, newest first, paged, with today's
  spend (billed only; dry runs apart) at the top.

Both answer only behind the key routes' Host/Origin guard (nodes/comfy/webguard.py): the balance and the job list
are the user's own business, not another site's.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import PurePath
from typing import Any, Callable, Optional
from urllib.parse import urlencode

from aiohttp import web

from .. import config
from ..money import balance as account
from . import keystore
from ..client import RetryPolicy, RunwareClient
from ..money.limits import spend_summary
from ..errors import PixVerseError, recover_hint
from ..spec import load_spec
from .http import NO_STORE, ROUTE_PREFIX, ledger_if_present, refused

MAX_PAGE = 100
PHASES = {"preparing": "uploading inputs", "submitting": "submitting to Runware",
          "submitted": "generating at Runware", "succeeded": "downloading the video"}
RUNNING = tuple(PHASES)
# a row left in a running status by a run that ended (a refused result URL, a deadline, a cancel, a follow-up
# that gave up, a killed process): what it means for the bill
STOPPED = {"preparing": "stopped before anything was sent (nothing billed)",
           "submitting": "stopped while submitting: Runware may have the task",
           "submitted": "stopped while the video was being made (Runware has the task; billed)",
           "succeeded": "the video was made (billed) but not saved"}
_registered = False


async def balance_for(user_dir: str, ledger=None, refresh: bool = False) -> dict:
    """The reply of the balance route."""
    try:
        floor = account.floor_of(config.load(user_dir=user_dir))
        floor_json: dict[str, Any] = {"amount": floor.amount, "source": floor.source, "where": floor.where}
    except PixVerseError as exc:  # a value the configuration refuses (nodes/config.py)
        floor_json = {"amount": None, "source": "", "where": "", "error": str(exc)}
    key = keystore.load_key(user_dir)
    if not key:
        return {"balance": None, "currency": account.CURRENCY, "checked_at": None, "organization": None,
                "dry_run": False, "error": "no Runware API key (Settings → Runware)", "floor": floor_json}
    client = RunwareClient(api_key=key, retry_policy=RetryPolicy(attempts=2, max_delay=2.0))
    endpoint = str(client.base_url)
    if refresh:
        account.CACHE.invalidate(endpoint)
    try:
        reading = await account.CACHE.get(endpoint, lambda: account.fetch_balance(client), ledger=ledger)
    finally:
        await client.aclose()
    out = {**reading.to_json(), "floor": floor_json}
    if floor_json.get("amount") is not None and reading.balance is None:
        out["floor_note"] = "the balance floor could not be checked: the balance could not be read; runs go ahead"
    return out


def _request_of(entry) -> dict:
    try:
        return json.loads(entry.request) if entry.request else {}
    except ValueError:
        return {}


def _view_url(path: Optional[str], output_dir: Optional[str]) -> Optional[str]:
    """ComfyUI's /view address of a file under its output folder (the panel's player and link)."""
    if not path or not output_dir:
        return None
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(output_dir))
    except ValueError:
        return None
    if rel.startswith(".."):
        return None
    folder, name = os.path.split(rel)
    folder = PurePath(folder).as_posix() if folder else ""  # a URL's data: "a/b" on Windows too
    return "/view?" + urlencode({"filename": name, "subfolder": folder, "type": "output"})


def job_json(entry, *, now: float, dry_endpoints: set[str], output_dir: Optional[str], names: dict,
             early: Callable[[str], bool] = lambda task_uuid: False) -> dict:
    req = _request_of(entry)
    inputs = req.get("inputs") if isinstance(req.get("inputs"), dict) else {}
    width, height = req.get("width"), req.get("height")
    out: dict[str, Any] = {
        "task_uuid": entry.task_uuid, "status": entry.status, "model": entry.model,
        "model_name": names.get(entry.model, entry.model or "unknown model"),
        "created_at": entry.created_at, "finished_at": entry.finished_at,
        "duration": req.get("duration"), "size": f"{width}×{height}" if width and height else req.get("resolution"),
        "cost": entry.cost, "reserved": entry.reserved, "billed": entry.endpoint not in dry_endpoints,
        "prompt": (req.get("positivePrompt") or inputs.get("positivePrompt") or "")[:200],
        "started_early": bool(early(entry.task_uuid)),  # by start-ahead when its prompt was queued
    }
    if entry.status in RUNNING and entry.in_progress(now):
        out.update(kind="running", phase=PHASES[entry.status], elapsed=round(now - entry.created_at, 1))
    elif entry.status in RUNNING:  # no run works on it any more: it ended without its video
        out.update(kind="stopped", reason=STOPPED[entry.status] + (f": {entry.error}" if entry.error else ""),
                   recover="Nothing was submitted or billed: run it again." if entry.status == "preparing"
                   else recover_hint(entry.task_uuid, finished=entry.status == "succeeded"))
    elif entry.status == "finished":
        ok = entry.file_ok()
        out.update(kind="finished", file=entry.local_file, file_name=os.path.basename(entry.local_file or ""),
                   file_bytes=entry.file_bytes, file_present=ok,
                   url=_view_url(entry.local_file, output_dir) if ok else None)
        if not ok:
            out["recover"] = recover_hint(entry.task_uuid, finished=True)
    else:
        out.update(kind="failed" if entry.status in ("failed", "refused", "abandoned") else "lost",
                   reason=entry.error or entry.status)
        if entry.status in ("refused", "abandoned"):
            out["recover"] = "Nothing was submitted or billed: run it again."
        elif entry.status == "failed":
            out["recover"] = ("The task failed at Runware/PixVerse: change what the reason names and run again "
                              f"(taskUUID {entry.task_uuid} for Runware's support).")
        else:
            out["recover"] = recover_hint(entry.task_uuid)
    return out


def jobs_for(ledger, *, limit: int = 20, offset: int = 0, output_dir: Optional[str] = None,
             now: Optional[float] = None, early: Callable[[str], bool] = lambda task_uuid: False) -> dict:
    """The reply of the jobs route: a page of jobs, newest first, and today's spend."""
    now = time.time() if now is None else now
    limit = max(1, min(MAX_PAGE, int(limit)))
    offset = max(0, int(offset))
    spec = load_spec()
    names = {m.air: m.name for m in spec.models}
    if ledger is None:
        return {"jobs": [], "total": 0, "limit": limit, "offset": offset, "today": {"total": 0.0, "runs": 0},
                "not_billed_today": {"runs": 0, "emulated_cost": 0.0}}
    entries, total = ledger.page(limit, offset)
    dry = ledger.dry_run_endpoints()
    jobs = [job_json(e, now=now, dry_endpoints=dry, output_dir=output_dir, names=names, early=early)
            for e in entries]
    summary = spend_summary(ledger, now=now, spec=spec)
    return {"jobs": jobs, "total": int(total), "limit": limit, "offset": offset,
            "today": {"total": summary["today"]["total"], "runs": summary["today"]["runs"],
                      "pending": summary["today"]["pending"]},
            "not_billed_today": summary["not_billed"]["today"]}


def _int(value: Optional[str], default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def add_panel_routes(routes: web.RouteTableDef, user_dir: Callable[[], str], ledger: Callable[[], Any],
                     output_dir: Callable[[], Optional[str]],
                     early: Callable[[str], bool] = lambda task_uuid: False) -> None:
    @routes.get(f"{ROUTE_PREFIX}/balance")
    async def get_balance(request: web.Request) -> web.Response:
        refused_reply = refused(request)
        if refused_reply is not None:
            return refused_reply
        reply = await balance_for(user_dir(), ledger(), refresh=request.query.get("refresh") == "1")
        return web.json_response(reply, headers=NO_STORE)

    @routes.get(f"{ROUTE_PREFIX}/jobs")
    async def get_jobs(request: web.Request) -> web.Response:
        refused_reply = refused(request)
        if refused_reply is not None:
            return refused_reply
        reply = jobs_for(ledger(), limit=_int(request.query.get("limit"), 20),
                         offset=_int(request.query.get("offset"), 0), output_dir=output_dir(), early=early)
        return web.json_response(reply, headers=NO_STORE)


def register() -> None:
    """Add the routes to ComfyUI's server (once)."""
    global _registered
    if _registered:
        return
    import folder_paths  # ComfyUI's: only inside ComfyUI
    from server import PromptServer

    from . import ahead, runtime  # import ComfyUI

    add_panel_routes(PromptServer.instance.routes, runtime.user_dir, ledger_if_present,
                     folder_paths.get_output_directory, early=lambda task_uuid: ahead.started_early(task_uuid) is not None)
    _registered = True
