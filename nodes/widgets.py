"""The node inputs as data, and widget values → core calls. No ComfyUI import here.

Input names and node ids are public API (saved workflows store them); every option list comes
from the capability spec. `nodes/comfy/` turns these definitions into ComfyUI V3 schema objects,
so the mapping below is testable without ComfyUI.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .requests import AUTO, NONE, GenerationChoices
from .spec import CapabilitySpec, load_spec

CATEGORY = "Runware/PixVerse"
MOTION_TYPE = "PIXVERSE_MOTION"

NODE_IDS = {
    "text_to_video": "RunwarePixVerseTextToVideo",
    "image_to_video": "RunwarePixVerseImageToVideo",
    "lipsync": "RunwarePixVerseLipSync",
    "effect": "RunwarePixVerseEffect",
    "camera": "RunwarePixVerseCamera",
    "recover": "RunwarePixVerseRecover",
}

# Output slots of the three generators, in order. Links in saved workflows point at slot numbers.
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
    extra: dict = field(default_factory=dict)


def model_options(spec: CapabilitySpec, workflow: str) -> tuple[str, ...]:
    return tuple(m.label for m in spec.models if workflow in m.workflows)


def generation_widgets(spec: Optional[CapabilitySpec] = None, *, image_to_video: bool = False) -> list[Widget]:
    spec = spec or load_spec()
    gd = spec.generation_defaults
    workflow = "image-to-video" if image_to_video else "text-to-video"
    models = model_options(spec, workflow)
    lim = spec.text_limits
    aspects = ((AUTO,) if image_to_video else ()) + spec.all_aspect_ratios()
    camera_models = ", ".join(m.name for m in spec.generators if m.supports("cameraMovement"))
    widgets = []
    if image_to_video:
        widgets += [
            Widget("first_frame", "IMAGE", "The video's first frame. A batch uses its first image. Fitted into "
                   f"{spec.input_image.min_side}-{spec.input_image.max_side} px per side, keeping the aspect."),
            Widget("last_frame", "IMAGE", "Optional last frame: the video moves from the first frame to this one.",
                   optional=True),
        ]
    widgets += [
        Widget("model", "combo", "PixVerse model (Runware AIR id in brackets).", models, models[-1]),
        Widget("prompt", "text", f"What happens in the video ({lim['prompt'].min}-{lim['prompt'].max} characters).",
               default=""),
        Widget("negative_prompt", "text", "What to avoid (optional; "
               f"{lim['negative_prompt'].min}-{lim['negative_prompt'].max} characters when set).", default=""),
        Widget("aspect_ratio", "combo",
               ("auto picks the listed size nearest to the first frame's shape. " if image_to_video else "")
               + "Width:height of the video; with the resolution it gives one of the model's listed sizes.",
               aspects, AUTO if image_to_video else gd.aspect_ratio_default),
        Widget("resolution", "combo", "Resolution tier (height of a landscape video).",
               spec.all_resolutions(), gd.resolution_default),
        Widget("duration", "combo", "Length in seconds.", gd.duration.values, gd.duration.default),
        Widget("fps", "combo", "Frames per second.", gd.fps.values, gd.fps.default),
        Widget("seed", "int", "Seed; the same seed and settings give a similar video.", default=0,
               min=spec.seed.min, max=spec.seed.max, control_after_generate=True),
        Widget("style", "combo", "Visual style; none leaves it to the prompt.",
               (NONE,) + spec.enums.style.values, NONE),
        Widget("motion_mode", "combo",
               f"{spec.fast_motion_revert.mode} motion is turned into {spec.fast_motion_revert.reverts_to} "
               f"by PixVerse at {', '.join(f'{d} s' for d in spec.fast_motion_revert.when_duration)} or "
               f"{', '.join(spec.fast_motion_revert.when_resolution)}.",
               spec.enums.motionMode.values, spec.enums.motionMode.default),
        Widget("sound_effects", "boolean", "Generate background sound or music with the video.", default=False),
        Widget("sound_effect_content", "string",
               f"Optional description of the sound, with sound_effects on ({lim['sound_effect_content'].min}-"
               f"{lim['sound_effect_content'].max} characters).", default=""),
        Widget("motion", "motion", "Optional effect (PixVerse Effect node) or camera movement (PixVerse Camera "
               f"node; {camera_models} only). One motion per video.", optional=True),
    ]
    return widgets


def lipsync_widgets(spec: Optional[CapabilitySpec] = None) -> list[Widget]:
    spec = spec or load_spec()
    lim = spec.lipsync_limits
    voices = spec.enums.voice
    models = model_options(spec, "video-to-video")
    return [
        Widget("model", "combo", "LipSync model.", models, models[0]),
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


def effect_widgets(spec: Optional[CapabilitySpec] = None) -> list[Widget]:
    spec = spec or load_spec()
    values = spec.enums.effect.values
    return [Widget("effect", "combo", "A PixVerse effect template, fed to a generator's motion input.",
                   values, values[0])]


def recover_widgets() -> list[Widget]:
    return [Widget("task_uuid", "string",
                   "taskUUID of an earlier PixVerse run (a cancelled, timed-out or crashed one): shown in its "
                   "progress text, its info output and its error message. Fetches that task's video without "
                   "submitting a new task; served from this pack's job ledger when the video is already here.",
                   default="")]


def parse_task_uuid(value: Any) -> str:
    """The Recover node's input → a canonical taskUUID, or a PixVerseInputError."""
    import uuid

    from .errors import PixVerseInputError
    text = value.strip() if isinstance(value, str) else value
    try:
        return str(uuid.UUID(text))
    except (TypeError, ValueError, AttributeError):
        raise PixVerseInputError("task_uuid", value, "a taskUUID such as 6ba7b810-9dad-41d1-80b4-00c04fd430c8",
                                 "not a taskUUID") from None


