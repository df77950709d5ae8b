"""The nodes in a real ComfyUI (COMFYUI_PATH), talking to the local Runware emulator.

Skipped, with the reason, when COMFYUI_PATH is unset (CI has no ComfyUI: its server is not on PyPI).
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from support import keysafety
from support.comfy import comfyui_path, generator_values
from support.wire import read_task
from nodes.spec import load_spec

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

SENTINEL_KEY = keysafety.SENTINEL_KEY  # the session's; ComfyUI gets it through RUNWARE_API_KEY
SPEC = load_spec()
T2V, I2V, LIP = "RunwarePixVerseTextToVideo", "RunwarePixVerseImageToVideo", "RunwarePixVerseLipSync"
RECOVER = "RunwarePixVerseRecover"




@pytest.fixture(scope="module", autouse=True)
def inputs(comfy_server):
    """The module's input files in the shared ComfyUI; at the module's end, what a user would share of its
    runs goes into the searched folder too."""
    from PIL import Image
    from nodes.media import render_test_video
    base = comfy_server.base_dir
    y, x = np.mgrid[0:600, 0:800]
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)).save(base / "input" / "first.png")
    Image.fromarray(np.stack([y % 256, x % 256, (x * 2) % 256], -1).astype(np.uint8)).save(base / "input" / "last.png")
    render_test_video(base / "input" / "talk.mp4", width=320, height=240, fps=16, duration=2.0, with_audio=True)
    yield
    save_for_key_check(comfy_server)


def save_for_key_check(server):
    """ComfyUI's history, and a saved workflow (what a user shares), into the searched folder."""
    history = server.http.get("/history").json()
    (server.base_dir / "history.json").write_text(json.dumps(history, indent=1))
    nodes = []
    for entry in history.values():
        for node_id, node in entry["prompt"][2].items():
            nodes.append({"id": node_id, "type": node["class_type"],
                          "widgets_values": [v for v in node["inputs"].values() if not isinstance(v, list)]})
    workflow = {"last_node_id": len(nodes), "nodes": nodes, "extra": {"source": "pixverse integration tests"}}
    r = server.http.post("/userdata/workflows%2Fpixverse-integration.json", content=json.dumps(workflow))
    assert r.status_code == 200, r.text


def probe(path):
    from nodes.media import probe_video

    return probe_video(path)


def generator_inputs(model_label, **over):
    """Every widget of a generator at its default (settings later models added included), then ours."""
    return generator_values(model=model_label, **over)


def with_outputs(prompt: dict, node: str, video_slot: int = 0) -> dict:
    """Wire the generator's five outputs into core nodes: SaveVideo(video), CreateVideo(frames, fps,
    audio) → SaveVideo, PreviewAny(info)."""
    prompt = dict(prompt)
    prompt["90"] = {"class_type": "SaveVideo", "inputs": {"video": [node, video_slot], "filename_prefix": "pv/direct",
                                                         "format": "mp4", "codec": "h264"}}
    prompt["91"] = {"class_type": "CreateVideo", "inputs": {"images": [node, 1], "fps": [node, 3], "audio": [node, 2]}}
    prompt["92"] = {"class_type": "SaveVideo", "inputs": {"video": ["91", 0], "filename_prefix": "pv/frames",
                                                         "format": "mp4", "codec": "h264"}}
    prompt["93"] = {"class_type": "PreviewAny", "inputs": {"source": [node, 4]}}
    return prompt


def run(comfy, prompt, timeout=300):
    entry = comfy.wait(comfy.queue(prompt), timeout)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:4000]
    outputs = entry["outputs"]
    direct = comfy.output_file(outputs["90"]["images"][0])
    rebuilt = comfy.output_file(outputs["92"]["images"][0])
    info = json.loads(outputs["93"]["text"][0])
    return probe(direct), probe(rebuilt), info


def last_video_task(emulator):
    tasks = [t for r in emulator.requests if isinstance(r.get("body"), list) for t in r["body"]
             if isinstance(t, dict) and t.get("taskType") == "videoInference"]
    return tasks[-1]


def label(air):
    return SPEC.model(air).label


