"""User choices → Runware `videoInference` task JSON, validated against the capability spec.

One builder per workflow (text-to-video, image-to-video, lipsync). Each refuses, before any
network call, every choice Runware would refuse, with a `PixVerseInputError` that names the
parameter (the node input's name and the wire field), the value and what is allowed. Nothing is
rewritten silently: what the provider will change on its own (fast → normal motion) comes back
as a notice.

The builders return the task exactly as Runware's PixVerse page shows it; transport fields
(`deliveryMethod`, `includeCost`) are the client's business.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import PixVerseInputError
from .spec import CapabilitySpec, ModelSpec, load_spec

AUTO = "auto"
NONE = "none"


# -- wire models -----------------------------------------------------------------------------

class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PixVerseSettings(_Wire):
    style: Optional[str] = None
    effect: Optional[str] = None
    cameraMovement: Optional[str] = None
    motionMode: Optional[str] = None
    soundEffectSwitch: Optional[bool] = None
    soundEffectContent: Optional[str] = None


class ProviderSettings(_Wire):
    pixverse: PixVerseSettings


class FrameImage(_Wire):
    inputImage: str
    frame: Literal["first", "last"]


class Speech(_Wire):
    voice: str
    text: str


class VideoInferenceTask(_Wire):
    taskType: Literal["videoInference"] = "videoInference"
    taskUUID: str
    model: str
    positivePrompt: Optional[str] = None
    negativePrompt: Optional[str] = None
    frameImages: Optional[list[FrameImage]] = None
    width: Optional[int] = None
    height: Optional[int] = None
    duration: Optional[int] = None
    fps: Optional[int] = None
    seed: Optional[int] = None
    referenceVideos: Optional[list[str]] = None
    inputAudios: Optional[list[str]] = None
    speech: Optional[Speech] = None
    providerSettings: Optional[ProviderSettings] = None

    def to_wire(self, spec: CapabilitySpec) -> dict[str, Any]:
        task = self.model_dump(exclude_none=True)
        if self.providerSettings is not None and not task["providerSettings"]["pixverse"]:
            del task["providerSettings"]
        if "frameImages" in task and spec.wire.frame_images_layout == "inputs_image":
            # Runware's newer layout: inputs.frameImages[{image, frame}]. One switch, here.
            frames = task.pop("frameImages")
            task["inputs"] = {"frameImages": [{"image": f["inputImage"], "frame": f["frame"]} for f in frames]}
        return task


@dataclass
class BuiltTask:
    """A validated task, plus what the user should be told about it."""

    task: dict[str, Any]
    model: ModelSpec
    notices: list[str] = field(default_factory=list)

    @property
    def task_uuid(self) -> str:
        return self.task["taskUUID"]


# -- user choices ----------------------------------------------------------------------------

class GenerationChoices(BaseModel):
    """What a user picks for text-to-video or image-to-video. Names match the node inputs.

    Size is either `width`+`height`, or `resolution`+`aspect_ratio` (aspect_ratio "auto" picks
    the listed size nearest to the first frame). `None`/"none"/"" mean "not set" and the field is
    left out of the request (Runware applies its default).
    """

    model_config = ConfigDict(extra="forbid")

    model: str
    prompt: str
    negative_prompt: str = ""
    width: Optional[int] = None
    height: Optional[int] = None
    resolution: Optional[str] = None
    aspect_ratio: Optional[str] = None
    duration: Optional[int] = None
    fps: Optional[int] = None
    seed: Optional[int] = None
    style: Optional[str] = None
    effect: Optional[str] = None
    camera_movement: Optional[str] = None
    motion_mode: Optional[str] = None
    sound_effects: bool = False
    sound_effect_content: str = ""

    def __init__(self, **data: Any):
        # The Python API's callers build this directly: a wrong type (a NaN seed, a bytes prompt) is
        # a PixVerseInputError naming the field, like every other refused choice, not pydantic's error.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _input_error(exc) from None


def _input_error(exc: ValidationError) -> PixVerseInputError:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err.get("loc") else "?"
    return PixVerseInputError(name, err.get("input"), reason=f"wrong type or value ({err.get('msg', 'invalid')})")


WIRE_NAMES = {
    "model": "model",
    "prompt": "positivePrompt",
    "negative_prompt": "negativePrompt",
    "width": "width",
    "height": "height",
    "resolution": "width/height",
    "aspect_ratio": "width/height",
    "duration": "duration",
    "fps": "fps",
    "seed": "seed",
    "style": "providerSettings.pixverse.style",
    "effect": "providerSettings.pixverse.effect",
    "camera_movement": "providerSettings.pixverse.cameraMovement",
    "motion_mode": "providerSettings.pixverse.motionMode",
    "sound_effects": "providerSettings.pixverse.soundEffectSwitch",
    "sound_effect_content": "providerSettings.pixverse.soundEffectContent",
    "first_frame": "frameImages[0].inputImage",
    "last_frame": "frameImages[1].inputImage",
    "video": "referenceVideos",
    "audio": "inputAudios",
    "speech_text": "speech.text",
    "voice": "speech.voice",
}

# provider-setting wire key → node input name
SETTING_INPUTS = {
    "style": "style",
    "effect": "effect",
    "cameraMovement": "camera_movement",
    "motionMode": "motion_mode",
    "soundEffectSwitch": "sound_effects",
    "soundEffectContent": "sound_effect_content",
}


def _refuse(parameter: str, value: Any, allowed: Any = None, reason: str = "") -> PixVerseInputError:
    return PixVerseInputError(parameter, value, allowed, reason, wire_name=WIRE_NAMES.get(parameter))


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ("", NONE))


def new_task_uuid() -> str:
    return str(uuid.uuid4())


# -- checks ----------------------------------------------------------------------------------

def resolve_model(spec: CapabilitySpec, ident: str, workflow: str) -> ModelSpec:
    allowed = [m.air for m in spec.models if workflow in m.workflows]
    try:
        model = spec.model(ident)
    except KeyError:
        raise _refuse("model", ident, allowed, "unknown model") from None
    if workflow not in model.workflows:
        raise _refuse("model", ident, allowed, f"{model.name} does not do {workflow}")
    return model


def _check_text(spec: CapabilitySpec, parameter: str, text: Any, limit_name: Optional[str] = None) -> str:
    limit = spec.text_limits[limit_name or parameter]
    if not isinstance(text, str):
        raise _refuse(parameter, text, f"text of {limit.min}-{limit.max} characters", "must be text")
    if len(text) < limit.min or len(text) > limit.max:
        raise _refuse(parameter, text, f"{limit.min}-{limit.max} characters",
                      f"has {len(text)} characters")
    if not text.strip():
        raise _refuse(parameter, text, f"{limit.min}-{limit.max} characters", "is only white space")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse(parameter, text, "text", f"holds a character that cannot be sent (position {exc.start}: "
                      "a broken surrogate pair)") from None
    return text


def _check_int(parameter: str, value: Any, allowed: Sequence[int]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise _refuse(parameter, value, list(allowed), "must be a whole number")
    if int(value) not in allowed:
        raise _refuse(parameter, value, list(allowed))
    return int(value)


def _check_setting(spec: CapabilitySpec, model: ModelSpec, wire_key: str, value: Any) -> Optional[str]:
    """An enumerated provider setting: unset → None; else must be listed and allowed for the model."""
    parameter = SETTING_INPUTS[wire_key]
    if _unset(value):
        return None
    choice = spec.enum(wire_key)
    if value not in choice.values:
        raise _refuse(parameter, value, list(choice.values))
    if not model.supports(wire_key):
        takers = [m.air for m in spec.generators if m.supports(wire_key)]
        raise _refuse(parameter, value, f"only on {', '.join(takers)}",
                      f"{model.name} ({model.air}) does not take {wire_key}")
    return value


def _resolve_size(spec: CapabilitySpec, model: ModelSpec, c: GenerationChoices,
                  first_frame_size: Optional[tuple[int, int]], notices: list[str]) -> tuple[int, int]:
    if c.width is not None or c.height is not None:
        if c.resolution is not None or c.aspect_ratio is not None:
            raise _refuse("width", c.width, "either width+height or resolution+aspect_ratio",
                          "give the size one way, not both")
        size = (c.width, c.height)
        if size not in model.all_sizes():
            listed = [f"{w}x{h}" for w, h in model.all_sizes()]
            raise _refuse("width", f"{c.width}x{c.height}", listed,
                          f"{c.width}x{c.height} is not a size {model.name} lists")
        return size
    gd = spec.generation_defaults
    resolution = c.resolution or gd.resolution_default
    if resolution not in model.sizes:
        raise _refuse("resolution", resolution, list(model.resolutions))
    aspect = c.aspect_ratio or gd.aspect_ratio_default
    if aspect == AUTO:
        if first_frame_size is None:
            raise _refuse("aspect_ratio", aspect, list(model.aspect_ratios),
                          "auto needs a first frame to measure")
        aspect = model.nearest_aspect_ratio(resolution, *first_frame_size)
        w, h = model.sizes[resolution][aspect]
        notices.append(f"aspect_ratio auto: {aspect} ({w}x{h}), nearest to the first frame's "
                       f"{first_frame_size[0]}x{first_frame_size[1]}")
    size = model.size(resolution, aspect)
    if size is None:
        allowed = list(model.sizes[resolution]) + ([AUTO] if first_frame_size else [])
        raise _refuse("aspect_ratio", aspect, allowed)
    return size


def _generation_task(spec: CapabilitySpec, c: GenerationChoices, workflow: str,
                     frame_images: Optional[list[FrameImage]] = None,
                     first_frame_size: Optional[tuple[int, int]] = None,
                     task_uuid: Optional[str] = None) -> BuiltTask:
    model = resolve_model(spec, c.model, workflow)
    notices: list[str] = []
    prompt = _check_text(spec, "prompt", c.prompt)
    negative = None
    if c.negative_prompt:
        negative = _check_text(spec, "negative_prompt", c.negative_prompt)
    width, height = _resolve_size(spec, model, c, first_frame_size, notices)
    duration = _check_int("duration", model.duration.default if c.duration is None else c.duration,
                          model.duration.values)
    fps = None if c.fps is None else _check_int("fps", c.fps, model.fps.values)
    seed = None
    if c.seed is not None:
        limit = spec.seed
        if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not limit.min <= c.seed <= limit.max:
            raise _refuse("seed", c.seed, f"whole numbers {limit.min}-{limit.max}")
        seed = c.seed

    style = _check_setting(spec, model, "style", c.style)
    effect = _check_setting(spec, model, "effect", c.effect)
    camera = _check_setting(spec, model, "cameraMovement", c.camera_movement)
    picked = {"effect": effect, "cameraMovement": camera}
    for group in spec.mutually_exclusive:
        chosen = [k for k in group if picked.get(k)]
        if len(chosen) > 1:
            first, second = chosen[0], chosen[1]
            raise _refuse(SETTING_INPUTS[second], picked[second], f"one of {' or '.join(group)}, not both",
                          f"cannot be combined with {SETTING_INPUTS[first]} {picked[first]!r}")
    motion = _check_setting(spec, model, "motionMode", c.motion_mode)
    resolution = model.locate_size(width, height)[0]
    if spec.fast_motion_reverts(motion, duration, resolution):
        rule = spec.fast_motion_revert
        why = f"{duration} s" if duration in rule.when_duration else resolution
        notices.append(f"motion_mode {rule.mode!r} will run as {rule.reverts_to!r}: PixVerse does not "
                       f"do {rule.mode} motion at {why}")

    sound_switch = None
    sound_content = None
    if c.sound_effects:
        if not model.supports("soundEffectSwitch"):
            raise _refuse("sound_effects", True, False, f"{model.name} does not take sound")
        sound_switch = True
        if c.sound_effect_content:
            sound_content = _check_text(spec, "sound_effect_content", c.sound_effect_content)
    elif c.sound_effect_content:
        raise _refuse("sound_effect_content", c.sound_effect_content, "empty while sound_effects is off",
                      "is only used with sound_effects on; turn sound_effects on or clear it")

    settings = PixVerseSettings(style=style, effect=effect, cameraMovement=camera, motionMode=motion,
                                soundEffectSwitch=sound_switch, soundEffectContent=sound_content)
    task = VideoInferenceTask(
        taskUUID=task_uuid or new_task_uuid(), model=model.air, positivePrompt=prompt,
        negativePrompt=negative, frameImages=frame_images, width=width, height=height,
        duration=duration, fps=fps, seed=seed, providerSettings=ProviderSettings(pixverse=settings))
    return BuiltTask(task.to_wire(spec), model, notices)


# -- public builders -------------------------------------------------------------------------

def build_text_to_video(choices: GenerationChoices, *, spec: Optional[CapabilitySpec] = None,
                        task_uuid: Optional[str] = None) -> BuiltTask:
    return _generation_task(spec or load_spec(), choices, "text-to-video", task_uuid=task_uuid)


def build_image_to_video(choices: GenerationChoices, first_frame: str, last_frame: Optional[str] = None, *,
                         first_frame_size: Optional[tuple[int, int]] = None,
                         spec: Optional[CapabilitySpec] = None, task_uuid: Optional[str] = None) -> BuiltTask:
    """`first_frame`/`last_frame`: an uploaded imageUUID, a URL or a data URI."""
    spec = spec or load_spec()
    model = resolve_model(spec, choices.model, "image-to-video")
    frames = []
    for name, ref in (("first", first_frame), ("last", last_frame)):
        parameter = f"{name}_frame"
        if ref is None and name == "last":
            continue
        if not isinstance(ref, str) or not ref.strip():
            raise _refuse(parameter, ref, "an uploaded image", "missing")
        if name not in model.frame_images:
            raise _refuse(parameter, ref, list(model.frame_images), f"{model.name} does not take a {name} frame")
        frames.append(FrameImage(inputImage=ref, frame=name))
    return _generation_task(spec, choices, "image-to-video", frame_images=frames,
                            first_frame_size=first_frame_size, task_uuid=task_uuid)


def build_lipsync(*, video: str, audio: Optional[str] = None, speech_text: Optional[str] = None,
                  voice: Optional[str] = None, model: Optional[str] = None,
                  spec: Optional[CapabilitySpec] = None, task_uuid: Optional[str] = None) -> BuiltTask:
    """`video`/`audio`: uploaded mediaUUIDs. Exactly one of `audio` or `speech_text`."""
    spec = spec or load_spec()
    model_spec = resolve_model(spec, model or spec.lipsync_models[0].air, "video-to-video")
    if not isinstance(video, str) or not video.strip():
        raise _refuse("video", video, "one uploaded video", "missing")
    has_audio = not _unset(audio)
    has_speech = isinstance(speech_text, str) and speech_text != ""
    if has_audio == has_speech:
        raise _refuse("audio", "both" if has_audio else "neither",
                      "exactly one of audio or speech_text (text-to-speech)",
                      "give an audio clip or a speech text, not both" if has_audio
                      else "lipsync needs an audio clip or a speech text")
    speech = None
    if has_speech:
        text = _check_text(spec, "speech_text", speech_text)
        voices = spec.enums.voice
        chosen = voices.default if _unset(voice) else voice
        if chosen not in voices.values:
            raise _refuse("voice", voice, list(voices.values))
        speech = Speech(voice=chosen, text=text)
    task = VideoInferenceTask(taskUUID=task_uuid or new_task_uuid(), model=model_spec.air,
                              referenceVideos=[video], inputAudios=[audio] if has_audio else None,
                              speech=speech)
    return BuiltTask(task.to_wire(spec), model_spec, [])


def expected_output(built: BuiltTask) -> dict[str, Any]:
    """Width, height, fps and duration the result should have (generation tasks)."""
    t = built.task
    fps = t.get("fps", built.model.fps.default if built.model.fps else None)
    return {"width": t.get("width"), "height": t.get("height"), "fps": fps, "duration": t.get("duration")}
