"""The draft request (nodes/requests/draft.py): a node's widget values → the task it would send, through the
layout choice, with stand-ins for what arrives by link. Queue-time validation and the estimate route
both ask it, so they cannot disagree."""
from __future__ import annotations

import pytest

from nodes.requests import widgets
from nodes.requests.draft import PLACEHOLDER_PROMPT, PLACEHOLDER_REF, draft
from nodes.errors import PixVerseInputError
from nodes.spec import load_spec
from nodes.spec.paths import get
from nodes.requests.tasks import build_text_to_video

SPEC = load_spec()


def values(kind: str, **over) -> dict:
    """A node's widget values at their defaults (no sockets), then `over`."""
    out = {w.name: w.default for w in widgets.widgets_for(kind) if w.kind not in ("IMAGE", "AUDIO", "VIDEO", "motion")}
    out.update(over)
    return out


def without_uuid(task: dict) -> dict:
    return {k: v for k, v in task.items() if k != "taskUUID"}


def test_text_to_video_with_its_prompt_is_exact_and_the_builders_task():
    vals = values("text_to_video", prompt="a paper boat on a stream", seed=7)
    drafted = draft("text_to_video", vals)
    assert drafted.exact
    built = build_text_to_video(widgets.generation_choices(vals))
    assert without_uuid(drafted.task) == without_uuid(built.task) and drafted.built.layout == built.layout


def test_what_arrives_by_link_is_a_stand_in_and_the_draft_is_not_exact():
    drafted = draft("text_to_video", values("text_to_video", prompt=""))  # a prompt from a link
    assert not drafted.exact and drafted.task[SPEC.prompt_fields["prompt"]] == PLACEHOLDER_PROMPT
    i2v = draft("image_to_video", values("image_to_video", prompt="waves"))
    layout = SPEC.layout(i2v.built.layout)
    assert not i2v.exact and get(i2v.task, layout.frame_images)[1][0][layout.frame_image_key] == PLACEHOLDER_REF


def test_v6_image_to_video_at_16_9_goes_in_the_layout_that_can_send_it():
    """The issue-16 bug: the node accepted it and the estimate refused it. The current layout takes
    the first frame's shape, so a set aspect ratio needs the seed layout, as a run would choose."""
    v6 = SPEC.model("pixverse:1@8")
    vals = values("image_to_video", model=v6.label, prompt="waves", aspect_ratio="16:9", resolution="720p")
    drafted = draft("image_to_video", vals)
    assert drafted.built.layout == "seed" and (drafted.task["width"], drafted.task["height"]) == v6.size("720p", "16:9")
    with pytest.raises(PixVerseInputError) as caught:  # forced into the current layout, a run refuses it too
        draft("image_to_video", vals, layout="current")
    assert caught.value.parameter == "aspect_ratio"
    assert draft("image_to_video", {**vals, "aspect_ratio": "auto"}, layout="current").built.layout == "current"
    assert draft("image_to_video", vals, layout="no-such-layout").built.layout == "seed"  # as layouts.choose


def test_a_connected_last_frame_counts_for_the_rules():
    v6 = SPEC.model("pixverse:1@8")
    vals = values("image_to_video", model=v6.label, prompt="waves", thinking="auto")
    assert draft("image_to_video", vals).task  # thinking without a last frame
    with pytest.raises(PixVerseInputError) as caught:
        draft("image_to_video", {**vals, "last_frame": True})  # the web extension marks a connected input
    assert caught.value.parameter == "thinking"


def test_lipsync_drafts_speech_or_a_stand_in_audio():
    speech = draft("lipsync", values("lipsync", speech_text="Hello there", voice="Emily"))
    assert get(speech.task, SPEC.speech_fields["speech_text"]) == (True, "Hello there")
    assert get(speech.task, SPEC.speech_fields["voice"]) == (True, "Emily") and not speech.exact
    audio = draft("lipsync", values("lipsync", speech_text=""))
    layout = SPEC.layout(audio.built.layout)
    present, value = get(audio.task, layout.audio)
    assert present and PLACEHOLDER_REF in (value if isinstance(value, list) else [value])
    assert "speech" not in audio.task


def test_modify_and_motion():
    modify = draft("modify", values("modify", prompt="make it snow", reference_image=True))
    assert not modify.exact and PLACEHOLDER_REF in str(modify.task)
    v4 = SPEC.model("pixverse:1@2")
    moved = draft("text_to_video", values("text_to_video", model=v4.label, prompt="a boat", fps=16),
                  motion={"effect": SPEC.setting("effect").values[0]})
    assert moved.task["providerSettings"][SPEC.provider]["effect"] == SPEC.setting("effect").values[0]


def test_a_prompt_that_cannot_be_sent_is_refused_or_stood_in_for():
    vals = values("text_to_video", prompt="x")  # shorter than the spec's minimum
    with pytest.raises(PixVerseInputError) as caught:
        draft("text_to_video", vals)
    assert caught.value.parameter == "prompt"
    drafted = draft("text_to_video", vals, stand_in_bad_text=True)  # the estimate: the kind of run is known
    assert not drafted.exact and drafted.task[SPEC.prompt_fields["prompt"]] == PLACEHOLDER_PROMPT
    with pytest.raises(PixVerseInputError):  # any other refusal stands
        draft("text_to_video", {**vals, "duration": 99}, stand_in_bad_text=True)


def test_only_nodes_that_send_a_task_have_a_draft():
    for kind in ("effect", "camera", "recover", "SomethingElse"):
        with pytest.raises(PixVerseInputError) as caught:
            draft(kind, {})
        assert caught.value.parameter == "node"
