"""Wire-level validation of tasks sent to the emulator, against the capability spec.

This plays Runware's part: it sees only the JSON a client sent (plus what was uploaded before)
and refuses what Runware would refuse, with Runware-style error items. Every list and number
comes from `nodes.spec.load_spec()`; nothing PixVerse-specific is written here.

`validate_video_task()` returns a `JobPlan` (what to render) or raises `TaskError`.
"""
from __future__ import annotations

import base64
import binascii
import io
import random
import re
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from ..spec import CapabilitySpec, ModelSpec

DOCS_ROOT = "https://runware.ai/docs/en"
VIDEO_DOCS = f"{DOCS_ROOT}/video-inference/api-reference"

# Emulator-only, made up: a fake price per second of output video, so that `includeCost` has
# something to report. It is NOT Runware's or PixVerse's price.
FAKE_COST_PER_SECOND_USD = 0.04

# Emulator-only: length of a text-to-speech clip, per character of text, and its minimum.
SPEECH_SECONDS_PER_CHAR = 0.07
SPEECH_MIN_SECONDS = 1.0

# Top-level fields a videoInference task may carry (Runware's common video fields + PixVerse's).
KNOWN_VIDEO_FIELDS = (
    "taskType", "taskUUID", "model", "positivePrompt", "negativePrompt", "width", "height",
    "duration", "fps", "seed", "frameImages", "providerSettings", "deliveryMethod", "includeCost",
    "outputFormat", "outputQuality", "numberResults", "webhookURL", "ttl", "referenceVideos",
    "inputAudios", "speech", "outputType",
)
OUTPUT_FORMATS = ("MP4", "WEBM", "MOV")
OUTPUT_TYPES = ("URL",)
OUTPUT_QUALITY = (20, 99)
NUMBER_RESULTS = (1,)          # the emulator makes one video per task
MIN_TTL = 60
SOUND_SETTINGS = ("soundEffectSwitch", "soundEffectContent")
SPEECH_FIELDS = ("voice", "text")

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UUID_IN_URL = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})")


# ---------------------------------------------------------------------------------------------
# errors

