"""What the prompt-driven workflows share: the core choices (model, prompt, size, length, seed), the
spec's settings as widgets and as CLI flags, and parsed flags → widget values. Names no workflow: each
slice passes its own kind and spec workflow."""
from __future__ import annotations

import argparse
from typing import Any, Optional

from ..requests.widgets import Widget, model_options, motion_widget, setting_widget, union
from ..spec import AUTO, CapabilitySpec
from ..spec.kinds import workflow_of
from ..spec.options import fps_unset_value, node_settings


def core_widgets(spec: CapabilitySpec, kind: str, *, auto_aspect: bool = False) -> list[Widget]:
    """The generators' choices, then one widget per setting and the motion input. Order is public (saved
    workflows store widget values by position): new inputs are only ever appended. `auto_aspect`: the
    first frame's shape picks the aspect ratio by default."""
    workflow = workflow_of(kind)
    models = spec.models_for(workflow)
    default = spec.default_model(workflow)
    lim = spec.text_limits
    aspects = ((AUTO,) if auto_aspect else ()) + union(m.aspect_ratios for m in models)
    durations = union(m.durations.all for m in models)
    fps = union([fps_unset_value(spec)] if m.fps is None else m.fps.all for m in models)
    widgets = [
        Widget("model", "combo", "PixVerse model (Runware AIR id in brackets).", model_options(spec, workflow),
               default.label),
        Widget("prompt", "text", f"What happens in the video ({lim['prompt'].min}-{lim['prompt'].max} characters).",
               default=""),
        Widget("negative_prompt", "text", "What to avoid (optional; "
               f"{lim['negative_prompt'].min}-{lim['negative_prompt'].max} characters when set).", default=""),
        Widget("aspect_ratio", "combo",
               ("auto picks the listed size nearest to the first frame's shape. " if auto_aspect else "")
               + "Width:height of the video; with the resolution it gives one of the model's listed sizes.",
               aspects, AUTO if auto_aspect else default.aspect_ratio_default),
        Widget("resolution", "combo", "Resolution tier (height of a landscape video).",
               union(m.resolutions for m in models), default.resolution_default),
        Widget("duration", "combo", "Length in seconds (each model offers its own lengths).",
               tuple(sorted(durations)), default.durations.default),
        Widget("fps", "combo", "Frames per second (models without an fps choice ignore it: their videos come "
               "at their own rate).", tuple(sorted(fps)),
               default.fps.default if default.fps else fps_unset_value(spec)),
        seed_widget(spec),
    ]
    widgets += [setting_widget(s, spec, workflow) for s in node_settings(spec, kind)]
    motion = motion_widget(spec, workflow)
    if motion is not None:
        widgets.append(motion)
    return widgets


def seed_widget(spec: CapabilitySpec) -> Widget:
    return Widget("seed", "int", "Seed; the same seed and settings give a similar video.", default=0,
                  min=spec.seed.min, max=spec.seed.max, control_after_generate=True)


def flag(input_name: str) -> str:
    return "--" + input_name.replace("_", "-")


def add_flags(p: argparse.ArgumentParser, spec: CapabilitySpec, workflow: str, *, shaped: bool = True) -> None:
    """Flags from the spec: the core choices, then one flag per setting any model of `workflow` takes.
    `shaped=False` (the source video gives shape, length and frame rate): no negative prompt, aspect
    ratio, duration or fps."""
    models = spec.models_for(workflow)
    default = spec.default_model(workflow)
    p.add_argument("--model", default=default.air, help="AIR id or name: " + ", ".join(m.air for m in models))
    p.add_argument("--prompt", required=True)
    p.add_argument("--resolution", default=None,
                   help=f"{', '.join(dict.fromkeys(r for m in models for r in m.resolutions))} "
                        "(default: the model's, see `options`)")
    if shaped:
        p.add_argument("--negative-prompt", default="")
        p.add_argument("--aspect-ratio", default=None,
                       help=", ".join(dict.fromkeys(a for m in models for a in m.aspect_ratios))
                       + " (default: the model's; image-to-video: auto, nearest to the first frame)")
        p.add_argument("--duration", type=int, default=None, help="seconds; each model's lengths: `options`")
        p.add_argument("--fps", type=int, default=None, help="frames per second, where the model takes it")
    p.add_argument("--seed", type=int, default=None)
    add_setting_flags(p, spec, workflow)


def add_setting_flags(p: argparse.ArgumentParser, spec: CapabilitySpec, workflow: str) -> None:
    """One flag per setting any model of `workflow` takes, as the spec describes it."""
    for setting in spec.settings_for(workflow):
        takers = ", ".join(m.name for m in spec.models_taking(setting.input))
        help_text = f"{setting.tooltip} ({takers})"
        if setting.kind == "boolean":
            p.add_argument(flag(setting.input), dest=setting.input, action="store_true", default=None,
                           help=help_text)
        elif setting.kind == "integer":
            p.add_argument(flag(setting.input), dest=setting.input, type=int, default=None, help=help_text)
        else:
            shown = ": " + ", ".join(setting.values) if setting.kind == "enum" else ""
            p.add_argument(flag(setting.input), dest=setting.input, default=None, help=help_text + shown)
    p.set_defaults(setting_inputs=[s.input for s in spec.settings_for(workflow)],
                   motion_inputs=[s.input for s in spec.settings_for(workflow) if s.via is not None])


def values_from_flags(args: argparse.Namespace, *, aspect_default: Optional[str] = None) -> dict[str, Any]:
    """generate's parsed flags → the widget values a node of the workflow has (a motion setting as the
    motion link's value)."""
    settings = {name: getattr(args, name) for name in args.setting_inputs if getattr(args, name) is not None}
    motion = {name: settings.pop(name) for name in list(settings) if name in args.motion_inputs}
    values: dict[str, Any] = {
        "model": args.model, "prompt": args.prompt, "negative_prompt": getattr(args, "negative_prompt", ""),
        "resolution": args.resolution, "aspect_ratio": getattr(args, "aspect_ratio", None) or aspect_default,
        "duration": getattr(args, "duration", None), "fps": getattr(args, "fps", None), "seed": args.seed,
        **settings}
    if motion:
        values["motion"] = motion
    return values
