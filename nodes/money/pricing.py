"""What a run costs: the cost class, the prices Runware documents, and the estimate before Run.

- **Cost class.** Runs "of the same kind" share a cost class, computed from the validated task
  alone (no per-model code): the model, the resolution tier of its width×height (prices are per tier,
  and image-to-video's "auto" aspect ratio is only known once the image is), the duration and every
  other setting — except free text (each text the spec limits: prompt, negative prompt, sound
  description, speech text), the seed and input references (uploads stand as "ref").
- **Estimate** (`estimate`): free when the job ledger already holds this exact request (its
  fingerprint: the finished video is reused, or the unfinished task resumed); else the median of the
  last `HISTORY_RUNS` recorded costs of the same class at the same endpoint (`Ledger.recent_costs`);
  else a price Runware documents (`spec/prices.json`, each with its page and the day it was read);
  else unknown.

What you allow (limits, reservations, the spend report) is nodes/money/limits.py. No ComfyUI import here.
"""
from __future__ import annotations

import functools
import json
import re
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from .ledger import SUBMITTED, SUBMITTING, SUCCEEDED, canonical_json, fingerprint
from ..spec import CapabilitySpec, load_spec
from ..spec.paths import pop, setting_wire

HISTORY_RUNS = 3  # the estimate is the median of the last this-many recorded costs of the same kind
HISTORY_SCAN = 500  # newest rows of a model looked at for them

PRICES_PATH = Path(__file__).parents[1] / "spec" / "prices.json"
REF = "ref"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def usd(value: Optional[float]) -> str:
    """$0.20, $0.1235: at least two decimals, at most four."""
    if value is None:
        return "unknown"
    text = f"{value:.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


# -- cost class ---------------------------------------------------------------------------------

def _free_text_paths(spec: CapabilitySpec, model_air: str) -> set[str]:
    """Where free text goes in a task of this model: the prompts, text settings, the speech text."""
    paths = set(spec.prompt_fields.values()) | {spec.speech_fields["speech_text"]}
    try:
        model = spec.model(model_air)
    except KeyError:
        return paths
    return paths | {setting_wire(model, s) for s in spec.settings_of(model) if s.kind == "text"}


def _inputs(task: dict, spec: CapabilitySpec) -> dict:
    """The task's input references, taken out of whichever request layout holds them, as what they
    are (frame positions, a video, an audio clip): the same run costs the same in either layout."""
    found: dict[str, Any] = {}
    for layout in spec.layouts.values():
        frames = pop(task, layout.frame_images)
        if isinstance(frames, list):
            found["frames"] = sorted(str(f.get("frame")) for f in frames if isinstance(f, dict))
        for role in ("video", "audio", "reference_images"):
            path = getattr(layout, role, None)
            if path and pop(task, path) is not None:
                found[role] = True
    return found