class TaskError(Exception):
    """One Runware error item. `status` is the HTTP status it implies."""

    def __init__(self, code: str, message: str, parameter: Optional[str] = None,
                 allowed_values: Optional[list] = None, status: int = 400,
                 documentation: Optional[str] = None, response_content: Optional[str] = None,
                 task_type: Optional[str] = None):
        super().__init__(message)
        self.task_type = task_type  # overrides the taskType of the item (e.g. a failed video job)
        self.code = code
        self.message = message
        self.parameter = parameter
        self.allowed_values = allowed_values
        self.status = status
        self.documentation = documentation or VIDEO_DOCS
        self.response_content = response_content

    def item(self, task_type: Optional[str], task_uuid: Optional[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "parameter": self.parameter,
            "taskType": self.task_type or task_type,
            "taskUUID": task_uuid,
            "documentation": self.documentation,
        }
        if self.allowed_values is not None:
            out["allowedValues"] = list(self.allowed_values)
        if self.response_content is not None:
            out["responseContent"] = self.response_content
        return out


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


def _leaf(parameter: str) -> str:
    return re.sub(r"\[\d+\]", "", parameter.split(".")[-1])


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"… ({len(str(value))} characters)"


def invalid(parameter: str, value: Any, reason: str, allowed: Optional[list] = None,
            code: Optional[str] = None) -> TaskError:
    msg = f"Invalid value for {parameter}: {_shown(value)}. {reason}"
    if allowed is not None:
        msg += f" Allowed values: {', '.join(map(str, allowed))}."
    return TaskError(code or f"invalid{_cap(_leaf(parameter))}", msg, parameter, allowed)


def missing(parameter: str, reason: str = "") -> TaskError:
    return TaskError(f"missing{_cap(_leaf(parameter))}",
                     f"Missing required parameter {parameter}." + (f" {reason}" if reason else ""),
                     parameter)


def unsupported(parameter: str, value: Any, model: str, supported: Optional[list] = None) -> TaskError:
    msg = f"Parameter {parameter} (value {_shown(value)}) is not supported by model {model}."
    if supported is not None:
        msg += f" Supported here: {', '.join(supported) if supported else 'none'}."
    return TaskError("unsupportedParameter", msg, parameter, supported)


def unknown(parameter: str, known: list) -> TaskError:
    return TaskError("unknownParameter",
                     f"Unknown parameter {parameter}. Known parameters: {', '.join(known)}.",
                     parameter, list(known))


def incompatible(parameter: str, other: str, reason: str) -> TaskError:
    return TaskError("incompatibleParameters",
                     f"Parameters {other} and {parameter} cannot be used together: {reason}",
                     parameter)


# ---------------------------------------------------------------------------------------------
# stored inputs

@dataclass
class ImageInfo:
    data: bytes
    width: int
    height: int
    format: str
    uuid: Optional[str] = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class MediaInfo:
    data: bytes
    duration: Optional[float] = None
    has_video: bool = False
    has_audio: bool = False
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    uuid: Optional[str] = None
    probe_error: Optional[str] = None

    @property
    def size(self) -> int:
        return len(self.data)


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(_UUID_RE.match(value))


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def decode_payload(value: str) -> bytes:
    """Bytes of a data URI or a bare base64 string. Raises ValueError."""
    if value.startswith("data:"):
        head, sep, payload = value.partition(",")
        if not sep or ";base64" not in head:
            raise ValueError("data URI must be base64-encoded (data:<mime>;base64,<data>)")
        value = payload
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64 ({exc})") from None


def probe_image(data: bytes) -> ImageInfo:
    """Decode with Pillow. Raises ValueError when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > 64_000_000:  # checked before decoding: no bombs in the emulator
                raise ValueError(f"{im.width}x{im.height} is too large to decode")
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return ImageInfo(data=data, width=im.width, height=im.height, format=im.format or "")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a decodable image ({exc})") from None


def probe_media(data: bytes) -> MediaInfo:
    """Probe audio/video bytes with PyAV. Never raises: a failure is kept in `probe_error`."""
    import av

    info = MediaInfo(data=data)
    try:
        with av.open(io.BytesIO(data)) as container:
            vstreams = list(container.streams.video)
            astreams = list(container.streams.audio)
            info.has_video = bool(vstreams)
            info.has_audio = bool(astreams)
            durations = []
            if container.duration:
                durations.append(container.duration / 1_000_000)
            if vstreams:
                vs = vstreams[0]
                info.width = vs.codec_context.width
                info.height = vs.codec_context.height
                rate = vs.average_rate or vs.guessed_rate or vs.base_rate
                info.fps = float(rate) if rate else None
                if vs.duration and vs.time_base:
                    durations.insert(0, float(vs.duration * vs.time_base))
            elif astreams:
                st = astreams[0]
                if st.duration and st.time_base:
                    durations.insert(0, float(st.duration * st.time_base))
            if durations:
                info.duration = durations[0]
            else:  # no header duration: decode and take the last timestamp
                end = 0.0
                stream = vstreams[0] if vstreams else (astreams[0] if astreams else None)
                if stream is not None:
                    for frame in container.decode(stream):
                        if frame.time is not None:
                            step = (1 / info.fps) if (vstreams and info.fps) else (
                                frame.samples / frame.sample_rate if not vstreams and frame.sample_rate else 0)
                            end = max(end, frame.time + step)
                    info.duration = end or None
            if not (info.has_video or info.has_audio):
                info.probe_error = "no audio or video stream"
    except Exception as exc:  # PyAV raises many kinds (InvalidDataError, ValueError, …)
        info.probe_error = f"not decodable audio/video ({type(exc).__name__}: {exc})"
    return info


# ---------------------------------------------------------------------------------------------
# the plan

@dataclass
class JobPlan:
    model: str
    width: int
    height: int
    fps: float
    duration: float
    with_audio: bool
    seed: int
    include_cost: bool = False
    audio_seconds: Optional[float] = None
    lipsync: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def cost(self) -> float:
        """Emulator-only fake price (FAKE_COST_PER_SECOND_USD), not a real one."""
        return round(self.duration * FAKE_COST_PER_SECOND_USD, 4)


# ---------------------------------------------------------------------------------------------
# small checkers

def _int(parameter: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(parameter, value, "Must be an integer.")
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid(parameter, value, "Must be an integer.")
        value = int(value)
    return value


def _text(parameter: str, value: Any, lo: int, hi: int) -> str:
    if not isinstance(value, str):
        raise invalid(parameter, value, "Must be a string.")
    if not lo <= len(value) <= hi:
        raise invalid(parameter, value,
                      f"Length must be between {lo} and {hi} characters; got {len(value)}.")
    return value


def _bool(parameter: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(parameter, value, "Must be a boolean (true or false).")
    return value


def check_task_uuid(task: Mapping[str, Any]) -> str:
    if "taskUUID" not in task:
        raise missing("taskUUID")
    value = task["taskUUID"]
    if not is_uuid(value):
        raise invalid("taskUUID", value, "Must be a UUID (e.g. a UUIDv4 made by the client).")
    return value


@dataclass(frozen=True)
class Wire:
    """Field names that depend on `spec.wire` (one place, so the layout can be switched)."""

    prompt: str
    negative_prompt: str
    frames_container: Optional[str]   # None: top-level frameImages; "inputs": inputs.frameImages
    image_key: str                    # "inputImage" or "image"

    @classmethod
    def of(cls, spec: CapabilitySpec) -> "Wire":
        inputs = spec.wire.frame_images_layout == "inputs_image"
        return cls(prompt=spec.wire.prompt_field, negative_prompt=spec.wire.negative_prompt_field,
                   frames_container="inputs" if inputs else None,
                   image_key="image" if inputs else "inputImage")

    @property
    def frames_path(self) -> str:
        return f"{self.frames_container}.frameImages" if self.frames_container else "frameImages"

    def known_fields(self) -> tuple[str, ...]:
        rename = {"positivePrompt": self.prompt, "negativePrompt": self.negative_prompt,
                  "frameImages": self.frames_container or "frameImages"}
        return tuple(rename.get(name, name) for name in KNOWN_VIDEO_FIELDS)

    def frames(self, task: Mapping[str, Any]) -> Any:
        """The frame list as sent, or None when absent. Checks the `inputs` object's keys."""
        if self.frames_container is None:
            return task.get("frameImages")
        box = task.get(self.frames_container)
        if box is None:
            return None
        if not isinstance(box, dict):
            raise invalid(self.frames_container, box, "Must be an object.")
        for key in box:
            if key != "frameImages":
                raise unknown(f"{self.frames_container}.{key}", ["frameImages"])
        return box.get("frameImages")


def _check_known_fields(task: Mapping[str, Any], wire: Wire) -> None:
    known = wire.known_fields()
    for key in task:
        if key not in known:
            raise unknown(key, list(known))


# ---------------------------------------------------------------------------------------------
# the main entry

def validate_video_task(task: Mapping[str, Any], spec: CapabilitySpec,
                        images: Mapping[str, ImageInfo], media: Mapping[str, MediaInfo],
                        rng: Optional[random.Random] = None) -> JobPlan:
    """Check one videoInference task the way Runware would; return what to render."""
    rng = rng or random.Random()
    check_task_uuid(task)
    wire = Wire.of(spec)
    _check_known_fields(task, wire)

    if "model" not in task:
        raise missing("model")
    airs = [m.air for m in spec.models]
    model_id = task["model"]
    model: Optional[ModelSpec] = next((m for m in spec.models if m.air == model_id), None)
    if model is None:
        raise invalid("model", model_id, "Unknown model AIR identifier.", airs, code="invalidModel")

    delivery = task.get("deliveryMethod")
    if delivery != "async":
        raise invalid("deliveryMethod", delivery,
                      "Video inference is asynchronous: send deliveryMethod \"async\" and poll "
                      "with getResponse.", ["async"])

    include_cost = _bool("includeCost", task["includeCost"]) if "includeCost" in task else False
    notices: list[str] = []
    _check_output_fields(task, notices)

    seeds = spec.seed
    seed = _int("seed", task["seed"]) if "seed" in task else rng.randint(seeds.min, seeds.max)
    if not seeds.min <= seed <= seeds.max:
        raise invalid("seed", seed, f"Must be between {seeds.min} and {seeds.max}.")

    # Fields the model has no use for, read from the spec: prompts and frames belong to
    # generators, sizes/fps/duration to models that list them, media inputs to models whose
    # `inputs` name them.
    gen_only = {wire.prompt: model.is_generator, wire.negative_prompt: model.is_generator,
                "width": bool(model.sizes), "height": bool(model.sizes),
                "fps": model.fps is not None, "duration": model.duration is not None,
                wire.frames_container or "frameImages": bool(model.frame_images)}
    for name in ("referenceVideos", "inputAudios", "speech"):
        gen_only[name] = name in model.inputs
    for name, ok in gen_only.items():
        if name in task and not ok:
            raise unsupported(name, task[name], model.air)

    settings = _check_provider_settings(task, spec, model)

    if model.is_generator:
        plan = _plan_generation(task, spec, wire, model, settings, images, seed, notices)
    else:
        plan = _plan_lipsync(task, spec, model, media, seed, notices)
    plan.include_cost = include_cost
    return plan


def _check_output_fields(task: Mapping[str, Any], notices: list[str]) -> None:
    if "outputFormat" in task:
        fmt = task["outputFormat"]
        if not isinstance(fmt, str) or fmt.upper() not in OUTPUT_FORMATS:
            raise invalid("outputFormat", fmt, "Unsupported output format.", list(OUTPUT_FORMATS))
        if fmt.upper() != "MP4":
            notices.append(f"emulator renders MP4 only; outputFormat {fmt} ignored")
    if "outputType" in task:
        if task["outputType"] not in OUTPUT_TYPES:
            raise invalid("outputType", task["outputType"], "Video results are delivered as URLs.",
                          list(OUTPUT_TYPES))
    if "outputQuality" in task:
        q = _int("outputQuality", task["outputQuality"])
        if not OUTPUT_QUALITY[0] <= q <= OUTPUT_QUALITY[1]:
            raise invalid("outputQuality", q,
                          f"Must be between {OUTPUT_QUALITY[0]} and {OUTPUT_QUALITY[1]}.")
    if "numberResults" in task:
        n = _int("numberResults", task["numberResults"])
        if n not in NUMBER_RESULTS:
            raise invalid("numberResults", n, "The emulator makes one video per task.",
                          list(NUMBER_RESULTS))
    if "ttl" in task:
        ttl = _int("ttl", task["ttl"])
        if ttl < MIN_TTL:
            raise invalid("ttl", ttl, f"Must be at least {MIN_TTL} seconds.")
    if "webhookURL" in task:
        hook = task["webhookURL"]
        if not isinstance(hook, str) or not is_url(hook):
            raise invalid("webhookURL", hook, "Must be an http(s) URL.")
        notices.append("emulator does not call webhooks; poll with getResponse")


def _check_provider_settings(task: Mapping[str, Any], spec: CapabilitySpec,
                             model: ModelSpec) -> dict[str, Any]:
    if "providerSettings" not in task:
        return {}
    ps = task["providerSettings"]
    if not isinstance(ps, dict):
        raise invalid("providerSettings", ps, "Must be an object.")
    provider = spec.provider
    for key in ps:
        if key != provider:
            raise unsupported(f"providerSettings.{key}", ps[key], model.air, [provider])
    settings = ps.get(provider, {})
    base = f"providerSettings.{provider}"
    if not isinstance(settings, dict):
        raise invalid(base, settings, "Must be an object.")

    enum_names = tuple(type(spec.enums).model_fields)
    known = tuple(n for n in enum_names if n != "voice") + SOUND_SETTINGS
    for key, value in settings.items():
        param = f"{base}.{key}"
        if key not in model.provider_settings:
            if key in known:
                raise unsupported(param, value, model.air, list(model.provider_settings))
            raise unknown(param, list(model.provider_settings))
        if key in enum_names:
            choice = spec.enum(key)
            if value not in choice.values:
                raise invalid(param, value, f"Not a valid {key}.", list(choice.values))
        elif key == "soundEffectSwitch":
            _bool(param, value)
        elif key == "soundEffectContent":
            lim = spec.text_limits["sound_effect_content"]
            _text(param, value, lim.min, lim.max)

    for group in spec.mutually_exclusive:
        present = [name for name in group if name in settings]
        if len(present) > 1:
            raise incompatible(f"{base}.{present[1]}", f"{base}.{present[0]}",
                               f"{' and '.join(present)} are mutually exclusive; send only one.")
    if "soundEffectContent" in settings and settings.get("soundEffectSwitch") is not True:
        raise incompatible(f"{base}.soundEffectContent", f"{base}.soundEffectSwitch",
                           "soundEffectContent needs soundEffectSwitch true.")
    return settings


def _resolve_image(ref: Any, parameter: str, images: Mapping[str, ImageInfo]) -> Optional[ImageInfo]:
    """The image behind a frameImages reference; None for a URL the emulator cannot see."""
    if not isinstance(ref, str) or not ref:
        raise invalid(parameter, ref, "Must be an uploaded imageUUID, a URL or a data URI.")
    if is_uuid(ref):
        if ref not in images:
            raise invalid(parameter, ref, "No uploaded image has this imageUUID.")
        return images[ref]
    if is_url(ref):
        match = _UUID_IN_URL.search(ref)
        if match and match.group(1) in images:
            return images[match.group(1)]
        return None  # an outside URL: Runware would fetch it; the emulator cannot check it
    try:
        data = decode_payload(ref)
        return probe_image(data)
    except ValueError as exc:
        raise invalid(parameter, ref, f"Not a usable image: {exc}.") from None


def _check_frame_images(frames: Any, spec: CapabilitySpec, wire: Wire, model: ModelSpec,
                        images: Mapping[str, ImageInfo], notices: list[str]) -> Optional[ImageInfo]:
    """Returns the first frame's image (when the emulator can see it)."""
    path, key = wire.frames_path, wire.image_key
    item_fields = (key, "frame")
    allowed = list(model.frame_images)
    if not isinstance(frames, list) or not frames:
        raise invalid(path, frames, f"Must be a non-empty array of {{{key}, frame}}.",
                      code="invalidFrameImages")
    if len(frames) > len(allowed):
        raise invalid(path, f"{len(frames)} items",
                      f"At most {len(allowed)} frame images ({', '.join(allowed)}).", allowed,
                      code="invalidFrameImages")
    limits = spec.input_image
    seen: dict[str, int] = {}
    first: Optional[ImageInfo] = None
    for i, item in enumerate(frames):
        base = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise invalid(base, item, f"Must be an object {{{key}, frame}}.",
                          code="invalidFrameImages")
        for name in item:
            if name not in item_fields:
                raise unknown(f"{base}.{name}", list(item_fields))
        if key not in item:
            raise missing(f"{base}.{key}")
        if "frame" not in item:
            raise missing(f"{base}.frame")
        frame = item["frame"]
        if frame not in allowed:
            raise invalid(f"{base}.frame", frame, "Unsupported frame position.", allowed,
                          code="invalidFrame")
        if frame in seen:
            raise invalid(f"{base}.frame", frame,
                          f"Frame position already used by {path}[{seen[frame]}].", allowed,
                          code="invalidFrame")
        seen[frame] = i
        param = f"{base}.{key}"
        info = _resolve_image(item[key], param, images)
        if info is None:
            notices.append(f"{param} is an outside URL; the emulator did not check it")
        else:
            if info.size > limits.max_bytes:
                raise invalid(param, item[key],
                              f"Image is {info.size} bytes; the limit is {limits.max_bytes} bytes.",
                              code="invalidInputImage")
            for side, px in (("width", info.width), ("height", info.height)):
                if not limits.min_side <= px <= limits.max_side:
                    raise invalid(param, item[key],
                                  f"Image {side} is {px} px; each side must be between "
                                  f"{limits.min_side} and {limits.max_side} px "
                                  f"(image is {info.width}×{info.height}).",
                                  code="invalidInputImage")
        if frame == allowed[0]:
            first = info
    if allowed[0] not in seen:
        raise invalid(path, [f.get("frame") if isinstance(f, dict) else f for f in frames],
                      f"A '{allowed[0]}' frame is required when {path} is sent.", allowed,
                      code="invalidFrameImages")
    return first


def _plan_generation(task: Mapping[str, Any], spec: CapabilitySpec, wire: Wire, model: ModelSpec,
                     settings: Mapping[str, Any], images: Mapping[str, ImageInfo], seed: int,
                     notices: list[str]) -> JobPlan:
    lim = spec.text_limits["prompt"]
    if wire.prompt not in task:
        raise missing(wire.prompt, f"Send {lim.min}–{lim.max} characters.")
    _text(wire.prompt, task[wire.prompt], lim.min, lim.max)
    if wire.negative_prompt in task:
        nlim = spec.text_limits["negative_prompt"]
        _text(wire.negative_prompt, task[wire.negative_prompt], nlim.min, nlim.max)

    first = None
    frames = wire.frames(task)
    if frames is not None or (wire.frames_container is None and "frameImages" in task):
        first = _check_frame_images(frames, spec, wire, model, images, notices)

    sizes = model.all_sizes()
    listed = [f"{w}x{h}" for w, h in sizes]
    has_w, has_h = "width" in task, "height" in task
    if has_w != has_h:
        raise missing("height" if has_w else "width", "Send width and height together.")
    if has_w:
        width = _int("width", task["width"])
        height = _int("height", task["height"])
        widths = sorted({w for w, _ in sizes})
        if width not in widths:
            raise TaskError("invalidWidth",
                            f"Invalid value for width: {width} (requested {width}x{height}). "
                            f"Model {model.air} supports these sizes: {', '.join(listed)}.",
                            "width", widths)
        heights = sorted({h for w, h in sizes if w == width})
        if height not in heights:
            raise TaskError("invalidHeight",
                            f"Invalid value for height: {height} (requested {width}x{height}). "
                            f"With width {width}, height may be {', '.join(map(str, heights))}. "
                            f"Model {model.air} supports these sizes: {', '.join(listed)}.",
                            "height", heights)
    elif first is not None:
        res = spec.generation_defaults.resolution_default
        width, height = model.sizes[res][model.nearest_aspect_ratio(res, first.width, first.height)]
        notices.append(f"no width/height sent: {width}x{height} chosen from the first frame")
    else:
        raise missing("width", "Text-to-video needs width and height.")

    fps_choice, dur_choice = model.fps, model.duration
    fps = _int("fps", task["fps"]) if "fps" in task else fps_choice.default
    if fps not in fps_choice.values:
        raise invalid("fps", fps, f"Unsupported frame rate for {model.air}.", list(fps_choice.values))
    duration = _int("duration", task["duration"]) if "duration" in task else dur_choice.default
    if duration not in dur_choice.values:
        raise invalid("duration", duration, f"Unsupported duration for {model.air}.",
                      list(dur_choice.values))

    motion = settings.get("motionMode", spec.enum("motionMode").default)
    located = model.locate_size(width, height)
    resolution = located[0] if located else None
    if spec.fast_motion_reverts(motion, duration, resolution):
        rule = spec.fast_motion_revert
        why = []
        if duration in rule.when_duration:
            why.append(f"duration {duration} s")
        if resolution in rule.when_resolution:
            why.append(f"resolution {resolution}")
        notices.append(f"motionMode {rule.mode} reverted to {rule.reverts_to}: {', '.join(why)}")

    return JobPlan(model=model.air, width=width, height=height, fps=fps, duration=float(duration),
                   with_audio=settings.get("soundEffectSwitch") is True, seed=seed, notices=notices)


def _media_ref(task: Mapping[str, Any], name: str, media: Mapping[str, MediaInfo],
               max_items: int) -> MediaInfo:
    refs = task[name]
    if not isinstance(refs, list):
        raise invalid(name, refs, "Must be an array of mediaUUIDs.")
    if len(refs) != 1 or max_items < 1:
        raise invalid(name, refs, f"Exactly one item is required (at most {max_items}).")
    ref = refs[0]
    param = f"{name}[0]"
    if not is_uuid(ref):
        raise invalid(param, ref, "Must be a mediaUUID from a mediaStorage upload.")
    if ref not in media:
        raise invalid(param, ref, "No uploaded media has this mediaUUID.")
    return media[ref]


def _plan_lipsync(task: Mapping[str, Any], spec: CapabilitySpec, model: ModelSpec,
                  media: Mapping[str, MediaInfo], seed: int, notices: list[str]) -> JobPlan:
    lim = spec.lipsync_limits
    if "referenceVideos" not in task:
        raise missing("referenceVideos", "Lip sync needs one reference video (a mediaUUID).")
    video = _media_ref(task, "referenceVideos", media, lim.max_reference_videos)
    param, ref = "referenceVideos[0]", task["referenceVideos"][0]
    if video.probe_error or not video.has_video:
        raise invalid(param, ref, f"Not a usable video: {video.probe_error or 'no video stream'}.",
                      code="invalidReferenceVideos")
    if video.size > lim.video_max_bytes:
        raise invalid(param, ref, f"Video is {video.size} bytes; the limit is {lim.video_max_bytes}.",
                      code="invalidReferenceVideos")
    if video.duration is None or video.duration > lim.video_max_seconds + 1e-3:
        raise invalid(param, ref, f"Video lasts {video.duration} s; the limit is "
                      f"{lim.video_max_seconds:g} s.", code="invalidReferenceVideos")

    has_audio, has_speech = "inputAudios" in task, "speech" in task
    if has_audio and has_speech:
        raise incompatible("speech", "inputAudios", "send either inputAudios or speech, not both.")
    if not (has_audio or has_speech):
        raise missing("inputAudios", "Lip sync needs inputAudios (one mediaUUID) or speech "
                      "{voice, text}.")
    if has_audio:
        audio = _media_ref(task, "inputAudios", media, lim.max_input_audios)
        param, ref = "inputAudios[0]", task["inputAudios"][0]
        if audio.probe_error or not audio.has_audio:
            raise invalid(param, ref, f"Not usable audio: {audio.probe_error or 'no audio stream'}.",
                          code="invalidInputAudios")
        if audio.duration is None or audio.duration > lim.audio_max_seconds + 1e-3:
            raise invalid(param, ref, f"Audio lasts {audio.duration} s; the limit is "
                          f"{lim.audio_max_seconds:g} s.", code="invalidInputAudios")
        seconds = audio.duration
    else:
        speech = task["speech"]
        if not isinstance(speech, dict):
            raise invalid("speech", speech, "Must be an object {voice, text}.")
        for key in speech:
            if key not in SPEECH_FIELDS:
                raise unknown(f"speech.{key}", list(SPEECH_FIELDS))
        voices = spec.enum("voice")
        voice = speech.get("voice", voices.default)
        if voice not in voices.values:
            raise invalid("speech.voice", voice, "Unknown voice.", list(voices.values))
        if "text" not in speech:
            err = missing("speech.text")
            err.code = "missingSpeechText"
            raise err
        tlim = spec.text_limits["speech_text"]
        try:
            text = _text("speech.text", speech["text"], tlim.min, tlim.max)
        except TaskError as err:
            err.code = "invalidSpeechText"
            raise
        seconds = max(SPEECH_MIN_SECONDS, round(len(text) * SPEECH_SECONDS_PER_CHAR, 3))

    fps = video.fps or 25.0
    if abs(fps - round(fps)) < 1e-3:
        fps = float(round(fps))
    return JobPlan(model=model.air, width=int(video.width), height=int(video.height), fps=fps,
                   duration=float(seconds), with_audio=True, seed=seed, audio_seconds=float(seconds),
                   lipsync=True, notices=notices)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


__all__ = [
    "TaskError", "ImageInfo", "MediaInfo", "JobPlan", "validate_video_task", "probe_image",
    "probe_media", "decode_payload", "check_task_uuid", "is_uuid", "new_uuid",
    "FAKE_COST_PER_SECOND_USD", "KNOWN_VIDEO_FIELDS", "invalid", "missing", "unknown",
]
