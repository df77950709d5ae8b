"""Issue 17 in a real ComfyUI (COMFYUI_PATH) against the emulator: ComfyUI's own checks stay on and a
refusal is said once, a damaged or unusable job ledger, what Cancel says, and paid tasks of nodes that
ComfyUI cancelled because another node failed (followed to the end, named in the node's text).

Skipped, with the reason, when COMFYUI_PATH is unset.
"""
from __future__ import annotations

import json
import sqlite3
import time

import pytest

import fault_matrix
from support import keysafety
from support.comfy import ServerKind, comfyui_path, generator_defaults, generator_values, pack_env
from nodes.spec import load_spec

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

EMULATOR_KEY = keysafety.SENTINEL_KEY  # the key of the pooled servers
SPEC = load_spec()
T2V, LIP = "RunwarePixVerseTextToVideo", "RunwarePixVerseLipSync"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def t2v(prompt: str, seed: int, **over) -> dict:
    return generator_values(prompt=prompt, seed=seed, **{"fps": 16, **over})


def ledger(comfy) -> list[dict]:
    path = comfy.user_dir / "runware" / "pixverse-ledger.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY created_at")]


def test_comfyui_checks_ranges_and_a_refusal_is_said_once(comfy, emulator):
    before = emulator.stats()["uploads"], emulator.stats()["video_submit_attempts"]
    prompt = {"1": {"class_type": LIP, "inputs": {"model": SPEC.model("pixverse:lipsync@1").label,
                                                   "frames_fps": 1000.0, "speech_text": "Hello there",
                                                   "voice": "Emily"}},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}}}
    r = comfy.queue_raw(prompt)
    assert r.status_code == 400, r.text
    errors = r.json()["node_errors"]["1"]["errors"]
    assert [e["type"] for e in errors] == ["value_bigger_than_max"], errors
    assert errors[0]["extra_info"]["input_name"] == "frames_fps"
    # a choice of ours the model does not take: one error, naming the input, not one per input
    r = comfy.queue_raw({"1": {"class_type": T2V, "inputs": t2v("a kite", 1, duration=7)},
                         "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}}})
    assert r.status_code == 400, r.text
    errors = r.json()["node_errors"]["1"]["errors"]
    assert len(errors) == 1 and "duration" in errors[0]["details"], errors
    assert (emulator.stats()["uploads"], emulator.stats()["video_submit_attempts"]) == before
    fault_matrix.record_bad_input("ComfyUI", "LipSync frames_fps 1000 via /prompt", errors and "value_bigger_than_max", 0, 0)


def _write_still(comfy) -> str:
    import numpy as np
    from PIL import Image

    comfy.input_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(9).random((360, 640, 3)) * 255).astype(np.uint8)).save(
        comfy.input_dir / "still.png")
    return "still.png"


