"""The PixVerse nodes (ComfyUI V3). Thin: read inputs, call the pipeline, report progress.

Each node's id, title and description come from the table of node kinds (nodes/spec/kinds.py), its
inputs from nodes/widgets.py; queue-time validation builds the draft request (nodes/draft.py)."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Optional

from comfy_api.latest import io

from .. import layouts, pipeline, widgets
from ..settings import read_comfy_settings
from ..draft import draft
from ..errors import PixVerseError, PixVerseInputError, RunwareInterrupted
from ..spec import load_spec
from ..spec.kinds import BY_KIND, MOTION_NODES
from .runtime import NodeRuntime, user_dir, wiring_fingerprint
from .schema import Motion, generator_outputs, to_input

log = logging.getLogger("pixverse")


def forced_layout() -> Optional[str]:
    """The request layout a run is forced to (RUNWARE_PIXVERSE_LAYOUT, else the ComfyUI setting), or None."""
    return layouts.override(read_comfy_settings(user_dir()))


def validate_draft(kind: str, values: dict) -> bool | str:
    """ComfyUI's validate_inputs for a node that sends a task: True, or why the node refuses its values."""
    try:
        draft(kind, values, layout=forced_layout())
    except PixVerseInputError as exc:
        return str(exc)
    return True


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

    KIND = ""  # its row in nodes/spec/kinds.py

    @classmethod
    def fingerprint_inputs(cls, **kw):
        return wiring_fingerprint()

    @classmethod
    def define_schema(cls) -> io.Schema:
        kind = BY_KIND[cls.KIND]
        inputs = widgets.widgets_for(cls.KIND)
        return io.Schema(
            node_id=kind.node_id, display_name=kind.display_name, category=widgets.CATEGORY,
            description=kind.description, inputs=[to_input(w) for w in inputs],
            outputs=generator_outputs({w.name for w in inputs}),
            hidden=[io.Hidden.unique_id, io.Hidden.prompt])

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        return validate_draft(cls.KIND, kw)


class PixVerseTextToVideo(_VideoResultNode):
    KIND = "text_to_video"

    @classmethod
    async def execute(cls, **kw) -> io.NodeOutput:
        choices = widgets.generation_choices(kw)
        return await _run(cls, lambda client, opts: pipeline.text_to_video(client, choices, opts))


class PixVerseImageToVideo(_VideoResultNode):
    KIND = "image_to_video"

    @classmethod
    async def execute(cls, first_frame, last_frame=None, **kw) -> io.NodeOutput:
        choices = widgets.generation_choices(kw)
        return await _run(cls, lambda client, opts: pipeline.image_to_video(client, choices, first_frame,
                                                                            last_frame, opts))


class PixVerseLipSync(_VideoResultNode):
    KIND = "lipsync"

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
    KIND = "modify"

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
    """A node that picks one motion setting (its kind's `motion_setting`) for a generator's motion input."""

    KIND = ""  # its row in nodes/spec/kinds.py

    @classmethod
    def define_schema(cls):
        kind = BY_KIND[cls.KIND]
        return io.Schema(
            node_id=kind.node_id,
            display_name=kind.display_name,
            category=widgets.CATEGORY,
            description=kind.description,
            inputs=[to_input(w) for w in widgets.widgets_for(cls.KIND)],
            outputs=[Motion.Output("motion", display_name="motion",
                                   tooltip="Connect to a PixVerse generator's motion input.")],
        )

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        name = MOTION_NODES[cls.KIND]
        value, values = kw.get(name), load_spec().setting(name).values
        return True if value in values else str(PixVerseInputError(name, value, list(values)))

    @classmethod
    def execute(cls, **kw) -> io.NodeOutput:
        name = MOTION_NODES[cls.KIND]
        return io.NodeOutput(widgets.motion_value(**{name: kw[name]}))


class PixVerseEffect(_MotionNode):
    KIND = "effect"


class PixVerseCamera(_MotionNode):
    KIND = "camera"


class PixVerseRecover(_VideoResultNode):
    """A task submitted earlier (cancelled, timed out, ComfyUI restarted) → the generators' outputs."""

    KIND = "recover"

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
