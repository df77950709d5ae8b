"""A new model and a new setting are one edit to the spec's data, and nothing else.

A temporary copy of the spec gains a made-up model (its own AIR, its own sizes, a 12 s duration) and
a made-up enum setting that only that model takes. Without touching code, the new choices appear in
the node's widget definitions, in `python -m nodes options`, in the spec route and (with ComfyUI) in
`/object_info`; the builder and the emulator accept and refuse the same requests for them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import keysafety
from agreement import disagreements, emulator_accepts
from support.comfy import ServerKind, comfyui_path, pack_env
from input_order import input_order, not_appended, snapshot
from nodes.requests import widgets
from nodes.workflows.draft import draft
from nodes.errors import PixVerseInputError
from nodes.spec import SPEC_PATH, CapabilitySpec
from nodes.requests.tasks import GenerationChoices, build_text_to_video
from nodes.spec import load_spec
from nodes.workflows import WORKFLOWS
from web_expect import load_routes

ROOT = Path(__file__).resolve().parents[1]
AIR = "pixverse:1@99"
LABEL = f"PixVerse Test ({AIR})"
LIGHTS = ["soft", "hard", "neon"]


def edited_spec() -> dict:
    raw = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    raw["size_tables"]["test"] = {"480p": {"16:9": [848, 480], "1:1": [480, 480]},
                                  "960p": {"16:9": [1696, 960]}}
    raw["settings"].append({"input": "lighting", "kind": "enum", "wire": "lighting", "optional": True,
                            "values": LIGHTS, "tooltip": "Made-up lighting setting."})
    raw["models"].append({"key": "test", "name": "PixVerse Test", "air": AIR,
                          "workflows": ["text-to-video", "image-to-video"], "sizes": "test",
                          "resolution_default": "480p", "aspect_ratio_default": "16:9",
                          "durations": {"values": [5, 12], "default": 12},
                          "settings": ["style", "lighting"]})
    raw["rules"].append({"models": ["test"], "when": {"lighting": ["neon"]}, "allow": {"duration": [5]},
                         "why": "neon lighting is made for short clips"})
    return raw


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "pixverse.json"
    path.write_text(json.dumps(edited_spec()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec(spec_file) -> CapabilitySpec:
    return CapabilitySpec.from_raw(json.loads(spec_file.read_text()))


def test_the_widgets_offer_the_new_model_duration_and_setting(spec):
    for image_to_video in (False, True):
        ws = {w.name: w for w in WORKFLOWS["image_to_video" if image_to_video else "text_to_video"].widgets(spec)}
        assert LABEL in ws["model"].options
        assert 12 in ws["duration"].options and "960p" in ws["resolution"].options
        assert ws["lighting"].kind == "combo" and list(ws["lighting"].options) == ["none", *LIGHTS]
    assert "lighting" not in {w.name for w in WORKFLOWS["text_to_video"].widgets(load_spec())}  # the real spec is untouched


def test_no_other_test_needs_an_edit(spec):
    """What the other tests hold the nodes to still holds with the edited spec: the inputs only grew at
    the end (the rule test_widgets and test_workflows check against the committed snapshot), and the
    node's draft request (queue-time validation, the estimate) takes the new choices."""
    order = input_order(spec)
    assert not_appended(order, snapshot()) == []
    for node in ("RunwarePixVerseTextToVideo", "RunwarePixVerseImageToVideo"):
        assert order[node]["widgets"][-1] == "lighting"  # appended after the widgets of the real spec
    values = {w.name: w.default for w in WORKFLOWS["text_to_video"].widgets(spec) if w.kind != "motion"}
    values.update(model=LABEL, prompt="a lamp", aspect_ratio="16:9", resolution="480p", duration=12, lighting="soft")
    drafted = draft("text_to_video", values, spec=spec)
    assert drafted.exact and drafted.task["providerSettings"]["pixverse"]["lighting"] == "soft"
    with pytest.raises(PixVerseInputError, match="neon lighting"):
        draft("text_to_video", {**values, "lighting": "neon"}, spec=spec)


