"""What each model offers, computed from the capability spec: the one home of that logic.

The node widgets offer the union over models; the request builder refuses what is not offered (with
the rule's reason); the spec route serves each model's options to the web extension, which only
displays them; the emulator and the tests use the same functions as their expected answer.

A node kind is a generator kind of nodes/spec/kinds.py ("text_to_video", …); `values` are node input
values by input name (plus "last_frame": whether one is connected, for rules that depend on it;
`paths.rule_context` makes them from a task's choices).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from . import AUTO, NONE, SET, CapabilitySpec, ModelSpec, Rule, Setting, is_set, value_in
from .kinds import NODE_WORKFLOWS, workflow_of

ANY_TEXT = None  # in an options map: a text input that takes any text within its limits


def node_settings(spec: CapabilitySpec, kind: str) -> tuple[Setting, ...]:
    """The settings a node of `kind` has as widgets (motion settings arrive through a link)."""
    return tuple(s for s in spec.settings_for(workflow_of(kind)) if s.via is None)


def _unsupported_options(setting: Setting) -> list:
    """What a setting's widget may hold on a model that does not take it: only "not set"."""
    if setting.kind == "enum":
        return [NONE] if setting.optional else [setting.default]
    if setting.kind == "boolean":
        return [False]
    if setting.kind == "text":
        return [""]
    return [setting.widget_default]


def unsupported_value(setting: Setting) -> Any:
    """The one value a setting's widget holds on a model without that setting (never sent)."""
    return _unsupported_options(setting)[0]


def _setting_options(setting: Setting, model: ModelSpec) -> Optional[list]:
    if not model.supports(setting.input):
        return _unsupported_options(setting)
    if setting.kind == "enum":
        return list(setting.options)
    if setting.kind == "boolean":
        return [False, True]
    if setting.kind == "integer":
        return list(range(setting.min, setting.max + 1))
    return ANY_TEXT


def model_labels(spec: CapabilitySpec, kind: str) -> list[str]:
    return [m.label for m in spec.models_for(workflow_of(kind))]


def base_options(spec: CapabilitySpec, kind: str, model: ModelSpec, resolution: Optional[str] = None) -> dict:
    """Every choice `model` offers on a node of `kind` before rules between choices are applied.

    {input name: [allowed values]}; ANY_TEXT for free text. Aspect ratios are those of `resolution`
    (the model's default tier when it is not one of the model's)."""
    out: dict[str, Any] = {"model": model_labels(spec, kind)}
    if kind == "lipsync":
        voices = spec.voices
        out["voice"] = list(voices.values) if "speech" in model.inputs else [voices.default]
    if model.sizes:
        tier = resolution if resolution in model.sizes else model.resolution_default
        out["resolution"] = list(model.resolutions)
        aspects = list(model.sizes[tier])
        out["aspect_ratio"] = ([AUTO] if kind in ("image_to_video", "modify") else []) + aspects
    if model.durations is not None:
        out["duration"] = list(model.durations.all)
    if kind in ("text_to_video", "image_to_video"):
        out["fps"] = list(model.fps.all) if model.fps is not None else [fps_unset_value(spec)]
    for setting in spec.settings_for(workflow_of(kind)):  # motion settings too: rules may narrow them
        out[setting.input] = _setting_options(setting, model)
    return out


def fps_unset_value(spec: CapabilitySpec) -> int:
    """The fps widget's value on a model that takes no fps: the generators' usual default (not sent)."""
    listed = [m.fps.default for m in spec.generators if m.fps is not None]
    return listed[0] if listed else 24


def defaults(spec: CapabilitySpec, kind: str, model: ModelSpec) -> dict:
    """The value each input falls back to on `model`."""
    out: dict[str, Any] = {"model": model.label}
    if kind == "lipsync":
        out["voice"] = spec.voices.default
    if model.sizes:
        out["resolution"] = model.resolution_default
        out["aspect_ratio"] = AUTO if kind in ("image_to_video", "modify") else model.aspect_ratio_default
    if model.durations is not None:
        out["duration"] = model.durations.default
    if kind in ("text_to_video", "image_to_video"):
        out["fps"] = model.fps.default if model.fps is not None else fps_unset_value(spec)
    for setting in node_settings(spec, kind):
        out[setting.input] = setting.widget_default if model.supports(setting.input) \
            else _unsupported_options(setting)[0]
    return out


@dataclass
class Evaluation:
    """The options of one model for the current values, and what the rules say about them."""

    model: ModelSpec
    allowed: dict[str, Any]
    reasons: dict[str, str] = field(default_factory=dict)  # input → why its options were narrowed
    notices: list[str] = field(default_factory=list)
    told: dict[str, str] = field(default_factory=dict)  # input → why of a rule told instead of refusing it


def _restrict(current: Any, values: tuple, keep: bool) -> Any:
    """`current` options narrowed to (keep=True) or without (keep=False) the rule's values."""
    if current is ANY_TEXT:  # free text: only "set / not set" can be ruled on
        return current if keep or SET not in values else [""]
    if keep:
        return [v for v in current if value_in(v, values)]
    return [v for v in current if not value_in(v, values)]


def evaluate(spec: CapabilitySpec, kind: str, model: ModelSpec, values: dict) -> Evaluation:
    """`model`'s options given the current `values`: base options narrowed by every matching rule."""
    ev = Evaluation(model, base_options(spec, kind, model, values.get("resolution")))
    for rule in spec.rules_for(model):
        if not rule.matches(values):
            continue
        if rule.refuses and not spec.rule_binds(rule):
            _tell_instead(spec, ev, rule, values)
            continue
        for name, listed in rule.allow.items():
            if name in ev.allowed:
                ev.allowed[name] = _restrict(ev.allowed[name], listed, keep=True)
                ev.reasons[name] = rule.why
        for name, listed in rule.forbid.items():
            if name in ev.allowed or name in values:
                ev.allowed[name] = _restrict(ev.allowed.get(name, ANY_TEXT), listed, keep=False)
                ev.reasons[name] = rule.why
        if rule.notice:
            ev.notices.append(rule.notice)
    return ev


