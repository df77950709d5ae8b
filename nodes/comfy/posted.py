"""The prompt being posted to /prompt, for the nodes' queue-time check.

A V3 node's `validate_inputs` switches ComfyUI's own checks (min/max, combo options) off for every
input it names, and ComfyUI repeats its message once per named input. So the PixVerse nodes name
a single input and read the others here: ComfyUI's on-prompt hook runs in the same request just
before validation, and a context variable set there is seen by the validation that follows (and by
nothing else: each request has its own context). ComfyUI converts the values in place while it
checks them, so what is read here is what the node will get.
"""
from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Optional

from ..spec.kinds import BY_KIND, MOTION_NODES
from ..workflows import WORKFLOWS

_PROMPT: ContextVar[Optional[dict]] = ContextVar("pixverse_posted_prompt", default=None)


def on_prompt(json_data: dict) -> dict:
    """ComfyUI's on-prompt hook: remember this request's prompt (the same dict ComfyUI validates)."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    _PROMPT.set(prompt if isinstance(prompt, dict) else None)
    return json_data


def node_values(unique_id: Any) -> Optional[dict[str, Any]]:
    """The widget values of node `unique_id` in the prompt being posted (linked inputs left out),
    or None when no prompt is being posted here (then the node checks its inputs when it runs)."""
    prompt = _PROMPT.get()
    node = prompt.get(str(unique_id)) if prompt is not None and unique_id is not None else None
    if not isinstance(node, dict):
        return None
    inputs = node.get("inputs") or {}
    return {k: v for k, v in inputs.items() if not (isinstance(v, list) and len(v) == 2)}


def motion_from(prompt: dict, link: list) -> Optional[dict]:
    """What a PixVerse Effect or Camera node at the other end of `link` sends, when its value is
    written in the prompt; None for any other source."""
    source = prompt.get(str(link[0])) or {}
    for kind, setting in MOTION_NODES.items():
        if source.get("class_type") == BY_KIND[kind].node_id:
            value = (source.get("inputs") or {}).get(setting)
            return {setting: value} if isinstance(value, str) else None
    return None


def connection_matters() -> set[str]:
    """Optional uploads whose mere connection changes the request (a last frame, a reference image): the
    media the workflows' drafts do not assume (nodes/workflows/)."""
    return {m.name for w in WORKFLOWS.values() for m in w.media if not m.assumed}



def linked_stand_ins(unique_id: Any) -> dict[str, Any]:
    """For node `unique_id`'s linked inputs, what the draft request can know at queue time: the
    motion a PixVerse Effect/Camera node sends, and True for a connected last frame or reference image."""
    prompt = _PROMPT.get()
    node = prompt.get(str(unique_id)) if prompt is not None and unique_id is not None else None
    found: dict[str, Any] = {}
    for name, value in ((node or {}).get("inputs") or {}).items():
        if not (isinstance(value, list) and len(value) == 2):
            continue
        if name == "motion":
            motion = motion_from(prompt, value)
            if motion is not None:
                found["motion"] = motion
        elif name in connection_matters():
            found[name] = True
    return found
