"""The node inputs as data, and widget values → core calls. No ComfyUI import here.

Input names and their order are public API (saved workflows store widget values by position; new
inputs are only ever appended), as are the node ids of nodes/spec/kinds.py; every option list comes
from the capability spec. `nodes/comfy/` turns these definitions into ComfyUI V3 schema objects, so
the mapping below is testable without ComfyUI.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from ..errors import PixVerseInputError
from ..spec import AUTO, CapabilitySpec, Setting, load_spec
from ..spec.kinds import COUNTED, MOTION_NODES, workflow_of
from ..spec.options import fps_unset_value, node_settings
from .tasks import GenerationChoices

CATEGORY = "Runware/PixVerse"
MOTION_TYPE = "PIXVERSE_MOTION"

# MOTION_NODES (motion node kind → the setting it picks) comes from the table of node kinds,
# nodes/spec/kinds.py, which also names each kind's ComfyUI node id (NODE_IDS).

# `count` on the nodes of COUNTED kinds: that many videos at once from the same inputs.
MAX_COUNT = 8
# The public order of each node kind's inputs (input_order.json): saved workflows store widget values
# by position, so an input is only ever appended. An input the file does not list yet (a setting
# added to the spec later) comes after every listed one, in its definition order: one spec edit, and
# `count`, appended after the settings that existed when it came, keeps its place.
PUBLIC_ORDER: dict[str, list[str]] = json.loads(Path(__file__).with_name("input_order.json").read_text("utf-8"))

# Output slots of the video nodes (the generators and Recover), in order. Links in saved workflows
# point at slot numbers.
GENERATOR_OUTPUTS = ("video", "frames", "audio", "fps", "info")


@dataclass(frozen=True)
class Widget:
    """One node input. kind: combo | string | text | int | float | boolean | IMAGE | AUDIO | VIDEO | motion."""

    name: str
    kind: str
    tooltip: str
    options: tuple = ()
    default: Any = None
    optional: bool = False
    min: Optional[float] = None
    max: Optional[float] = None
    step: Optional[float] = None
    control_after_generate: bool = False


def model_options(spec: CapabilitySpec, workflow: str) -> tuple[str, ...]:
    return tuple(m.label for m in spec.models_for(workflow))


def _union(lists) -> tuple:
    seen: dict = {}
    for values in lists:
        seen.update(dict.fromkeys(values))
    return tuple(seen)


def setting_widget(setting: Setting, spec: CapabilitySpec, workflow: str) -> Widget:
    """A setting's widget, from its description in the spec. Optional in the schema, like `count`: the
    frontend lays required widgets before optional ones, so a setting added later lands after `count`
    (inputs are only ever appended), and a prompt without it leaves the setting out of the request."""
    takers = [m.name for m in spec.models_for(workflow) if m.supports(setting.input)]
    where = "" if len(takers) == len(spec.models_for(workflow)) else f" ({', '.join(takers)} only.)"
    tooltip = setting.tooltip + where
    if setting.kind == "enum":
        return Widget(setting.input, "combo", tooltip, setting.options, setting.widget_default, optional=True)
    if setting.kind == "boolean":
        return Widget(setting.input, "boolean", tooltip, default=setting.widget_default, optional=True)
    if setting.kind == "text":
        return Widget(setting.input, "string", f"{tooltip} ({setting.min}-{setting.max} characters.)",
                      default=setting.widget_default, optional=True)
    return Widget(setting.input, "int", tooltip, default=setting.widget_default, min=setting.min, max=setting.max,
                  optional=True)


def motion_widget(spec: CapabilitySpec, workflow: str) -> Optional[Widget]:
    """The motion input, when some model of `workflow` takes a motion setting."""
    parts = []
    for node_key, setting_input in MOTION_NODES.items():
        takers = [m.name for m in spec.models_for(workflow) if m.supports(setting_input)]
        if takers:
            parts.append(f"{spec.setting(setting_input).input.replace('_', ' ')} (PixVerse "
                         f"{node_key.capitalize()} node; {', '.join(takers)})")
    if not parts:
        return None
    return Widget("motion", "motion", "Optional: " + " or ".join(parts) + ". One motion per video.", optional=True)


def generation_widgets(spec: Optional[CapabilitySpec] = None, *, image_to_video: bool = False) -> list[Widget]:
    """The generators' inputs. Order is public (saved workflows store widget values by position):
    new inputs are only ever appended, which the spec's settings order and tests keep true."""
    spec = spec or load_spec()
    kind = "image_to_video" if image_to_video else "text_to_video"
    workflow = workflow_of(kind)
    models = spec.models_for(workflow)
    default = spec.default_model(workflow)
    lim = spec.text_limits
    aspects = ((AUTO,) if image_to_video else ()) + _union(m.aspect_ratios for m in models)
    durations = _union(m.durations.all for m in models)
    fps = _union([fps_unset_value(spec)] if m.fps is None else m.fps.all for m in models)
    widgets = []
    if image_to_video:
        widgets += [
            Widget("first_frame", "IMAGE", "The video's first frame. A batch uses its first image. Fitted into "
                   f"{spec.input_image.min_side}-{spec.input_image.max_side} px per side, keeping the aspect."),
            Widget("last_frame", "IMAGE", "Optional last frame: the video moves from the first frame to this one.",
                   optional=True),
        ]
    widgets += [
        Widget("model", "combo", "PixVerse model (Runware AIR id in brackets).", model_options(spec, workflow),
               default.label),
        Widget("prompt", "text", f"What happens in the video ({lim['prompt'].min}-{lim['prompt'].max} characters).",
               default=""),
        Widget("negative_prompt", "text", "What to avoid (optional; "
               f"{lim['negative_prompt'].min}-{lim['negative_prompt'].max} characters when set).", default=""),
        Widget("aspect_ratio", "combo",
               ("auto picks the listed size nearest to the first frame's shape. " if image_to_video else "")
               + "Width:height of the video; with the resolution it gives one of the model's listed sizes.",
               aspects, AUTO if image_to_video else default.aspect_ratio_default),
        Widget("resolution", "combo", "Resolution tier (height of a landscape video).",
               _union(m.resolutions for m in models), default.resolution_default),
        Widget("duration", "combo", "Length in seconds (each model offers its own lengths).",
               tuple(sorted(durations)), default.durations.default),
        Widget("fps", "combo", "Frames per second (models without an fps choice ignore it: their videos come "
               "at their own rate).", tuple(sorted(fps)),
               default.fps.default if default.fps else fps_unset_value(spec)),
        Widget("seed", "int", "Seed; the same seed and settings give a similar video.", default=0,
               min=spec.seed.min, max=spec.seed.max, control_after_generate=True),
    ]
    widgets += [setting_widget(s, spec, workflow) for s in node_settings(spec, kind)]
    motion = motion_widget(spec, workflow)
    if motion is not None:
        widgets.append(motion)
    return widgets


