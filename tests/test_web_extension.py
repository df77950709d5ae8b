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
from nodes.spec.options import evaluate
from web_expect import load_routes, synthetic_spec

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

def value_grid(spec, kind, model):
    """Values that exercise the rules: every resolution × duration × fps, with motion and sound choices."""
    base = {"model": model.label, "prompt": "x"}
    if kind == "lipsync":
        return [base]
    grid = []
    for res in model.resolutions:
        for d in model.durations.all:
            for extra in ({}, {"motion_mode": "fast", "sound_effects": False, "sound_effect_content": "rain"},
                          {"effect": "none", "last_frame": True}):
                grid.append({**base, "resolution": res, "duration": d, "fps": 16, **extra})
    return grid


def test_options_per_model_are_the_python_ones():
    """rules.js narrows the served options exactly as nodes/spec/options.evaluate does, for every model."""
    data = routes.web_spec()
    calls, expected = [], []
    for kind in ("text_to_video", "image_to_video", "lipsync"):
        for m in SPEC.models_for({"text_to_video": "text-to-video", "image_to_video": "image-to-video",
                                  "lipsync": "video-to-video"}[kind]):
            for values in value_grid(SPEC, kind, m):
                calls.append(("evaluate", data, kind, m.label, values))
                ev = evaluate(SPEC, kind, m, values)
                expected.append({"allowed": ev.allowed, "reasons": ev.reasons, "notices": ev.notices})
    got = js(*calls)
    assert len(got) > 100
    assert got == expected


def test_camera_is_flagged_on_models_without_it_and_effects_nowhere():
    data = routes.web_spec()
    pairs = [(m, s) for m in SPEC.generators for s in ("camera_movement", "effect")]
    results = js(*[("motionProblem", data, s, "text_to_video", m.label) for m, s in pairs])
    takers = [m.name for m in SPEC.models_taking("camera_movement")]
    assert sorted(takers) == ["PixVerse v4", "PixVerse v4.5"]
    for (m, setting), problem in zip(pairs, results):
        if m.supports(setting):
            assert problem is None
        else:
            names = [t.name for t in SPEC.models_taking(setting)]
            assert m.name in problem and all(t in problem for t in names) and setting.replace("_", " ") in problem


def test_fast_motion_warning_follows_the_spec_rules():
    data = routes.web_spec()
    v5 = SPEC.model("pixverse:1@5")
    combos = [{"model": v5.label, "motion_mode": mm, "duration": d, "resolution": r, "aspect_ratio": "16:9", "fps": 16}
              for mm in SPEC.setting("motion_mode").values for d in v5.durations.all for r in v5.resolutions]
    got = js(*[("reconcile", data, "text_to_video", c, {}) for c in combos])
    warned = [bool(r["warnings"]) for r in got]
    assert warned == [bool(evaluate(SPEC, "text_to_video", v5, c).notices) for c in combos]
    assert any(warned) and not all(warned)
    assert all("'normal'" in w for r in got for w in r["warnings"])


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


def test_rule_refusals_become_notes_on_the_node():
    """A value a rule takes away (sound text with sound off) is cleared with the rule's reason."""
    data = routes.web_spec()
    v5 = SPEC.model("pixverse:1@5")
    values = {"model": v5.label, "resolution": "720p", "aspect_ratio": "16:9", "duration": 5, "fps": 16,
              "sound_effects": False, "sound_effect_content": "rain on a tin roof"}
    (r,) = js(("reconcile", data, "text_to_video", values, {}))
    assert [(c["name"], c["to"]) for c in r["changes"]] == [("sound_effect_content", "")]
    why = next(rule.why for rule in SPEC.rules if "sound_effect_content" in rule.forbid)
    assert why in r["changes"][0]["note"]


