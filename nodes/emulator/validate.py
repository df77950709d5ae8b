"""Wire-level validation of tasks sent to the emulator, against the capability spec.

This plays Runware's part: it sees only the JSON a client sent (plus what was uploaded before)
and refuses what Runware would refuse, with Runware-style error items. Every list, number and wire name
comes from `nodes.spec.load_spec()`, but for what only a render needs (the frame rate it makes for a
model whose spec lists none, and a speech clip's length).

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

from ..spec import CapabilitySpec, Layout, ModelSpec
from ..spec import paths
from ..spec.options import evaluate, offered

DOCS_ROOT = "https://runware.ai/docs/en"
VIDEO_DOCS = f"{DOCS_ROOT}/video-inference/api-reference"

# Emulator-only, made up: a fake price per second of output video, so that `includeCost` has
# something to report. It is NOT Runware's or PixVerse's price. It grows with the video's short side
# (× short side / 360 px, at least × 1), so runs of different sizes cost differently, as real ones do.
FAKE_COST_PER_SECOND_USD = 0.04
FAKE_COST_BASE_SIDE = 360

# Emulator-only: length of a text-to-speech clip, per character of text, and its minimum.
SPEECH_SECONDS_PER_CHAR = 0.07
SPEECH_MIN_SECONDS = 1.0

# Top-level fields every videoInference task may carry, whatever the layout (Runware's common video
# fields); the prompts, the layouts' own fields and the settings objects come from the spec.
KNOWN_VIDEO_FIELDS = (
    "taskType", "taskUUID", "model", "width", "height", "duration", "seed", "deliveryMethod",
    "includeCost", "outputFormat", "outputQuality", "numberResults", "webhookURL", "ttl", "speech",
    "outputType",
)
OUTPUT_FORMATS = ("MP4", "WEBM", "MOV")
OUTPUT_TYPES = ("URL",)
OUTPUT_QUALITY = (20, 99)
NUMBER_RESULTS = (1,)          # the emulator makes one video per task
MIN_TTL = 60
# Emulator-only: the frame rate it renders for a model whose spec lists no fps.
MODEL_OWN_FPS = 24

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
    layout: str = ""

    @property
    def cost(self) -> float:
        """Emulator-only fake price (FAKE_COST_PER_SECOND_USD × size factor), not a real one."""
        factor = max(1.0, min(self.width, self.height) / FAKE_COST_BASE_SIDE)
        return round(self.duration * FAKE_COST_PER_SECOND_USD * factor, 4)


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


def _root(path: str) -> str:
    return path.removesuffix("[]").split(".")[0]


def layout_paths(layout: Layout) -> tuple[str, ...]:
    found = [layout.frame_images, layout.video, layout.audio]
    if layout.reference_images:
        found.append(layout.reference_images)
    return tuple(found)


def layout_roots(layout: Layout) -> set[str]:
    roots = {_root(p) for p in layout_paths(layout)}
    if layout.image_to_video_size == "resolution":
        roots.add("resolution")
    if layout.sends_fps:
        roots.add("fps")
    return roots


def detect_layout(task: Mapping[str, Any], spec: CapabilitySpec, accepted: tuple[str, ...]) -> Optional[str]:
    """The layout whose own fields the task uses (None when it uses none: a plain text-to-video).

    A field only another layout knows is refused the way Runware refuses an unknown parameter."""
    own = {name: layout_roots(spec.layout(name)) for name in spec.layouts}
    shared = set.intersection(*own.values()) if own else set()
    used = {name for name, roots in own.items() if any(r in task for r in roots - shared)}
    for name in sorted(used - set(accepted)):
        field_name = next(r for r in sorted(own[name] - shared) if r in task)
        known = sorted(set().union(*(own[a] for a in accepted)))
        raise unknown(field_name, known)
    if len(used) > 1:
        a, b = sorted(used)
        raise incompatible(next(r for r in sorted(own[b] - shared) if r in task),
                           next(r for r in sorted(own[a] - shared) if r in task),
                           f"fields of two request layouts ({a} and {b}) in one task.")
    return next(iter(used), None)


def _check_known_fields(task: Mapping[str, Any], spec: CapabilitySpec, model: ModelSpec,
                        accepted: tuple[str, ...]) -> None:
    known = set(KNOWN_VIDEO_FIELDS) | set(spec.prompt_fields.values())
    for name in accepted:
        known |= layout_roots(spec.layout(name))
    known |= {_root(m.settings_at) for m in spec.models if m.settings_at}
    for key in task:
        if key not in known:
            raise unknown(key, sorted(known))


# ---------------------------------------------------------------------------------------------
# the main entry

def validate_video_task(task: Mapping[str, Any], spec: CapabilitySpec,
                        images: Mapping[str, ImageInfo], media: Mapping[str, MediaInfo],
                        rng: Optional[random.Random] = None,
                        layouts: Optional[tuple[str, ...]] = None) -> JobPlan:
    """Check one videoInference task the way Runware would; return what to render.

    `layouts`: the request layouts accepted (default: every layout in the spec)."""
    rng = rng or random.Random()
    accepted = tuple(layouts or spec.layouts)
    check_task_uuid(task)

    if "model" not in task:
        raise missing("model")
    airs = [m.air for m in spec.models]
    model_id = task["model"]
    model: Optional[ModelSpec] = next((m for m in spec.models if m.air == model_id), None)
    if model is None:
        raise invalid("model", model_id, "Unknown model AIR identifier.", airs, code="invalidModel")
    _check_known_fields(task, spec, model, accepted)
    layout_name = detect_layout(task, spec, accepted)
    layout = spec.layout(layout_name or accepted[0])

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
    # `inputs` name them, settings to models that have them.
    usable = {spec.prompt_fields["prompt"]: model.is_generator or "modify" in model.workflows,
              spec.prompt_fields["negative_prompt"]: model.is_generator,
              "width": bool(model.sizes), "height": bool(model.sizes), "resolution": bool(model.sizes),
              "fps": model.fps is not None, "duration": model.durations is not None,
              layout.frame_images: bool(model.frame_images),
              layout.video: "video" in model.inputs, layout.audio: "audio" in model.inputs,
              "speech": "speech" in model.inputs}
    for path, ok in usable.items():
        present, value = paths.get(task, path)
        if present and not ok:
            raise unsupported(path.removesuffix("[]"), value, model.air)
    _check_inputs_object(task, layout, model)
    settings = _check_settings(task, spec, model)

    if model.is_generator:
        plan = _plan_generation(task, spec, layout, model, settings, images, seed, notices)
    elif "modify" in model.workflows:
        plan = _plan_modify(task, spec, layout, model, settings, images, media, seed, notices)
    else:
        plan = _plan_lipsync(task, spec, layout, model, media, seed, notices)
    plan.include_cost = include_cost
    plan.layout = layout_name or "any"
    return plan


def _check_inputs_object(task: Mapping[str, Any], layout: Layout, model: ModelSpec) -> None:
    """Keys of a container object (e.g. `inputs`) must be fields the layout names for this model."""
    wanted = {layout.frame_images: bool(model.frame_images), layout.video: "video" in model.inputs,
              layout.audio: "audio" in model.inputs}
    if layout.reference_images:
        wanted[layout.reference_images] = "reference_images" in model.inputs
    containers: dict[str, list[str]] = {}
    for path, ok in wanted.items():
        parts = path.removesuffix("[]").split(".")
        if len(parts) == 2:
            containers.setdefault(parts[0], [])
            if ok:
                containers[parts[0]].append(parts[1])
    for name, keys in containers.items():
        if name not in task:
            continue
        box = task[name]
        if not isinstance(box, dict):
            raise invalid(name, box, "Must be an object.")
        for key in box:
            if key not in keys:
                raise unknown(f"{name}.{key}", keys)


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


def _check_settings(task: Mapping[str, Any], spec: CapabilitySpec, model: ModelSpec) -> dict[str, Any]:
    """The model's settings object (at `settings_at`, e.g. providerSettings.pixverse), checked against
    the spec's setting descriptions. Returns {setting input: value}."""
    roots = {_root(m.settings_at) for m in spec.models if m.settings_at}
    own_root = _root(model.settings_at) if model.settings_at else None
    for root in roots:
        if root in task and root != own_root:
            raise unsupported(root, task[root], model.air)
    if own_root is None or own_root not in task:
        return {}
    parts = model.settings_at.split(".")
    node: Any = task
    for depth, name in enumerate(parts):
        base = ".".join(parts[:depth])
        if not isinstance(node, dict):
            raise invalid(base, node, "Must be an object.")
        for key in node if depth else ():
            if key != name:
                raise unsupported(f"{base}.{key}", node[key], model.air, [name])
        if name not in node:
            return {}
        node = node[name]
    base = model.settings_at
    if not isinstance(node, dict):
        raise invalid(base, node, "Must be an object.")

    by_wire = {s.wire: s for s in spec.settings}
    offered = [s.wire for s in spec.settings_of(model)]
    values: dict[str, Any] = {}
    for key, value in node.items():
        param = f"{base}.{key}"
        setting = by_wire.get(key)
        if setting is None:
            raise unknown(param, offered)
        if not model.supports(setting.input):
            raise unsupported(param, value, model.air, offered)
        if setting.kind == "enum":
            if value not in setting.values:
                raise invalid(param, value, f"Not a valid {key}.", list(setting.values))
        elif setting.kind == "boolean":
            _bool(param, value)
        elif setting.kind == "text":
            _text(param, value, setting.min, setting.max)
        else:
            number = _int(param, value)
            if not setting.min <= number <= setting.max:
                raise invalid(param, number, f"Must be between {setting.min} and {setting.max}.")
        values[setting.input] = value
    return values


