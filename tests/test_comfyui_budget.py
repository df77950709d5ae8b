"""The bill in a real ComfyUI (COMFYUI_PATH) against the emulator: the panel's estimate route before a
run, the daily limit set through ComfyUI's own settings, the third run refused before any upload, and
the spend route.

Skipped, with the reason, when COMFYUI_PATH is unset.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from support import keysafety
from support.comfy import ServerKind, comfyui_path, pack_env
from nodes.emulator import FAKE_COST_PER_SECOND_USD
from nodes.spec import load_spec

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

SENTINEL_KEY = keysafety.SENTINEL_KEY
SPEC = load_spec()
I2V = "RunwarePixVerseImageToVideo"
RUN_COST = 5 * FAKE_COST_PER_SECOND_USD  # the emulator's price of a 360p, 5 s video: $0.20
LIMIT = 2 * RUN_COST + 0.05  # just above two runs


def _inputs(base) -> None:
    from PIL import Image
    (base / "input").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("one.png", "two.png", "three.png")):
        pixels = (np.random.default_rng(i).random((360, 640, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(base / "input" / name)


@pytest.fixture(scope="module")
def budget_server(comfy_pool, session_emulator):
    """A ComfyUI of its own: this module reads the day's spending and the estimates from an empty job ledger
    ("today $0.00", "no run of this kind yet"), and a running ComfyUI's ledger (keyed by its endpoint) cannot
    be emptied."""
    kind = ServerKind("budget", pack_env(session_emulator.base_url, SENTINEL_KEY), prepare=_inputs)
    server = comfy_pool.get(kind)
    _read_defaults(server)
    return server


@pytest.fixture
def comfy(budget_server, emulator):
    budget_server.settle()
    snapshot = budget_server.settings_snapshot()
    yield budget_server
    budget_server.settle()
    budget_server.restore_settings(snapshot)


_DEFAULTS: dict = {}


def widgets(prompt: str, seed: int) -> dict:
    """The Image to Video node's widget values: each input's default from /object_info (so a setting added
    to the spec needs no change here), then v5 at 360p, 5 s."""
    values = dict(_DEFAULTS)
    values.update(model=SPEC.model("pixverse:1@5").label, prompt=prompt, aspect_ratio="auto", resolution="360p",
                  duration=5, seed=seed)
    return values


def _read_defaults(comfy) -> None:
    inputs = comfy.object_info()[I2V]["input"]
    for name, spec in {**inputs.get("required", {}), **inputs.get("optional", {})}.items():
        if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1]:
            _DEFAULTS[name] = spec[1]["default"]


def i2v_prompt(image: str, prompt: str, seed: int) -> dict:
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": I2V, "inputs": {"first_frame": ["1", 0], **widgets(prompt, seed)}},
            "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}}}


def estimate(comfy, prompt: str, seed: int) -> dict:
    r = comfy.http.post("/runware/pixverse/estimate", json={"node": I2V, "values": widgets(prompt, seed)})
    assert r.status_code == 200, r.text
    return r.json()


def counts(emulator):
    s = emulator.stats()
    return s["uploads"], s["image_uploads"], s["video_submissions"], s["video_submit_attempts"]


def test_third_run_is_refused_before_any_upload(comfy, emulator):
    label = widgets("x", 0)["model"]
    assert label in comfy.object_info()[I2V]["input"]["required"]["model"][1]["options"]
    # the limit and "allow unknown cost" through ComfyUI's own settings route (what the settings dialog does)
    for key, value in (("Runware.PixVerse.DailyLimit", LIMIT), ("Runware.PixVerse.AllowUnknownCost", True)):
        comfy.set_setting(key, value)
    first = estimate(comfy, "a paper boat on a pond", 1)
    assert (first["source"], first["cost"]) == ("unknown", None)
    assert first["text"] == "unknown: no run of this kind yet · today $0.00 of $0.45 a day"

    shown = []
    for n, (image, prompt) in enumerate((("one.png", "a paper boat on a pond"), ("two.png", "a paper boat in the rain"))):
        entry = comfy.wait(comfy.queue(i2v_prompt(image, prompt, n + 1)), 180)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:3000]
        info = json.loads(entry["outputs"]["3"]["text"][0])
        assert info["cost"] == pytest.approx(RUN_COST)
        shown.append(estimate(comfy, "a third paper boat", 3))
    assert shown[0]["text"] == "≈ $0.20 (the last run like this) · today $0.20 of $0.45 a day"
    before_third = shown[1]
    assert before_third["text"] == "≈ $0.20 (median of the last 2 runs like this) · today $0.40 of $0.45 a day"
    assert (before_third["source"], before_third["cost"], before_third["runs"]) == ("ledger", pytest.approx(0.2), 2)

    before = counts(emulator)
    entry = comfy.wait(comfy.queue(i2v_prompt("three.png", "a third paper boat", 3)), 180)
    assert entry["status"]["status_str"] == "error"
    errors = [data for event, data in entry["status"]["messages"] if event == "execution_error"]
    message = errors[0]["exception_message"]
    keysafety.save_text("comfyui-budget/refused.txt", message + "\n\nestimate before the run: " + before_third["text"])
    print("\nrefused:", message, "\nestimate before the run:", before_third["text"])
    assert errors[0]["exception_type"].endswith("PixVerseBudgetError")
    assert message.startswith("Daily spending limit reached: $0.40 spent today (job ledger) + this run's expected "
                              "cost $0.20 (median of the last 2 runs like this) = $0.60, over the limit of $0.45 "
                              "(ComfyUI setting). Nothing was uploaded or submitted.")
    assert "Settings → Runware → Spending → Daily spending limit" in message
    assert counts(emulator) == before  # not uploaded (three.png is new), not submitted

    spend = comfy.http.get("/runware/pixverse/spend").json()
    assert spend["today"]["total"] == pytest.approx(0.4) and spend["today"]["runs"] == 2
    assert spend["today"]["by_model"][0]["model"] == "pixverse:1@5"
    assert spend["limits"]["daily_limit"] == LIMIT and spend["limits"]["daily_source"] == "setting"
    assert "today (" in spend["text"] and "daily limit: $0.45 (setting), $0.05 left today" in spend["text"]

    # raising the limit lets the same prompt run
    comfy.set_setting("Runware.PixVerse.DailyLimit", 1.0)
    entry = comfy.wait(comfy.queue(i2v_prompt("three.png", "a third paper boat", 3)), 180)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:3000]
    assert counts(emulator)[2] == before[2] + 1