def test_rules_follow_a_different_spec_and_replace_invalid_values_with_notes():
    spec = synthetic_spec()
    data = routes.web_spec(spec)
    v35 = spec.model("pixverse:1@1")
    values = {"model": v35.label, "resolution": "1080p", "aspect_ratio": "9:16", "duration": 8, "fps": 16,
              "style": "anime", "motion_mode": "fast", "sound_effects": False, "sound_effect_content": "",
              "prompt": "x"}
    defaults = {"resolution": "720p", "aspect_ratio": "16:9", "fps": 16, "style": "none", "motion_mode": "normal"}
    t2v, at360, lip, ev = js(
        ("reconcile", data, "text_to_video", values, defaults),
        ("reconcile", data, "text_to_video", {**values, "resolution": "360p"}, defaults),
        ("reconcile", data, "lipsync", {"model": spec.lipsync_models[0].label, "voice": "Emily",
                                        "speech_text": "hi"}, {"voice": "auto"}),
        ("evaluate", data, "text_to_video", v35.label, {"resolution": "360p"}))
    changed = {c["name"]: (c["from"], c["to"]) for c in t2v["changes"]}
    assert changed == {"resolution": ("1080p", "720p"), "fps": (16, 24), "style": ("anime", "none"),
                       "motion_mode": ("fast", "normal")}
    for c in t2v["changes"]:
        assert v35.name in c["note"] and c["name"].replace("_", " ") in c["note"]
    assert t2v["values"]["aspect_ratio"] == "9:16" and t2v["values"]["duration"] == 8
    assert t2v["warnings"] == []  # motion mode is normal now, so nothing reverts
    assert "720×1280" in t2v["summary"]
    assert {c["name"]: c["to"] for c in at360["changes"]}["aspect_ratio"] == "16:9"
    opts = ev["allowed"]
    assert opts["resolution"] == ["360p", "540p", "720p"] and "9:16" not in opts["aspect_ratio"]
    assert opts["style"] == ["none"] and opts["motion_mode"] == ["normal"] and opts["fps"] == [24]
    assert {c["name"]: c["to"] for c in lip["changes"]} == {"voice": "auto"}


def test_run_summary_shows_task_and_cost():
    info = {"taskUUID": "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "cost": 0.3, "width": 640, "height": 360,
            "duration": 5.0, "fps": 16.0, "seed": 7, "notices": []}
    served = routes.web_spec()
    line, cost = js(("runSummary", served, info), ("fmtCost", served, 0.12345))
    assert info["taskUUID"] in line and "$0.30" in line and "640×360" in line and "seed 7" in line
    assert cost == "$0.1235"


def test_costs_are_written_as_the_server_writes_them():
    """The extension formats a cost with the served format; the result is the server's pricing.usd."""
    from nodes.money import pricing
    served = routes.web_spec()
    amounts = [0, 0.1, 0.3, 1, 2.5, 10, 0.12345, 0.1234, 0.05, 0.00001, 123.456789]
    shown = js(*[("fmtCost", served, a) for a in amounts])
    assert shown == [pricing.usd(a) for a in amounts]


def test_settings_are_served_from_the_declaration_not_typed_in_web():
    """The ComfyUI settings the server reads are declared once (nodes/config.py) and served, with their places,
    names, tooltips, types, defaults and ranges; web/ types no id of them and names no variable."""
    from nodes import config
    ui = routes.web_spec()["ui"]
    ids = ui["setting_ids"]
    assert ids == {o.key: o.setting for o in config.OPTIONS if o.setting} and "min_balance" in ids
    assert ui["settings"] == config.web_settings() and [s["id"] for s in ui["settings"]] == list(ids.values())
    # users' saved settings still apply: the ids, types and defaults of the last release
    assert {s["id"]: (s["type"], s["defaultValue"]) for s in ui["settings"]} == {
        "Runware.PixVerse.DailyLimit": ("number", 0), "Runware.PixVerse.PromptLimit": ("number", 0),
        "Runware.PixVerse.AllowUnknownCost": ("boolean", False), "Runware.PixVerse.MinBalance": ("number", 0),
        "Runware.PixVerse.StartAhead": ("number", 0), "Runware.PixVerse.Layout": ("combo", "auto")}
    layout = next(s for s in ui["settings"] if s["key"] == "layout")
    assert layout["options"] == ui["layouts"]
    variables = [o.env for o in config.OPTIONS if o.env and o.env.startswith("RUNWARE_PIXVERSE_")]
    for path in (ROOT / "web").rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert not [i for i in ids.values() if i in text], path
        assert not [v for v in variables if v in text], path


