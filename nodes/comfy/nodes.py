"""The PixVerse nodes (ComfyUI V3). Thin: read inputs, call the pipeline, report progress."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from comfy_api.latest import io

from .. import pipeline, widgets
from ..errors import PixVerseError, PixVerseInputError, RunwareInterrupted
from ..tasks import (build_image_to_video, build_in_any_layout, build_lipsync, build_modify,
                     build_text_to_video, resolve_model)
from ..spec import load_spec
from .runtime import NodeRuntime, wiring_fingerprint
from .schema import Motion, generator_outputs, to_input

log = logging.getLogger("pixverse")

_PLACEHOLDER_PROMPT = "placeholder prompt"  # stands in for a prompt that arrives by link


async def _run(cls, job, *, local=None):
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
    except Exception as exc:  # noqa: BLE001 - shown as a PixVerse error naming the task, not a bare internal one
        raise rt.unexpected(exc) from exc
    return rt.outputs(result)


class _VideoResultNode(io.ComfyNode):
    """A node with the generators' outputs (video, frames, audio, fps, info). Only connected frames
    and audio are decoded, so their wiring is part of the node's cache fingerprint."""

    @classmethod
    def fingerprint_inputs(cls, **kw):
        return wiring_fingerprint()

    @staticmethod
    def _schema(node_key: str, title: str, description: str, inputs: list) -> io.Schema:
        return io.Schema(
            node_id=widgets.NODE_IDS[node_key], display_name=title, category=widgets.CATEGORY,
            description=description, inputs=[to_input(w) for w in inputs],
            outputs=generator_outputs({w.name for w in inputs}),
            hidden=[io.Hidden.unique_id, io.Hidden.prompt])


class PixVerseTextToVideo(_VideoResultNode):
    @classmethod
    def define_schema(cls):
        return cls._schema("text_to_video", "PixVerse Text to Video (Runware)",
                           "Generate a video from a prompt with PixVerse, through Runware (billed per video).",
                           widgets.generation_widgets())

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        values = {**kw, "prompt": kw.get("prompt") or _PLACEHOLDER_PROMPT}
        try:
            choices = widgets.generation_choices(values)
            model = resolve_model(load_spec(), choices.model, "text-to-video")
            build_in_any_layout(model, lambda layout: build_text_to_video(choices, layout=layout))
        except PixVerseInputError as exc:
            return str(exc)
        return True

    @classmethod
    async def execute(cls, **kw) -> io.NodeOutput:
        choices = widgets.generation_choices(kw)
        return await _run(cls, lambda client, opts: pipeline.text_to_video(client, choices, opts))


class PixVerseImageToVideo(_VideoResultNode):
    @classmethod
    def define_schema(cls):
        return cls._schema("image_to_video", "PixVerse Image to Video (Runware)",
                           "Animate a first frame (optionally towards a last frame) with PixVerse, through Runware.",
                           widgets.generation_widgets(image_to_video=True))

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        values = {**kw, "prompt": kw.get("prompt") or _PLACEHOLDER_PROMPT}
        try:
            # The first frame is not known yet: measure "auto" against a square stand-in.
            choices = widgets.generation_choices(values)
            model = resolve_model(load_spec(), choices.model, "image-to-video")
            build_in_any_layout(model, lambda layout: build_image_to_video(
                choices, pipeline.PLACEHOLDER_REF, first_frame_size=(1000, 1000), layout=layout))
        except PixVerseInputError as exc:
            return str(exc)
        return True

    @classmethod
    async def execute(cls, first_frame, last_frame=None, **kw) -> io.NodeOutput:
        choices = widgets.generation_choices(kw)
        return await _run(cls, lambda client, opts: pipeline.image_to_video(client, choices, first_frame,
                                                                            last_frame, opts))


class PixVerseLipSync(_VideoResultNode):
    @classmethod
    def define_schema(cls):
        return cls._schema("lipsync", "PixVerse LipSync (Runware)",
                           "Lip-sync a video to an audio clip or to text-to-speech with PixVerse, through Runware.",
                           widgets.lipsync_widgets())

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        speech = kw.get("speech_text") or None
        try:
            build_lipsync(video=pipeline.PLACEHOLDER_REF, speech_text=speech,
                          audio=None if speech else pipeline.PLACEHOLDER_REF,
                          voice=kw.get("voice"), model=kw.get("model"))
        except PixVerseInputError as exc:
            if exc.parameter != "audio":  # audio arrives by link, not known here
                return str(exc)
        return True

    @classmethod
    async def execute(cls, model=None, video=None, frames=None, frames_fps=24.0, audio=None, speech_text="",
                      voice=None, **_) -> io.NodeOutput:
        async def job(client, opts):
            with tempfile.TemporaryDirectory(prefix="pixverse-") as tmp:  # removed after the job
                video_path = _video_input_path(video, Path(tmp)) if video is not None else None
                return await pipeline.lipsync(client, opts, video_path=video_path, frames=frames,
                                              frames_fps=frames_fps, audio=audio, speech_text=speech_text or None,
                                              voice=voice, model=model)
        return await _run(cls, job)