def _check_rules(spec: CapabilitySpec, model: ModelSpec, kind: str, values: dict[str, Any],
                 notices: list[str]) -> None:
    """The spec's rules between choices, in wire terms (the same rules the builder applies)."""
    ev = evaluate(spec, kind, model, values)
    for name, why in ev.reasons.items():
        if name in values and not offered(ev.allowed[name], values[name]):
            wire = paths.wire_name(spec, model, name)
            allowed = ev.allowed[name]
            raise TaskError("incompatibleParameters",
                            f"Invalid value for {wire}: {_shown(values[name])}. {why}.",
                            wire, allowed if isinstance(allowed, list) else None)
    notices.extend(ev.notices)


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


def _check_frame_images(frames: Any, spec: CapabilitySpec, layout: Layout, model: ModelSpec,
                        images: Mapping[str, ImageInfo], notices: list[str]) -> Optional[ImageInfo]:
    """Returns the first frame's image (when the emulator can see it)."""
    path, key = layout.frame_images, layout.frame_image_key
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


def _plan_generation(task: Mapping[str, Any], spec: CapabilitySpec, layout: Layout, model: ModelSpec,
                     settings: Mapping[str, Any], images: Mapping[str, ImageInfo], seed: int,
                     notices: list[str]) -> JobPlan:
    prompt_field, negative_field = spec.prompt_fields["prompt"], spec.prompt_fields["negative_prompt"]
    lim = spec.text_limits["prompt"]
    if prompt_field not in task:
        raise missing(prompt_field, f"Send {lim.min}–{lim.max} characters.")
    _text(prompt_field, task[prompt_field], lim.min, lim.max)
    if negative_field in task:
        nlim = spec.text_limits["negative_prompt"]
        _text(negative_field, task[negative_field], nlim.min, nlim.max)

    first = None
    has_frames, frames = paths.get(task, layout.frame_images)
    if has_frames:
        first = _check_frame_images(frames, spec, layout, model, images, notices)

    sizes = model.all_sizes()
    listed = [f"{w}x{h}" for w, h in sizes]
    has_w, has_h = "width" in task, "height" in task
    if has_w != has_h:
        raise missing("height" if has_w else "width", "Send width and height together.")
    if has_w and "resolution" in task:
        raise incompatible("resolution", "width", "resolution cannot be used with width/height.")
    if has_w and has_frames and layout.image_to_video_size == "resolution":
        raise incompatible("width", layout.frame_images,
                           f"provide exactly one of {layout.frame_images} or width/height.")
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
    elif "resolution" in task:
        res = task["resolution"]
        if res not in model.sizes:
            raise invalid("resolution", res, f"Unsupported resolution for {model.air}.", list(model.sizes))
        if first is None:
            raise missing("width", f"Without {layout.frame_images}, send width and height.")
        width, height = model.sizes[res][model.nearest_aspect_ratio(res, first.width, first.height)]
    elif first is not None:
        res = model.resolution_default
        width, height = model.sizes[res][model.nearest_aspect_ratio(res, first.width, first.height)]
        notices.append(f"no size sent: {width}x{height} chosen from the first frame")
    else:
        raise missing("width", "Text-to-video needs width and height.")

    fps_choice, dur_choice = model.fps, model.durations
    if fps_choice is not None:
        fps = _int("fps", task["fps"]) if "fps" in task else fps_choice.default
        if fps not in fps_choice.all:
            raise invalid("fps", fps, f"Unsupported frame rate for {model.air}.", list(fps_choice.all))
    else:
        fps = MODEL_OWN_FPS
    duration = _int("duration", task["duration"]) if "duration" in task else dur_choice.default
    if duration not in dur_choice.all:
        raise invalid("duration", duration, f"Unsupported duration for {model.air}.", list(dur_choice.all))

    resolution, aspect = model.locate_size(width, height)
    positions = [f.get("frame") for f in frames] if has_frames else []
    values = paths.rule_context(spec, model, settings, positions, resolution=resolution, aspect_ratio=aspect,
                                duration=duration, fps=fps if "fps" in task else None)
    kind = "image_to_video" if has_frames else "text_to_video"
    _check_rules(spec, model, kind, values, notices)
    return JobPlan(model=model.air, width=width, height=height, fps=fps, duration=float(duration),
                   with_audio=_asks_for_sound(spec, model, settings), seed=seed, notices=notices)


