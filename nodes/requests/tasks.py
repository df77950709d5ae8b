"""User choices → Runware `videoInference` task JSON, validated against the capability spec.

One builder per workflow (text-to-video, image-to-video, lipsync, modify). Each refuses, before any
network call, every choice Runware would refuse, with a `PixVerseInputError` that names the
parameter (the node input's name and the wire field), the value and what is allowed. Nothing is
rewritten silently: what the provider will change on its own comes back as a notice.

Settings are written generically from their description in the spec (input name → wire path,
`spec.paths`); what a model offers comes from `spec.options`; where inputs go depends on the request
layout. `nodes/workflows/draft.py` turns a node's widget values into the task these builders make.
Transport fields (`deliveryMethod`, `includeCost`) are the client's business.
"""
from __future__ import annotations

import copy
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import PixVerseInputError
from ..spec import AUTO, CapabilitySpec, Layout, ModelSpec, is_set, load_spec
from ..spec.kinds import workflow_of
from ..spec.options import evaluate, fps_unset_value, offered, unsupported_value
from ..spec.paths import put as _put, rule_context, setting_wire, wire_name as _wire_name


@dataclass
class BuiltTask:
    """A validated task, plus what the user should be told about it."""

    task: dict[str, Any]
    model: ModelSpec
    notices: list[str] = field(default_factory=list)
    layout: str = ""
    # Settings left out because they are at their documented default ({wire path: value}): Runware
    # applies them itself. They still count in the request's identity (see `identity`).
    defaults_left_out: dict[str, Any] = field(default_factory=dict)
    # A rule of the spec that was told instead of refusing because Runware's schema decides
    # ({input: the rule's why}): when the schema refuses that input too, its refusal says the rule's reason.
    overruled: dict[str, str] = field(default_factory=dict)

    @property
    def task_uuid(self) -> str:
        return self.task["taskUUID"]

    @property
    def identity(self) -> dict[str, Any]:
        """What identifies this request in the job ledger (its fingerprint): the task without its taskUUID,
        with the defaults that were left out written back. A request sent before defaults were left out
        (with them written) is then still the same request: its finished video is reused, never paid twice."""
        body = copy.deepcopy({k: v for k, v in self.task.items() if k != "taskUUID"})
        for path, value in self.defaults_left_out.items():
            _put(body, path, value)
        return body


class GenerationChoices(BaseModel):
    """What a user picks for text-to-video or image-to-video. Names match the node inputs.

    Size is either `width`+`height`, or `resolution`+`aspect_ratio` (aspect_ratio "auto" picks
    the listed size nearest to the first frame). Settings (style, motion_mode, …: whatever the
    spec describes) go by input name into `settings`; unknown names are refused when building.
    `None`/"none"/"" mean "not set" and the field is left out of the request."""

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
    settings: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any):
        # The Python API's callers build this directly: a wrong type (a NaN seed, a bytes prompt) is
        # a PixVerseInputError naming the field, like every other refused choice, not pydantic's error.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = str(err["loc"][0]) if err.get("loc") else "?"
            raise PixVerseInputError(name, err.get("input"),
                                     reason=f"wrong type or value ({err.get('msg', 'invalid')})") from None

    @model_validator(mode="before")
    @classmethod
    def _collect_settings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fixed = set(cls.model_fields)
            extra = {k: v for k, v in data.items() if k not in fixed}
            if extra:
                data = {k: v for k, v in data.items() if k in fixed}
                data["settings"] = {**data.get("settings", {}), **extra}
        return data


def new_task_uuid() -> str:
    return str(uuid.uuid4())


# -- errors ----------------------------------------------------------------------------------

class _Refusals:
    """Makes PixVerseInputErrors that name the input and where it goes in the request."""

    def __init__(self, spec: CapabilitySpec, model: Optional[ModelSpec], layout: Optional[Layout]):
        self.spec, self.model, self.layout = spec, model, layout

    def wire_name(self, parameter: str) -> str:
        return _wire_name(self.spec, self.model, parameter, self.layout)

    def __call__(self, parameter: str, value: Any, allowed: Any = None, reason: str = "") -> PixVerseInputError:
        return PixVerseInputError(parameter, value, allowed, reason, wire_name=self.wire_name(parameter))


