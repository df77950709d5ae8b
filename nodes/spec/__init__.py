"""The capability spec: PixVerse's models, sizes, enumerations and limits as data.

`pixverse.json` beside this file is the only place any PixVerse list or number is written down.
Dropdowns, request validation, the web UI (through a route) and the local emulator all read it
through `load_spec()`. Adding a model or an effect is one edit to that file.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPEC_PATH = Path(__file__).with_name("pixverse.json")

Workflow = Literal["text-to-video", "image-to-video", "video-to-video"]


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
    values: tuple[int, ...]
    default: int

    @model_validator(mode="after")
    def _check(self) -> "IntChoice":
        if self.default not in self.values:
            raise ValueError(f"default {self.default} not in {self.values}")
        return self


class Range(_Frozen):
    min: int
    max: int


class FastMotionRevert(_Frozen):
    mode: str
    reverts_to: str
    when_duration: tuple[int, ...]
    when_resolution: tuple[str, ...]


class InputImageLimits(_Frozen):
    min_side: int
    max_side: int
    max_bytes: int


class LipSyncLimits(_Frozen):
    max_reference_videos: int
    max_input_audios: int
    video_max_seconds: float
    video_max_bytes: int
    audio_max_seconds: float


class Enums(_Frozen):
    style: Choice
    effect: Choice
    cameraMovement: Choice
    motionMode: Choice
    voice: Choice


class WireLayout(_Frozen):
    frame_images_layout: Literal["top_level_inputImage", "inputs_image"]
    prompt_field: str
    negative_prompt_field: str


class GenerationDefaults(_Frozen):
    fps: IntChoice
    duration: IntChoice
    resolution_default: str
    aspect_ratio_default: str
    frame_images: tuple[str, ...]
    provider_settings: tuple[str, ...]


# resolution tier -> aspect ratio -> (width, height)
SizeTable = dict[str, dict[str, tuple[int, int]]]


class _RawModel(_Frozen):
    key: str
    name: str
    air: str
    workflows: tuple[Workflow, ...]
    sizes: Optional[str] = None
    fps: Optional[IntChoice] = None
    duration: Optional[IntChoice] = None
    frame_images: Optional[tuple[str, ...]] = None
    provider_settings: Optional[tuple[str, ...]] = None
    inputs: tuple[str, ...] = ()


class ModelSpec(_Frozen):
    """One model with every inherited default resolved."""

    key: str
    name: str
    air: str
    workflows: tuple[Workflow, ...]
    sizes: SizeTable = Field(default_factory=dict)
    fps: Optional[IntChoice] = None
    duration: Optional[IntChoice] = None
    frame_images: tuple[str, ...] = ()
    provider_settings: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()

    @property
    def is_generator(self) -> bool:
        return "text-to-video" in self.workflows or "image-to-video" in self.workflows

    @property
    def label(self) -> str:
        return f"{self.name} ({self.air})"

    def supports(self, provider_setting: str) -> bool:
        return provider_setting in self.provider_settings

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
    wire: WireLayout
    enums: Enums
    mutually_exclusive: tuple[tuple[str, ...], ...]
    fast_motion_revert: FastMotionRevert
    text_limits: dict[str, Range]
    seed: Range
    input_image: InputImageLimits
    lipsync_limits: LipSyncLimits
    generation_defaults: GenerationDefaults
    models: tuple[ModelSpec, ...]

    @classmethod
    def from_raw(cls, raw: dict) -> "CapabilitySpec":
        raw = dict(raw)
        tables: dict[str, SizeTable] = raw.pop("size_tables")
        defaults = GenerationDefaults.model_validate(raw["generation_defaults"])
        models = []
        for entry in raw.pop("models"):
            m = _RawModel.model_validate(entry)
            data = m.model_dump(exclude_none=True)
            if m.sizes is not None:
                if m.sizes not in tables:
                    raise ValueError(f"model {m.key}: unknown size table {m.sizes!r}")
                data["sizes"] = tables[m.sizes]
            if "text-to-video" in m.workflows or "image-to-video" in m.workflows:
                for name in ("fps", "duration", "frame_images", "provider_settings"):
                    data.setdefault(name, getattr(defaults, name))
            models.append(data)
        spec = cls.model_validate({**raw, "models": models})
        spec._check_consistency()
        return spec

    def _check_consistency(self) -> None:
        keys = [m.key for m in self.models] + [m.air for m in self.models]
        if len(set(keys)) != len(keys):
            raise ValueError("model keys and AIR ids must be unique")
        known_settings = set(Enums.model_fields) | {"soundEffectSwitch", "soundEffectContent"}
        for m in self.models:
            unknown = set(m.provider_settings) - known_settings
            if unknown:
                raise ValueError(f"model {m.key}: unknown provider settings {sorted(unknown)}")
            if m.is_generator and (self.generation_defaults.resolution_default not in m.sizes
                                   or self.generation_defaults.aspect_ratio_default not in m.aspect_ratios):
                raise ValueError(f"model {m.key}: default size missing from its table")

    # -- look-ups ---------------------------------------------------------------------------

    def model(self, ident: str) -> ModelSpec:
        """Find a model by AIR id, key or display label. Raises KeyError naming the choices."""
        for m in self.models:
            if ident in (m.air, m.key, m.name, m.label):
                return m
        raise KeyError(ident)

    @property
    def generators(self) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if m.is_generator)

    @property
    def lipsync_models(self) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if "video-to-video" in m.workflows)

    def enum(self, name: str) -> Choice:
        return getattr(self.enums, name)

    def all_resolutions(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for m in self.generators:
            seen.update(dict.fromkeys(m.resolutions))
        return tuple(seen)

    def all_aspect_ratios(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for m in self.generators:
            seen.update(dict.fromkeys(m.aspect_ratios))
        return tuple(seen)

    def fast_motion_reverts(self, motion_mode: Optional[str], duration: int, resolution: Optional[str]) -> bool:
        rule = self.fast_motion_revert
        return motion_mode == rule.mode and (
            duration in rule.when_duration or resolution in rule.when_resolution)

    def to_public_json(self) -> dict:
        """What the web UI receives: the resolved spec, plain JSON."""
        return self.model_dump(mode="json")


@functools.lru_cache(maxsize=1)
def load_spec(path: Optional[str] = None) -> CapabilitySpec:
    with open(path or SPEC_PATH, encoding="utf-8") as fh:
        return CapabilitySpec.from_raw(json.load(fh))
