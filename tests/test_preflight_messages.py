"""Issue 17 item 13: messages that said the wrong thing. Modify's bad-video error spoke of lip-sync;
the disk-full message dropped its folder ("the disk holding is full")."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image

from support import jobs
import workflow_runs as runs
from nodes.workflows import WORKFLOWS
from nodes import errors as E
from nodes.job import pipeline, preflight
from nodes.errors import MediaError, PreflightError
from nodes.spec import load_spec
from nodes.requests.tasks import GenerationChoices


@pytest.fixture
def picture_named_like_a_video(tmp_path):
    path = tmp_path / "clip.mp4"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path, format="PNG")
    return path


@pytest.mark.parametrize("workflow,says,never", [
    (None, "Connect a video clip; nothing", "lip-sync"),
    ("modify", "Connect a video clip of the video to modify", "lip-sync"),
    ("lipsync", "Connect a video clip of the face to lip-sync", "modify")])
def test_a_picture_as_the_video_is_worded_for_the_workflow(picture_named_like_a_video, workflow, says, never):
    with pytest.raises(MediaError) as info:
        purpose = WORKFLOWS[workflow].media_named("video").purpose if workflow else None  # the slice's wording
        preflight.check_video_file(picture_named_like_a_video, "video", purpose=purpose)
    text = str(info.value)
    assert "is a PNG image, not a video" in text and says in text and never not in text


def test_modify_with_a_picture_never_mentions_lip_sync(picture_named_like_a_video, emu):
    spec = load_spec()
    choices = GenerationChoices(model=spec.default_model("modify").air, prompt="make it snow", resolution="540p")
    emu.job_seconds = 0.1
    runner = jobs.Runner(emu, "modify")
    try:
        out = runner.attempt(lambda client, opts: runs.modify(client, choices, opts,
                                                                  video_path=picture_named_like_a_video))
    finally:
        runner.close()
    assert isinstance(out.error, MediaError)
    assert "not a video" in str(out.error) and "lip-sync" not in str(out.error)
    assert emu.video_tasks() == []


@pytest.mark.parametrize("code,says", [
    (errno.ENOSPC, "the disk holding {folder} is full"), (errno.EDQUOT, "the disk quota for {folder} is used up"),
    (errno.EACCES, "no permission to write {folder}")])
def test_a_full_disk_names_its_folder(tmp_path, monkeypatch, code, says):
    folder = tmp_path / "out"

    def refuse(*a, **k):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(preflight.os, "open", refuse)
    with pytest.raises(PreflightError) as info:
        preflight.check_destination(folder)
    text = str(info.value)
    assert says.format(folder=folder) in text, text
    assert "holding is" not in text and "for is" not in text


@pytest.mark.parametrize("code,says", [(errno.ENOSPC, "the disk is full"), (errno.EDQUOT, "the disk quota is used up"),
                                       (errno.EACCES, "no permission to write there")])
def test_without_a_path_the_words_still_read(code, says):
    assert E.os_error_text(OSError(code, os.strerror(code))).startswith(says)