def test_the_cli_lists_and_takes_them(spec_file, tmp_path):
    env = {**os.environ, "PIXVERSE_SPEC_PATH": str(spec_file)}
    out = subprocess.run([sys.executable, "-m", "nodes", "options"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert LABEL in out.stdout and "5, 12 s" in out.stdout and "lighting: soft, hard, neon" in out.stdout
    assert "neon lighting is made for short clips" in out.stdout
    run = subprocess.run([sys.executable, "-m", "nodes", "generate", "text-to-video", "--offline", "--job-seconds",
                          "0.2", "--model", AIR, "--prompt", "a lamp", "--lighting", "soft", "--out", str(tmp_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "video: 848x480" in run.stdout and "12.00 s" in run.stdout
    refused = subprocess.run([sys.executable, "-m", "nodes", "generate", "text-to-video", "--offline", "--model", AIR,
                              "--prompt", "a lamp", "--lighting", "neon", "--out", str(tmp_path)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "neon lighting is made for short clips" in refused.stderr


def test_the_spec_route_serves_them(spec):
    data = load_routes().web_spec(spec)
    entry = data["nodes"]["text_to_video"]["models"][LABEL]
    assert entry["options"]["duration"] == [5, 12] and entry["options"]["lighting"] == ["none", *LIGHTS]
    assert entry["sizes"]["960p"]["16:9"] == [1696, 960]
    assert any(r["allow"] == {"duration": [5]} for r in entry["rules"])
    v5 = data["nodes"]["text_to_video"]["models"]["PixVerse v5 (pixverse:1@5)"]
    assert v5["options"]["lighting"] == ["none"]  # other models do not take it


def test_builder_and_emulator_judge_the_new_model_alike(spec):
    checked, bad = disagreements(spec, [spec.model(AIR), spec.model("pixverse:1@5")])
    assert checked > 20 and bad == []
    built = build_text_to_video(GenerationChoices(model=AIR, prompt="a lamp", lighting="hard"), spec=spec)
    assert built.task["providerSettings"]["pixverse"]["lighting"] == "hard"
    assert (built.task["width"], built.task["height"], built.task["duration"]) == (848, 480, 12)
    assert emulator_accepts(built.task, spec)
    with pytest.raises(PixVerseInputError, match="neon lighting"):
        build_text_to_video(GenerationChoices(model=AIR, prompt="a lamp", lighting="neon"), spec=spec)
    neon = {**built.task, "providerSettings": {"pixverse": {"lighting": "neon"}}}
    assert not emulator_accepts(neon, spec)
    assert emulator_accepts({**neon, "duration": 5}, spec)
    with pytest.raises(PixVerseInputError, match="does not take"):
        build_text_to_video(GenerationChoices(model="pixverse:1@5", prompt="a lamp", lighting="hard"), spec=spec)
    v5 = build_text_to_video(GenerationChoices(model="pixverse:1@5", prompt="a lamp"), spec=spec).task
    assert not emulator_accepts({**v5, "providerSettings": {"pixverse": {"lighting": "hard"}}}, spec)


@pytest.mark.skipif(comfyui_path() is None, reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")
def test_object_info_and_a_run_in_comfyui(spec_file, spec, comfy_pool):
    """ComfyUI started with the edited spec offers the new choices and runs the new model. A server of its
    own: the spec is read when the pack loads (PIXVERSE_SPEC_PATH), and its emulator must know the model."""
    from nodes.emulator import EmulatorServer

    with EmulatorServer(job_seconds=0.3, api_key=keysafety.SENTINEL_KEY, spec=spec) as emu:
        env = {**pack_env(emu.base_url, keysafety.SENTINEL_KEY), "PIXVERSE_SPEC_PATH": str(spec_file)}
        server = comfy_pool.get(ServerKind("new-model", env))
        try:
            info = server.object_info()["RunwarePixVerseTextToVideo"]["input"]
            inputs = {**info["required"], **info.get("optional", {})}
            assert LABEL in inputs["model"][1]["options"] if isinstance(inputs["model"][0], str) \
                else LABEL in inputs["model"][0]
            flat = json.dumps(inputs)
            assert '"neon"' in flat and "lighting" in inputs and "12" in json.dumps(inputs["duration"])
            prompt = {"1": {"class_type": "RunwarePixVerseTextToVideo", "inputs": {
                "model": LABEL, "prompt": "a lamp in the dark", "negative_prompt": "", "aspect_ratio": "1:1",
                "resolution": "480p", "duration": 12, "fps": 16, "seed": 3, "style": "none",
                "motion_mode": "normal", "sound_effects": False, "sound_effect_content": "", "lighting": "soft",
                "audio": False, "multi_clip": False, "thinking": "none"}},
                "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}}}
            entry = server.wait(server.queue(prompt))
            assert entry["status"]["status_str"] == "success", entry["status"]
            task = emu.video_tasks()[-1]
            assert task["providerSettings"]["pixverse"]["lighting"] == "soft" and task["duration"] == 12
            bad = server.queue_raw({**prompt, "1": {**prompt["1"], "inputs": {**prompt["1"]["inputs"],
                                                                              "lighting": "neon"}}})
            assert bad.status_code == 400 and "neon lighting" in bad.text
        finally:
            comfy_pool.stop("new-model")