def test_cancel_during_an_upload_sends_nothing_and_says_so(comfy, emulator):
    emulator.reset()
    emulator.inject("slow", on="upload", delay=20)
    values = {**generator_defaults(image_to_video=True), "model": SPEC.model("pixverse:1@5").label,
              "prompt": "a cancelled upload", "resolution": "360p", "duration": 5, "aspect_ratio": "auto",
              "fps": 16, "seed": 6}
    pid = comfy.queue({"1": {"class_type": "LoadImage", "inputs": {"image": _write_still(comfy)}},
                       "2": {"class_type": "RunwarePixVerseImageToVideo", "inputs": {**values, "first_frame": ["1", 0]}},
                       "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}}})
    wait_for(lambda: emulator.stats()["faults_fired"].get("slow"), 30, "the upload reached the emulator and stalls")
    t0 = time.monotonic()
    comfy.interrupt()
    entry = comfy.wait(pid, 60)
    ended = time.monotonic() - t0
    assert entry["status"]["status_str"] == "error"
    assert emulator.stats()["video_submit_attempts"] == 0
    assert "before anything was sent to Runware: nothing was charged" in comfy.log()
    rows = [r for r in ledger(comfy) if json.loads(r["request"] or "{}").get("seed") == 6
            and json.loads(r["request"]).get("positivePrompt") == "a cancelled upload"]
    assert len(rows) == 1 and rows[0]["status"] == "abandoned", rows  # its reservation counts no more
    fault_matrix.record("ComfyUI: Cancel 3 s into a 20 s upload",
                        f"ended {ended:.1f} s after Cancel; nothing sent; row abandoned", 0, ended)


def test_a_sibling_failure_does_not_abandon_a_paid_task(comfy, emulator):
    emulator.reset()
    emulator.job_seconds = 4.0
    # the first task accepted (the text-to-video: the other uploads its image first) fails at PixVerse
    emulator.inject("task_error", code="taskFailed", message="provider failure")
    i2v = {**generator_defaults(image_to_video=True), "model": SPEC.model("pixverse:1@5").label,
           "prompt": "the sibling that ComfyUI cancels", "resolution": "360p", "duration": 5,
           "aspect_ratio": "auto", "fps": 16, "seed": 31}
    prompt = {"1": {"class_type": T2V, "inputs": t2v("the sibling that fails at PixVerse", 30)},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}},
              "5": {"class_type": "LoadImage", "inputs": {"image": _write_still(comfy)}},
              "3": {"class_type": "RunwarePixVerseImageToVideo", "inputs": {**i2v, "first_frame": ["5", 0]}},
              "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 4]}}}
    entry = comfy.wait(comfy.queue(prompt), 120)
    assert entry["status"]["status_str"] == "error"
    assert emulator.stats()["video_submissions"] == 2
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = {json.loads(r["request"] or "{}").get("seed"): r for r in ledger(comfy)
                if "the sibling that" in json.loads(r["request"] or "{}").get("positivePrompt", "")}
        if rows.get(31, {}).get("status") == "finished":
            break
        time.sleep(0.5)
    cancelled = rows[31]
    shown = [line for line in comfy.log().splitlines() if cancelled["task_uuid"] in line or "PixVerse" in line]
    assert cancelled["status"] == "finished", (cancelled["status"], cancelled["error"], shown[-15:])  # not abandoned
    assert (comfy.output_dir / "pixverse" / f"pixverse_{cancelled['task_uuid']}.mp4").is_file()
    assert emulator.stats()["video_submissions"] == 2  # followed, never sent again
    fault_matrix.record("ComfyUI: a sibling node's task fails at PixVerse while another's task runs",
                        "the cancelled node's paid task is followed to output/pixverse (ledger finished)", 2, 0.0)


def _server(comfy_pool, emulator, name: str, prepare):
    """A ComfyUI of its own whose job ledger is broken before it starts (a running one has opened its ledger)."""
    return comfy_pool.get(ServerKind(name, pack_env(emulator.base_url, EMULATOR_KEY), prepare=prepare))


def _damage(base):
    path = base / "user" / "runware" / "pixverse-ledger.sqlite3"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database " * 100)


def _no_folder(base):
    (base / "user").mkdir(parents=True)
    (base / "user" / "runware").write_text("a file where the ledger's folder should be")


def test_a_damaged_ledger_is_moved_aside_and_said(comfy_pool, emulator):
    emulator.job_seconds = 0.5
    server = _server(comfy_pool, emulator, "damaged-ledger", _damage)
    path = server.user_dir / "runware" / "pixverse-ledger.sqlite3"
    try:
        entry = server.wait(server.queue({"1": {"class_type": T2V, "inputs": t2v("after a damaged ledger", 40)},
                                          "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}}}), 60)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
        info = json.loads(entry["outputs"]["2"]["text"][0])
        assert any("was damaged" in n and "moved to" in n for n in info["notices"]), info["notices"]
        assert list(path.parent.glob("pixverse-ledger.sqlite3.damaged-*"))
        assert len(ledger(server)) == 1
    finally:
        comfy_pool.stop("damaged-ledger")


def test_an_unusable_ledger_refuses_before_anything_is_sent(comfy_pool, emulator):
    server = _server(comfy_pool, emulator, "no-ledger", _no_folder)
    try:
        entry = server.wait(server.queue({"1": {"class_type": T2V, "inputs": t2v("no ledger, no run", 41)},
                                          "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}}}), 60)
        assert entry["status"]["status_str"] == "error"
        message = [d for e, d in entry["status"]["messages"] if e == "execution_error"][0]["exception_message"]
        assert "job ledger" in message and "nothing was uploaded or submitted" in message, message
        assert emulator.stats()["video_submit_attempts"] == 0 and emulator.stats()["uploads"] == 0
        fault_matrix.record_bad_input("ComfyUI", "job ledger cannot be opened", message, 0, 0)
    finally:
        comfy_pool.stop("no-ledger")
