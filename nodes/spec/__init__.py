"""The capability spec: PixVerse's models, settings, sizes, rules and limits as data.

`pixverse.json` beside this file is where PixVerse's lists and numbers are written down, and the wire
names of everything that varies by model or layout: prompts, settings, speech, input paths. Only the
fixed fields of Runware's videoInference task (model, width, height, resolution, duration, fps, seed)
are spelled by the request builder (nodes/requests/tasks.py). Dropdowns, CLI flags, request building and
validation, the web UI (through a route) and the local emulator all read it through `load_spec()`.
Beside it: what each model offers (`options.py`), request paths, wire names and the rules' values
(`paths.py`), and the pack's node kinds (`kinds.py`). A new model, setting or effect is one edit to
the JSON file.

May import: nothing of the pack (it is the bottom layer).
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPEC_PATH = Path(__file__).with_name("pixverse.json")

Workflow = Literal["text-to-video", "image-to-video", "video-to-video", "modify"]
Scalar = Union[bool, int, float, str]

# Widget values that mean "not set": the field is left out of the request (Runware's default applies).
NONE = "none"
AUTO = "auto"
SET = "$set"  # in a rule: "any value that is set"


def is_set(value: Any) -> bool:
    """False for the values that leave a setting out of the request: None, "", "none", False."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", NONE)
    return True


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Choice(_Frozen):
    """An enumeration with an optional default and optional human labels."""

    values: tuple[str, ...]
    default: Optional[str] = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "Choice":
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"duplicate values in {self.values}")
        if self.default is not None and self.default not in self.values:
            raise ValueError(f"default {self.default!r} not in {self.values}")
        if set(self.labels) - set(self.values):
            raise ValueError(f"labels for unknown values: {set(self.labels) - set(self.values)}")
        return self


class IntChoice(_Frozen):
    """Whole numbers: a list (`values`) or a range (`min`..`max`), with a default."""

    values: Optional[tuple[int, ...]] = None
    min: Optional[int] = None
    max: Optional[int] = None
    default: int

    @model_validator(mode="after")
    def _check(self) -> "IntChoice":
        if (self.values is None) == (self.min is None or self.max is None):
            raise ValueError("give either values or min and max")
        if self.default not in self.all:
            raise ValueError(f"default {self.default} not in {list(self.all)}")
        return self

    @property
    def all(self) -> tuple[int, ...]:
        return self.values if self.values is not None else tuple(range(self.min, self.max + 1))


class Range(_Frozen):
    min: int
    max: int


class Setting(_Frozen):
    """One user-facing setting: its node input, where it goes in the request, its kind and limits.

    `wire` is relative to the model's `settings_at` object (e.g. providerSettings.pixverse).
    `optional` enums offer "none" (not sent); booleans are sent only when true; text only when set.
    `via: motion` settings come from an Effect/Camera node through the generators' motion input."""

    input: str
    kind: Literal["enum", "boolean", "text", "integer"]
    wire: str
    tooltip: str
    values: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    default: Optional[Scalar] = None
    optional: bool = False
    min: Optional[int] = None
    max: Optional[int] = None
    via: Optional[Literal["motion"]] = None
    makes_sound: bool = False  # a PixVerse fact: on (true), the video comes with a sound track
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> "Setting":
        if self.kind == "enum":
            Choice(values=self.values, default=self.default, labels=self.labels)
            if not self.optional and self.default is None:
                raise ValueError(f"setting {self.input}: a required enum needs a default")
        if self.kind in ("text", "integer") and (self.min is None or self.max is None):
            raise ValueError(f"setting {self.input}: {self.kind} needs min and max")
        return self

    @property
    def options(self) -> tuple:
        """What a dropdown offers (enums only): "none" first for an optional enum."""
        return ((NONE,) if self.optional else ()) + self.values

    @property
    def widget_default(self) -> Any:
        if self.kind == "enum":
            return self.default if self.default is not None else NONE
        if self.kind == "boolean":
            return bool(self.default)
        if self.kind == "text":
            return self.default or ""
        return self.default if self.default is not None else self.min

    def describe_allowed(self) -> Any:
        if self.kind == "enum":
            return list(self.values)
        if self.kind == "boolean":
            return [False, True]
        if self.kind == "text":
            return f"{self.min}-{self.max} characters"
        return f"whole numbers {self.min}-{self.max}"