def _asks_for_sound(spec: CapabilitySpec, model: ModelSpec, settings: Mapping[str, Any]) -> bool:
    """Whether the checked `settings` (by input name) switch a sound track on (the spec's `makes_sound`).
    A Modify of a source with sound keeps it as well (said where it is asked)."""
    return any(settings.get(s.input) is True for s in spec.settings_of(model) if s.makes_sound)


def _media_ref(task: Mapping[str, Any], path: str, media: Mapping[str, MediaInfo],
               max_items: int) -> tuple[str, str, MediaInfo]:
    """(parameter, ref, media) of a media input at `path` ("referenceVideos[]": a one-item list)."""
    _, value = paths.get(task, path)
    name = path.removesuffix("[]")
    if path.endswith("[]"):
        if not isinstance(value, list):
            raise invalid(name, value, "Must be an array of mediaUUIDs.")
        if len(value) != 1 or max_items < 1:
            raise invalid(name, value, f"Exactly one item is required (at most {max_items}).")
        ref, param = value[0], f"{name}[0]"
    else:
        ref, param = value, name
    if not is_uuid(ref):
        raise invalid(param, ref, "Must be a mediaUUID from a mediaStorage upload.")
    if ref not in media:
        raise invalid(param, ref, "No uploaded media has this mediaUUID.")
    return param, ref, media[ref]