def test_object_info_lists_the_nodes_with_the_spec_options(comfy):
    info = comfy.object_info()
    for node in (T2V, I2V, LIP, "RunwarePixVerseEffect", "RunwarePixVerseCamera", RECOVER):
        assert node in info, node
        assert info[node]["category"] == "Runware/PixVerse"
    from nodes.workflows import WORKFLOWS
    req = {**info[T2V]["input"]["required"], **info[T2V]["input"]["optional"]}  # settings and count: optional
    expected = {w.name: w for w in WORKFLOWS["text_to_video"].widgets(load_spec())}  # the node definitions, from the spec
    for name in ("model", "style", "resolution", "aspect_ratio", "duration", "fps", "motion_mode"):
        assert req[name][1]["options"] == list(expected[name].options), name
        assert req[name][1]["default"] == expected[name].default, name
    assert req["model"][1]["options"] == [m.label for m in SPEC.generators]
    assert req["style"][1]["options"] == ["none", *SPEC.setting("style").values]
    assert info[T2V]["input"]["optional"]["motion"][0] == "PIXVERSE_MOTION"
    assert info[I2V]["input"]["required"]["aspect_ratio"][1]["options"][0] == "auto"
    assert info["RunwarePixVerseEffect"]["input"]["required"]["effect"][1]["options"] == list(SPEC.setting("effect").values)
    assert info["RunwarePixVerseCamera"]["input"]["required"]["camera_movement"][1]["options"] == \
        list(SPEC.setting("camera_movement").values)
    assert info[LIP]["input"]["required"]["voice"][1]["options"] == list(SPEC.voices.values)
    assert info[T2V]["output_name"] == ["video", "frames", "audio", "fps", "info"]
    assert info[LIP]["output_name"][0] == "video"
    assert list(info[RECOVER]["input"]["required"]) == ["task_uuid"]
    assert info[RECOVER]["output_name"] == ["video", "frames", "audio", "fps", "info"]
    ours = {k: v for k, v in info.items() if k.startswith("RunwarePixVerse")}
    names = [name for node in ours.values() for part in ("required", "optional")  # what workflows save
             for name in node["input"].get(part, {})]
    assert not [n for n in names if any(w in n.lower() for w in ("key", "token", "secret", "password"))]
    for node in (T2V, I2V, LIP):
        for section in info[node]["input"].values():
            for name, spec in section.items():
                if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict):
                    assert spec[1].get("tooltip"), f"{node}.{name} has no tooltip"
    assert SENTINEL_KEY not in json.dumps(info)


def test_text_to_video_with_an_effect_and_sound(comfy, emulator):
    before = emulator.stats()["video_submissions"]
    prompt = with_outputs({
        "1": {"class_type": "RunwarePixVerseEffect", "inputs": {"effect": "boom drop"}},
        "2": {"class_type": T2V, "inputs": generator_inputs(label("pixverse:1@5"), seed=11, sound_effects=True,
                                                           motion=["1", 0])},
    }, "2")
    direct, rebuilt, info = run(comfy, prompt)
    assert (direct.width, direct.height, round(direct.fps), direct.frame_count) == (640, 360, 16, 80)
    assert direct.has_audio
    assert (rebuilt.width, rebuilt.height, rebuilt.frame_count) == (640, 360, 80)
    assert rebuilt.has_audio and abs(rebuilt.duration - 5.0) < 0.2
    assert info["model"] == "pixverse:1@5" and info["cost"] is not None and len(info["taskUUID"]) == 36
    task = last_video_task(emulator)
    assert task["providerSettings"]["pixverse"]["effect"] == "boom drop"
    assert task["providerSettings"]["pixverse"]["soundEffectSwitch"] is True
    assert emulator.stats()["video_submissions"] == before + 1
    print("\ninfo output:", json.dumps(info, indent=1))


def test_text_to_video_with_a_camera_movement(comfy, emulator):
    prompt = with_outputs({
        "1": {"class_type": "RunwarePixVerseCamera", "inputs": {"camera_movement": "crane_up"}},
        "2": {"class_type": T2V, "inputs": generator_inputs(label("pixverse:1@2"), seed=12, aspect_ratio="9:16",
                                                           fps=24, motion=["1", 0])},
    }, "2")
    direct, rebuilt, info = run(comfy, prompt)
    assert (direct.width, direct.height, round(direct.fps), direct.frame_count) == (360, 640, 24, 120)
    assert not direct.has_audio
    assert rebuilt.frame_count == 120 and rebuilt.has_audio  # silence of the video's length
    assert last_video_task(emulator)["providerSettings"]["pixverse"]["cameraMovement"] == "crane_up"


def test_camera_on_v5_is_refused_before_anything_runs(comfy, emulator):
    """The Camera node's value is read from the posted prompt (nodes/comfy/posted.py): refused at queue time."""
    before = emulator.stats()
    prompt = {
        "1": {"class_type": "RunwarePixVerseCamera", "inputs": {"camera_movement": "zoom_in"}},
        "2": {"class_type": T2V, "inputs": generator_inputs(label("pixverse:1@5"), seed=13, motion=["1", 0])},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}},
    }
    r = comfy.queue_raw(prompt)
    assert r.status_code == 400, r.text
    errors = r.json()["node_errors"]["2"]["errors"]
    assert len(errors) == 1 and "camera_movement" in errors[0]["details"] and "pixverse:1@2" in errors[0]["details"]
    after = emulator.stats()
    assert after["video_submissions"] == before["video_submissions"]
    assert after["uploads"] == before["uploads"]