def test_node_kinds_come_from_the_served_table():
    """nodeKind reads the served table of kinds: every node id maps to its kind, anything else to null."""
    from nodes.spec.kinds import KINDS
    served = routes.web_spec()
    assert served["kinds"] == {k.kind: k.to_json() for k in KINDS}
    got = js(*[("nodeKind", served, k.node_id) for k in KINDS], ("nodeKind", served, "SaveVideo"),
             *[("motionSettingOf", served, k.kind) for k in KINDS], *[("sendsTask", served, k.kind) for k in KINDS])
    n = len(KINDS)
    assert got[:n] == [k.kind for k in KINDS] and got[n] is None
    assert got[n + 1:2 * n + 1] == [k.motion_setting for k in KINDS]
    assert got[2 * n + 1:] == [k.workflow is not None for k in KINDS]


def test_web_files_hold_no_option_list():
    """Every list comes from the served spec: no enum value, size, model label or AIR id in web/."""
    words = set(SPEC.setting("style").values) | set(SPEC.setting("effect").values) | set(SPEC.setting("camera_movement").values)
    words |= set(SPEC.voices.values) - {"auto"}
    words |= {m.air for m in SPEC.models} | {m.label for m in SPEC.models}
    words |= {r for m in SPEC.models for r in m.resolutions} | {a for m in SPEC.models for a in m.aspect_ratios}
    words |= {s.wire for s in SPEC.settings if s.wire != s.input} | {r.why for r in SPEC.rules if r.why}
    sources = {p: p.read_text(encoding="utf-8") for p in (ROOT / "web").rglob("*.js")}
    assert sources, "no web/*.js"
    for path, text in sources.items():
        quoted = set(re.findall(r"""["'`]([^"'`\n]{1,60})["'`]""", text))
        assert not (quoted & words), f"{path.relative_to(ROOT)} writes down {sorted(quoted & words)}"
        assert not re.search(r"\b(?:360|540|720|1080)p\b|\b\d+:\d+\b", text.replace("// ", "")), path


# -- routes: the key ---------------------------------------------------------------------------

KEY = "rw-test-key-0123456789abcdef"


@pytest.fixture
def emulator(make_emulator):
    return make_emulator(job_seconds=0.2, api_key=KEY)


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
    if os.name == "posix":  # Windows has no mode bits: the user folder's access list guards the file
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == KEY
    from nodes.comfy import keystore
    assert keystore.load_key(tmp_path) == KEY


def test_env_key_is_reported_as_env_and_wins(tmp_path, emulator, monkeypatch):
    monkeypatch.setenv("RUNWARE_BASE_URL", emulator.base_url)
    monkeypatch.setenv("RUNWARE_API_KEY", "rw-env-key-zzzzzzzzzzzz9999")
    (s1, posted, _), (s2, status, _) = asyncio.run(_call(tmp_path, [
        ("POST", routes.ROUTE_PREFIX + "/key", {"key": KEY}), ("GET", routes.ROUTE_PREFIX + "/key", None)]))
    assert s1 == 200 and posted["source"] == "env" and "RUNWARE_API_KEY" in posted["note"]
    assert status == {"configured": True, "masked": "••••••••9999", "source": "env"}