def _video_input_path(video: Any, tmp: Path) -> Path:
    """A VIDEO input as a file: the file itself when it is one, else the video saved to an MP4 in `tmp`."""
    # Newer ComfyUI lets Load Video trim/crop without re-encoding: the stream source is then the
    # unedited file, and only save_to() applies the edits (0.3.64 has neither method).
    edited = getattr(video, "has_pending_frame_edits", lambda: False)() or \
        tuple(getattr(video, "get_active_trim_window", lambda: (0.0, 0.0))()) != (0.0, 0.0)
    source = None if edited else getattr(video, "get_stream_source", lambda: None)()
    if isinstance(source, str) and Path(source).is_file():
        return Path(source)
    path = tmp / "reference.mp4"
    video.save_to(str(path))
    return path


class PixVerseModify(_VideoResultNode):
    @classmethod
    def define_schema(cls):
        return cls._schema("modify", "PixVerse Modify (Runware)",
                           "Change a video as a prompt says (optionally following a reference image) with "
                           "PixVerse Modify, through Runware.", widgets.modify_widgets())

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        values = {**kw, "prompt": kw.get("prompt") or _PLACEHOLDER_PROMPT}
        try:
            choices = widgets.modify_choices(values)
            model = resolve_model(load_spec(), choices.model, "modify")
            build_in_any_layout(model, lambda layout: build_modify(choices, pipeline.PLACEHOLDER_REF, layout=layout))
        except PixVerseInputError as exc:
            return str(exc)
        return True

    @classmethod
    async def execute(cls, video=None, frames=None, frames_fps=24.0, reference_image=None, **kw) -> io.NodeOutput:
        choices = widgets.modify_choices(kw)

        async def job(client, opts):
            with tempfile.TemporaryDirectory(prefix="pixverse-") as tmp:  # removed after the job
                video_path = _video_input_path(video, Path(tmp)) if video is not None else None
                return await pipeline.modify(client, choices, opts, video_path=video_path, frames=frames,
                                             frames_fps=frames_fps, reference_image=reference_image)
        return await _run(cls, job)


class _MotionNode(io.ComfyNode):
    """A node that picks one motion setting (widgets.MOTION_NODES) for a generator's motion input."""

    NODE_KEY = ""      # key in widgets.NODE_IDS and widgets.MOTION_NODES
    TITLE = ""

    @classmethod
    def define_schema(cls):
        setting = load_spec().setting(widgets.MOTION_NODES[cls.NODE_KEY])
        return io.Schema(
            node_id=widgets.NODE_IDS[cls.NODE_KEY],
            display_name=cls.TITLE,
            category=widgets.CATEGORY,
            description=f"Pick a {setting.input.replace('_', ' ')} for a generator's motion input.",
            inputs=[to_input(w) for w in widgets.motion_node_widgets(cls.NODE_KEY)],
            outputs=[Motion.Output("motion", display_name="motion",
                                   tooltip="Connect to a PixVerse generator's motion input.")],
        )

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        name = widgets.MOTION_NODES[cls.NODE_KEY]
        value, values = kw.get(name), load_spec().setting(name).values
        return True if value in values else str(PixVerseInputError(name, value, list(values)))

    @classmethod
    def execute(cls, **kw) -> io.NodeOutput:
        name = widgets.MOTION_NODES[cls.NODE_KEY]
        return io.NodeOutput(widgets.motion_value(**{name: kw[name]}))


class PixVerseEffect(_MotionNode):
    NODE_KEY, TITLE = "effect", "PixVerse Effect"


class PixVerseCamera(_MotionNode):
    NODE_KEY, TITLE = "camera", "PixVerse Camera"


class PixVerseRecover(_VideoResultNode):
    """A task submitted earlier (cancelled, timed out, ComfyUI restarted) → the generators' outputs."""

    @classmethod
    def define_schema(cls):
        return cls._schema("recover", "PixVerse Recover (Runware)",
                           "Fetch the video of an earlier PixVerse task by its taskUUID: no new task, no new "
                           "charge. Served from the pack's job ledger when the video is already here.",
                           widgets.recover_widgets())

    @classmethod
    def validate_inputs(cls, task_uuid) -> bool | str:
        try:
            widgets.parse_task_uuid(task_uuid)
        except PixVerseInputError as exc:
            return str(exc)
        return True

    @classmethod
    async def execute(cls, task_uuid) -> io.NodeOutput:
        uuid = widgets.parse_task_uuid(task_uuid)
        return await _run(cls, lambda client, opts: pipeline.recover(client, uuid, opts),
                          local=lambda opts: pipeline.recover_local(uuid, opts))


NODE_CLASSES = [PixVerseTextToVideo, PixVerseImageToVideo, PixVerseLipSync, PixVerseEffect, PixVerseCamera,
                PixVerseRecover, PixVerseModify]
