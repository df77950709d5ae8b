"""The Runware balance, the balance floor, dry runs, errors that say what to do, and the panel's routes
(nodes/money/balance.py, nodes/comfy/panel_routes.py) — against the local emulator over real HTTP on 127.0.0.1."""
from __future__ import annotations

import asyncio
import json
import os
import time

import numpy as np
import pytest

import fault_matrix
from support.jobs import Runner, choices, video_submissions
from support.keysafety import SENTINEL_KEY
import workflow_runs as runs
from nodes import config
from nodes.config import MIN_BALANCE
from nodes.money import balance as B
from nodes.money import limits, pricing
from nodes.job import pipeline
from nodes.client import public_base_url
from nodes.requests.tasks import build_text_to_video
from nodes import errors as E
from nodes.money import ledger as L
from nodes.emulator import account as emu_account


@pytest.fixture
def emu(emu, monkeypatch):
    """conftest's `emu` (reset, balance not enforced), with no floor or balance from the environment and the
    balance cache emptied; a dry-run endpoint and a set balance put back after."""
    for name in (MIN_BALANCE.env, emu_account.ENV_BALANCE):
        monkeypatch.delenv(name, raising=False)
    B.CACHE.clear()
    yield emu
    emu.dry_run = False
    emu.balance_start = None
    B.CACHE.clear()


@pytest.fixture
def runner(emu, request):
    r = Runner(emu, request.node.name)
    yield r
    r.close()


def t2v(**over):
    return lambda client, opts: runs.text_to_video(client, choices(**over), opts)


def i2v(**over):
    image = np.full((1, 360, 640, 3), 0.5, dtype=np.float32)
    import torch

    return lambda client, opts: runs.image_to_video(client, choices(aspect_ratio="auto", **over),
                                                        torch.from_numpy(image), None, opts)


def account_requests(emu) -> int:
    return sum(1 for r in emu.requests if isinstance(r["body"], list)
               and any(t.get("taskType") == "accountManagement" for t in r["body"] if isinstance(t, dict)))


async def _balance(runner):
    async with runner.client() as client:
        return await B.fetch_balance(client)


# -- the balance ----------------------------------------------------------------------------------

def test_keep_only_drops_team_keys_and_everything_else():
    reply = {"taskType": "accountManagement", "organizationUUID": "o", "organizationName": "Acme", "balance": 12.5,
             "team": [{"name": "John", "email": "john@acme.example"}], "apiKeys": [{"key": "secret"}],
             "AIRSource": "acme", "usage": {"x": 1}}
    assert B.keep_only(reply) == {"balance": 12.5, "organizationName": "Acme"}


def test_balance_from_the_emulator_keeps_only_balance_and_goes_down_by_each_cost(emu, runner):
    first = asyncio.run(_balance(runner))
    assert first.balance == emu_account.DEFAULT_BALANCE and first.currency == "USD"
    assert first.organization == emu_account.ORGANIZATION and first.dry_run is False
    text = json.dumps(first.to_json())
    assert "email" not in text and "emulated-key" not in text and "Owner" not in text
    done = runner.run(t2v())
    after = asyncio.run(_balance(runner))
    assert after.balance == pytest.approx(first.balance - done.video.cost)


def test_cache_reads_at_most_once_a_minute_and_again_after_a_task(emu, runner):
    async def go():
        async with runner.client() as client:
            a = await B.CACHE.get(runner.emu.base_url, lambda: B.fetch_balance(client))
            b = await B.CACHE.get(runner.emu.base_url, lambda: B.fetch_balance(client))
            return a, b

    a, b = asyncio.run(go())
    assert a is b and account_requests(emu) == 1
    runner.run(t2v())  # a finished task marks the reading stale
    c, _ = asyncio.run(go())
    assert account_requests(emu) == 2 and c.balance < a.balance
    old = B.CACHE.peek(runner.emu.base_url)
    old.checked_at -= B.MAX_AGE_S + 1  # a minute later
    asyncio.run(go())
    assert account_requests(emu) == 3


def test_cli_balance_offline(tmp_path, emu, cli):
    code, stdout, stderr = cli(emu, ["balance", "--offline", "--json"], tmp_path, "balance")  # in this process
    assert code == 0, stderr
    reply = json.loads(stdout)
    assert reply["balance"] == emu_account.DEFAULT_BALANCE and reply["dry_run"] is True
    assert set(reply) == {"balance", "currency", "organization", "checked_at", "dry_run", "error", "floor"}


# -- the floor ------------------------------------------------------------------------------------