class Rule(_Frozen):
    """A constraint between choices, as data. When every `when` input has one of its values
    (SET: any set value), `allow` limits inputs to the listed values, `forbid` refuses the listed
    values, and `notice` is told to the user (nothing refused). `models`: keys, or all models."""

    when: dict[str, tuple[Scalar, ...]]
    models: Optional[tuple[str, ...]] = None
    allow: dict[str, tuple[Scalar, ...]] = Field(default_factory=dict)
    forbid: dict[str, tuple[Scalar, ...]] = Field(default_factory=dict)
    why: str = ""
    notice: str = ""
    source: str = ""
    # How sure the sources are (docs/runware-sources.md): "high" = Runware's own page or SDK states it.
    confidence: Literal["high", "medium", "low"] = "high"
    disputed: str = ""  # set when sources disagree: which ones, in a few words

    @property
    def binding(self) -> bool:
        """Whether the rule may refuse when no Runware schema was read: high confidence, undisputed.
        Any other refusing rule is told as a notice and the request is sent (a refused submit is free)."""
        return self.confidence == "high" and not self.disputed

    @property
    def refuses(self) -> bool:
        return bool(self.allow or self.forbid)

    @model_validator(mode="after")
    def _check(self) -> "Rule":
        if not (self.allow or self.forbid or self.notice):
            raise ValueError(f"rule {self.when}: give allow, forbid or notice")
        if (self.allow or self.forbid) and not self.why:
            raise ValueError(f"rule {self.when}: a refusing rule needs a why")
        return self

    def applies_to(self, model: "ModelSpec") -> bool:
        return self.models is None or model.key in self.models

    def matches(self, values: dict[str, Any]) -> bool:
        return all(value_in(values.get(name), listed) for name, listed in self.when.items())


def value_in(value: Any, listed: tuple) -> bool:
    """Whether a choice is one of a rule's values (SET matches any set value; 8 matches "8")."""
    for v in listed:
        if v == SET:
            if is_set(value):
                return True
        elif isinstance(v, bool) or isinstance(value, bool):
            if v is value:
                return True
        elif v == value or str(v) == str(value):
            return True
    return False


class InputImageLimits(_Frozen):
    min_side: int  # what the provider accepts
    max_side: int
    max_bytes: int
    upload_max_side: Optional[int] = None  # what is sent: Runware keeps no more (see `source`)
    upload_max_bytes: Optional[int] = None  # PNG under it, else the best JPEG under it
    source: Optional[str] = None


class LipSyncLimits(_Frozen):
    max_reference_videos: int
    max_input_audios: int
    video_max_seconds: float
    video_max_bytes: int
    audio_max_seconds: float
    frames_max_side: Optional[int] = None  # a video built from frames is scaled down to this long side
    source: Optional[str] = None


class Layout(_Frozen):
    """Where a request layout puts the inputs (the seed page's and Runware's current one; each
    layout's `description` says where it comes from).

    Paths are dotted; a trailing "[]" means a one-item list. `image_to_video_size`: what gives the
    size of an image-to-video task: "width_height" (the listed size) or "resolution" (the tier; the
    video takes the first frame's shape)."""

    description: str
    frame_images: str
    frame_image_key: str
    video: str
    audio: str
    reference_images: Optional[str] = None
    image_to_video_size: Literal["width_height", "resolution"]
    sends_fps: bool = True  # whether fps can be sent at all (else only the model's default, by omission)
    source: str = ""