def test_bad_widget_value_is_refused_at_queue_time(comfy):
    prompt = {"2": {"class_type": T2V, "inputs": generator_inputs(label("pixverse:1@1"), prompt="x")},
              "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}}}
    r = comfy.queue_raw(prompt)
    assert r.status_code == 400
    assert "prompt" in json.dumps(r.json()) and "2-2048" in json.dumps(r.json())


def test_image_to_video_first_frame(comfy, emulator):
    prompt = with_outputs({
        "1": {"class_type": "LoadImage", "inputs": {"image": "first.png"}},
        "2": {"class_type": I2V, "inputs": {**generator_inputs(label("pixverse:1@3"), seed=14, aspect_ratio="auto",
                                                                resolution="540p"), "first_frame": ["1", 0]}},
    }, "2")
    direct, rebuilt, info = run(comfy, prompt)
    assert (direct.width, direct.height) == (720, 540)  # 800x600 is 4:3
    assert rebuilt.frame_count == direct.frame_count == 80
    task = last_video_task(emulator)
    assert read_task(task)["frames"] == ["first"]
    assert any("auto" in n for n in info["notices"])


def test_image_to_video_first_and_last_frame(comfy, emulator):
    prompt = with_outputs({
        "1": {"class_type": "LoadImage", "inputs": {"image": "first.png"}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "last.png"}},
        "2": {"class_type": I2V, "inputs": {**generator_inputs(label("pixverse:1@1"), seed=15, aspect_ratio="1:1"),
                                            "first_frame": ["1", 0], "last_frame": ["3", 0]}},
    }, "2")
    direct, _, _ = run(comfy, prompt)
    assert (direct.width, direct.height) == (360, 360)
    task = last_video_task(emulator)
    assert read_task(task)["frames"] == ["first", "last"]


def test_lipsync_with_audio(comfy, emulator):
    prompt = with_outputs({
        "1": {"class_type": "LoadVideo", "inputs": {"file": "talk.mp4"}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": LIP, "inputs": {"model": label("pixverse:lipsync@1"), "video": ["1", 0],
                                            "audio": ["2", 1], "frames_fps": 24.0, "speech_text": "",
                                            "voice": "auto"}},
    }, "3")
    direct, rebuilt, info = run(comfy, prompt)
    assert (direct.width, direct.height) == (320, 240)
    assert direct.has_audio and abs(direct.duration - 2.0) < 0.3
    assert rebuilt.has_audio
    task = last_video_task(emulator)
    wire = read_task(task)
    assert wire["video"] and wire["audio"] and "speech" not in task


def test_lipsync_with_speech_from_frames(comfy, emulator):
    prompt = with_outputs({
        "1": {"class_type": "LoadVideo", "inputs": {"file": "talk.mp4"}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": LIP, "inputs": {"model": label("pixverse:lipsync@1"), "frames": ["2", 0],
                                            "frames_fps": 16.0, "speech_text": "Hello from the emulator.",
                                            "voice": "Emily"}},
    }, "3")
    direct, _, info = run(comfy, prompt)
    assert (direct.width, direct.height) == (320, 240) and direct.has_audio
    task = last_video_task(emulator)
    assert task["speech"] == {"voice": "Emily", "text": "Hello from the emulator."}


def test_cancel_then_recover_by_task_uuid(comfy, emulator):
    """Cancel while waiting → the task stays on Runware → the Recover node fetches it by taskUUID;
    then the generator itself, run again, is served from the ledger. One submission in all."""
    emulator.job_seconds = 6.0
    try:
        before = emulator.stats()["video_submissions"]
        prompt = {"2": {"class_type": T2V, "inputs": generator_inputs(label("pixverse:1@5"), seed=99)},
                  "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}}}
        prompt_id = comfy.queue(prompt)
        deadline = time.monotonic() + 60
        while emulator.stats()["video_submissions"] == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert emulator.stats()["video_submissions"] == before + 1
        task_uuid = last_video_task(emulator)["taskUUID"]
        wait_for(lambda: polled(emulator, task_uuid), 30, "the node polls its task")  # waiting, not submitting
        t0 = time.monotonic()
        comfy.interrupt()
        entry = comfy.wait(prompt_id, timeout=30)
        waited = time.monotonic() - t0
        assert entry["status"]["status_str"] == "error"
        assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])
        assert waited < 5.0, f"cancel took {waited:.1f} s"
        print(f"\ncancel ended the wait in {waited:.2f} s")
        log = comfy.log()
        assert "PixVerse Recover node" in log and f"python -m nodes recover {task_uuid}" in log

        recover = with_outputs({"5": {"class_type": RECOVER, "inputs": {"task_uuid": f"  {task_uuid.upper()} "}}}, "5")
        direct, rebuilt, info = run(comfy, recover, timeout=120)
        assert (direct.width, direct.height, direct.frame_count) == (640, 360, 80)
        assert rebuilt.frame_count == 80
        assert info["taskUUID"] == task_uuid and info["source"] == "recovered" and info["cost"] is not None
        assert emulator.stats()["video_submissions"] == before + 1
        quiet(emulator)  # the cancelled task was also followed in the background (nodes/job/followup.py)

        requests = emulator.stats()["requests"]
        rerun = with_outputs(prompt, "2")
        direct, _, info = run(comfy, rerun)  # the interrupted generator: not in ComfyUI's cache
        assert info["taskUUID"] == task_uuid and info["source"] == "reused"
        assert direct.frame_count == 80
        assert emulator.stats()["requests"] == requests, "served from the ledger: no request to Runware"
        assert emulator.stats()["video_submissions"] == before + 1
    finally:
        emulator.job_seconds = 1.0


