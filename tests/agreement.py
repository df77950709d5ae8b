"""Builder vs emulator: both must accept and refuse the same choices, for any spec.

Walks, for every generator model of a spec, every listed size × duration × fps, and every value of
every setting the spec describes (on models that take it and on models that do not), and returns the
cases where the builder (our side) and the emulator (Runware's side) disagree. Used by the agreement
tests for the real spec and for a spec with a made-up model and setting.
"""
from __future__ import annotations

import itertools
from typing import Optional

from nodes.emulator.validate import TaskError, validate_video_task
from nodes.errors import PixVerseInputError
from nodes.spec import CapabilitySpec, ModelSpec
from nodes.spec.paths import put as _put, setting_wire
from nodes.requests.tasks import GenerationChoices, build_in_any_layout, build_text_to_video


def emulator_accepts(task: dict, spec: CapabilitySpec, layouts: Optional[tuple] = None) -> bool:
    try:
        validate_video_task({**task, "deliveryMethod": "async", "includeCost": True}, spec, {}, {},
                            layouts=layouts)
        return True
    except TaskError:
        return False


def setting_values(setting) -> list:
    if setting.kind == "enum":
        return list(setting.values) + ["not-a-value"]
    if setting.kind == "boolean":
        return [True]
    if setting.kind == "text":
        return ["a sound of rain", "x"]
    return [setting.min, setting.max, setting.max + 1]


def base_task(spec: CapabilitySpec, model: ModelSpec, **kw) -> dict:
    """The task in the first of the model's layouts that can express it (what the pipeline sends)."""
    choices = GenerationChoices(model=model.air, prompt="a paper boat on a stream", **kw)
    return build_in_any_layout(model, lambda layout: build_text_to_video(choices, spec=spec, layout=layout)).task


def disagreements(spec: CapabilitySpec, models: Optional[list] = None) -> tuple[int, list[str]]:
    """(cases checked, descriptions of cases where builder and emulator disagree)."""
    checked, bad = 0, []
    for model in models or spec.generators:
        fps_values = list(model.fps.all) if model.fps else [None]
        for (w, h), duration, fps in itertools.product(model.all_sizes(), model.durations.all, fps_values):
            kw = dict(width=w, height=h, duration=duration, fps=fps)
            try:
                task = base_task(spec, model, **kw)
                ours = True
            except PixVerseInputError:
                task, ours = _put(base_task(spec, model), "duration", duration), False
                task.update(width=w, height=h)
            theirs = emulator_accepts(task, spec)
            checked += 1
            if ours != theirs:
                bad.append(f"{model.air} {w}x{h} {duration}s fps {fps}: builder {ours}, emulator {theirs}")
        for setting in spec.settings:
            wire = setting_wire(model, setting) if model.settings_at else f"providerSettings.{spec.provider}.{setting.wire}"
            for value in setting_values(setting):
                choices = {setting.input: value}
                if setting.input == "sound_effect_content":
                    choices["sound_effects"] = True
                try:
                    task = base_task(spec, model, **choices)
                    ours = True
                except PixVerseInputError:
                    ours = False
                    task = base_task(spec, model, **{k: v for k, v in choices.items() if k != setting.input}) \
                        if model.supports("sound_effects") or setting.input != "sound_effect_content" \
                        else base_task(spec, model)
                    task = _put(task, wire, value)
                theirs = emulator_accepts(task, spec)
                checked += 1
                if ours != theirs:
                    bad.append(f"{model.air} {setting.input}={value!r}: builder {ours}, emulator {theirs}")
    return checked, bad