# -- checks ----------------------------------------------------------------------------------

def resolve_model(spec: CapabilitySpec, ident: Any, workflow: str) -> ModelSpec:
    refuse = _Refusals(spec, None, None)
    allowed = [m.air for m in spec.models_for(workflow)]
    try:
        model = spec.model(ident)
    except (KeyError, TypeError):
        raise refuse("model", ident, allowed, "unknown model") from None
    if workflow not in model.workflows:
        raise refuse("model", ident, allowed, f"{model.name} does not do {workflow}")
    return model


def resolve_layout(spec: CapabilitySpec, model: ModelSpec, layout: Optional[str]) -> Layout:
    """The model's preferred layout, or the one asked for (it must be one the model speaks)."""
    name = layout or model.layouts[0]
    if name not in model.layouts:
        raise PixVerseInputError("layout", name, list(model.layouts), f"{model.name} is not sent in that layout")
    return spec.layout(name)


def _check_text(refuse: _Refusals, parameter: str, text: Any, lo: int, hi: int) -> str:
    if not isinstance(text, str):
        raise refuse(parameter, text, f"text of {lo}-{hi} characters", "must be text")
    if len(text) < lo or len(text) > hi:
        raise refuse(parameter, text, f"{lo}-{hi} characters", f"has {len(text)} characters")
    if not text.strip():
        raise refuse(parameter, text, f"{lo}-{hi} characters", "is only white space")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise refuse(parameter, text, "text", f"holds a character that cannot be sent (position {exc.start}: "
                     "a broken surrogate pair)") from None
    return text


def _check_limited_text(spec: CapabilitySpec, refuse: _Refusals, parameter: str, text: Any) -> str:
    limit = spec.text_limits[parameter]
    return _check_text(refuse, parameter, text, limit.min, limit.max)


