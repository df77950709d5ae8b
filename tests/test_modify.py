"""PixVerse Modify: a source video + a prompt (+ an optional reference image), through the pipeline and
the emulator, with the same ledger, progress and Recover paths as the generators."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from support import jobs
import workflow_runs as runs
from nodes.job import pipeline
from nodes.requests import widgets
from nodes.errors import PixVerseInputError
from nodes.media import render_test_video
from nodes.spec import load_spec
from nodes.requests.tasks import GenerationChoices, build_modify
from nodes.workflows import WORKFLOWS

SPEC = load_spec()
MODIFY = SPEC.default_model("modify")


def choices(**kw):
    return GenerationChoices(**{"model": MODIFY.air, "prompt": "make it snow", "resolution": "540p", **kw})


def test_the_request_in_runwares_current_layout():
    built = build_modify(choices(audio=True), "vid-1", "img-1")
    t = built.task
    assert t["inputs"] == {"video": "vid-1", "referenceImages": ["img-1"]} and t["resolution"] == "540p"
    assert t["settings"] == {SPEC.setting("audio").wire: True} and t["positivePrompt"] == "make it snow"
    assert "width" not in t and "duration" not in t and "fps" not in t
    for bad, parameter in [({"resolution": "1080p"}, "resolution"), ({"duration": 5}, "duration"),
                           ({"negative_prompt": "rain"}, "negative_prompt"), ({"style": "anime"}, "style")]:
        with pytest.raises(PixVerseInputError) as caught:
            build_modify(choices(**bad), "vid-1")
        assert caught.value.parameter == parameter


def test_modify_a_video_against_the_emulator(tmp_path, emu):
    src = tmp_path / "source.mp4"
    render_test_video(src, width=480, height=360, fps=12, duration=2.0, with_audio=False)
    y, x = np.mgrid[0:400, 0:400]
    ref = torch.from_numpy(np.stack([x / 400, y / 400, x * 0 + 0.5], -1)[None].astype(np.float32))
    emu.job_seconds = 0.2
    runner = jobs.Runner(emu, "modify")
    try:
        result = runner.run(lambda client, opts: runs.modify(client, choices(), opts, video_path=src,
                                                                  reference_image=ref))
        assert (result.probe.width, result.probe.height) == MODIFY.size("540p", "4:3")
        assert abs(result.probe.duration - 2.0) < 0.2 and result.layout == "current"
        assert len(emu.video_tasks()) == 1 and emu.stats()["jobs"]["success"] == 1
        again = runner.run(lambda client, opts: runs.modify(client, choices(), opts, video_path=src,
                                                                 reference_image=ref))
        assert again.origin == "reused" and len(emu.video_tasks()) == 1  # the ledger: not paid twice
        frames = torch.rand(24, 240, 320, 3)
        from_frames = runner.run(lambda client, opts: runs.modify(client, choices(prompt="make it rain"),
                                                                       opts, frames=frames, frames_fps=12))
        assert abs(from_frames.probe.duration - 2.0) < 0.2 and len(emu.video_tasks()) == 2
    finally:
        runner.close()


def test_modify_speaks_only_the_current_layout(emu):
    emu.job_seconds = 0.2
    emu.layouts = ("seed",)  # conftest's emu puts every layout back after the test
    runner = jobs.Runner(emu, "modify-seed-only")
    try:
        src = runner.dir / "src.mp4"
        render_test_video(src, width=320, height=240, fps=12, duration=1.0, with_audio=False)
        outcome = runner.attempt(lambda client, opts: runs.modify(client, choices(), opts, video_path=src))
        assert outcome.error is not None and "inputs" in outcome.text
        assert len(emu.video_tasks()) == 1 and sum(emu.stats()["jobs"].values()) == 0
    finally:
        runner.close()


def test_the_node_inputs():
    names = [w.name for w in WORKFLOWS["modify"].widgets(load_spec())]
    assert names[:6] == ["model", "video", "frames", "frames_fps", "reference_image", "prompt"]
    assert "audio" in names and "duration" not in names


def test_generate_modify_on_the_command_line_offline(tmp_path, capsys):
    """`python -m nodes generate modify --offline` (in this process): uploads, runs, and the same command
    again reuses the video from the ledger; a choice Modify does not take is refused before anything runs."""
    from PIL import Image

    from nodes.cli import main as cli

    src, look = tmp_path / "walk.mp4", tmp_path / "look.png"
    render_test_video(src, width=480, height=360, fps=12, duration=1.5, with_audio=False)
    Image.new("RGB", (400, 400), (30, 200, 90)).save(look)
    argv = ["generate", "modify", "--video", str(src), "--reference-image", str(look), "--prompt", "make it snow",
            "--resolution", "540p", "--seed", "3", "--audio", "--offline", "--job-seconds", "0.1",
            "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    w, h = MODIFY.size("540p", "4:3")
    assert f"video: {w}x{h}, 12 fps, 1.50 s" in out and "audio: yes" in out
    assert "uploading video" in err and "uploading reference_image" in err
    assert cli.main(argv) == 0
    assert "reused finished task" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: Modify takes the source's length
        cli.main(argv + ["--duration", "5"])
    assert cli.main([*argv[:-2], "--resolution", "1080p", "--out", str(tmp_path / "out2")]) == 2
    assert "resolution = '1080p'" in capsys.readouterr().err
    assert not list((tmp_path / "out2").glob("*.mp4"))
