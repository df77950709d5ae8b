"""Where things go in a request, and what the spec's rules are checked against.

Used by the request builder (nodes/requests/tasks.py), the cost estimate and the emulator's validator, so that
each side reads and writes the wire the same way:

- a request path is dotted ("inputs.video", "providerSettings.pixverse.style"); a trailing "[]"
  means a one-item list ("referenceVideos[]"): `put` wraps the value, `get`/`pop` return the list;
- `wire_name` says where a node input goes in the request of a model (and layout);
- `rule_context` is the values a model's rules are matched against.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from . import CapabilitySpec, Layout, ModelSpec, Setting


def _parts(path: str) -> list[str]:
    return path.removesuffix("[]").split(".")


def put(task: dict, path: str, value: Any) -> dict:
    """Set `path` in `task` (creating parents); a trailing "[]" wraps the value in a one-item list."""
    if path.endswith("[]"):
        value = [value]
    *parents, leaf = _parts(path)
    node = task
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value
    return task


def get(task: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) of `path`; with a trailing "[]" the value is the list itself."""
    node: Any = task
    for name in _parts(path):
        if not isinstance(node, Mapping) or name not in node:
            return False, None
        node = node[name]
    return True, node


def pop(task: dict, path: str) -> Any:
    """Remove and return the value at `path` (None when absent); parents left empty go too."""
    *parents, leaf = _parts(path)
    chain, node = [], task
    for name in parents:
        if not isinstance(node.get(name), dict):
            return None
        chain.append((node, name))
        node = node[name]
    value = node.pop(leaf, None)
    for parent, name in reversed(chain):
        if not parent[name]:
            del parent[name]
    return value


def setting_wire(model: ModelSpec, setting: Setting) -> str:
    """Where `setting` goes in a request of `model`."""
    return f"{model.settings_at}.{setting.wire}" if model.settings_at else setting.wire


def wire_name(spec: CapabilitySpec, model: Optional[ModelSpec], parameter: str,
              layout: Optional[Layout] = None) -> str:
    """Where the node input `parameter` goes in a request of `model` in `layout` (its own name when it
    has no one place: an unknown name, or a layout field without a layout)."""
    if parameter in spec.prompt_fields:
        return spec.prompt_fields[parameter]
    if parameter in spec.speech_fields:
        return spec.speech_fields[parameter]
    if parameter in ("resolution", "aspect_ratio"):
        resolution_field = layout is not None and layout.image_to_video_size == "resolution"
        return "resolution" if resolution_field and parameter == "resolution" else "width/height"
    if layout is not None:
        if parameter in ("first_frame", "last_frame"):
            index = 0 if parameter == "first_frame" else 1
            return f"{layout.frame_images}[{index}].{layout.frame_image_key}"
        if parameter in ("video", "audio"):
            return getattr(layout, parameter).removesuffix("[]")
    try:
        setting = spec.setting(parameter)
    except KeyError:
        return parameter
    return setting_wire(model, setting) if model is not None else setting.wire


def rule_context(spec: CapabilitySpec, model: ModelSpec, settings: Mapping[str, Any],
                 frame_positions: Optional[Sequence[str]] = None, **core: Any) -> dict[str, Any]:
    """The values `model`'s rules are matched against: every setting of the model at its widget
    default, overridden by the chosen `settings` (None: not chosen), then the core choices
    (resolution, aspect_ratio, duration, fps: None when not sent) and, for a task with frame images,
    "last_frame": whether one of `frame_positions` is the last frame."""
    values = {s.input: s.widget_default for s in spec.settings_of(model)}
    values.update({k: v for k, v in settings.items() if v is not None})
    values.update(core)
    if frame_positions is not None:
        values["last_frame"] = "last" in frame_positions
    return values


def input_of_parameter(spec: CapabilitySpec, parameter: Optional[str]) -> Optional[str]:
    """The node input a Runware error's `parameter` (a wire path, maybe with an index) stands for, from the
    spec: the prompts, the speech fields, each layout's inputs and each setting; None when none matches."""
    if not parameter:
        return None
    pairs = [(wire, name) for name, wire in {**spec.prompt_fields, **spec.speech_fields}.items()]
    pairs.append((spec.speech_fields["speech_text"].rsplit(".", 1)[0], "speech_text"))  # the speech object
    for layout in spec.layouts.values():
        frames = _parts(layout.frame_images)
        pairs += [(".".join(frames), "first_frame / last_frame"), (layout.frame_image_key, "first_frame / last_frame"),
                  (".".join(_parts(layout.video)), "video"), (".".join(_parts(layout.audio)), "audio")]
        if layout.reference_images:
            pairs.append((".".join(_parts(layout.reference_images)), "reference_image"))
    pairs += [(s.wire, s.input) for s in spec.settings]
    base = parameter.split("[")[0]
    for wire, name in sorted(pairs, key=lambda p: -len(p[0])):  # the most specific path first
        if base == wire or base.endswith("." + wire) or base.startswith(wire + "."):
            return name
    return None
