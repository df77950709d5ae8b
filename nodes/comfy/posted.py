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


def linked(unique_id: Any) -> set[str]:
    """Names of node `unique_id`'s inputs that arrive by link in the prompt being posted."""
    prompt = _PROMPT.get()
    node = prompt.get(str(unique_id)) if prompt is not None and unique_id is not None else None
    inputs = (node or {}).get("inputs") or {}
    return {k for k, v in inputs.items() if isinstance(v, list) and len(v) == 2}