def lipsync_widgets(spec: Optional[CapabilitySpec] = None) -> list[Widget]:
    spec = spec or load_spec()
    lim = spec.lipsync_limits
    voices = spec.voices
    return [
        Widget("model", "combo", "LipSync model.", model_options(spec, "video-to-video"),
               spec.default_model("video-to-video").label),
        Widget("video", "VIDEO", f"Reference video (at most {lim.video_max_seconds:g} s). Connect this or frames.",
               optional=True),
        Widget("frames", "IMAGE", "Reference frames instead of a video; encoded to MP4 at frames_fps.", optional=True),
        Widget("frames_fps", "float", "Frame rate of the frames input.", default=24.0, min=1.0, max=120.0, step=1.0),
        Widget("audio", "AUDIO", f"Speech to lip-sync (at most {lim.audio_max_seconds:g} s). Connect this or "
               "write a speech_text.", optional=True),
        Widget("speech_text", "text", "Text to speak instead of audio (text-to-speech, at most "
               f"{spec.text_limits['speech_text'].max} characters). Leave empty when audio is connected.",
               default=""),
        Widget("voice", "combo", "Voice for speech_text; auto lets PixVerse choose.", voices.values, voices.default),
    ]


def modify_widgets(spec: Optional[CapabilitySpec] = None) -> list[Widget]:
    """PixVerse Modify: a source video (or frames) + a prompt, optionally a reference image."""
    spec = spec or load_spec()
    models = spec.models_for("modify")
    default = spec.default_model("modify")
    lim = spec.lipsync_limits
    return [
        Widget("model", "combo", "PixVerse Modify model.", model_options(spec, "modify"), default.label),
        Widget("video", "VIDEO", f"The video to change (at most {lim.video_max_seconds:g} s). Connect this or frames.",
               optional=True),
        Widget("frames", "IMAGE", "Frames to change instead of a video; encoded to MP4 at frames_fps.", optional=True),
        Widget("frames_fps", "float", "Frame rate of the frames input.", default=24.0, min=1.0, max=120.0, step=1.0),
        Widget("reference_image", "IMAGE", "Optional: an image the change should follow (a look, an object, "
               "a character).", optional=True),
        Widget("prompt", "text", "What to change in the video ("
               f"{spec.text_limits['prompt'].min}-{spec.text_limits['prompt'].max} characters).", default=""),
        Widget("resolution", "combo", "Resolution tier of the result; it keeps the source video's shape and length.",
               _union(m.resolutions for m in models), default.resolution_default),
        Widget("seed", "int", "Seed; the same seed and settings give a similar video.", default=0,
               min=spec.seed.min, max=spec.seed.max, control_after_generate=True),
        *[setting_widget(s, spec, "modify") for s in node_settings(spec, "modify")],
    ]


def modify_choices(values: dict[str, Any], spec: Optional[CapabilitySpec] = None) -> GenerationChoices:
    """The Modify node's widget values → the builder's choices."""
    spec = spec or load_spec()
    return generation_choices({k: v for k, v in values.items()
                               if k in {"model", "prompt", "resolution", "seed"} | {s.input for s in spec.settings}},
                              spec)