def _tell_instead(spec: CapabilitySpec, ev: Evaluation, rule: Rule, values: dict) -> None:
    """A refusing rule that may not refuse (Rule.binding, or Runware's schema decides): told when the
    current values break it; the options stay as they are (web/lib/rules.js does the same)."""
    broken = [name for name, listed in rule.allow.items() if name in values and not offered(listed, values[name])]
    broken += [name for name, listed in rule.forbid.items()
               if is_set(values.get(name)) and value_in(values.get(name), listed)]
    if rule.notice:
        ev.notices.append(rule.notice)
    if broken:
        ev.notices.append(f"{', '.join(broken)}: {telling(spec, rule)}")
        ev.told.update({name: rule.why for name in broken})


def telling(spec: CapabilitySpec, rule: Rule) -> str:
    """What a refusing rule that may not refuse says when the values break it."""
    if spec.rules_judged_by_schema:
        why_not = "Runware's schema for this model allows it, and it decides"
    else:
        doubt = f"the sources disagree: {rule.disputed}" if rule.disputed else f"{rule.confidence} confidence"
        why_not = f"{doubt}; Runware judges it, and a refused submit is not billed"
    return f"sent, not refused: {rule.why} ({why_not})"


def served_rule(spec: CapabilitySpec, rule: Rule) -> dict:
    """A rule as the web extension reads it; one that may not refuse carries `tells`, the notice it gives
    (after the names of the inputs that break it) instead of narrowing the options."""
    data = rule.model_dump(mode="json", exclude={"models", "source", "confidence", "disputed"})
    if rule.refuses and not spec.rule_binds(rule):
        data["tells"] = telling(spec, rule)
    return data


def offered(allowed: Any, value: Any) -> bool:
    """Whether `value` is among `allowed` options (ANY_TEXT: any text; an unset value always is)."""
    if allowed is ANY_TEXT or not is_set(value):
        return True
    return value_in(value, tuple(allowed))


def ignored_inputs(spec: CapabilitySpec, kind: str, model: ModelSpec) -> list[str]:
    """The inputs a node of `kind` has that `model` does not take: its widgets keep a value (saved
    workflows and prompts keep every input) but nothing of it is sent. The web extension hides the
    settings among them and marks the others (fps) as the model's own."""
    out = [s.input for s in node_settings(spec, kind) if not model.supports(s.input)]
    if kind in ("text_to_video", "image_to_video") and model.fps is None:
        out.append("fps")
    return out


def served(spec: CapabilitySpec) -> dict:
    """What the spec route serves the web extension: per node kind and model label, the model's base
    options (aspect ratios per resolution), defaults, sizes and the rules that apply to it. The
    extension narrows options with these rules exactly as `evaluate` does; it holds no list itself."""
    nodes: dict[str, Any] = {}
    for kind, workflow in NODE_WORKFLOWS.items():
        models = spec.models_for(workflow)
        if not models:
            continue
        entry: dict[str, Any] = {"default_model": spec.default_model(workflow).label
                                 if workflow in spec.default_models else models[0].label,
                                 "models": {}}
        for m in models:
            aspects = {res: base_options(spec, kind, m, res)["aspect_ratio"] for res in m.resolutions}
            entry["models"][m.label] = {
                "air": m.air, "name": m.name, "key": m.key, "settings": list(m.settings),
                "options": base_options(spec, kind, m),
                "aspect_ratios": aspects,
                "defaults": defaults(spec, kind, m),
                "sizes": {res: {ar: list(wh) for ar, wh in row.items()} for res, row in m.sizes.items()},
                "rules": [served_rule(spec, r) for r in spec.rules_for(m)],
                "new_on_runware": m.new_on_runware,
                "ignores": ignored_inputs(spec, kind, m),
            }
        nodes[kind] = entry
    return nodes


def summary_lines(spec: CapabilitySpec) -> list[str]:
    """`python -m nodes options`: every model's choices, as text."""
    lines = []
    for m in spec.models:
        lines.append(f"{m.label}: {', '.join(m.workflows)}; layouts {', '.join(m.layouts)}"
                     + ("  [default for " + ", ".join(w for w, k in spec.default_models.items() if k == m.key) + "]"
                        if m.key in spec.default_models.values() else ""))
        for res, row in m.sizes.items():
            lines.append(f"  {res}: " + ", ".join(f"{ar} {w}x{h}" for ar, (w, h) in row.items()))
        if m.durations is not None:
            d = m.durations
            span = f"{d.min}-{d.max}" if d.values is None else ", ".join(map(str, d.values))
            lines.append(f"  duration {span} s (default {d.default})")
        if m.fps is not None:
            lines.append(f"  fps {', '.join(map(str, m.fps.all))} (default {m.fps.default})")
        for s in spec.settings_of(m):
            allowed = s.describe_allowed()
            shown = ", ".join(map(str, allowed)) if isinstance(allowed, list) else allowed
            lines.append(f"  {s.input}: {shown}" + (f" (default {s.default})" if s.default not in (None, "") else ""))
        for r in spec.rules_for(m):
            if r.models:
                lines.append(f"  rule: when {r.when}: " + (r.why or r.notice))
    return lines
