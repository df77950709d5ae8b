"""Bad inputs and a failure after payment in a real ComfyUI (COMFYUI_PATH), against the emulator:
the prompt ends in an error naming the input (or the taskUUID and the Recover node), and the emulator
counts no upload and no submission for the bad inputs. Skipped, with the reason, without COMFYUI_PATH.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import fault_matrix
from support import keysafety
from support.comfy import comfyui_path, generator_defaults, generator_values
from nodes.spec import load_spec

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

EMULATOR_KEY = keysafety.SENTINEL_KEY  # the key of the pooled servers
SPEC = load_spec()
I2V, LIP, T2V = "RunwarePixVerseImageToVideo", "RunwarePixVerseLipSync", "RunwarePixVerseTextToVideo"


@pytest.fixture(scope="module", autouse=True)
def inputs(comfy_server):
    """The module's input files in the shared ComfyUI's input folder."""
    from PIL import Image
    Image.new("RGB", (1, 1), (10, 200, 10)).save(comfy_server.input_dir / "dot.png")
    Image.fromarray((np.random.default_rng(1).random((240, 320, 3)) * 255).astype(np.uint8)).save(
        comfy_server.input_dir / "still.mp4", format="PNG")  # a picture under a video's name


def error_text(comfy, prompt) -> str:
    entry = comfy.wait(comfy.queue(prompt), 240)
    assert entry["status"]["status_str"] == "error", json.dumps(entry["status"])[:2000]
    messages = [m for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert messages, entry["status"]
    return messages[0][1]["exception_message"]


def counts(emulator) -> tuple[int, int]:
    s = emulator.stats()
    return s["uploads"], s["video_submit_attempts"]


def generator(model="pixverse:1@5", **over):
    return generator_values(**{"model": SPEC.model(model).label, "prompt": "a lighthouse in a storm", "seed": 3, **over})


def test_one_pixel_first_frame(comfy, emulator):
    before = counts(emulator)
    text = error_text(comfy, {
        "1": {"class_type": "LoadImage", "inputs": {"image": "dot.png"}},
        "2": {"class_type": I2V, "inputs": {**generator(aspect_ratio="auto"), "first_frame": ["1", 0]}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}}})
    assert "first_frame" in text and "1x1 px" in text and "nothing was uploaded or paid" in text
    assert counts(emulator) == before
    fault_matrix.record_bad_input("ComfyUI", "LoadImage 1x1 PNG → first_frame", text, 0, 0)


def test_png_as_lipsync_video(comfy, emulator):
    before = counts(emulator)
    text = error_text(comfy, {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "still.mp4"}},
        "3": {"class_type": LIP, "inputs": {"model": SPEC.model("pixverse:lipsync@1").label, "video": ["1", 0],
                                            "frames_fps": 24.0, "speech_text": "Hello there", "voice": "Emily"}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 4]}}})
    assert "video:" in text and "PNG image, not a video" in text
    assert counts(emulator) == before
    fault_matrix.record_bad_input("ComfyUI", "LoadVideo of a PNG named still.mp4 → LipSync video", text, 0, 0)


def test_file_url_after_payment_names_the_task_and_recover(comfy, emulator):
    emulator.inject("result_url", url="file:///etc/passwd")
    submitted = emulator.stats()["video_submissions"]
    text = error_text(comfy, {
        "2": {"class_type": T2V, "inputs": generator(seed=77)},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}}})
    assert emulator.stats()["video_submissions"] == submitted + 1
    assert "only http and https" in text and "PixVerse Recover node" in text and "python -m nodes recover" in text
    assert "Traceback" not in text
    fault_matrix.record("ComfyUI: videoURL file:// after the submit",
                        "execution error naming the taskUUID + Recover node; no traceback in the message", 1, 0.0)


@pytest.mark.parametrize("what,headers,body", [
    ("text/plain form POST, no Origin", {"Content-Type": "text/plain"}, '{"key": "rw-attacker-key-000000000"}'),
    ("DNS rebinding: Host evil.example", {"Host": "evil.example:{port}", "Origin": "http://evil.example:{port}",
                                          "Content-Type": "application/json", "X-PixVerse-Request": "1"},
     '{"key": "rw-attacker-key-000000000"}'),
    ("LAN-style Host with another site's Origin", {"Host": "192.168.7.7:{port}", "Origin": "http://evil.example",
                                                   "Content-Type": "application/json", "X-PixVerse-Request": "1"},
     '{"key": "rw-attacker-key-000000000"}')])
def test_key_route_refuses_other_sites_in_comfyui(comfy, emulator, what, headers, body):
    headers = {k: v.replace("{port}", str(comfy.port)) for k, v in headers.items()}
    auth_before = emulator.stats()["auth_checks"]
    r = comfy.http.post("/runware/pixverse/key", content=body, headers=headers)
    assert r.status_code == 403, (what, r.status_code, r.text)
    assert "PixVerse" in r.json()["error"]  # refused by the pack's own check, not only ComfyUI's middleware
    assert emulator.stats()["auth_checks"] == auth_before
    assert not (comfy.user_dir / "runware" / "api_key").exists()
