"""Which request layout a task goes out in, and the one safe fallback when Runware refuses it.

Runware documents two layouts for PixVerse (the spec's `layouts`: its current one and the seed
page's). Which the live API takes cannot be known offline, so: each model's spec lists the layouts it
speaks, preferred first; the configuration (nodes/config.py `LAYOUT`) can force one; a layout
the server took for a model is remembered (a small JSON file beside the job ledger) so the next run
goes straight to it. When a submit is refused with a validation error that names a layout field, the
task is rebuilt in the model's other layout and submitted once more: a refused submit created no task
and cost nothing, and nothing is ever re-sent after a task was accepted.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .. import config
from ..errors import PixVerseInputError, RunwareError, RunwareValidationError
from ..spec import CapabilitySpec, ModelSpec

AUTO = config.AUTO
MEMORY_FILENAME = "pixverse-layouts.json"

log = logging.getLogger("pixverse")


@dataclass(frozen=True)
class LayoutChoice:
    name: str
    reason: str
    forced: bool = False  # asked for by the user: never replaced by the other layout


class LayoutMemory:
    """{endpoint: {model AIR: layout}}: what the server took, persisted (None path: this process only)."""

    def __init__(self, path: Optional[Path] = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, str]] = {}
        if self.path is not None and self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self._data = {k: dict(v) for k, v in loaded.items() if isinstance(v, dict)}
            except (OSError, ValueError) as exc:
                log.warning("PixVerse: ignoring unreadable %s (%s)", self.path, exc)

    @classmethod
    def beside(cls, ledger) -> "LayoutMemory":
        path = getattr(ledger, "path", None)
        return cls(Path(path).with_name(MEMORY_FILENAME) if path else None)

    def get(self, endpoint: str, air: str) -> Optional[str]:
        with self._lock:
            return self._data.get(endpoint, {}).get(air)

    def remember(self, endpoint: str, air: str, layout: str) -> None:
        with self._lock:
            if self._data.get(endpoint, {}).get(air) == layout:
                return
            self._data.setdefault(endpoint, {})[air] = layout
            if self.path is None:
                return
            try:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError as exc:  # remembering is an optimisation: the next run just tries again
                log.warning("PixVerse: could not save %s (%s)", self.path, exc)


def choose(model: ModelSpec, override: Optional[str], memory: Optional[LayoutMemory], endpoint: str) -> LayoutChoice:
    """The layout to send `model`'s task in, and why."""
    if override:
        if override in model.layouts:
            return LayoutChoice(override, f"set by {config.LAYOUT.how_to_set()}", forced=True)
        log.info("PixVerse: layout %r is not one %s speaks (%s); using its own", override, model.name,
                 ", ".join(model.layouts))
    remembered = memory.get(endpoint, model.air) if memory is not None else None
    if remembered in model.layouts:
        return LayoutChoice(remembered, "Runware took this layout for this model before")
    return LayoutChoice(model.layouts[0], "the model's preferred layout")


def refusal_field(spec: CapabilitySpec, exc: BaseException) -> Optional[str]:
    """The layout field a submit refusal names (its `parameter`, else its message), or None."""
    fields = spec.layout_fields()
    parameter = str(getattr(exc, "parameter", "") or "")
    head = re.split(r"[.\[]", parameter)[0] if parameter else ""
    if head in fields:
        return parameter
    text = str(getattr(exc, "detail", "") or exc)
    for name in sorted(fields, key=len, reverse=True):
        if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text):
            return name
    return None


def other_layout(model: ModelSpec, tried: str) -> Optional[str]:
    return next((name for name in model.layouts if name != tried), None)


def plan(model: ModelSpec, build: Callable[[str], Any], override: Optional[str], memory: Optional[LayoutMemory],
         endpoint: str) -> tuple[LayoutChoice, Any]:
    """(LayoutChoice, built task): the chosen layout, or the model's other one when the chosen one cannot
    express the request (an image-to-video with a set aspect ratio needs width/height). Raises the chosen
    layout's PixVerseInputError when none can; an explicit override is never replaced."""
    choice = choose(model, override, memory, endpoint)
    try:
        return choice, build(choice.name)
    except PixVerseInputError as first:
        other = None if override else other_layout(model, choice.name)
        if other is None:
            raise
        try:
            built = build(other)
        except PixVerseInputError:
            raise first from None
        return LayoutChoice(other, f"the {choice.name} layout cannot send this request ({first.reason})"), built


def after_refusal(spec: CapabilitySpec, model: ModelSpec, choice: LayoutChoice, exc: RunwareError) -> LayoutChoice:
    """The model's other layout when Runware refused the submit naming a field of this one (no task was
    created, so a rebuilt request may be sent once); else `exc` is raised."""
    field_name = refusal_field(spec, exc) if isinstance(exc, RunwareValidationError) else None
    other = other_layout(model, choice.name) if field_name and not choice.forced else None
    if other is None:
        raise exc from None
    return LayoutChoice(other, f"Runware refused the {choice.name} layout ({exc.code or 'invalid'} on {field_name}); "
                               f"rebuilt in the {other} layout and sent once more (the refused submit created no task)")
