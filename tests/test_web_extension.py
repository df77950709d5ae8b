"""The web extension's logic and the pack's routes, without ComfyUI.

- web/lib/rules.js (run in Node) offers, per model, exactly what the capability spec says, and follows
  a different spec when it is served one (it holds no list of its own).
- The routes' key flow (POST checks with Runware's `authentication` task against the emulator, stores
  0600, GET/POST/DELETE never return the key), run on a plain aiohttp app.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nodes.spec import load_spec
from web_expect import expected_options, load_routes, synthetic_spec

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "web" / "lib" / "rules.js"
NODE = shutil.which("node")
SPEC = load_spec()


routes = load_routes()


def js(*calls, module: Path = RULES):
    if NODE is None:
        pytest.skip("node (Node.js) is not installed: the web extension's rules run in Node here")
    r = subprocess.run([NODE, str(ROOT / "tests" / "js_call.mjs")], input=json.dumps(
        {"module": str(module), "calls": [list(c) for c in calls]}), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for item in out:
        assert "error" not in item, item["error"]
    return [item["ok"] for item in out]


# -- rules.js ------------------------------------------------------------------------------------

def test_options_per_model_follow_the_spec():
    data = routes.web_spec()
    calls, expected = [], []
    for kind in ("text_to_video", "image_to_video"):
        for m in SPEC.generators:
            for res in m.resolutions:
                calls.append(("allowedOptions", data, kind, m.model_dump(mode="json"), {"resolution": res}))
                expected.append(expected_options(SPEC, kind, m, res))
    for m in SPEC.lipsync_models:
        calls.append(("allowedOptions", data, "lipsync", m.model_dump(mode="json"), {}))
        expected.append(expected_options(SPEC, "lipsync", m, ""))
    assert js(*calls) == expected


def test_camera_is_flagged_on_models_without_it_and_effects_nowhere():
    data = routes.web_spec()
    calls = [("motionProblem", data, setting, m.model_dump(mode="json"))
             for m in SPEC.generators for setting in ("cameraMovement", "effect")]
    results = dict(zip([(m.key, s) for m in SPEC.generators for s in ("cameraMovement", "effect")], js(*calls)))
    takers = [m.name for m in SPEC.generators if m.supports("cameraMovement")]
    assert takers == ["PixVerse v4", "PixVerse v4.5"]
    for m in SPEC.generators:
        assert results[(m.key, "effect")] is None
        problem = results[(m.key, "cameraMovement")]
        if m.supports("cameraMovement"):
            assert problem is None
        else:
            assert m.name in problem and all(t in problem for t in takers) and "camera movement" in problem


def test_fast_motion_warning_follows_the_spec_rule():
    data = routes.web_spec()
    combos = [{"motion_mode": mm, "duration": d, "resolution": r}
              for mm in SPEC.enums.motionMode.values for d in SPEC.generation_defaults.duration.values
              for r in SPEC.all_resolutions()]
    got = js(*[("fastMotionReverts", data, c) for c in combos], ("fastMotionWarning", data))
    assert got[:-1] == [SPEC.fast_motion_reverts(c["motion_mode"], c["duration"], c["resolution"]) for c in combos]
    assert any(got[:-1]) and not all(got[:-1])
    warning = got[-1]
    rule = SPEC.fast_motion_revert
    assert rule.mode in warning and rule.reverts_to in warning
    assert all(f"{d} s" in warning for d in rule.when_duration) and all(r in warning for r in rule.when_resolution)


def test_reconcile_keeps_valid_values_and_sizes_come_from_the_model():
    data = routes.web_spec()
    v35, v5 = SPEC.model("pixverse:1@1"), SPEC.model("pixverse:1@5")
    values = {"model": v35.label, "resolution": "720p", "aspect_ratio": "3:4", "duration": 5, "fps": 16,
              "style": "clay", "motion_mode": "normal", "sound_effects": True, "sound_effect_content": ""}
    a, b = js(("reconcile", data, "text_to_video", values, {}),
              ("reconcile", data, "text_to_video", {**values, "model": v5.label}, {}))
    assert a["changes"] == [] and b["changes"] == []
    assert "{}×{}".format(*v35.size("720p", "3:4")) in a["summary"]  # 540×720 for v3.5
    assert "{}×{}".format(*v5.size("720p", "3:4")) in b["summary"]  # 720×960 for v5
    assert a["warnings"] == []


def test_rules_follow_a_different_spec_and_replace_invalid_values_with_notes():
    spec = synthetic_spec()
    data = routes.web_spec(spec)
    v35 = spec.model("pixverse:1@1")
    values = {"model": v35.label, "resolution": "1080p", "aspect_ratio": "9:16", "duration": 8, "fps": 16,
              "style": "anime", "motion_mode": "fast", "sound_effects": False, "sound_effect_content": "",
              "prompt": "x"}
    defaults = {"resolution": "720p", "aspect_ratio": "16:9", "fps": 16, "style": "none", "motion_mode": "normal"}
    t2v, at360, lip, opts = js(
        ("reconcile", data, "text_to_video", values, defaults),
        ("reconcile", data, "text_to_video", {**values, "resolution": "360p"}, defaults),
        ("reconcile", data, "lipsync", {"model": spec.lipsync_models[0].label, "voice": "Emily",
                                        "speech_text": "hi"}, {"voice": "auto"}),
        ("allowedOptions", data, "text_to_video", v35.model_dump(mode="json"), {"resolution": "360p"}))
    changed = {c["name"]: (c["from"], c["to"]) for c in t2v["changes"]}
    assert changed == {"resolution": ("1080p", "720p"), "fps": (16, 24), "style": ("anime", "none"),
                       "motion_mode": ("fast", "normal")}
    for c in t2v["changes"]:
        assert v35.name in c["note"] and c["name"].replace("_", " ") in c["note"]
    assert t2v["values"]["aspect_ratio"] == "9:16" and t2v["values"]["duration"] == 8
    assert t2v["warnings"] == []  # motion mode is normal now, so nothing reverts
    assert "720×1280" in t2v["summary"]
    assert {c["name"]: c["to"] for c in at360["changes"]}["aspect_ratio"] == "16:9"
    assert opts["resolution"] == ["360p", "540p", "720p"] and "9:16" not in opts["aspect_ratio"]
    assert opts["style"] == ["none"] and opts["motion_mode"] == ["normal"] and opts["fps"] == [24]
    assert {c["name"]: c["to"] for c in lip["changes"]} == {"voice": "auto", "speech_text": ""}


def test_run_summary_shows_task_and_cost():
    info = {"taskUUID": "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "cost": 0.3, "width": 640, "height": 360,
            "duration": 5.0, "fps": 16.0, "seed": 7, "notices": []}
    line, cost = js(("runSummary", info), ("fmtCost", 0.12345))
    assert info["taskUUID"] in line and "$0.30" in line and "640×360" in line and "seed 7" in line
    assert cost == "$0.1235"


def test_web_files_hold_no_option_list():
    """Every list comes from the served spec: no enum value, size, model label or AIR id in web/."""
    words = set(SPEC.enums.style.values) | set(SPEC.enums.effect.values) | set(SPEC.enums.cameraMovement.values)
    words |= set(SPEC.enums.voice.values) - {"auto"}
    words |= {m.air for m in SPEC.models} | {m.label for m in SPEC.models} | set(SPEC.all_resolutions())
    words |= set(SPEC.all_aspect_ratios())
    sources = {p: p.read_text(encoding="utf-8") for p in (ROOT / "web").rglob("*.js")}
    assert sources, "no web/*.js"
    for path, text in sources.items():
        quoted = set(re.findall(r"""["'`]([^"'`\n]{1,60})["'`]""", text))
        assert not (quoted & words), f"{path.relative_to(ROOT)} writes down {sorted(quoted & words)}"
        assert not re.search(r"\b(?:360|540|720|1080)p\b|\b\d+:\d+\b", text.replace("// ", "")), path


# -- routes: the key ---------------------------------------------------------------------------

KEY = "rw-test-key-0123456789abcdef"


@pytest.fixture
def emulator():
    from nodes.emulator import EmulatorServer

    with EmulatorServer(job_seconds=0.2, api_key=KEY) as emu:
        yield emu


@pytest.fixture
def no_env_key(monkeypatch):
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)


async def _call(user_dir: Path, calls: list[tuple]) -> list[tuple[int, dict, str]]:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    table = web.RouteTableDef()
    routes.add_routes(table, lambda: str(user_dir))
    app = web.Application()
    app.add_routes(table)
    out = []
    async with TestClient(TestServer(app)) as client:
        for method, path, body in calls:
            # What web/pixverse.js sends with every key request.
            headers = {"Content-Type": "application/json", "X-PixVerse-Request": "1"} if method != "GET" else {}
            resp = await client.request(method, path, json=body, headers=headers) if body is not None else \
                await client.request(method, path, headers=headers)
            text = await resp.text()
            out.append((resp.status, json.loads(text), resp.headers.get("Cache-Control", "")))
    return out


def test_key_routes_check_store_mask_and_delete(tmp_path, emulator, no_env_key, monkeypatch):
    monkeypatch.setenv("RUNWARE_BASE_URL", emulator.base_url)
    k = routes.ROUTE_PREFIX + "/key"
    results = asyncio.run(_call(tmp_path, [
        ("GET", k, None),
        ("POST", k, {"key": "rw-wrong-key-0000000000"}),
        ("POST", k, {"key": "has space"}),
        ("POST", k, {}),
        ("POST", k, {"key": "  " + KEY + "\n"}),
        ("GET", k, None),
        ("DELETE", k, None),
        ("GET", k, None),
        ("DELETE", k, None),
    ]))
    (s0, empty, _), (s1, wrong, _), (s2, spaced, _), (s3, missing, _), (s4, stored, cc), (s5, status, _), \
        (s6, removed, _), (s7, after, _), (s8, again, _) = results
    assert (s0, empty) == (200, {"configured": False, "masked": "", "source": None})
    assert s1 == 401 and "invalidApiKey" in wrong["error"] and wrong["configured"] is False
    assert s2 == 400 and s3 == 400
    assert s4 == 200 and stored == {"configured": True, "masked": "••••••••cdef", "source": "file"}
    assert cc == "no-store"
    assert s5 == 200 and set(status) == {"configured", "masked", "source"} and status["source"] == "file"
    assert s6 == 200 and removed["removed"] is True and removed["configured"] is False
    assert after["configured"] is False and again["removed"] is False
    for _, body, _ in results:
        assert KEY not in json.dumps(body) and "rw-wrong-key" not in json.dumps(body)
    auth = [t for r in emulator.requests if isinstance(r.get("body"), list) for t in r["body"]
            if t.get("taskType") == "authentication"]
    assert len(auth) == 2  # one per well-formed key; malformed ones never leave the server


def test_stored_key_file_is_0600_and_holds_only_the_key(tmp_path, emulator, no_env_key, monkeypatch):
    monkeypatch.setenv("RUNWARE_BASE_URL", emulator.base_url)
    (status, body, _), = asyncio.run(_call(tmp_path, [("POST", routes.ROUTE_PREFIX + "/key", {"key": KEY})]))
    assert status == 200, body
    path = tmp_path / "runware" / "api_key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == KEY
    from nodes import keystore
    assert keystore.load_key(tmp_path) == KEY


def test_env_key_is_reported_as_env_and_wins(tmp_path, emulator, monkeypatch):
    monkeypatch.setenv("RUNWARE_BASE_URL", emulator.base_url)
    monkeypatch.setenv("RUNWARE_API_KEY", "rw-env-key-zzzzzzzzzzzz9999")
    (s1, posted, _), (s2, status, _) = asyncio.run(_call(tmp_path, [
        ("POST", routes.ROUTE_PREFIX + "/key", {"key": KEY}), ("GET", routes.ROUTE_PREFIX + "/key", None)]))
    assert s1 == 200 and posted["source"] == "env" and "RUNWARE_API_KEY" in posted["note"]
    assert status == {"configured": True, "masked": "••••••••9999", "source": "env"}


def test_unreachable_runware_stores_nothing(tmp_path, no_env_key, monkeypatch):
    from comfy_harness import free_port

    monkeypatch.setenv("RUNWARE_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    (status, body, _), = asyncio.run(_call(tmp_path, [("POST", routes.ROUTE_PREFIX + "/key", {"key": KEY})]))
    assert status == 502 and "not stored" in body["error"] and body["configured"] is False
    assert not (tmp_path / "runware" / "api_key").exists()


def test_spec_route_serves_the_spec_and_the_node_names():
    (status, data, _), = asyncio.run(_call(Path("/nonexistent"), [("GET", routes.ROUTE_PREFIX + "/spec", None)]))
    assert status == 200
    assert {k: v for k, v in data.items() if k != "ui"} == SPEC.to_public_json()
    from nodes import widgets
    assert data["ui"]["node_ids"] == widgets.NODE_IDS
    assert data["ui"]["model_labels"] == {m.label: m.air for m in SPEC.models}
    assert sys.modules.get("server") is None  # ComfyUI's server module was never needed
