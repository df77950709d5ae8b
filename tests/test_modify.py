"""PixVerse Modify: a source video + a prompt (+ an optional reference image), through the pipeline and
the emulator, with the same ledger, progress and Recover paths as the generators."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import jobs
from nodes import pipeline, widgets
from nodes.emulator import EmulatorServer
from nodes.errors import PixVerseInputError
from nodes.media import render_test_video
from nodes.spec import load_spec
from nodes.tasks import GenerationChoices, build_modify

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


def test_modify_a_video_against_the_emulator(tmp_path):
    src = tmp_path / "source.mp4"
    render_test_video(src, width=480, height=360, fps=12, duration=2.0, with_audio=False)
    y, x = np.mgrid[0:400, 0:400]
    ref = torch.from_numpy(np.stack([x / 400, y / 400, x * 0 + 0.5], -1)[None].astype(np.float32))
    with EmulatorServer(job_seconds=0.2) as emu:
        runner = jobs.Runner(emu, "modify")
        try:
            result = runner.run(lambda client, opts: pipeline.modify(client, choices(), opts, video_path=src,
                                                                      reference_image=ref))
            assert (result.probe.width, result.probe.height) == MODIFY.size("540p", "4:3")
            assert abs(result.probe.duration - 2.0) < 0.2 and result.layout == "current"
            assert len(emu.video_tasks()) == 1 and emu.stats()["jobs"]["success"] == 1
            again = runner.run(lambda client, opts: pipeline.modify(client, choices(), opts, video_path=src,
                                                                     reference_image=ref))
            assert again.origin == "reused" and len(emu.video_tasks()) == 1  # the ledger: not paid twice
            frames = torch.rand(24, 240, 320, 3)
            from_frames = runner.run(lambda client, opts: pipeline.modify(client, choices(prompt="make it rain"),
                                                                           opts, frames=frames, frames_fps=12))
            assert abs(from_frames.probe.duration - 2.0) < 0.2 and len(emu.video_tasks()) == 2
        finally:
            runner.close()


def test_modify_speaks_only_the_current_layout():
    with EmulatorServer(job_seconds=0.2, layouts=("seed",)) as emu:
        runner = jobs.Runner(emu, "modify-seed-only")
        try:
            src = runner.dir / "src.mp4"
            render_test_video(src, width=320, height=240, fps=12, duration=1.0, with_audio=False)
            outcome = runner.attempt(lambda client, opts: pipeline.modify(client, choices(), opts, video_path=src))
            assert outcome.error is not None and "inputs" in outcome.text
            assert len(emu.video_tasks()) == 1 and sum(emu.stats()["jobs"].values()) == 0
        finally:
            runner.close()


def test_the_node_inputs():
    names = [w.name for w in widgets.modify_widgets()]
    assert names[:6] == ["model", "video", "frames", "frames_fps", "reference_image", "prompt"]
    assert "audio" in names and "duration" not in names