class ModelDefaults(_Frozen):
    fps: Optional[IntChoice] = None
    durations: Optional[IntChoice] = None
    resolution_default: Optional[str] = None
    aspect_ratio_default: Optional[str] = None
    frame_images: tuple[str, ...] = ()
    settings_at: str = ""
    settings: tuple[str, ...] = ()


# resolution tier -> aspect ratio -> (width, height)
SizeTable = dict[str, dict[str, tuple[int, int]]]


class _RawModel(_Frozen):
    key: str
    name: str
    air: str
    workflows: tuple[Workflow, ...]
    defaults: Optional[str] = None  # a model_defaults entry; generators take "generator" unless set
    sizes: Optional[str] = None
    fps: Optional[IntChoice] = None
    durations: Optional[IntChoice] = None
    resolution_default: Optional[str] = None
    aspect_ratio_default: Optional[str] = None
    frame_images: Optional[tuple[str, ...]] = None
    settings_at: Optional[str] = None
    settings: Optional[tuple[str, ...]] = None
    inputs: tuple[str, ...] = ()
    layouts: Optional[tuple[str, ...]] = None
    source: str = ""


class ModelSpec(ModelDefaults):
    """One model with every inherited default resolved (the fields it can inherit: ModelDefaults)."""

    key: str
    name: str
    air: str
    workflows: tuple[Workflow, ...]
    sizes: SizeTable = Field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    layouts: tuple[str, ...] = ()
    source: str = ""
    # Read from Runware's registry, not described by pixverse.json: its choices are those of the newest
    # described model of its family, narrowed by its schema (nodes/requests/schema.py); it never runs
    # without that schema.
    new_on_runware: bool = False

    @property
    def is_generator(self) -> bool:
        return "text-to-video" in self.workflows or "image-to-video" in self.workflows

    @property
    def label(self) -> str:
        return f"{self.air} (new on Runware)" if self.new_on_runware else f"{self.name} ({self.air})"

    def supports(self, setting_input: str) -> bool:
        return setting_input in self.settings

    @property
    def resolutions(self) -> tuple[str, ...]:
        return tuple(self.sizes)

    @property
    def aspect_ratios(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for row in self.sizes.values():
            seen.update(dict.fromkeys(row))
        return tuple(seen)

    def all_sizes(self) -> list[tuple[int, int]]:
        return [wh for row in self.sizes.values() for wh in row.values()]

    def size(self, resolution: str, aspect_ratio: str) -> Optional[tuple[int, int]]:
        return self.sizes.get(resolution, {}).get(aspect_ratio)

    def locate_size(self, width: int, height: int) -> Optional[tuple[str, str]]:
        """(resolution, aspect_ratio) of a listed size, or None."""
        for resolution, row in self.sizes.items():
            for aspect, wh in row.items():
                if wh == (width, height):
                    return resolution, aspect
        return None

    def nearest_aspect_ratio(self, resolution: str, width: int, height: int) -> str:
        """The listed aspect ratio of `resolution` closest (in log ratio) to width:height."""
        target = math.log(width / height)
        row = self.sizes[resolution]
        return min(row, key=lambda ar: abs(math.log(row[ar][0] / row[ar][1]) - target))


class CapabilitySpec(_Frozen):
    provider: str
    docs_url: str
    sources: dict[str, str] = Field(default_factory=dict)
    prompt_fields: dict[str, str]
    speech_fields: dict[str, str]  # lipsync's text-to-speech inputs → their wire paths
    layouts: dict[str, Layout]
    default_layouts: tuple[str, ...]  # the layouts a model speaks unless it says, preferred first
    layout_fields_extra: tuple[str, ...] = ()  # besides the layouts' own fields, what a refusal may name
    settings: tuple[Setting, ...]
    rules: tuple[Rule, ...] = ()
    voices: Choice
    text_limits: dict[str, Range]
    seed: Range
    input_image: InputImageLimits
    lipsync_limits: LipSyncLimits
    default_models: dict[str, str]
    models: tuple[ModelSpec, ...]
    # True in the copy a request is built with when Runware's schema for its model was read: that schema
    # decides, and every rule of ours is told as a notice (`judged_by_schema`).
    rules_judged_by_schema: bool = False

    @classmethod
    def from_raw(cls, raw: dict) -> "CapabilitySpec":
        raw = dict(raw)
        tables: dict[str, SizeTable] = raw.pop("size_tables")
        defaults = {name: ModelDefaults.model_validate(d) for name, d in raw.pop("model_defaults", {}).items()}
        models = []
        for entry in raw.pop("models"):
            m = _RawModel.model_validate(entry)
            data = m.model_dump(exclude_none=True, exclude={"defaults"})
            data.update({k: None for k, v in entry.items() if v is None})  # null: explicitly none (no fps)
            generator = "text-to-video" in m.workflows or "image-to-video" in m.workflows
            base_name = m.defaults or ("generator" if generator else None)
            if base_name is not None:
                if base_name not in defaults:
                    raise ValueError(f"model {m.key}: unknown model_defaults {base_name!r}")
                for name, value in defaults[base_name].model_dump(exclude_none=True).items():
                    data.setdefault(name, value)
            if m.sizes is not None:
                if m.sizes not in tables:
                    raise ValueError(f"model {m.key}: unknown size table {m.sizes!r}")
                data["sizes"] = tables[m.sizes]
            data.setdefault("layouts", tuple(raw.get("default_layouts", ())))
            models.append(data)
        spec = cls.model_validate({**raw, "models": models})
        spec._check_consistency()
        return spec

    def _check_consistency(self) -> None:
        keys = [m.key for m in self.models] + [m.air for m in self.models]
        if len(set(keys)) != len(keys):
            raise ValueError("model keys and AIR ids must be unique")
        names = [s.input for s in self.settings]
        if len(set(names)) != len(names):
            raise ValueError("setting inputs must be unique")
        if not self.default_layouts or set(self.default_layouts) - set(self.layouts):
            raise ValueError(f"default_layouts {self.default_layouts} must name layouts")
        for m in self.models:
            unknown = set(m.settings) - set(names)
            if unknown:
                raise ValueError(f"model {m.key}: unknown settings {sorted(unknown)}")
            if m.settings and not m.settings_at:
                raise ValueError(f"model {m.key}: settings need settings_at (where they go in the request)")
            for layout in m.layouts:
                if layout not in self.layouts:
                    raise ValueError(f"model {m.key}: unknown layout {layout!r}")
            if m.is_generator:
                if m.durations is None:
                    raise ValueError(f"model {m.key}: a generator needs durations")
                if m.resolution_default not in m.sizes or m.aspect_ratio_default not in m.aspect_ratios:
                    raise ValueError(f"model {m.key}: default size missing from its table")
        model_keys = {m.key for m in self.models}
        for rule in self.rules:
            if rule.models and set(rule.models) - model_keys:
                raise ValueError(f"rule {rule.when}: unknown models {sorted(set(rule.models) - model_keys)}")
        for workflow, key in self.default_models.items():
            model = self.model(key)
            if workflow not in model.workflows:
                raise ValueError(f"default model {key} for {workflow} does not do {workflow}")

    # -- look-ups ---------------------------------------------------------------------------

    def model(self, ident: str) -> ModelSpec:
        """Find a model by AIR id, key or display label. Raises KeyError."""
        for m in self.models:
            if ident in (m.air, m.key, m.name, m.label):
                return m
        raise KeyError(ident)

    def models_for(self, workflow: str) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if workflow in m.workflows)

    def default_model(self, workflow: str) -> ModelSpec:
        return self.model(self.default_models[workflow])

    @property
    def generators(self) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if m.is_generator)

    @property
    def lipsync_models(self) -> tuple[ModelSpec, ...]:
        return self.models_for("video-to-video")

    def setting(self, input_name: str) -> Setting:
        for s in self.settings:
            if s.input == input_name:
                return s
        raise KeyError(input_name)

    def settings_of(self, model: ModelSpec) -> tuple[Setting, ...]:
        """The model's settings, in the spec's order."""
        return tuple(s for s in self.settings if s.input in model.settings)

    def settings_for(self, workflow: str) -> tuple[Setting, ...]:
        """Every setting some model of `workflow` takes, in the spec's order (what a node offers)."""
        used = {name for m in self.models_for(workflow) for name in m.settings}
        return tuple(s for s in self.settings if s.input in used)

    def motion_settings(self) -> tuple[Setting, ...]:
        return tuple(s for s in self.settings if s.via == "motion")

    def models_taking(self, setting_input: str) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if m.supports(setting_input))

    def rules_for(self, model: ModelSpec) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.applies_to(model))

    def layout(self, name: str) -> Layout:
        return self.layouts[name]

    def layout_fields(self) -> set[str]:
        """Top-level fields that differ between layouts (a refusal naming one may be the layout's fault)."""
        fields = set(self.layout_fields_extra)
        for layout in self.layouts.values():
            for path in (layout.frame_images, layout.video, layout.audio, layout.reference_images):
                if path:
                    fields.add(path.removesuffix("[]").split(".")[0])
            if layout.image_to_video_size == "resolution":
                fields.add("resolution")
        return fields

    def judged_by_schema(self) -> "CapabilitySpec":
        """This spec with its rules between choices told as notices: Runware's schema was read and decides."""
        return self.model_copy(update={"rules_judged_by_schema": True})

    def rule_binds(self, rule: Rule) -> bool:
        """Whether `rule` refuses (else its refusal is told as a notice): see Rule.binding."""
        return rule.binding and not self.rules_judged_by_schema

    def with_models(self, extra: tuple[ModelSpec, ...]) -> "CapabilitySpec":
        """This spec with models read from Runware's registry added (ModelSpec.new_on_runware)."""
        known = {m.air for m in self.models}
        added = tuple(m for m in extra if m.air not in known)
        return self.model_copy(update={"models": self.models + added}) if added else self

    def to_public_json(self) -> dict:
        """The resolved spec, plain JSON."""
        return self.model_dump(mode="json")