def test_floor_from_env_wins_over_setting():
    setting = {MIN_BALANCE.setting: 3}
    assert B.floor_of(config.load(setting, env={})) == B.Floor(3.0, "setting")
    assert B.floor_of(config.load(setting, env={MIN_BALANCE.env: "7.5"})) == B.Floor(7.5, "env")
    with pytest.raises(E.PixVerseInputError) as err:
        config.load(setting, env={MIN_BALANCE.env: "lots"})
    assert f"{MIN_BALANCE.env} = 'lots'" in str(err.value) and "US dollars" in str(err.value)
    with pytest.raises(E.PixVerseInputError) as err:
        config.load({MIN_BALANCE.setting: -2}, env={})
    assert MIN_BALANCE.setting in str(err.value) and "Keep at least" in str(err.value)
    assert B.floor_of(config.load(setting, env={MIN_BALANCE.env: "0"})).amount is None
    assert B.Floor(7.5, "env").where == MIN_BALANCE.env and B.Floor(3.0, "setting").where == "setting"


def test_floor_refuses_before_any_upload_with_balance_cost_floor_and_how(emu, runner, monkeypatch):
    runner.run(t2v(prompt="first, to give the ledger a cost for this kind of run"))
    cost = runner.ledger.entries()[-1].cost
    before = emu.stats()
    balance = asyncio.run(_balance(runner)).balance
    floor = config.load(env={MIN_BALANCE.env: str(balance - cost / 2)})  # this run would go below it
    out = runner.attempt(t2v(prompt="would pass the floor"), config=floor)
    assert isinstance(out.error, E.PixVerseBudgetError) and out.error.scope == "floor", out.text
    text = out.text
    assert B.usd(balance) in text and B.usd(cost) in text and B.usd(balance - cost / 2) in text
    assert MIN_BALANCE.env in text and "Nothing was uploaded or submitted" in text and B.TOP_UP_URL in text
    # an image-to-video (its cost unknown: counted as $0) under a floor above the balance: no upload either
    out = runner.attempt(i2v(prompt="would pass the floor"), config=config.load(env={MIN_BALANCE.env: str(balance + 1)}))
    assert isinstance(out.error, E.PixVerseBudgetError) and out.error.scope == "floor", out.text
    after = emu.stats()
    assert after["uploads"] == before["uploads"] and after["video_submissions"] == before["video_submissions"]
    # the same request the ledger already holds is free: never refused by the floor
    assert runner.attempt(t2v(prompt="first, to give the ledger a cost for this kind of run"), config=floor).error is None
    # a setting (no env) refuses the same way and says where to change it
    out = runner.attempt(t2v(prompt="under the setting"), config=config.load({MIN_BALANCE.setting: balance + 100},
                                                                               env={}))
    assert isinstance(out.error, E.PixVerseBudgetError) and B.SETTING_PATH in out.text
    fault_matrix.record("balance floor: this run would go below it", "refused before upload: balance, cost, floor, "
                        "how to change it", "0 (billed 0)", out.seconds)


def test_floor_unreadable_balance_lets_the_run_go_ahead(emu, runner, monkeypatch):
    notes = []
    emu.inject("http_status", status=401, code="invalidApiKey", on="any", times=1)  # only the getDetails
    out = runner.attempt(t2v(), on_progress=lambda p: notes.append(p.message),
                         config=config.load(env={MIN_BALANCE.env: "5"}))
    assert out.error is None, out.text
    assert any("could not be checked" in n for n in notes), notes
    assert video_submissions(emu) == 1
    fault_matrix.record("balance floor set, balance cannot be read", "run goes ahead; says the floor was not checked",
                        "1 (billed 1)", out.seconds)


# -- dry runs -------------------------------------------------------------------------------------

def test_dry_run_endpoint_is_not_counted_as_spending(emu, runner):
    emu.dry_run = True
    done = runner.run(t2v())
    assert done.video.cost and done.video.raw.get("dryRun") is True
    assert B.is_dry_run(runner.ledger, runner.emu.base_url)
    summary = limits.spend_summary(runner.ledger)
    assert summary["today"]["total"] == 0 and summary["today"]["runs"] == 0
    assert summary["not_billed"]["today"] == {"runs": 1, "emulated_cost": done.video.cost}
    assert "not billed (today): 1 dry run" in limits.format_spend(summary)
    assert runner.ledger.spent_since(limits.day_start()) == 0
    est = pricing.estimate_new(build_text_to_video(choices(prompt="another")).task, ledger=runner.ledger,
                             endpoint=runner.emu.base_url)
    assert est.source != "ledger"  # its made-up cost is no history
    # the same endpoint, billing (a real Runware), counts
    emu.dry_run = False
    other = L.Ledger(runner.dir / "billed.sqlite3")
    try:
        asyncio.run(_run_into(runner, other))
        assert limits.spend_summary(other)["today"]["runs"] == 1
    finally:
        other.close()


async def _run_into(runner, ledger):
    async with runner.client() as client:
        return await runs.text_to_video(client, choices(prompt="billed"), runner.opts(ledger=ledger))


