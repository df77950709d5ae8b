"""Unconnected frames/audio are not decoded, and wiring them later can never hand out a stale
placeholder: a real ComfyUI (COMFYUI_PATH) + the local Runware emulator.

ComfyUI caches a node's outputs by its inputs. A generator that ran with only `video` connected
returns an empty frames batch; when the same graph is queued again with `frames` connected (no
widget changed), the node's fingerprint (the wiring of frames/audio in the running prompt) changes,
so it runs again, and the job ledger serves the finished task from disk: real frames, no new
submission, no new charge.

Skipped, with the reason, when COMFYUI_PATH is unset.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from support.comfy import comfyui_path
from nodes.spec import load_spec

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

T2V = "RunwarePixVerseTextToVideo"
SPEC = load_spec()
MB = 1 << 20
IDLE_HEADROOM = 300 * MB



# `comfy`: conftest's shared ComfyUI (the session's key, the session's emulator)


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS


def generator(**over) -> dict:
    values = {"model": SPEC.model("pixverse:1@5").label, "prompt": "a lighthouse in a storm, waves crashing",
              "negative_prompt": "", "aspect_ratio": "16:9", "resolution": "1080p", "duration": 8, "fps": 24,
              "seed": 808, "style": "none", "motion_mode": "normal", "sound_effects": True,
              "sound_effect_content": "", "audio": False, "multi_clip": False, "thinking": "none"}
    values.update(over)
    return {"class_type": T2V, "inputs": values}


def run(comfy, prompt: dict, timeout: float = 600) -> dict:
    entry = comfy.wait(comfy.queue(prompt), timeout)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:4000]
    return entry


def cached_nodes(entry: dict) -> set[str]:
    for name, data in entry["status"].get("messages", []):
        if name == "execution_cached":
            return {str(n) for n in data.get("nodes", [])}
    return set()


def test_only_video_wired_decodes_nothing_then_wiring_frames_reruns_from_the_ledger(comfy, emulator, tmp_path):
    import av

    gen = generator()
    only_video = {
        "2": gen,
        "90": {"class_type": "SaveVideo", "inputs": {"video": ["2", 0], "filename_prefix": "pv/only_video",
                                                     "format": "mp4", "codec": "h264"}},
        "93": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}},
    }
    before = emulator.stats()
    pid = comfy.proc.pid
    idle = _status(pid, "VmRSS")
    _reset_peak(pid)
    first = run(comfy, only_video)
    peak = _status(pid, "VmHWM")
    info = json.loads(first["outputs"]["93"]["text"][0])
    print(f"\nonly video wired, 1080p 8 s: ComfyUI idle RSS {idle / MB:.0f} MB, peak during the run "
          f"{peak / MB:.0f} MB (+{(peak - idle) / MB:.0f} MB; the frames would be "
          f"{192 * 1920 * 1080 * 3 * 4 / MB:.0f} MB)")
    assert (info["width"], info["height"], info["frames"]) == (1920, 1080, 192)
    assert peak - idle <= IDLE_HEADROOM, f"peak {peak - idle} bytes above idle"
    after_first = emulator.stats()
    assert after_first["video_submissions"] == before["video_submissions"] + 1

    # The same generator (identical widgets), now with frames connected too.
    with_frames = {
        **only_video,
        "94": {"class_type": "GetImageSize", "inputs": {"image": ["2", 1]}},
        "95": {"class_type": "PreviewAny", "inputs": {"source": ["94", 2]}},
        "96": {"class_type": "ImageFromBatch", "inputs": {"image": ["2", 1], "batch_index": 100, "length": 1}},
        "97": {"class_type": "SaveImage", "inputs": {"images": ["96", 0], "filename_prefix": "pv/frame100"}},
    }
    second = run(comfy, with_frames)
    assert "2" not in cached_nodes(second), "the generator's cached outputs were reused after wiring frames"
    assert second["outputs"]["95"]["text"][0].strip() == "192", second["outputs"]["95"]
    after_second = emulator.stats()
    assert after_second["video_submissions"] == after_first["video_submissions"], "re-execution re-billed"
    assert after_second["polls"] == after_first["polls"] and after_second["downloads"] == after_first["downloads"]
    assert json.loads(second["outputs"]["93"]["text"][0])["taskUUID"] == info["taskUUID"]

    # The frame that arrived is the video's frame 100 (SaveImage truncates x*255: within 1 level).
    from PIL import Image

    saved = np.asarray(Image.open(comfy.output_file(second["outputs"]["97"]["images"][0])).convert("RGB"))
    with av.open(info["file"]) as c:
        expected = next(f for i, f in enumerate(c.decode(video=0)) if i == 100).to_ndarray(format="rgb24")
    diff = np.abs(saved.astype(np.int16) - expected.astype(np.int16))
    assert saved.shape == (1080, 1920, 3) and diff.max() <= 1 and expected.std() > 10

    # Nothing changed: now the cache is used (the fingerprint is stable, not "always changed").
    third = run(comfy, with_frames)
    assert "2" in cached_nodes(third)
    assert emulator.stats()["video_submissions"] == after_first["video_submissions"]
