"""Every later PixVerse model and workflow in a real ComfyUI, against the emulator in each strict layout.

The session's shared ComfyUI, against the session's emulator made strict: it speaks only one layout
("current": Runware's, "seed": the seed page's) and refuses the other (a refusal is free, so a layout the
pack remembered from an earlier run costs nothing). One run per new model (text to video) and the v6
multi-shot run read the same in both layouts and run once; v6 image to video with first + last frame,
lipsync with audio and with speech, and Modify run in each layout, with requests that differ per layout
(seed, video) so neither ComfyUI's cache nor the job ledger answers for the second. Each produces the five
outputs, with exactly one accepted task per run. The recorded requests are kept under the test artifacts
(comfyui-models/requests-<layout>.jsonl) for the record.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from support import keysafety
from support.comfy import comfyui_path
from nodes.spec import load_spec
from test_comfyui_integration import generator_inputs, run, with_outputs
from support.wire import read_task

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

SPEC = load_spec()
T2V, I2V, LIP, MOD = ("RunwarePixVerseTextToVideo", "RunwarePixVerseImageToVideo", "RunwarePixVerseLipSync",
                      "RunwarePixVerseModify")
NEW = ["pixverse:1@5-fast", "pixverse:1@6", "pixverse:1@7", "pixverse:1@8"]


SEEDS = {"current": 11, "seed": 12}  # distinct requests per layout: neither ComfyUI's cache nor the ledger answers
TALK_SECONDS = {"current": 2.2, "seed": 2.4}  # distinct videos per layout, and unlike the integration tests' talk.mp4


@pytest.fixture(scope="module", autouse=True)
def inputs(comfy_server):
    from PIL import Image
    from nodes.media import render_test_video
    base = comfy_server.base_dir
    y, x = np.mgrid[0:600, 0:800]
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)).save(base / "input" / "first.png")
    Image.fromarray(np.stack([y % 256, x % 256, (x * 2) % 256], -1).astype(np.uint8)).save(base / "input" / "last.png")
    for layout, seconds in TALK_SECONDS.items():
        render_test_video(base / "input" / f"talk-{layout}.mp4", width=320, height=240, fps=16, duration=seconds,
                          with_audio=True)


def strict(layout, comfy, emulator):
    """The shared ComfyUI against the session's emulator speaking only `layout` (reset after the test)."""
    emulator.layouts = (layout,)
    yield layout, comfy, emulator
    keysafety.save_text(f"comfyui-models/requests-{layout}.jsonl", json.dumps(emulator.video_tasks()))


@pytest.fixture(params=["current", "seed"])
def setup(request, comfy, emulator):
    """Runs whose request differs by layout: once in each."""
    yield from strict(request.param, comfy, emulator)


@pytest.fixture
def either(comfy, emulator):
    """Runs whose request reads the same in both layouts: once, in Runware's current one."""
    yield from strict("current", comfy, emulator)


def accepted(emu) -> int:
    return sum(emu.stats()["jobs"].values())


def label(air):
    return SPEC.model(air).label


def new_inputs(air, layout="current", **over):
    values = generator_inputs(label(air), seed=SEEDS[layout], aspect_ratio="16:9", resolution="360p", duration=5,
                              fps=16, motion_mode="normal", audio=False, multi_clip=False, thinking="none")
    values.update(over)
    return values


def once(setup, prompt, same_in_both_layouts=False):
    """Run; one accepted task; the info names the layout the server took (a text-to-video reads the
    same in both layouts, so either name is right for it)."""
    layout, server, emu = setup
    before = accepted(emu)
    direct, rebuilt, info = run(server, prompt)
    assert accepted(emu) == before + 1, "exactly one accepted task per run"
    assert info["layout"] == layout or same_in_both_layouts, info
    assert info["layout_reason"]
    return direct, rebuilt, info, emu.video_tasks()[-1]


@pytest.mark.parametrize("air", NEW)
def test_text_to_video_on_each_new_model(either, air):
    over = {"audio": True} if SPEC.model(air).supports("audio") else {}
    direct, rebuilt, info, task = once(either, with_outputs({"1": {"class_type": T2V, "inputs": new_inputs(air, **over)}},
                                                            "1"), same_in_both_layouts=True)
    assert (direct.width, direct.height) == (640, 360) and abs(direct.duration - 5) < 0.2
    assert rebuilt.frame_count == direct.frame_count and info["model"] == air
    assert direct.has_audio == bool(over)


