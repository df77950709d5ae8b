"""The PixVerse nodes (ComfyUI V3). Thin: read inputs, call the pipeline, report progress."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Optional

from comfy_api.latest import io

from .. import pipeline, widgets
from ..errors import PixVerseError, PixVerseInputError, RunwareInterrupted
from ..requests import build_image_to_video, build_lipsync, build_text_to_video
from ..spec import load_spec
from .runtime import NodeRuntime, wiring_fingerprint
from .schema import Motion, generator_outputs, to_input

log = logging.getLogger("pixverse")

_PLACEHOLDER_PROMPT = "placeholder prompt"  # stands in for a prompt that arrives by link


def _validation_message(exc: Exception) -> str:
    return str(exc)


async def _run(cls, job, *, generator: bool = True, local=None):
    """Run a pipeline job with ComfyUI's progress, interrupt and output folder; map errors.

    `local(opts)`, when given, is tried first and may answer without Runware (and without a key)."""
    rt = NodeRuntime(cls.hidden.unique_id)
    wanted = widgets.wired_outputs(cls.hidden.prompt, cls.hidden.unique_id)
    opts = rt.job_options(wanted)
    try:
        result = await local(opts) if local is not None else None
        if result is None:
            async with rt.client() as client:
                result = await job(client, opts)
    except RunwareInterrupted as exc:
        rt.interrupted(exc)
        raise
    except PixVerseError as exc:
        rt.text(f"error: {exc}")
        raise
    return rt.outputs(result)


class _VideoResultNode(io.ComfyNode):
    """A node with the generators' outputs (video, frames, audio, fps, info). Only connected frames
    and audio are decoded, so their wiring is part of the node's cache fingerprint."""

    @classmethod
    def fingerprint_inputs(cls, **kw):
        return wiring_fingerprint()


class PixVerseTextToVideo(_VideoResultNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=widgets.NODE_IDS["text_to_video"],
            display_name="PixVerse Text to Video (Runware)",
            category=widgets.CATEGORY,
            description="Generate a video from a prompt with PixVerse, through Runware (billed per video).",
            inputs=[to_input(w) for w in widgets.generation_widgets()],
            outputs=generator_outputs({w.name for w in widgets.generation_widgets()}),
            hidden=[io.Hidden.unique_id, io.Hidden.prompt],
        )

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        values = {**kw, "prompt": kw.get("prompt") or _PLACEHOLDER_PROMPT}
        try:
            build_text_to_video(widgets.generation_choices(values))
        except PixVerseInputError as exc:
            return _validation_message(exc)
        return True

    @classmethod
    async def execute(cls, **kw) -> io.NodeOutput:
        choices = widgets.generation_choices(kw)
        return await _run(cls, lambda client, opts: pipeline.text_to_video(client, choices, opts))


class PixVerseImageToVideo(_VideoResultNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=widgets.NODE_IDS["image_to_video"],
            display_name="PixVerse Image to Video (Runware)",
            category=widgets.CATEGORY,
            description="Animate a first frame (optionally towards a last frame) with PixVerse, through Runware.",
            inputs=[to_input(w) for w in widgets.generation_widgets(image_to_video=True)],
            outputs=generator_outputs({w.name for w in widgets.generation_widgets(image_to_video=True)}),
            hidden=[io.Hidden.unique_id, io.Hidden.prompt],
        )

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        values = {**kw, "prompt": kw.get("prompt") or _PLACEHOLDER_PROMPT}
        try:
            # The first frame is not known yet: measure "auto" against a square stand-in.
            build_image_to_video(widgets.generation_choices(values), pipeline.PLACEHOLDER_REF,
                                 first_frame_size=(1000, 1000))
        except PixVerseInputError as exc:
            return _validation_message(exc)
        return True

    @classmethod
    async def execute(cls, first_frame, last_frame=None, **kw) -> io.NodeOutput:
        choices = widgets.generation_choices(kw)
        return await _run(cls, lambda client, opts: pipeline.image_to_video(client, choices, first_frame,
                                                                            last_frame, opts))