def test_unreachable_runware_stores_nothing(tmp_path, no_env_key, monkeypatch):
    from support.comfy import free_port

    monkeypatch.setenv("RUNWARE_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    (status, body, _), = asyncio.run(_call(tmp_path, [("POST", routes.ROUTE_PREFIX + "/key", {"key": KEY})]))
    assert status == 502 and "not stored" in body["error"] and body["configured"] is False
    assert not (tmp_path / "runware" / "api_key").exists()


def test_spec_route_serves_the_spec_and_the_node_names():
    (status, data, _), = asyncio.run(_call(Path("/nonexistent"), [("GET", routes.ROUTE_PREFIX + "/spec", None)]))
    assert status == 200
    from nodes.spec.kinds import NODE_IDS
    from nodes.spec.options import served
    assert data["nodes"] == json.loads(json.dumps(served(SPEC)))
    assert {k: entry["node_id"] for k, entry in data["kinds"].items()} == NODE_IDS
    labels = {label for kind in data["nodes"].values() for label in kind["models"]}
    assert labels == {m.label for m in SPEC.models}
    assert sys.modules.get("server") is None  # ComfyUI's server module was never needed


# -- visibility.js: a node shows only what its model takes ---------------------------------------

VISIBILITY = ROOT / "web" / "lib" / "visibility.js"



def test_served_ignores_are_the_inputs_each_model_does_not_take():
    data = routes.web_spec()
    for kind in ("text_to_video", "image_to_video"):
        for model in SPEC.models_for({"text_to_video": "text-to-video", "image_to_video": "image-to-video"}[kind]):
            ignores = data["nodes"][kind]["models"][model.label]["ignores"]
            settings = [s.input for s in SPEC.settings_for(model.workflows[0]) if s.via is None]
            assert sorted(ignores) == sorted([s for s in settings if not model.supports(s)]
                                             + (["fps"] if model.fps is None else [])), model.key
    assert data["ui"]["layouts"] == ["auto", *SPEC.layouts]


def test_visibility_plan_hides_the_settings_a_model_does_not_take():
    data = routes.web_spec()
    names = ["model", "prompt", "resolution", "aspect_ratio", "duration", "fps", "style", "motion_mode",
             "sound_effects", "sound_effect_content", "audio", "multi_clip", "thinking", "seed"]
    v5, v6, fast = (SPEC.model(a).label for a in ("pixverse:1@5", "pixverse:1@8", "pixverse:1@5-fast"))
    p5, p6, pf, wired, unknown = js(("plan", data, "text_to_video", v5, names),
                                    ("plan", data, "text_to_video", v6, names),
                                    ("plan", data, "text_to_video", fast, names),
                                    ("plan", data, "text_to_video", v6, names, ["motion_mode"]),
                                    ("plan", data, "text_to_video", "no such model", names), module=VISIBILITY)
    assert p5["hidden"] == ["audio", "multi_clip", "thinking"] and p5["own"] == {}
    assert p6["hidden"] == ["motion_mode", "sound_effects", "sound_effect_content"]
    assert p6["own"] == {"fps": "fps: model's own rate"}  # shown greyed, its label says so
    assert "style" in p6["shown"] and "audio" in p6["shown"] and "fps" in p6["shown"]
    assert pf["hidden"] == ["style", "motion_mode", "sound_effects", "sound_effect_content", "audio", "multi_clip",
                            "thinking"]
    assert p5["shown"] + p5["hidden"] != names and sorted(p5["shown"] + p5["hidden"]) == sorted(names)
    # a widget wired to a link stays visible (marked as the model's own), never hidden out of sight
    assert "motion_mode" not in wired["hidden"] and wired["own"]["motion_mode"].startswith("motion mode")
    assert unknown is None


def test_visibility_follows_a_different_served_spec():
    """The extension holds no list: a spec where v3.5 takes no style hides style on v3.5."""
    cut = routes.web_spec(synthetic_spec())
    v35 = SPEC.model("pixverse:1@1").label
    (p,) = js(("plan", cut, "text_to_video", v35, ["model", "style", "motion_mode", "fps", "effect"]),
              module=VISIBILITY)
    assert p["hidden"] == ["style", "motion_mode"] and p["own"] == {}


def test_summary_says_the_model_makes_its_own_frame_rate():
    data = routes.web_spec()
    v5, v6 = SPEC.model("pixverse:1@5").label, SPEC.model("pixverse:1@8").label
    values = {"resolution": "720p", "aspect_ratio": "16:9", "duration": 5, "fps": 16, "style": "none"}
    r5, r6 = js(("reconcile", data, "text_to_video", {**values, "model": v5}),
                ("reconcile", data, "text_to_video", {**values, "model": v6}))
    assert r5["summary"].endswith("5 s, 16 fps"), r5["summary"]
    assert r6["summary"].endswith("5 s, the model's own frame rate") and "16 fps" not in r6["summary"], r6["summary"]


def test_values_of_hidden_inputs_are_kept_and_come_back():
    data = routes.web_spec()
    v5, v6 = SPEC.model("pixverse:1@5").label, SPEC.model("pixverse:1@8").label
    changes = [{"name": "audio", "from": True, "to": False, "note": "audio"},
               {"name": "fps", "from": 24, "to": 16, "note": "fps"},
               {"name": "duration", "from": 7, "to": 5, "note": "duration"}]
    shown_on_v5, shown_on_v6 = js(("keep", data, "text_to_video", v5, changes, {}),
                                  ("keep", data, "text_to_video", v6, changes, {}), module=VISIBILITY)
    assert [c["name"] for c in shown_on_v5] == ["fps", "duration"]  # v5 takes fps: its change is announced
    assert [c["name"] for c in shown_on_v6] == ["audio", "duration"]
    back_v6, back_v5, none = js(("restore", data, "text_to_video", v6, {"audio": True, "motion_mode": "fast"}),
                                ("restore", data, "text_to_video", v5, {"audio": True, "motion_mode": "fast"}),
                                ("restore", data, "text_to_video", "no such model", {"audio": True}),
                                module=VISIBILITY)
    assert back_v6 == {"audio": True} and back_v5 == {"motion_mode": "fast"} and none == {}


# -- routes: the estimate -----------------------------------------------------------------------

def test_estimate_and_node_agree_on_v6_image_to_video_at_16_9(tmp_path, monkeypatch):
    """The bug of issue 16: the node accepted a v6 image-to-video at 16:9 (it can go in the seed layout)
    while the estimate route said "no estimate … Allowed: auto". Both now ask the one draft request."""
    from nodes import config
    from nodes.requests import layouts
    from nodes.workflows.draft import draft
    from nodes.spec.kinds import NODE_IDS
    monkeypatch.setattr(routes, "ledger_if_present", lambda: None)
    monkeypatch.delenv("RUNWARE_PIXVERSE_LAYOUT", raising=False)
    v6 = SPEC.model("pixverse:1@8")
    values = {"model": v6.label, "prompt": "a paper boat", "aspect_ratio": "16:9", "resolution": "720p",
              "duration": 5}
    drafted = draft("image_to_video", values)  # what the node's validate_inputs builds
    assert (drafted.task["width"], drafted.task["height"]) == v6.size("720p", "16:9") and not drafted.exact
    status, reply = routes.estimate_for({"node": NODE_IDS["image_to_video"], "values": values}, str(tmp_path))
    assert status == 200 and reply["source"] != "invalid", reply
    # forced into the current layout (the ComfyUI setting), a run could not send it: both refuse
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "comfy.settings.json").write_text(json.dumps({config.LAYOUT.setting: "current"}))
    status, reply = routes.estimate_for({"node": NODE_IDS["image_to_video"], "values": values}, str(tmp_path))
    assert reply["source"] == "invalid" and "Allowed: auto" in reply["text"]


