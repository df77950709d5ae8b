"""Runware's current request layout first, the seed's as a safe fallback (nodes/requests/layouts.py).

Against the emulator in each strict mode (it refuses the other layout's fields as unknown parameters,
as Runware refuses unknown parameters): every run ends with a video and exactly one accepted task; a
refusal naming a layout field is rebuilt once in the other layout; the layout that worked is
remembered, so the next run goes straight to it.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from support import jobs
import workflow_runs as runs
from nodes.requests import layouts
from nodes.job import pipeline
from nodes.emulator import EmulatorServer
from nodes import config
from nodes.errors import PixVerseInputError, RunwareValidationError
from nodes.spec import load_spec

SPEC = load_spec()


def accepted(emu) -> int:
    return sum(emu.stats()["jobs"].values())


def image(w=640, h=480, shade=0.3):
    y, x = np.mgrid[0:h, 0:w]
    return torch.from_numpy(np.stack([x / w, y / h, np.full_like(x, shade, dtype=float)], -1)[None].astype(np.float32))


def i2v(choices=None, last=True, shade=0.3):
    c = choices or jobs.choices(aspect_ratio="auto")
    return lambda client, opts: runs.image_to_video(client, c, image(shade=shade), image(shade=0.9) if last else None,
                                                        opts)


@pytest.fixture
def emu_for(make_emulator):
    """An emulator of its own that speaks only the named layouts (all when none is named)."""
    return lambda *names: make_emulator(job_seconds=0.2, layouts=names or None)


@pytest.mark.parametrize("strict", ["current", "seed"])
def test_each_strict_layout_ends_with_one_accepted_task_per_run(emu_for, strict):
    emu = emu_for(strict)
    runner = jobs.Runner(emu, f"layout-{strict}")
    try:
        result = runner.run(i2v())
        assert result.layout == strict and accepted(emu) == 1
        sent = emu.video_tasks()
        if strict == "current":
            assert len(sent) == 1 and "inputs" in sent[0]
        else:  # refused in the current layout, rebuilt once in the seed's
            assert len(sent) == 2 and "inputs" in sent[0] and "frameImages" in sent[1]
            assert "refused the current layout" in result.layout_reason and "inputs" in result.layout_reason
        assert result.info["layout"] == strict and result.info["layout_reason"] == result.layout_reason
        # the next run (another request) goes straight to the layout that worked, remembered on disk
        memory = json.loads((runner.ledger_path.parent / layouts.MEMORY_FILENAME).read_text())
        assert memory[emu.base_url][SPEC.model(jobs.CHOICES.model).air] == strict
        second = runner.run(i2v(shade=0.6))
        assert second.layout == strict and accepted(emu) == 2 and len(emu.video_tasks()) == len(sent) + 1
        lip = runner.run(lambda client, opts: runs.lipsync(
            client, opts, frames=image(320, 240).repeat(16, 1, 1, 1), frames_fps=16, speech_text="hello there"))
        assert lip.layout == strict and accepted(emu) == 3
    finally:
        runner.close()


def test_an_override_is_never_replaced(emu_for):
    emu = emu_for("seed")
    runner = jobs.Runner(emu, "layout-override")
    try:  # as RUNWARE_PIXVERSE_LAYOUT=current (or the setting) reads
        outcome = runner.attempt(i2v(), config=config.load(env={config.LAYOUT.env: "current"}))
        assert isinstance(outcome.error, RunwareValidationError) and "inputs" in outcome.text
        assert accepted(emu) == 0 and len(emu.video_tasks()) == 1  # refused once, not rebuilt
    finally:
        runner.close()


def test_a_set_aspect_ratio_goes_out_in_the_layout_that_can_say_it(emu_for):
    emu = emu_for()
    runner = jobs.Runner(emu, "layout-aspect")
    try:
        result = runner.run(i2v(jobs.choices(aspect_ratio="16:9"), last=False))
        assert result.layout == "seed" and "cannot send this request" in result.layout_reason
        assert (result.probe.width, result.probe.height) == (640, 360) and accepted(emu) == 1
    finally:
        runner.close()


def test_refusals_that_do_not_name_a_layout_field_are_not_resent(emu_for):
    emu = emu_for("current")
    emu.inject("http_status", status=400, on="submit", code="invalidPositivePrompt",
               message="Invalid value for positivePrompt: too short.")
    runner = jobs.Runner(emu, "layout-other-refusal")
    try:
        outcome = runner.attempt(i2v())
        assert isinstance(outcome.error, RunwareValidationError)
        assert len(emu.video_tasks()) == 1 and accepted(emu) == 0
    finally:
        runner.close()


def test_refusal_field_reads_parameter_or_message():
    class Refusal(Exception):
        def __init__(self, parameter, detail):
            self.parameter, self.detail = parameter, detail
    assert layouts.refusal_field(SPEC, Refusal("inputs.frameImages[0].image", "x")) == "inputs.frameImages[0].image"
    assert layouts.refusal_field(SPEC, Refusal(None, "Unknown parameter referenceVideos.")) == "referenceVideos"
    assert layouts.refusal_field(SPEC, Refusal("positivePrompt", "too short")) is None


def test_a_frame_rate_only_the_seed_layout_can_send_goes_out_there(emu_for):
    emu = emu_for()
    runner = jobs.Runner(emu, "layout-fps")
    try:
        result = runner.run(lambda client, opts: runs.text_to_video(client, jobs.choices(fps=24), opts))
        assert result.layout == "seed" and result.probe.fps == 24 and emu.video_tasks()[-1]["fps"] == 24
        assert "cannot send this request" in result.layout_reason
    finally:
        runner.close()
    fresh = jobs.Runner(emu, "layout-fps-default")  # its own ledger, so no remembered layout
    try:
        result = fresh.run(lambda client, opts: runs.text_to_video(client, jobs.choices(fps=16), opts))
        assert result.layout == "current" and "fps" not in emu.video_tasks()[-1]  # the default, by omission
    finally:
        fresh.close()


def test_the_override_reads_the_environment_then_the_comfyui_setting():
    setting = config.LAYOUT.setting
    assert config.load({setting: "Seed"}, env={}).layout == "seed"
    assert config.load({setting: ""}, env={}).layout is None and config.load(None, env={}).layout is None
    assert config.load({setting: "auto"}, env={}).layout is None
    assert config.load({setting: "seed"}, env={config.LAYOUT.env: "current"}).layout == "current"
    with pytest.raises(PixVerseInputError) as err:  # a layout that does not exist: refused, naming the variable
        config.load({}, env={config.LAYOUT.env: "newest"})
    assert "RUNWARE_PIXVERSE_LAYOUT = 'newest'" in str(err.value) and "auto, current, seed" in str(err.value)
