"""A PixVerse model only Runware's registry describes, in a real ComfyUI (issue 24).

The emulator's schema service lists pixverse:1@9 with a schema of its own (stricter than v6, the newest
described model of its family); ComfyUI reads the registry at start through RUNWARE_SCHEMAS_URL. The model
is offered in the text and image to video nodes (object_info and the web extension's spec route), a queued
prompt with it runs, and a choice its schema refuses is refused when the prompt is queued, before any upload.
"""
from __future__ import annotations

import json

import pytest

from support import keysafety
from support.comfy import ComfyServer, comfyui_path
from nodes.emulator import EmulatorServer
from test_comfyui_integration import generator_inputs, run, with_outputs
from test_schema import NEW, NEW_SCHEMA

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

T2V, I2V, LIP = "RunwarePixVerseTextToVideo", "RunwarePixVerseImageToVideo", "RunwarePixVerseLipSync"
LABEL = f"{NEW} (new on Runware)"


@pytest.fixture(scope="module")
def setup():
    base = keysafety.ARTIFACTS / "comfyui-schema"
    with EmulatorServer(job_seconds=0.3, api_key=keysafety.SENTINEL_KEY) as emu:
        emu.schemas.configure(extra={NEW: NEW_SCHEMA})
        server = ComfyServer(comfyui_path(), base, {"RUNWARE_BASE_URL": emu.base_url,
                                                    "RUNWARE_API_KEY": keysafety.SENTINEL_KEY,
                                                    "RUNWARE_SCHEMAS_URL": emu.origin})
        server.start()
        try:
            yield server, emu
        finally:
            server.stop()


def new_inputs(**over):
    values = generator_inputs(LABEL, aspect_ratio="16:9", resolution="720p", duration=10, fps=16,
                              motion_mode="normal", audio=False, multi_clip=False, thinking="none", style="anime")
    values.update(over)
    return values


def test_the_new_model_is_offered_in_its_familys_nodes(setup):
    server, emu = setup
    info = server.object_info()
    for node in (T2V, I2V):
        kind, *rest = info[node]["input"]["required"]["model"]
        options = rest[0]["options"] if kind == "COMBO" else kind  # V3 combos: ["COMBO", {"options": …}]
        assert LABEL in options and any("PixVerse v6" in o for o in options), (node, options)
    assert LABEL not in json.dumps(info[LIP]["input"])
    web = server.http.get("/runware/pixverse/spec").json()
    entry = web["nodes"]["text_to_video"]["models"][LABEL]
    assert entry["new_on_runware"] and entry["options"]["duration"] == [5, 10]
    assert entry["options"]["resolution"] == ["540p", "720p"]
    assert all("authorization" not in {k.lower() for k in r["headers"]} for r in emu.schemas.requests)


def test_a_queued_prompt_with_the_new_model_runs(setup):
    server, emu = setup
    direct, _, info = run(server, with_outputs({"1": {"class_type": T2V, "inputs": new_inputs()}}, "1"))
    task = emu.video_tasks()[-1]
    assert task["model"] == NEW and task["duration"] == 10 and task["settings"]["style"] == "anime"
    assert (direct.width, direct.height) == (1280, 720)
    assert not any("checked by the pack's spec only" in n for n in info["notices"]), info["notices"]


def test_a_choice_its_schema_refuses_is_refused_at_queue_time(setup):
    server, emu = setup
    before = emu.stats()
    r = server.queue_raw({"1": {"class_type": T2V, "inputs": new_inputs(style="clay")},
                          "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}}})
    assert r.status_code == 400, r.text
    details = r.json()["node_errors"]["1"]["errors"][0]["details"]
    assert "style" in details and "'clay'" in details and "anime" in details and NEW in details, details
    after = emu.stats()
    assert (after["uploads"], after["video_submissions"]) == (before["uploads"], before["video_submissions"])