def test_main_command_offline_then_spend_reports_nothing_billed(tmp_path, emu, cli):
    code, stdout, stderr = cli(emu, ["generate", "text-to-video", "--offline", "--prompt",
                                     "a red fox running through fresh snow at dawn", "--resolution", "360p",
                                     "--duration", "5", "--out", str(tmp_path), "--job-seconds", "0.3"],
                               tmp_path, "generate")  # in this process: no signal involved
    assert code == 0, stderr
    assert "billed: nothing (a dry run" in stdout, stdout
    code, spend, stderr = cli(emu, ["spend", "--out", str(tmp_path)], tmp_path, "spend")
    assert "today (" in spend and ": $0.00 in 0 runs" in spend, spend
    assert "not billed (today): 1 dry run" in spend


# -- errors that need a person --------------------------------------------------------------------

def test_out_of_credit_says_the_balance_and_where_to_top_up(emu, runner):
    emu_account.set_balance(emu, 0.05)
    out = runner.attempt(t2v())
    assert isinstance(out.error, E.RunwareBalanceError), out.text
    assert B.TOP_UP_URL in out.text and "python -m nodes balance" in out.text and "insufficientCredits" in out.text
    assert "$0.0500" in out.text  # Runware's message: the balance
    assert video_submissions(emu) == 0 and emu.stats()["rejected_submits"] == 1
    assert [e.status for e in runner.ledger.entries()] == [L.REFUSED]
    fault_matrix.record("submit: HTTP 402 insufficientCredits (balance too low)",
                        "BalanceError: the balance, top up at my.runware.ai/wallet; ledger: refused", "0 (billed 0)",
                        out.seconds)


def test_invalid_key_points_to_settings(emu, runner):
    out = runner.attempt(t2v(), client_kw={"api_key": "not-the-key"})
    assert isinstance(out.error, E.RunwareAuthError), out.text
    assert E.KEY_SETTINGS in out.text and "revoked" in out.text and "not-the-key" not in out.text
    assert video_submissions(emu) == 0
    fault_matrix.record("invalid or revoked key (HTTP 401 invalidApiKey)",
                        "AuthError: enter a key in Settings → Runware or RUNWARE_API_KEY", "0 (billed 0)", out.seconds)


def test_forbidden_key_says_what_to_do(emu, runner):
    emu.inject("http_status", status=403, code="forbidden", on="submit", message="Not allowed for this key.")
    out = runner.attempt(t2v())
    assert isinstance(out.error, E.RunwarePermissionError), out.text
    assert "What to do" in out.text and E.KEY_SETTINGS in out.text
    assert video_submissions(emu) == 0
    fault_matrix.record("submit: HTTP 403 (key may not run this)", "PermissionError: check the key, or another key",
                        "0 (billed 0)", out.seconds)


def test_moderation_refusal_names_the_input(emu, runner):
    emu.inject("http_status", status=400, code="contentPolicyViolation", on="submit", parameter="positivePrompt",
               message="The prompt was flagged by content moderation.")
    out = runner.attempt(t2v())
    assert isinstance(out.error, E.RunwareContentPolicyError), out.text
    assert "the input `prompt`" in out.text and "Change it" in out.text
    assert video_submissions(emu) == 0
    fault_matrix.record("submit: contentPolicyViolation on positivePrompt", "names the input `prompt`; change it",
                        "0 (billed 0)", out.seconds)


def test_provider_moderation_after_acceptance(emu, runner):
    emu.inject("task_error", code="providerContentPolicyViolation", message="PixVerse refused the content.",
               provider_message="PixVerse: sensitive content")
    out = runner.attempt(t2v())
    assert isinstance(out.error, E.RunwareContentPolicyError), out.text
    assert "PixVerse's moderation refused the prompt or an input" in out.text
    assert video_submissions(emu) == 1
    fault_matrix.record("task: providerContentPolicyViolation (no parameter)",
                        "says PixVerse refused the prompt or an input; ledger: failed", "1 (billed: per Runware)",
                        out.seconds)


# -- the panel's routes ---------------------------------------------------------------------------

def load_panel_routes():
    """nodes/comfy/panel_routes.py without importing ComfyUI (its package __init__ does; the module does not)."""
    import importlib.util

    from support.keysafety import ROOT

    spec = importlib.util.spec_from_file_location("nodes.comfy.panel_routes", ROOT / "nodes" / "comfy" / "panel_routes.py")
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "nodes.comfy"
    spec.loader.exec_module(module)
    return module


def _app(user_dir, ledger, output_dir):
    from aiohttp import web

    panel_routes = load_panel_routes()

    routes = web.RouteTableDef()
    panel_routes.add_panel_routes(routes, lambda: str(user_dir), lambda: ledger, lambda: str(output_dir))
    app = web.Application()
    app.add_routes(routes)
    return app


