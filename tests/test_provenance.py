"""Provenance beside every paid video (issue 25 item 11): the JSON next to each MP4 (the pipeline's output folder,
which is ComfyUI's output/pixverse/, and the CLI's and batch's --out), the note inside the MP4, and
`python -m nodes recover FILE.json` fetching the video again without a new task (the emulator counts tasks)."""
from __future__ import annotations

import hashlib
import json
import shutil
import time

from PIL import Image

import fault_matrix
from support import keysafety
from support.jobs import CHOICES, video_submissions
from support.keysafety import artifact_dir
from nodes.job import provenance
from nodes.media.tags import read_comment
from test_batch import batch_args, rows, write_jsonl


def _i2v_args(d, out):
    Image.new("RGB", (640, 360), (30, 120, 200)).save(d / "frame.png")
    return ["generate", "image-to-video", "--prompt", "a blue sky", "--model", CHOICES.model, "--first-frame",
            str(d / "frame.png"), "--resolution", "360p", "--duration", "5", "--seed", "9", "--out", str(out)]


def _video_of(stdout: str):
    from pathlib import Path

    return Path(next(line.split(": ", 1)[1] for line in stdout.splitlines() if line.startswith("output: ")))


def test_cli_video_has_provenance_and_recover_from_json_makes_no_new_task(emu, request, cli):
    d = artifact_dir("provenance", request.node.name)
    t0 = time.monotonic()
    code, stdout, stderr = cli(emu, _i2v_args(d, d / "out"), d, "generate")
    assert code == 0, stderr
    video = _video_of(stdout)
    side = provenance.sidecar_path(video)
    data = json.loads(side.read_text())
    task = data["taskUUID"]
    assert video.name == f"pixverse_{task}.mp4" and side.name == f"pixverse_{task}.json"
    assert (data["model"], data["workflow"], data["seed"]) == (CHOICES.model, "image-to-video", 9)
    assert data["cost"] is not None and data["request"]["positivePrompt"] == "a blue sky"
    assert data["times"]["submitted"] and data["times"]["saved"]
    assert data["inputs"][0]["parameter"] == "first_frame" and data["inputs"][0]["uploaded_as"]
    frame = data["input_files"][0]
    assert frame["name"] == "frame.png"
    assert frame["sha256"] == hashlib.sha256((d / "frame.png").read_bytes()).hexdigest()
    assert keysafety.SENTINEL_KEY not in side.read_text()
    assert task in (read_comment(video) or "")
    assert video_submissions(emu) == 1

    video.unlink()
    code, stdout, stderr = cli(emu, ["recover", str(side), "--out", str(d / "out")], d, "recover-json")
    assert code == 0, stderr
    assert _video_of(stdout) == video and video.is_file()
    assert video_submissions(emu) == 1  # polled and downloaded again, never a new task
    again = json.loads(side.read_text())
    assert again["input_files"] == data["input_files"] and again["source"] == "new"

    elsewhere = d / "moved" / "holiday.mp4"  # a video moved away from its JSON still says where it came from
    elsewhere.parent.mkdir()
    shutil.move(video, elsewhere)
    assert provenance.task_of(str(elsewhere)) == (task, CHOICES.model)
    code, stdout, stderr = cli(emu, ["recover", str(elsewhere), "--out", str(d / "out")], d, "recover-mp4")
    assert code == 0, stderr
    assert video.is_file() and video_submissions(emu) == 1
    fault_matrix.record("paid video: provenance JSON; MP4 deleted, then moved away",
                        "`recover FILE.json` and `recover moved.mp4` fetch it again; 0 new tasks",
                        video_submissions(emu), time.monotonic() - t0)


def test_batch_out_has_a_provenance_file_per_video(emu, request, cli):
    d = artifact_dir("provenance", request.node.name)
    file = write_jsonl(d / "jobs.jsonl", rows(2))
    code, _, stderr = cli(emu, batch_args(file, d / "out"), d, "batch")
    assert code == 0, stderr
    sides = sorted((d / "out").glob("pixverse_*.json"))
    assert len(sides) == 2
    for side in sides:
        data = json.loads(side.read_text())
        assert data["workflow"] == "text-to-video" and side.with_suffix(".mp4").is_file()
        assert data["request"]["seed"] in (1000, 1001)


def test_not_a_provenance_file_is_refused_by_name(emu, request, cli):
    d = artifact_dir("provenance", request.node.name)
    (d / "other.json").write_text('{"hello": 1}')
    code, _, stderr = cli(emu, ["recover", str(d / "other.json"), "--out", str(d / "out")], d, "bad")
    assert code == 2 and "not a provenance file this pack wrote" in stderr and emu.stats()["requests"] == 0
    fault_matrix.record_bad_input("CLI", "recover FILE.json of another program", stderr.strip(), 0, 0)