def test_recover_refuses_a_malformed_task_uuid_at_queue_time(comfy, emulator):
    before = emulator.stats()["requests"]
    r = comfy.queue_raw({"5": {"class_type": RECOVER, "inputs": {"task_uuid": "not-a-uuid"}},
                         "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 4]}}})
    assert r.status_code == 400 and "task_uuid" in r.text and "not a taskUUID" in r.text
    assert emulator.stats()["requests"] == before


def polled(emulator, task_uuid: str) -> bool:
    """Whether a getResponse for `task_uuid` reached the emulator."""
    return any(t.get("taskType") == "getResponse" and t.get("taskUUID") == task_uuid
               for r in emulator.requests if isinstance(r.get("body"), list) for t in r["body"] if isinstance(t, dict))


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def quiet(emulator, still: float = 2.0, timeout: float = 30.0) -> None:
    """Until no request reached the emulator for `still` seconds (background work of the pack is done)."""
    deadline = time.monotonic() + timeout
    seen, since = emulator.stats()["requests"], time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < still:
        time.sleep(0.2)
        now = emulator.stats()["requests"]
        if now != seen:
            seen, since = now, time.monotonic()


def test_finished_video_survives_a_dropped_cache(comfy, emulator):
    """ComfyUI forgets its node outputs (POST /free, as after a restart); running the same workflow
    again is served from the job ledger: no submission, no request to Runware at all."""
    prompt = with_outputs({"2": {"class_type": T2V, "inputs": generator_inputs(label("pixverse:1@5"), seed=21)}},
                          "2")
    _, _, first = run(comfy, prompt)
    assert first["source"] == "new"
    quiet(emulator)
    requests = emulator.stats()["requests"]
    comfy.free_caches()
    _, _, again = run(comfy, prompt)
    assert again["taskUUID"] == first["taskUUID"] and again["source"] == "reused"
    assert emulator.stats()["requests"] == requests
    from nodes.money.ledger import FINISHED, Ledger

    # this process opens the live ledger as the CLI's `spend --ledger` would, and closes it: the ComfyUI process's
    # later writes must still reach the file (the next tests on this server read their rows from it)
    with Ledger(comfy.user_dir / "runware" / "pixverse-ledger.sqlite3") as ledger:  # where the node keeps it
        entry = ledger.get(first["taskUUID"])
        assert entry.status == FINISHED and entry.local_file == first["file"] and entry.file_ok()


def test_key_never_reaches_comfyui_outputs(comfy, emulator):
    """This test's own run: its saved videos, its history entry and the log lines written meanwhile."""
    log_before = len(comfy.log())
    prompt = with_outputs({"2": {"class_type": T2V, "inputs": generator_inputs(label("pixverse:1@5"), seed=4242,
                                                                             prompt="a key that must not show")}}, "2")
    prompt_id = comfy.queue(prompt)
    entry = comfy.wait(prompt_id)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    files = [comfy.output_file(entry["outputs"][n]["images"][0]) for n in ("90", "92")]
    info = json.loads(entry["outputs"]["93"]["text"][0])
    files.append(comfy.output_dir / "pixverse" / f"pixverse_{info['taskUUID']}.mp4")
    assert all(f.is_file() and f.stat().st_size > 0 for f in files), files
    for path in files:
        assert SENTINEL_KEY.encode() not in path.read_bytes(), path
    history = comfy.http.get(f"/history/{prompt_id}").text
    assert prompt_id in history and SENTINEL_KEY not in history
    assert SENTINEL_KEY not in comfy.log()[log_before:]
