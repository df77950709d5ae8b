"""The key routes refuse other sites themselves (nodes/comfy/webguard.py), tested through a real aiohttp
server (the pack's routes without ComfyUI) with raw Host/Origin/Content-Type headers, as a browser
on another site or a DNS-rebinding page would send them. A refused request never reaches Runware
(the emulator counts no `authentication` task) and never changes the stored key."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from nodes import config
from nodes.comfy import webguard
from web_expect import load_routes

routes = load_routes()
KEY = "rw-guard-test-key-0123456789ab"
ATTACKER_KEY = "rw-attacker-key-9876543210zz"
K = routes.ROUTE_PREFIX + "/key"
GOOD = {"Content-Type": "application/json", "X-PixVerse-Request": "1"}


@pytest.fixture
def emulator(make_emulator):
    return make_emulator(job_seconds=0.2)  # any key is accepted: only the guard can refuse


@pytest.fixture
def env(monkeypatch, emulator):
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    monkeypatch.delenv(config.ALLOWED_HOSTS.env, raising=False)
    monkeypatch.setenv("RUNWARE_BASE_URL", emulator.base_url)
    return monkeypatch


async def _send(user_dir: Path, requests: list[tuple[str, dict, object]]) -> list[tuple[int, dict]]:
    from aiohttp import ClientSession, web

    table = web.RouteTableDef()
    routes.add_routes(table, lambda: str(user_dir))
    app = web.Application()
    app.add_routes(table)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    out = []
    try:
        async with ClientSession() as session:
            for method, headers, body in requests:
                headers = {k: v.replace("{port}", str(port)) for k, v in headers.items()}
                data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
                async with session.request(method, f"http://127.0.0.1:{port}{K}", headers=headers,
                                           data=data, skip_auto_headers=["Content-Type"]) as resp:
                    out.append((resp.status, json.loads(await resp.text())))
    finally:
        await runner.cleanup()
    return out


def auth_tasks(emulator) -> int:
    return emulator.stats()["auth_checks"]


def stored(user_dir: Path) -> str:
    path = user_dir / "runware" / "api_key"
    return path.read_text() if path.exists() else ""


CROSS_SITE = [
    ("text/plain form POST (no preflight), loopback Host",
     "POST", {"Content-Type": "text/plain"}, json.dumps({"key": ATTACKER_KEY})),
    ("JSON POST without the custom header", "POST", {"Content-Type": "application/json"}, {"key": ATTACKER_KEY}),
    ("custom header, text/plain body", "POST", {"Content-Type": "text/plain", "X-PixVerse-Request": "1"},
     json.dumps({"key": ATTACKER_KEY})),
    ("Origin of another site, LAN Host", "POST",
     {**GOOD, "Host": "192.168.1.20:{port}", "Origin": "http://evil.example"}, {"key": ATTACKER_KEY}),
    ("Origin of another site, loopback Host", "POST", {**GOOD, "Origin": "http://evil.example:{port}"},
     {"key": ATTACKER_KEY}),
    ("Origin: null (sandboxed frame)", "POST", {**GOOD, "Origin": "null"}, {"key": ATTACKER_KEY}),
    ("DNS rebinding: Host evil.example, same-origin", "POST",
     {**GOOD, "Host": "evil.example:{port}", "Origin": "http://evil.example:{port}"}, {"key": ATTACKER_KEY}),
    ("Sec-Fetch-Site: cross-site", "POST", {**GOOD, "Sec-Fetch-Site": "cross-site"}, {"key": ATTACKER_KEY}),
    ("DELETE from another site", "DELETE", {**GOOD, "Origin": "http://evil.example"}, None),
    ("DELETE without the custom header", "DELETE", {"Content-Type": "application/json"}, None),
    ("GET the masked key through DNS rebinding", "GET", {"Host": "evil.example:{port}"}, None),
]


@pytest.mark.parametrize("what,method,headers,body", CROSS_SITE, ids=[c[0] for c in CROSS_SITE])
def test_cross_site_and_rebinding_requests_are_refused(tmp_path, env, emulator, what, method, headers, body):
    (s0, first), = asyncio.run(_send(tmp_path, [("POST", GOOD, {"key": KEY})]))
    assert s0 == 200, first
    before = auth_tasks(emulator)
    (status, answer), = asyncio.run(_send(tmp_path, [(method, headers, body)]))
    assert status == 403, (what, answer)
    assert answer["error"] and "masked" not in answer and KEY not in json.dumps(answer)
    assert stored(tmp_path) == KEY  # neither replaced nor deleted
    assert auth_tasks(emulator) == before  # the attacker's key never went to Runware


def test_same_origin_requests_work(tmp_path, env, emulator):
    out = asyncio.run(_send(tmp_path, [
        ("POST", {**GOOD, "Origin": "http://127.0.0.1:{port}"}, {"key": KEY}),
        ("GET", {"Host": "localhost:{port}", "Origin": "http://localhost:{port}"}, None),
        ("DELETE", {**GOOD, "Host": "[::1]:{port}", "Origin": "http://[::1]:{port}"}, None),
    ]))
    assert [s for s, _ in out] == [200, 200, 200], out
    assert out[1][1]["configured"] is True and out[2][1]["removed"] is True


def test_a_host_name_is_allowed_by_the_env_var(tmp_path, env, emulator):
    headers = {**GOOD, "Host": "studio.lan:{port}", "Origin": "http://studio.lan:{port}"}
    (refused, _), = asyncio.run(_send(tmp_path, [("POST", headers, {"key": KEY})]))
    env.setenv(config.ALLOWED_HOSTS.env, "other.example, .lan")
    (allowed, body), = asyncio.run(_send(tmp_path, [("POST", headers, {"key": KEY})]))
    assert (refused, allowed) == (403, 200), body
    assert stored(tmp_path) == KEY


@pytest.mark.parametrize("host,allowed", [
    ("localhost", True), ("app.localhost", True), ("127.0.0.1", True), ("192.168.1.9", True), ("::1", True),
    ("evil.example", False), ("localhost.evil.example", False), ("127.0.0.1.nip.io", False), ("", False)])
def test_host_rule(host, allowed):
    assert webguard.host_allowed(host, allowed="") is allowed


# -- issue 17 item 11: the read-only routes (/spend, /estimate) get the Host/Origin guard too -------------

READ_CROSS_SITE = [
    ("DNS rebinding: Host evil.example, same-origin", {"Host": "evil.example:{port}", "Origin": "http://evil.example:{port}"}),
    ("DNS rebinding without Origin (a GET)", {"Host": "evil.example:{port}"}),
    ("Origin of another site, loopback Host", {"Origin": "http://evil.example"}),
    ("Origin of another site, LAN Host", {"Host": "192.168.1.20:{port}", "Origin": "http://evil.example"}),
    ("Origin: null (sandboxed frame)", {"Origin": "null"}),
    ("Sec-Fetch-Site: cross-site", {"Sec-Fetch-Site": "cross-site"}),
]
SAME_ORIGIN = [{}, {"Host": "localhost:{port}", "Origin": "http://localhost:{port}"},
               {"Host": "[::1]:{port}", "Origin": "http://[::1]:{port}"}, {"Sec-Fetch-Site": "same-origin"}]


async def _serve(table, requests):
    from aiohttp import ClientSession, web

    app = web.Application()
    app.add_routes(table)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    out = []
    try:
        async with ClientSession() as session:
            for method, path, headers, body in requests:
                headers = {k: v.replace("{port}", str(port)) for k, v in headers.items()}
                async with session.request(method, f"http://127.0.0.1:{port}{path}", headers=headers,
                                           data=None if body is None else json.dumps(body)) as resp:
                    out.append((resp.status, await resp.text()))
    finally:
        await runner.cleanup()
    return out


def _guarded_table():
    """A read-only route guarded by webguard.refused_response, as /spend and /estimate will be."""
    from aiohttp import web

    table = web.RouteTableDef()

    @table.get("/secret")
    async def secret(request):
        refused = webguard.refused_response(request, "the PixVerse spending figures")
        if refused is not None:
            return refused
        return web.json_response({"ledger": "/home/someone/ComfyUI/user/runware/pixverse-jobs.sqlite"})
    return table


@pytest.mark.parametrize("what,headers", READ_CROSS_SITE, ids=[c[0] for c in READ_CROSS_SITE])
def test_read_guard_refuses_other_sites(what, headers, monkeypatch):
    monkeypatch.delenv(config.ALLOWED_HOSTS.env, raising=False)
    (status, text), = asyncio.run(_serve(_guarded_table(), [("GET", "/secret", headers, None)]))
    assert status == 403, (what, text)
    assert "pixverse-jobs" not in text and "the PixVerse spending figures" in json.loads(text)["error"]


@pytest.mark.parametrize("headers", SAME_ORIGIN)
def test_read_guard_lets_the_same_origin_through(headers, monkeypatch):
    monkeypatch.delenv(config.ALLOWED_HOSTS.env, raising=False)
    (status, text), = asyncio.run(_serve(_guarded_table(), [("GET", "/secret", headers, None)]))
    assert status == 200 and "pixverse-jobs" in text


def test_read_guard_needs_no_custom_header_but_the_key_guard_does():
    """The estimate is a POST that changes nothing: it keeps working without X-PixVerse-Request (the
    extension sends none), while the key routes' full rule still wants it."""
    h = {"Host": "127.0.0.1:8188", "Content-Type": "application/json"}
    assert webguard.read_refusal(h, "x") is None
    assert webguard.refusal("POST", h) is not None