async def _serve_and_get(app, calls):
    import httpx
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    out = []
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for path, headers in calls:
                r = await http.get(f"http://127.0.0.1:{port}{path}", headers=headers)
                out.append((r.status_code, r.json()))
    finally:
        await runner.cleanup()
    return out


def test_routes_balance_and_jobs_over_http(emu, runner, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNWARE_BASE_URL", emu.base_url)
    done = runner.run(t2v())
    emu.inject("task_error", code="taskFailed", message="it failed", provider_message="PixVerse: no")
    runner.attempt(t2v(prompt="this one fails"))
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "comfy.settings.json").write_text(json.dumps({MIN_BALANCE.setting: 5}))
    app = _app(tmp_path, runner.ledger, runner.dir)
    replies = asyncio.run(_serve_and_get(app, [
        ("/runware/pixverse/balance", {}),
        ("/runware/pixverse/jobs?limit=1", {}),
        ("/runware/pixverse/jobs?limit=5&offset=0", {}),
        ("/runware/pixverse/jobs", {"Origin": "http://evil.example"}),
        ("/runware/pixverse/balance", {"Host": "evil.example"}),
    ]))
    (s1, bal), (s2, page1), (s3, page), (s4, refused), (s5, refused2) = replies
    assert s1 == 200 and bal["balance"] == pytest.approx(emu_account.DEFAULT_BALANCE - done.video.cost)
    assert bal["currency"] == "USD" and bal["checked_at"] and "team" not in bal and "apiKeys" not in bal
    assert bal["floor"] == {"amount": 5.0, "source": "setting", "where": "setting"}  # the settings file, read once
    assert s2 == 200 and len(page1["jobs"]) == 1 and page1["total"] == 2
    assert s3 == 200 and [j["kind"] for j in page["jobs"]] == ["failed", "finished"]  # newest first
    failed, finished = page["jobs"]
    assert "PixVerse: no" in failed["reason"] or "it failed" in failed["reason"]
    assert finished["task_uuid"] == done.task_uuid and finished["cost"] == done.video.cost and finished["billed"]
    assert finished["url"].startswith("/view?") and finished["file_bytes"] > 0 and finished["duration"] == 5
    assert page["today"]["runs"] == 1 and page["today"]["total"] == pytest.approx(done.video.cost)
    assert s4 == 403 and s5 == 403 and "error" in refused and "error" in refused2


def test_jobs_json_running_and_lost():
    job_json = load_panel_routes().job_json

    now = time.time()
    running = L.Entry(task_uuid="u1", status=L.SUBMITTED, model="pixverse:1@5", created_at=now - 42,
                      request=json.dumps({"duration": 5, "width": 640, "height": 360}),
                      owner=f"{L.HOST}:{os.getppid()}")  # a live process of this machine works on it
    j = job_json(running, now=now, dry_endpoints=set(), output_dir=None, names={"pixverse:1@5": "PixVerse v5"})
    assert (j["kind"], j["phase"], j["elapsed"], j["size"]) == ("running", "generating at Runware", 42.0, "640×360")
    running.owner = None  # no run works on it any more: it ended, said with what to do (issue 25 item 9)
    j = job_json(running, now=now, dry_endpoints=set(), output_dir=None, names={"pixverse:1@5": "PixVerse v5"})
    assert j["kind"] == "stopped" and "python -m nodes recover u1" in j["recover"]
    lost = L.Entry(task_uuid="u2", status=L.LOST, endpoint="e", created_at=now, error="not found")
    j = job_json(lost, now=now, dry_endpoints={"e"}, output_dir=None, names={})
    assert j["kind"] == "lost" and "python -m nodes recover u2" in j["recover"] and j["billed"] is False


def test_estimate_route_carries_the_cached_balance(emu, runner, monkeypatch, tmp_path):
    """The estimate beside which each generator's panel can show the balance: the last reading, no network."""
    from web_expect import load_routes

    monkeypatch.setenv("RUNWARE_BASE_URL", emu.base_url)
    body = {"node": "text_to_video", "values": {"model": "pixverse:1@5", "prompt": "a boat", "resolution": "360p",
                                                 "aspect_ratio": "16:9", "duration": 5}}
    routes = load_routes()
    monkeypatch.setattr(routes, "ledger_if_present", lambda: None)  # ComfyUI's ledger path needs ComfyUI
    status, reply = routes.estimate_for(body, str(tmp_path))
    assert status == 200 and reply["balance"] is None, reply  # nothing read yet
    asyncio.run(B.CACHE.get(public_base_url(), lambda: _balance(runner)))
    before = account_requests(emu)
    status, reply = routes.estimate_for(body, str(tmp_path))
    assert reply["balance"]["balance"] == emu_account.DEFAULT_BALANCE and account_requests(emu) == before