def test_the_estimate_of_count_videos_adds_each_up(tmp_path, monkeypatch):
    """Issue 18: with count 4 the panel says "4 × $0.30 = $1.20": each video (seed, seed+1, …) priced."""
    from nodes.money import pricing
    from nodes.spec.kinds import NODE_IDS
    monkeypatch.setattr(routes, "ledger_if_present", lambda: None)
    v5 = SPEC.model("pixverse:1@5")
    values = {"model": v5.label, "prompt": "four takes of a kite", "aspect_ratio": "16:9", "resolution": "1080p",
              "duration": 5, "fps": 16, "seed": 10}
    one = routes.estimate_for({"node": NODE_IDS["text_to_video"], "values": values}, str(tmp_path))[1]
    four = routes.estimate_for({"node": NODE_IDS["text_to_video"], "values": {**values, "count": 4}},
                               str(tmp_path))[1]
    assert one["cost"] is not None and one["source"] == "price", one
    assert four["count"] == 4 and four["cost"] == pytest.approx(4 * one["cost"])
    assert four["text"].startswith(f"4 × {pricing.usd(one['cost'])} = {pricing.usd(4 * one['cost'])}"), four["text"]


def test_the_rule_context_is_the_pythons():
    """A connected last frame is "last_frame": true for the rules in the extension, as a task with a
    last frame image is in Python (nodes/spec/paths.rule_context, used by the builder and the emulator)."""
    from nodes.spec.paths import rule_context
    v6 = SPEC.model("pixverse:1@8")
    for connected, positions in ((False, ["first"]), (True, ["first", "last"])):
        ours = rule_context(SPEC, v6, {"thinking": "auto"}, positions)
        theirs, = js(("ruleContext", {"model": v6.label, "thinking": "auto"},
                      {"first_frame": True, "last_frame": connected}))
        assert theirs["last_frame"] is ours["last_frame"] is connected and theirs["thinking"] == ours["thinking"]