def motion_node_widgets(node_key: str, spec: Optional[CapabilitySpec] = None) -> list[Widget]:
    """The one widget of a motion node (Effect, Camera): its setting's values."""
    spec = spec or load_spec()
    setting = spec.setting(MOTION_NODES[node_key])
    takers = ", ".join(m.name for m in spec.models_taking(setting.input))
    return [Widget(setting.input, "combo", f"{setting.tooltip} ({takers}.)", setting.values, setting.values[0])]


def recover_widgets() -> list[Widget]:
    return [Widget("task_uuid", "string",
                   "taskUUID of an earlier PixVerse run (a cancelled, timed-out or crashed one): shown in its "
                   "progress text, its info output and its error message. Fetches that task's video without "
                   "submitting a new task; served from this pack's job ledger when the video is already here.",
                   default="")]


def count_widget() -> Widget:
    return Widget("count", "int", f"How many videos to make at once from these inputs (1-{MAX_COUNT}), with seeds "
                  "seed, seed+1, …: each is its own task and its own charge. The outputs become lists: Save "
                  "Video and the previews run once per video.", default=1, optional=True, min=1, max=MAX_COUNT)


def _defined(kind: str, spec: Optional[CapabilitySpec]) -> list[Widget]:
    if kind in ("text_to_video", "image_to_video"):
        found = generation_widgets(spec, image_to_video=kind == "image_to_video")
    elif kind == "lipsync":
        found = lipsync_widgets(spec)
    elif kind == "modify":
        found = modify_widgets(spec)
    elif kind in MOTION_NODES:
        found = motion_node_widgets(kind, spec)
    elif kind == "recover":
        found = recover_widgets()
    else:
        raise KeyError(f"unknown node kind {kind!r}")
    return found + ([count_widget()] if kind in COUNTED else [])


def widgets_for(kind: str, spec: Optional[CapabilitySpec] = None) -> list[Widget]:
    """The inputs of a node of `kind` (nodes/spec/kinds.py), in their public order (PUBLIC_ORDER)."""
    found = _defined(kind, spec)
    listed = PUBLIC_ORDER.get(kind, [])
    rank = {name: i for i, name in enumerate(listed)}
    return sorted(found, key=lambda w: (rank.get(w.name, len(listed)), found.index(w)))


def parse_task_uuid(value: Any) -> str:
    """The Recover node's input → a canonical taskUUID, or a PixVerseInputError."""
    text = value.strip() if isinstance(value, str) else value
    try:
        return str(uuid.UUID(text))
    except (TypeError, ValueError, AttributeError):
        raise PixVerseInputError("task_uuid", value, "a taskUUID such as 6ba7b810-9dad-41d1-80b4-00c04fd430c8",
                                 "not a taskUUID") from None


# -- widget values → core ----------------------------------------------------------------------

def motion_value(**picked: Optional[str]) -> dict:
    """What flows through a PIXVERSE_MOTION link: {setting input: value}."""
    return {name: value for name, value in picked.items() if value is not None}


def generation_choices(values: dict[str, Any], spec: Optional[CapabilitySpec] = None) -> GenerationChoices:
    """Node widget values (+ the motion link) → the builders' GenerationChoices.

    A value of the wrong type (from a hand-edited or API-format workflow) is a PixVerseInputError
    naming the input, like every other refused choice."""
    spec = spec or load_spec()
    motion = values.get("motion") or {}
    motion_inputs = {s.input for s in spec.motion_settings()}
    if not isinstance(motion, dict) or set(motion) - motion_inputs:
        raise PixVerseInputError("motion", motion, "the output of a PixVerse Effect or Camera node")
    if values.get("model") is None:
        raise PixVerseInputError("model", None, "one of the listed models", "missing")
    settings = {s.input: values[s.input] for s in spec.settings if s.via is None and s.input in values}
    settings.update(motion)
    seed = values.get("seed")
    try:
        return GenerationChoices(
            model=values["model"], prompt=values.get("prompt", ""),
            negative_prompt=values.get("negative_prompt") or "",
            resolution=values.get("resolution"), aspect_ratio=values.get("aspect_ratio"),
            duration=values.get("duration"), fps=values.get("fps"), seed=None if seed is None else seed,
            settings=settings)
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = str(err["loc"][0]) if err.get("loc") else "?"
        raise PixVerseInputError(field_name, err.get("input"), reason=f"wrong type ({err.get('msg', 'invalid')})") \
            from None


def wired_outputs(prompt: Optional[dict], node_id: Optional[str]) -> Optional[set[str]]:
    """Names of this node's outputs that some node in the API prompt links to; None if unknown."""
    if not prompt or node_id is None:
        return None
    used: set[str] = set()
    for node in prompt.values():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) == str(node_id):
                slot = value[1]
                if isinstance(slot, int) and 0 <= slot < len(GENERATOR_OUTPUTS):
                    used.add(GENERATOR_OUTPUTS[slot])
    return used