class PixVerseLipSync(_VideoResultNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=widgets.NODE_IDS["lipsync"],
            display_name="PixVerse LipSync (Runware)",
            category=widgets.CATEGORY,
            description="Lip-sync a video to an audio clip or to text-to-speech with PixVerse, through Runware.",
            inputs=[to_input(w) for w in widgets.lipsync_widgets()],
            outputs=generator_outputs({w.name for w in widgets.lipsync_widgets()}),
            hidden=[io.Hidden.unique_id, io.Hidden.prompt],
        )

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        speech = kw.get("speech_text") or None
        try:
            build_lipsync(video=pipeline.PLACEHOLDER_REF, speech_text=speech,
                          audio=None if speech else pipeline.PLACEHOLDER_REF,
                          voice=kw.get("voice"), model=kw.get("model"))
        except PixVerseInputError as exc:
            if exc.parameter != "audio":  # audio arrives by link, not known here
                return _validation_message(exc)
        return True

    @classmethod
    async def execute(cls, model=None, video=None, frames=None, frames_fps=24.0, audio=None, speech_text="",
                      voice=None, **_) -> io.NodeOutput:
        async def job(client, opts):
            video_path = None
            if video is not None:
                video_path = _video_input_path(video)
            return await pipeline.lipsync(client, opts, video_path=video_path, frames=frames,
                                          frames_fps=frames_fps, audio=audio, speech_text=speech_text or None,
                                          voice=voice, model=model)
        return await _run(cls, job)


def _video_input_path(video: Any) -> Path:
    """A VIDEO input as a file: the file itself when it is one, else the video saved to a temp MP4."""
    source = getattr(video, "get_stream_source", lambda: None)()
    if isinstance(source, str) and Path(source).is_file():
        return Path(source)
    path = Path(tempfile.mkdtemp(prefix="pixverse-")) / "reference.mp4"
    video.save_to(str(path))
    return path


class PixVerseEffect(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=widgets.NODE_IDS["effect"],
            display_name="PixVerse Effect",
            category=widgets.CATEGORY,
            description="Pick a PixVerse effect for a generator's motion input.",
            inputs=[to_input(w) for w in widgets.effect_widgets()],
            outputs=[Motion.Output("motion", tooltip="Connect to a PixVerse generator's motion input.")],
        )

    @classmethod
    def validate_inputs(cls, effect) -> bool | str:
        values = load_spec().enums.effect.values
        return True if effect in values else str(PixVerseInputError("effect", effect, list(values)))

    @classmethod
    def execute(cls, effect) -> io.NodeOutput:
        return io.NodeOutput(widgets.motion_value(effect=effect))


class PixVerseCamera(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=widgets.NODE_IDS["camera"],
            display_name="PixVerse Camera",
            category=widgets.CATEGORY,
            description="Pick a camera movement for a generator's motion input.",
            inputs=[to_input(w) for w in widgets.camera_widgets()],
            outputs=[Motion.Output("motion", tooltip="Connect to a PixVerse generator's motion input.")],
        )

    @classmethod
    def validate_inputs(cls, camera_movement) -> bool | str:
        values = load_spec().enums.cameraMovement.values
        return True if camera_movement in values else str(
            PixVerseInputError("camera_movement", camera_movement, list(values)))

    @classmethod
    def execute(cls, camera_movement) -> io.NodeOutput:
        return io.NodeOutput(widgets.motion_value(camera_movement=camera_movement))


class PixVerseRecover(_VideoResultNode):
    """A task submitted earlier (cancelled, timed out, ComfyUI restarted) → the generators' outputs."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=widgets.NODE_IDS["recover"],
            display_name="PixVerse Recover (Runware)",
            category=widgets.CATEGORY,
            description="Fetch the video of an earlier PixVerse task by its taskUUID: no new task, no new "
                        "charge. Served from the pack's job ledger when the video is already here.",
            inputs=[to_input(w) for w in widgets.recover_widgets()],
            outputs=generator_outputs({w.name for w in widgets.recover_widgets()}),
            hidden=[io.Hidden.unique_id, io.Hidden.prompt],
        )

    @classmethod
    def validate_inputs(cls, task_uuid) -> bool | str:
        try:
            widgets.parse_task_uuid(task_uuid)
        except PixVerseInputError as exc:
            return _validation_message(exc)
        return True

    @classmethod
    async def execute(cls, task_uuid) -> io.NodeOutput:
        uuid = widgets.parse_task_uuid(task_uuid)
        return await _run(cls, lambda client, opts: pipeline.recover(client, uuid, opts),
                          local=lambda opts: pipeline.recover_local(uuid, opts))


NODE_CLASSES = [PixVerseTextToVideo, PixVerseImageToVideo, PixVerseLipSync, PixVerseEffect, PixVerseCamera,
                PixVerseRecover]