@functools.lru_cache(maxsize=4)
def _read_spec(path: str) -> CapabilitySpec:
    with open(path, encoding="utf-8") as fh:
        return CapabilitySpec.from_raw(json.load(fh))


# Models Runware's registry lists and pixverse.json does not describe (set by nodes/requests/schema.py
# `discover`, at ComfyUI's start and by the CLI): every reader of `load_spec()` sees them.
_discovered: tuple[ModelSpec, ...] = ()


def set_discovered(models: tuple[ModelSpec, ...]) -> None:
    """Make `models` (ModelSpec.new_on_runware) part of what `load_spec()` answers from now on."""
    global _discovered
    _discovered = tuple(models)
    _with_discovered.cache_clear()


@functools.lru_cache(maxsize=4)
def _with_discovered(path: str) -> CapabilitySpec:
    return _read_spec(path).with_models(_discovered)  # cleared whenever _discovered changes


def load_spec(path: Optional[str] = None, *, described_only: bool = False) -> CapabilitySpec:
    """The spec from `path`, or from PIXVERSE_SPEC_PATH, or the one beside this file; with the models
    Runware's registry added (`set_discovered`) unless `described_only`."""
    import os

    chosen = str(path or os.environ.get("PIXVERSE_SPEC_PATH") or SPEC_PATH)
    if described_only or not _discovered:
        return _read_spec(chosen)
    return _with_discovered(chosen)