@pytest.mark.parametrize("what,headers", READ_CROSS_SITE, ids=[c[0] for c in READ_CROSS_SITE])
def test_spend_and_estimate_refuse_other_sites(tmp_path, env, what, headers):
    from aiohttp import web

    def must_not_run(*a, **k):
        raise AssertionError("the route answered a request from another site")
    env.setattr(routes, "spend_for", must_not_run)
    env.setattr(routes, "estimate_for", must_not_run)
    table = web.RouteTableDef()
    routes.add_budget_routes(table, lambda: str(tmp_path))
    out = asyncio.run(_serve(table, [
        ("GET", routes.ROUTE_PREFIX + "/spend", headers, None),
        ("POST", routes.ROUTE_PREFIX + "/estimate", {**headers, "Content-Type": "application/json"},
         {"node": "x", "values": {}})]))
    for status, text in out:
        assert status == 403, (what, text)
        assert json.loads(text).keys() == {"error"} and str(tmp_path) not in text


def test_spend_and_estimate_still_answer_the_same_origin(tmp_path, env):
    from aiohttp import web

    # The figures themselves need ComfyUI's runtime (the ledger's path): stood in for, as only the
    # guard is under test here.
    env.setattr(routes, "spend_for", lambda user_dir: {"text": "spent today: $0.00"})
    env.setattr(routes, "estimate_for", lambda body, user_dir: (200, {"text": "about $0.10"}))
    table = web.RouteTableDef()
    routes.add_budget_routes(table, lambda: str(tmp_path))
    same = {"Host": "127.0.0.1:{port}", "Origin": "http://127.0.0.1:{port}", "Content-Type": "application/json"}
    out = asyncio.run(_serve(table, [
        ("GET", routes.ROUTE_PREFIX + "/spend", {"Host": "localhost:{port}"}, None),
        ("POST", routes.ROUTE_PREFIX + "/estimate", same, {"node": "x", "values": {}})]))
    assert [s for s, _ in out] == [200, 200], out
