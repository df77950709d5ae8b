"""Widget definitions (nodes/requests/widgets.py) → ComfyUI V3 io inputs. Imports ComfyUI."""
from __future__ import annotations

from comfy_api.latest import io

from ..requests.widgets import GENERATOR_OUTPUTS, MOTION_TYPE, Widget

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


def generator_outputs(input_names: set[str], as_lists: bool = False) -> list:
    """The generators' five outputs. V3 refuses an input and an output with one id, so an output
    whose name is also an input (fps, or LipSync's video/frames/audio) gets id "<name>_out" and
    keeps its name as display_name; saved workflows link output slots, not ids. `as_lists`: a node
    with `count` gives one item per video (ComfyUI output lists: what follows runs once per video)."""
    tooltips = {
        "video": (io.Video, "The generated video (MP4 kept in output/pixverse)."),
        "frames": (io.Image, "The video's frames as an IMAGE batch. Decoded only when this output is "
                             "connected (8 s of 1080p is 4.8 GB); unconnected it is an empty batch [0, H, W, 3]."),
        "audio": (io.Audio, "The video's sound; silence of its length when it has none. Decoded only when "
                            "this output is connected; unconnected it holds 0 samples."),
        "fps": (io.Float, "Frames per second of the video."),
        "info": (io.String, "JSON: taskUUID, videoUUID, videoURL, seed, cost, model, notices."),
    }
    outputs = []
    for name in GENERATOR_OUTPUTS:
        kind, tooltip = tooltips[name]
        output_id = f"{name}_out" if name in input_names else name
        outputs.append(kind.Output(output_id, display_name=name, tooltip=tooltip + (" One per video." if as_lists else ""),
                                   is_output_list=as_lists))
    return outputs