def test_v6_multi_shot_with_sound_at_12_seconds(either):
    prompt = "Shot 1: a fox wakes in the snow. Shot 2: it runs across a frozen lake. Shot 3: sunrise."
    direct, _, _, task = once(either, with_outputs({"1": {"class_type": T2V, "inputs": new_inputs(
        "pixverse:1@8", prompt=prompt, duration=12, audio=True, multi_clip=True, thinking="auto")}}, "1"),
        same_in_both_layouts=True)
    assert abs(direct.duration - 12) < 0.2 and direct.has_audio
    assert task["settings"] == {"audio": True, "multiClip": True, "thinking": "auto"}


def test_v6_image_to_video_first_and_last_frame(setup):
    layout, server, emu = setup
    direct, _, info, task = once(setup, with_outputs({
        "1": {"class_type": "LoadImage", "inputs": {"image": "first.png"}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "last.png"}},
        "2": {"class_type": I2V, "inputs": {**new_inputs("pixverse:1@8", layout, aspect_ratio="auto", resolution="540p",
                                                          thinking="enabled"),
                                            "first_frame": ["1", 0], "last_frame": ["3", 0]}}}, "2"))
    assert (direct.width, direct.height) == (720, 540)  # the frames are 4:3
    assert read_task(task) ["frames"] == ["first", "last"] and read_task(task)["layout"] == layout


def test_v6_two_frames_refuse_thinking_auto_before_anything_runs(setup):
    layout, server, emu = setup
    before = len(emu.video_tasks())
    r = server.queue_raw({
        "1": {"class_type": "LoadImage", "inputs": {"image": "first.png"}},
        "2": {"class_type": I2V, "inputs": {**new_inputs("pixverse:1@8", layout, aspect_ratio="auto", thinking="auto"),
                                            "first_frame": ["1", 0], "last_frame": ["1", 0]}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}}})
    if r.status_code == 200:  # the last frame arrives by link: refused when the node runs, before any upload
        entry = server.wait(r.json()["prompt_id"])
        assert entry["status"]["status_str"] == "error"
        assert "thinking" in json.dumps(entry["status"]["messages"])
    else:
        assert "thinking" in r.text
    assert len(emu.video_tasks()) == before


@pytest.mark.parametrize("mode", ["audio", "speech"])
def test_lipsync(setup, mode):
    layout = setup[0]
    inputs = {"model": label("pixverse:lipsync@1"), "video": ["1", 0], "frames_fps": 24.0, "voice": "Emily",
              "speech_text": f"Hello there, this is a test in the {layout} layout." if mode == "speech" else ""}
    if mode == "audio":
        inputs["audio"] = ["2", 1]
    direct, _, _, task = once(setup, with_outputs({
        "1": {"class_type": "LoadVideo", "inputs": {"file": f"talk-{layout}.mp4"}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": LIP, "inputs": inputs}}, "3"))
    wire = read_task(task)
    assert wire["video"] and (wire["audio"] is not None) == (mode == "audio") and direct.has_audio


def test_modify(setup):
    layout, server, emu = setup
    prompt = with_outputs({
        "1": {"class_type": "LoadVideo", "inputs": {"file": f"talk-{layout}.mp4"}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "first.png"}},
        "3": {"class_type": MOD, "inputs": {"model": label("pixverse:modify@0"), "video": ["1", 0],
                                            "reference_image": ["4", 0], "frames_fps": 24.0,
                                            "prompt": "turn it into a watercolour painting", "resolution": "360p",
                                            "seed": SEEDS[layout], "audio": False}}}, "3")
    if layout == "seed":  # Modify exists only in Runware's current layout: refused, named, nothing accepted
        entry = server.wait(server.queue(prompt))
        assert entry["status"]["status_str"] == "error" and "inputs" in json.dumps(entry["status"]["messages"])
        assert emu.stats()["jobs"].get("success", 0) == accepted(emu)
        return
    direct, _, info, task = once(setup, prompt)
    assert (direct.width, direct.height) == SPEC.model("pixverse:modify@0").size("360p", "4:3")
    assert task["inputs"]["referenceImages"] and info["model"] == "pixverse:modify@0"
