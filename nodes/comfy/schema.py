"""Widget definitions (nodes/widgets.py) → ComfyUI V3 io inputs. Imports ComfyUI."""
from __future__ import annotations

from comfy_api.latest import io

from ..widgets import MOTION_TYPE, Widget

Motion = io.Custom(MOTION_TYPE)


def to_input(w: Widget):
    common = {"tooltip": w.tooltip, "optional": w.optional}
    if w.kind == "combo":
        return io.Combo.Input(w.name, options=list(w.options), default=w.default, **common)
    if w.kind in ("string", "text"):
        return io.String.Input(w.name, multiline=w.kind == "text", default=w.default or "", **common)
    if w.kind == "int":
        return io.Int.Input(w.name, default=w.default, min=int(w.min), max=int(w.max),
                            control_after_generate=w.control_after_generate or None, **common)
    if w.kind == "float":
        return io.Float.Input(w.name, default=w.default, min=w.min, max=w.max, step=w.step, **common)
    if w.kind == "boolean":
        return io.Boolean.Input(w.name, default=w.default, **common)
    if w.kind == "IMAGE":
        return io.Image.Input(w.name, **common)
    if w.kind == "AUDIO":
        return io.Audio.Input(w.name, **common)
    if w.kind == "VIDEO":
        return io.Video.Input(w.name, **common)
    if w.kind == "motion":
        return Motion.Input(w.name, **common)
    raise ValueError(f"unknown widget kind {w.kind!r}")


def generator_outputs(video_id: str = "video") -> list:
    return [
        io.Video.Output(video_id, display_name="video", tooltip="The generated video (MP4 kept in output/pixverse)."),
        io.Image.Output("frames", tooltip="The video's frames as an IMAGE batch."),
        io.Audio.Output("audio", tooltip="The video's sound; silence of its length when it has none."),
        io.Float.Output("fps", tooltip="Frames per second of the video."),
        io.String.Output("info", tooltip="JSON: taskUUID, videoUUID, videoURL, seed, cost, model, notices."),
    ]