def camera_widgets(spec: Optional[CapabilitySpec] = None) -> list[Widget]:
    spec = spec or load_spec()
    values = spec.enums.cameraMovement.values
    takers = ", ".join(m.name for m in spec.generators if m.supports("cameraMovement"))
    return [Widget("camera_movement", "combo", f"A camera movement ({takers} only), fed to a generator's "
                   "motion input.", values, values[0])]


# -- widget values → core ----------------------------------------------------------------------

def motion_value(effect: Optional[str] = None, camera_movement: Optional[str] = None) -> dict:
    """What flows through a PIXVERSE_MOTION link."""
    return {"effect": effect} if effect is not None else {"camera_movement": camera_movement}


def generation_choices(values: dict[str, Any]) -> GenerationChoices:
    """Node widget values (+ the motion link) → the builders' GenerationChoices.

    A value of the wrong type (from a hand-edited or API-format workflow) is a PixVerseInputError
    naming the input, like every other refused choice."""
    from pydantic import ValidationError

    from .errors import PixVerseInputError

    motion = values.get("motion") or {}
    if not isinstance(motion, dict) or set(motion) - {"effect", "camera_movement"}:
        raise PixVerseInputError("motion", motion, "the output of a PixVerse Effect or Camera node")
    if values.get("model") is None:
        raise PixVerseInputError("model", None, "one of the listed models", "missing")
    try:
        return _generation_choices(values, motion)
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = str(err["loc"][0]) if err.get("loc") else "?"
        name = {"effect": "motion", "camera_movement": "motion"}.get(field_name, field_name)
        raise PixVerseInputError(name, err.get("input"), reason=f"wrong type ({err.get('msg', 'invalid')})") from None


def _generation_choices(values: dict[str, Any], motion: dict) -> GenerationChoices:
    seed = values.get("seed")
    return GenerationChoices(
        model=values["model"],
        prompt=values.get("prompt", ""),
        negative_prompt=values.get("negative_prompt") or "",
        resolution=values.get("resolution"),
        aspect_ratio=values.get("aspect_ratio"),
        duration=values.get("duration"),
        fps=values.get("fps"),
        seed=None if seed is None else seed,
        style=values.get("style"),
        effect=motion.get("effect"),
        camera_movement=motion.get("camera_movement"),
        motion_mode=values.get("motion_mode"),
        sound_effects=bool(values.get("sound_effects", False)),
        sound_effect_content=values.get("sound_effect_content") or "",
    )


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
