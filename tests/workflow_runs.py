"""The pipeline's one entry for a workflow (`pipeline.run(client, kind, values, opts)`), called the way the
tests hold their choices: a GenerationChoices and the media as separate arguments. Each function turns them
into the input values a node of that workflow has and runs it through `pipeline.run`; nothing else."""
from __future__ import annotations

from typing import Any, Optional

from nodes.job import pipeline
from nodes.requests.tasks import GenerationChoices
from nodes.spec import load_spec


def values_of(choices: GenerationChoices) -> dict[str, Any]:
    """A GenerationChoices → the widget values (a motion setting as the motion link's value)."""
    motion_inputs = {s.input for s in load_spec().motion_settings()}
    data = choices.model_dump()
    settings = data.pop("settings") or {}
    for name in ("width", "height"):
        if data.get(name) is not None:
            raise ValueError("the nodes take a resolution and an aspect ratio, not width/height")
        data.pop(name, None)
    motion = {k: v for k, v in settings.items() if k in motion_inputs}
    values = {**data, **{k: v for k, v in settings.items() if k not in motion_inputs}}
    if motion:
        values["motion"] = motion
    return values


def text_to_video(client, choices: GenerationChoices, opts):
    return pipeline.run(client, "text_to_video", values_of(choices), opts)


def image_to_video(client, choices: GenerationChoices, first_frame, last_frame, opts):
    return pipeline.run(client, "image_to_video",
                        {**values_of(choices), "first_frame": first_frame, "last_frame": last_frame}, opts)


def lipsync(client, opts, *, video_path=None, frames=None, frames_fps: Optional[float] = None, audio=None,
            speech_text: Optional[str] = None, voice: Optional[str] = None, model: Optional[str] = None):
    return pipeline.run(client, "lipsync", {"video": video_path, "frames": frames, "frames_fps": frames_fps,
                                            "audio": audio, "speech_text": speech_text, "voice": voice,
                                            "model": model}, opts)


def modify(client, choices: GenerationChoices, opts, *, video_path=None, frames=None,
           frames_fps: Optional[float] = None, reference_image=None):
    return pipeline.run(client, "modify", {**values_of(choices), "video": video_path, "frames": frames,
                                           "frames_fps": frames_fps, "reference_image": reference_image},
                        opts)