def _plan_lipsync(task: Mapping[str, Any], spec: CapabilitySpec, layout: Layout, model: ModelSpec,
                  media: Mapping[str, MediaInfo], seed: int, notices: list[str]) -> JobPlan:
    lim = spec.lipsync_limits
    video_field, audio_field = layout.video.removesuffix("[]"), layout.audio.removesuffix("[]")
    if not paths.get(task, layout.video)[0]:
        raise missing(video_field, "Lip sync needs one reference video (a mediaUUID).")
    param, ref, video = _media_ref(task, layout.video, media, lim.max_reference_videos)
    code = f"invalid{_cap(_leaf(video_field))}"
    if video.probe_error or not video.has_video:
        raise invalid(param, ref, f"Not a usable video: {video.probe_error or 'no video stream'}.", code=code)
    if video.size > lim.video_max_bytes:
        raise invalid(param, ref, f"Video is {video.size} bytes; the limit is {lim.video_max_bytes}.", code=code)
    if video.duration is None or video.duration > lim.video_max_seconds + 1e-3:
        raise invalid(param, ref, f"Video lasts {video.duration} s; the limit is "
                      f"{lim.video_max_seconds:g} s.", code=code)

    has_audio, has_speech = paths.get(task, layout.audio)[0], "speech" in task
    if has_audio and has_speech:
        raise incompatible("speech", audio_field, f"send either {audio_field} or speech, not both.")
    if not (has_audio or has_speech):
        raise missing(audio_field, f"Lip sync needs {audio_field} (one mediaUUID) or speech {{voice, text}}.")
    if has_audio:
        param, ref, audio = _media_ref(task, layout.audio, media, lim.max_input_audios)
        code = f"invalid{_cap(_leaf(audio_field))}"
        if audio.probe_error or not audio.has_audio:
            raise invalid(param, ref, f"Not usable audio: {audio.probe_error or 'no audio stream'}.", code=code)
        if audio.duration is None or audio.duration > lim.audio_max_seconds + 1e-3:
            raise invalid(param, ref, f"Audio lasts {audio.duration} s; the limit is "
                          f"{lim.audio_max_seconds:g} s.", code=code)
        seconds = audio.duration
    else:
        speech = task["speech"]
        voice_at, text_at = spec.speech_fields["voice"], spec.speech_fields["speech_text"]
        voice_key, text_key = voice_at.rsplit(".", 1)[-1], text_at.rsplit(".", 1)[-1]
        keys = {voice_key: voice_at, text_key: text_at}
        if not isinstance(speech, dict):
            raise invalid("speech", speech, "Must be an object {" + ", ".join(keys) + "}.")
        for key in speech:
            if key not in keys:
                raise unknown(f"speech.{key}", list(keys))
        voices = spec.voices
        voice = speech.get(voice_key, voices.default)
        if voice not in voices.values:
            raise invalid(voice_at, voice, "Unknown voice.", list(voices.values))
        if text_key not in speech:
            err = missing(text_at)
            err.code = "missingSpeechText"
            raise err
        tlim = spec.text_limits["speech_text"]
        try:
            text = _text(text_at, speech[text_key], tlim.min, tlim.max)
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