def _strip(value: Any, path: str, drop: set[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if sub not in drop:
                out[key] = _strip(item, sub, drop)
        return out
    if isinstance(value, list):
        return [_strip(item, path, drop) for item in value]
    if isinstance(value, str) and _is_ref(value):
        return REF
    return value


def _is_ref(value: str) -> bool:
    return (value.startswith(("sha256:", "http://", "https://", "data:")) or bool(_UUID.match(value)))


def cost_class(task: Mapping[str, Any], spec: Optional[CapabilitySpec] = None) -> str:
    """The kind of run `task` is, as canonical JSON (see the module docstring)."""
    spec = spec or load_spec()
    body = json.loads(json.dumps(dict(task)))  # a deep copy
    model = str(body.get("model", ""))
    inputs = _inputs(body, spec)
    body = _strip(body, "", _free_text_paths(spec, model) | {"taskUUID", "taskType", "seed"})
    if inputs:
        body["inputs_given"] = inputs
    try:
        model_spec = spec.model(model)
    except KeyError:
        model_spec = None
    width, height = body.get("width"), body.get("height")
    if model_spec is not None and isinstance(width, int) and isinstance(height, int):
        located = model_spec.locate_size(width, height)
        if located is not None:
            del body["width"], body["height"]
            body["resolution"] = located[0]
    # one layout sends the model's default frame rate, the other leaves it out: the same run
    if model_spec is not None and model_spec.fps is not None and body.get("fps") == model_spec.fps.default:
        del body["fps"]
    return canonical_json(body)


# -- prices Runware documents -------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def documented_prices() -> dict[str, list[dict]]:
    return json.loads(PRICES_PATH.read_text(encoding="utf-8"))["prices"]


def _resolution(cls: str) -> Optional[str]:
    value = json.loads(cls).get("resolution")
    return value if isinstance(value, str) else None


def documented_price(model: str, cls: str, duration: Optional[float],
                     audio_seconds: Optional[float]) -> Optional[tuple[float, dict]]:
    """(cost, price entry) from a price Runware documents for this kind of run, or None."""
    resolution = _resolution(cls)
    for entry in documented_prices().get(model, []):
        if "table" in entry:  # whole prices per resolution tier and duration
            price = entry["table"].get(resolution or "", {}).get(str(duration))
            if price is not None:
                quote = entry["quote"].format(resolution=resolution, duration=duration, price=price)
                return round(float(price), 4), {**entry, "quote": quote}
            continue
        tiers = entry.get("resolutions")
        if tiers and resolution not in tiers:
            continue
        seconds = duration if entry["per"] == "video_second" else audio_seconds
        if seconds is None:
            continue
        return round(entry["usd_per_second"] * float(seconds), 4), entry
    return None


# -- the estimate --------------------------------------------------------------------------------

@dataclass
class Estimate:
    cost: Optional[float]  # US dollars; 0 for a reused/resumed request; None when unknown
    source: str  # reused | resumed | ledger | price | unknown
    text: str  # what the panel shows
    cost_class: str = ""
    runs: int = 0  # how many recorded runs the figure comes from
    task_uuid: Optional[str] = None  # the ledger task a reused/resumed request follows
    basis: str = ""  # where the figure comes from ("median of the last 3 runs like this", a price page)

    def to_json(self) -> dict:
        return asdict(self)


def _history(ledger, endpoint: str, model: str, cls: str, spec: CapabilitySpec) -> list[float]:
    costs: list[float] = []
    for request, cost, found in ledger.recent_costs(endpoint, model, HISTORY_SCAN):
        if not found and request:
            try:
                found = cost_class(json.loads(request), spec)
            except (ValueError, TypeError):
                continue
        if found == cls:
            costs.append(float(cost))
            if len(costs) == HISTORY_RUNS:
                break
    return costs


def estimate_new(task: Mapping[str, Any], *, ledger=None, endpoint: str = "",
                 spec: Optional[CapabilitySpec] = None, audio_seconds: Optional[float] = None) -> Estimate:
    """What a new task like `task` is expected to cost (the ledger's history, else a documented price)."""
    spec = spec or load_spec()
    cls = cost_class(task, spec)
    model = str(task.get("model", ""))
    if ledger is not None:
        costs = _history(ledger, endpoint, model, cls, spec)
        if costs:
            cost = round(statistics.median(costs), 4)
            where = "the last run like this" if len(costs) == 1 else f"median of the last {len(costs)} runs like this"
            return Estimate(cost, "ledger", f"≈ {usd(cost)} ({where})", cls, len(costs), basis=where)
    priced = documented_price(model, cls, task.get("duration"), audio_seconds)
    if priced is not None:
        cost, entry = priced
        where = f"Runware's price page, read {entry['read']}: {entry['quote']}"
        return Estimate(cost, "price", f"≈ {usd(cost)} ({where})", cls, basis=where)
    return Estimate(None, "unknown", "unknown: no run of this kind yet", cls)


def estimate(task: Mapping[str, Any], *, ledger=None, endpoint: str = "", spec: Optional[CapabilitySpec] = None,
             audio_seconds: Optional[float] = None, exact: bool = True,
             identity: Optional[Mapping[str, Any]] = None) -> Estimate:
    """The estimate the panel shows. `exact`: `task` holds the real inputs (not stand-ins), so the
    ledger's fingerprint of its `identity` (BuiltTask.identity; default: the task without its taskUUID)
    tells whether this very request is already there (then it costs nothing). Only a text-to-video is
    exact from widget values; its task is the same in either request layout."""
    if ledger is not None and exact:
        body = identity if identity is not None else {k: v for k, v in task.items() if k != "taskUUID"}
        found = ledger.find(endpoint, fingerprint(dict(body)))
        if found is not None and found.reusable():
            return Estimate(0.0, "reused", f"free: re-uses finished task {found.task_uuid} from the ledger",
                            found.cost_class or "", task_uuid=found.task_uuid)
        if found is not None and found.status in (SUBMITTING, SUBMITTED, SUCCEEDED):
            return Estimate(0.0, "resumed", f"free: resumes task {found.task_uuid} (already submitted)",
                            found.cost_class or "", task_uuid=found.task_uuid)
    return estimate_new(task, ledger=ledger, endpoint=endpoint, spec=spec, audio_seconds=audio_seconds)