def _whole(refuse: _Refusals, parameter: str, value: Any, allowed: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or int(value) != value:
        raise refuse(parameter, value, allowed, "must be a whole number")
    return int(value)


def _check_setting(spec: CapabilitySpec, refuse: _Refusals, model: ModelSpec, name: str, value: Any) -> Any:
    """One setting's value by its description: unset → None; else it must fit its kind and the model."""
    try:
        setting = spec.setting(name)
    except KeyError:
        raise refuse(name, value, [s.input for s in spec.settings], "not a PixVerse setting") from None
    if not is_set(value) and not (setting.kind == "enum" and not setting.optional and value is not None):
        return None
    if not model.supports(name):
        if value == unsupported_value(setting):  # the widget's resting value on a model without it
            return None
        takers = [m.air for m in spec.models_taking(name)]
        raise refuse(name, value, f"only on {', '.join(takers)}" if takers else "no model",
                     f"{model.name} ({model.air}) does not take {setting_wire(model, setting)}")
    if setting.kind == "enum":
        if value not in setting.values:
            raise refuse(name, value, list(setting.values))
    elif setting.kind == "boolean":
        if not isinstance(value, bool):
            raise refuse(name, value, [False, True], "must be true or false")
    elif setting.kind == "text":
        _check_text(refuse, name, value, setting.min, setting.max)
    else:
        value = _whole(refuse, name, value, setting.describe_allowed())
        if not setting.min <= value <= setting.max:
            raise refuse(name, value, setting.describe_allowed())
    return value


def _resolve_size(refuse: _Refusals, model: ModelSpec, c: GenerationChoices,
                  first_frame_size: Optional[tuple[int, int]], notices: list[str]) -> tuple[int, int]:
    if c.width is not None or c.height is not None:
        if c.resolution is not None or c.aspect_ratio is not None:
            raise refuse("width", c.width, "either width+height or resolution+aspect_ratio",
                         "give the size one way, not both")
        size = (c.width, c.height)
        if size not in model.all_sizes():
            listed = [f"{w}x{h}" for w, h in model.all_sizes()]
            raise refuse("width", f"{c.width}x{c.height}", listed,
                         f"{c.width}x{c.height} is not a size {model.name} lists")
        return size
    resolution = c.resolution or model.resolution_default
    if resolution not in model.sizes:
        raise refuse("resolution", resolution, list(model.resolutions))
    aspect = c.aspect_ratio or model.aspect_ratio_default
    if aspect == AUTO:
        if first_frame_size is None:
            raise refuse("aspect_ratio", aspect, list(model.aspect_ratios), "auto needs a first frame to measure")
        aspect = model.nearest_aspect_ratio(resolution, *first_frame_size)
        w, h = model.sizes[resolution][aspect]
        notices.append(f"aspect_ratio auto: {aspect} ({w}x{h}), nearest to the first frame's "
                       f"{first_frame_size[0]}x{first_frame_size[1]}")
    size = model.size(resolution, aspect)
    if size is None:
        allowed = list(model.sizes[resolution]) + ([AUTO] if first_frame_size else [])
        raise refuse("aspect_ratio", aspect, allowed)
    return size


def _check_rules(spec: CapabilitySpec, refuse: _Refusals, kind: str, model: ModelSpec,
                 values: dict[str, Any], notices: list[str], overruled: dict[str, str]) -> None:
    """Refuse a value the spec's rules take away from this model for these choices; collect notices
    and the rules told instead of refusing (BuiltTask.overruled)."""
    ev = evaluate(spec, kind, model, values)
    for name, why in ev.reasons.items():
        value = values.get(name)
        if not offered(ev.allowed[name], value):
            causes = [k for r in spec.rules_for(model) if r.matches(values) and r.why == why for k in r.when]
            because = ", ".join(f"{k} {values.get(k)!r}" for k in causes if k != name)
            allowed = ev.allowed[name]
            raise refuse(name, value, allowed if allowed else "nothing", f"{why}" + (f" ({because})" if because else ""))
    notices.extend(ev.notices)
    overruled.update(ev.told)


# -- the builders ------------------------------------------------------------------------------

def _generation_task(spec: CapabilitySpec, c: GenerationChoices, kind: str,
                     frames: Sequence[tuple[str, str]] = (),
                     first_frame_size: Optional[tuple[int, int]] = None,
                     task_uuid: Optional[str] = None, layout: Optional[str] = None) -> BuiltTask:
    model = resolve_model(spec, c.model, workflow_of(kind))
    wire = resolve_layout(spec, model, layout)
    refuse = _Refusals(spec, model, wire)
    notices: list[str] = []
    task: dict[str, Any] = {"taskType": "videoInference", "taskUUID": task_uuid or new_task_uuid(),
                            "model": model.air}
    task[spec.prompt_fields["prompt"]] = _check_limited_text(spec, refuse, "prompt", c.prompt)
    if c.negative_prompt:
        task[spec.prompt_fields["negative_prompt"]] = _check_limited_text(
            spec, refuse, "negative_prompt", c.negative_prompt)
    if frames:
        _put(task, wire.frame_images, [{wire.frame_image_key: ref, "frame": position} for position, ref in frames])
    width, height = _resolve_size(refuse, model, c, first_frame_size, notices)
    resolution, aspect = model.locate_size(width, height)
    if frames and wire.image_to_video_size == "resolution":
        if c.aspect_ratio not in (None, AUTO) or c.width is not None:
            raise refuse("aspect_ratio", c.aspect_ratio or f"{c.width}x{c.height}", [AUTO],
                         f"in Runware's {layout or model.layouts[0]} request layout an image-to-video "
                         "takes the first frame's shape; crop the image to change it")
        task["resolution"] = resolution
    else:
        task["width"], task["height"] = width, height
    durations = model.durations
    duration = _whole(refuse, "duration", durations.default if c.duration is None else c.duration,
                      list(durations.all))
    if duration not in durations.all:
        raise refuse("duration", duration, list(durations.all))
    task["duration"] = duration
    fps = None
    if c.fps is not None:
        if model.fps is None:  # the model makes its own frame rate: the widget's stand-in value only
            if _whole(refuse, "fps", c.fps, []) != fps_unset_value(spec):
                raise refuse("fps", c.fps, [fps_unset_value(spec)],
                             f"{model.name} takes no fps; its videos come at the model's own rate")
        else:
            fps = _whole(refuse, "fps", c.fps, list(model.fps.all))
            if fps not in model.fps.all:
                raise refuse("fps", fps, list(model.fps.all))
            if wire.sends_fps:
                task["fps"] = fps
            elif fps != model.fps.default:  # left out, the model makes its default rate
                raise refuse("fps", fps, [model.fps.default], f"Runware's {_layout_name(model, layout)} "
                             "request layout has no fps; other rates need the seed layout")
    if c.seed is not None:
        limit = spec.seed
        seed = c.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not limit.min <= seed <= limit.max:
            raise refuse("seed", seed, f"whole numbers {limit.min}-{limit.max}")
        task["seed"] = seed

    overruled: dict[str, str] = {}
    left_out = _write_settings(spec, refuse, kind, model, c.settings, task, notices, overruled,
                    resolution=resolution, aspect_ratio=aspect, duration=duration, fps=fps,
                    frame_positions=[p for p, _ in frames])
    return BuiltTask(task, model, notices, _layout_name(model, layout), left_out, overruled)


def _write_settings(spec: CapabilitySpec, refuse: _Refusals, kind: str, model: ModelSpec, settings: dict,
                    task: dict, notices: list[str], overruled: dict[str, str], **core: Any) -> dict[str, Any]:
    """Check each chosen setting by its description and the spec's rules; write the set ones where the
    spec says they go. A setting at its documented `default` (motion_mode "normal") is left out, as
    Runware's examples do (DESIGN 2.8): Runware applies the default itself, and on some models (v4)
    any provider setting sent at all limits the lengths and sizes (the spec's v4 rules say which)."""
    chosen = {name: _check_setting(spec, refuse, model, name, value) for name, value in settings.items()}
    values = rule_context(spec, model, chosen, **core)
    _check_rules(spec, refuse, kind, model, values, notices, overruled)
    left_out = {}
    for setting in spec.settings_of(model):
        value = chosen.get(setting.input)
        if value is None:
            continue
        if setting.default is not None and value == setting.default:
            left_out[setting_wire(model, setting)] = value
        else:
            _put(task, setting_wire(model, setting), value)
    return left_out


def _layout_name(model: ModelSpec, layout: Optional[str]) -> str:
    """The request layout a task is built in: the one asked for, else the model's preferred one."""
    return layout or model.layouts[0]


def build_text_to_video(choices: GenerationChoices, *, spec: Optional[CapabilitySpec] = None,
                        task_uuid: Optional[str] = None, layout: Optional[str] = None) -> BuiltTask:
    return _generation_task(spec or load_spec(), choices, "text_to_video", task_uuid=task_uuid, layout=layout)


def build_image_to_video(choices: GenerationChoices, first_frame: str, last_frame: Optional[str] = None, *,
                         first_frame_size: Optional[tuple[int, int]] = None,
                         spec: Optional[CapabilitySpec] = None, task_uuid: Optional[str] = None,
                         layout: Optional[str] = None) -> BuiltTask:
    """`first_frame`/`last_frame`: an uploaded imageUUID, a URL or a data URI."""
    spec = spec or load_spec()
    model = resolve_model(spec, choices.model, "image-to-video")
    refuse = _Refusals(spec, model, resolve_layout(spec, model, layout))
    frames = []
    for position, ref in (("first", first_frame), ("last", last_frame)):
        parameter = f"{position}_frame"
        if ref is None and position == "last":
            continue
        if not isinstance(ref, str) or not ref.strip():
            raise refuse(parameter, ref, "an uploaded image", "missing")
        if position not in model.frame_images:
            raise refuse(parameter, ref, list(model.frame_images), f"{model.name} does not take a {position} frame")
        frames.append((position, ref))
    return _generation_task(spec, choices, "image_to_video", frames=frames, first_frame_size=first_frame_size,
                            task_uuid=task_uuid, layout=layout)


def build_lipsync(*, video: str, audio: Optional[str] = None, speech_text: Optional[str] = None,
                  voice: Optional[str] = None, model: Optional[str] = None,
                  spec: Optional[CapabilitySpec] = None, task_uuid: Optional[str] = None,
                  layout: Optional[str] = None) -> BuiltTask:
    """`video`/`audio`: uploaded mediaUUIDs. Exactly one of `audio` or `speech_text`."""
    spec = spec or load_spec()
    model_spec = resolve_model(spec, model or spec.default_model("video-to-video").air, "video-to-video")
    wire = resolve_layout(spec, model_spec, layout)
    refuse = _Refusals(spec, model_spec, wire)
    if not isinstance(video, str) or not video.strip():
        raise refuse("video", video, "one uploaded video", "missing")
    has_audio = is_set(audio)
    has_speech = isinstance(speech_text, str) and speech_text != ""
    if has_audio == has_speech:
        raise refuse("audio", "both" if has_audio else "neither",
                     "exactly one of audio or speech_text (text-to-speech)",
                     "give an audio clip or a speech text, not both" if has_audio
                     else "lipsync needs an audio clip or a speech text")
    task: dict[str, Any] = {"taskType": "videoInference", "taskUUID": task_uuid or new_task_uuid(),
                            "model": model_spec.air}
    _put(task, wire.video, video)
    if has_audio:
        _put(task, wire.audio, audio)
    else:
        text = _check_limited_text(spec, refuse, "speech_text", speech_text)
        voices = spec.voices
        chosen = voices.default if not is_set(voice) else voice
        if chosen not in voices.values:
            raise refuse("voice", voice, list(voices.values))
        _put(task, spec.speech_fields["voice"], chosen)
        _put(task, spec.speech_fields["speech_text"], text)
    return BuiltTask(task, model_spec, [], _layout_name(model_spec, layout))


def build_in_any_layout(model: ModelSpec, build, layouts: Optional[Sequence[str]] = None) -> BuiltTask:
    """`build(layout)` in the first of `layouts` (default: the model's, preferred first) that can
    express the request; the first layout's refusal when none can."""
    first = None
    for name in layouts or model.layouts:
        try:
            return build(name)
        except PixVerseInputError as exc:
            first = first or exc
    raise first


def build_modify(choices: GenerationChoices, video: str, reference_image: Optional[str] = None, *,
                 spec: Optional[CapabilitySpec] = None, task_uuid: Optional[str] = None,
                 layout: Optional[str] = None) -> BuiltTask:
    """Modify: a source video (an uploaded mediaUUID) changed as the prompt says, optionally towards a
    reference image (an uploaded imageUUID). The result keeps the source's shape and length at the
    chosen resolution tier."""
    spec = spec or load_spec()
    model = resolve_model(spec, choices.model, "modify")
    wire = resolve_layout(spec, model, layout)
    refuse = _Refusals(spec, model, wire)
    for name in ("width", "height", "duration", "fps"):
        if getattr(choices, name) is not None:
            raise refuse(name, getattr(choices, name), "not set", f"{model.name} takes the source video's {name}")
    if not isinstance(video, str) or not video.strip():
        raise refuse("video", video, "one uploaded video", "missing")
    task: dict[str, Any] = {"taskType": "videoInference", "taskUUID": task_uuid or new_task_uuid(),
                            "model": model.air}
    task[spec.prompt_fields["prompt"]] = _check_limited_text(spec, refuse, "prompt", choices.prompt)
    if choices.negative_prompt:
        raise refuse("negative_prompt", choices.negative_prompt, "empty", f"{model.name} takes no negative prompt")
    _put(task, wire.video, video)
    if is_set(reference_image):
        if "reference_images" not in model.inputs or not wire.reference_images:
            raise refuse("reference_image", reference_image, "none", f"{model.name} takes no reference image here")
        _put(task, wire.reference_images, [reference_image])
    resolution = choices.resolution or model.resolution_default
    if resolution not in model.sizes:
        raise refuse("resolution", resolution, list(model.resolutions))
    task["resolution"] = resolution
    if choices.seed is not None:
        limit = spec.seed
        if isinstance(choices.seed, bool) or not limit.min <= choices.seed <= limit.max:
            raise refuse("seed", choices.seed, f"whole numbers {limit.min}-{limit.max}")
        task["seed"] = choices.seed
    notices: list[str] = []
    overruled: dict[str, str] = {}
    left_out = _write_settings(spec, refuse, "modify", model, choices.settings, task, notices, overruled,
                               resolution=resolution)
    return BuiltTask(task, model, notices, _layout_name(model, layout), left_out, overruled)