def _plan_modify(task: Mapping[str, Any], spec: CapabilitySpec, layout: Layout, model: ModelSpec,
                 settings: Mapping[str, Any], images: Mapping[str, ImageInfo], media: Mapping[str, MediaInfo],
                 seed: int, notices: list[str]) -> JobPlan:
    """A source video changed by a prompt: the result has the source's shape (at the chosen tier),
    frame rate and length."""
    prompt_field = spec.prompt_fields["prompt"]
    lim = spec.text_limits["prompt"]
    if prompt_field not in task:
        raise missing(prompt_field, f"Send {lim.min}–{lim.max} characters.")
    _text(prompt_field, task[prompt_field], lim.min, lim.max)
    video_field = layout.video.removesuffix("[]")
    if not paths.get(task, layout.video)[0]:
        raise missing(video_field, "Modify needs one source video (a mediaUUID).")
    param, ref, video = _media_ref(task, layout.video, media, 1)
    vlim = spec.lipsync_limits
    if video.probe_error or not video.has_video:
        raise invalid(param, ref, f"Not a usable video: {video.probe_error or 'no video stream'}.")
    if video.duration is None or video.duration > vlim.video_max_seconds + 1e-3:
        raise invalid(param, ref, f"Video lasts {video.duration} s; the limit is {vlim.video_max_seconds:g} s.")
    if layout.reference_images:
        present, refs = paths.get(task, layout.reference_images)
        if present:
            if not isinstance(refs, list) or len(refs) != 1:
                raise invalid(layout.reference_images, refs, "Must be an array of one image.")
            _resolve_image(refs[0], f"{layout.reference_images}[0]", images)
    res = task.get("resolution", model.resolution_default)
    if res not in model.sizes:
        raise invalid("resolution", res, f"Unsupported resolution for {model.air}.", list(model.sizes))
    width, height = model.sizes[res][model.nearest_aspect_ratio(res, int(video.width), int(video.height))]
    _check_rules(spec, model, "modify", {**settings, "resolution": res}, notices)
    fps = video.fps or 24.0
    sound = _asks_for_sound(spec, model, settings) or video.has_audio
    return JobPlan(model=model.air, width=width, height=height, fps=float(round(fps)) if abs(fps - round(fps)) < 1e-3
                   else fps, duration=float(video.duration), with_audio=sound, seed=seed, notices=notices)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


__all__ = [
    "TaskError", "ImageInfo", "MediaInfo", "JobPlan", "validate_video_task", "probe_image",
    "probe_media", "decode_payload", "check_task_uuid", "is_uuid", "new_uuid",
    "FAKE_COST_PER_SECOND_USD", "KNOWN_VIDEO_FIELDS", "invalid", "missing", "unknown",
]
