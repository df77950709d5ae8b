"""What a run costs: the estimate before Run, the spending limit, and what was spent.

- **Cost class.** Runs "of the same kind" share a cost class, computed from the validated task
  alone (no per-model code): the model, the resolution tier of its width×height (prices are per tier,
  and image-to-video's "auto" aspect ratio is only known once the image is), the duration and every
  other setting — except free text (each text the spec limits: prompt, negative prompt, sound
  description, speech text), the seed and input references (uploads stand as "ref").
- **Estimate** (`estimate`): free when the job ledger already holds this exact request (its
  fingerprint: the finished video is reused, or the unfinished task resumed); else the median of the
  last `HISTORY_RUNS` recorded costs of the same class at the same endpoint; else a price Runware
  documents (`spec/prices.json`, each with its page and the day it was read); else unknown.
- **Spending limit** (`BudgetPolicy`, `budget_guard`): a daily limit (and optionally one per queued
  prompt) in US dollars, from RUNWARE_PIXVERSE_DAILY_LIMIT / RUNWARE_PIXVERSE_PROMPT_LIMIT (they win)
  or the ComfyUI settings. Before a new task is claimed — before any upload — the expected cost is
  added to what the ledger recorded; past the limit nothing is claimed, uploaded or submitted. The
  check runs inside the ledger's claim transaction (BEGIN IMMEDIATE) and the claimed row keeps the
  expected cost as its reservation, so two prompts at once cannot pass the limit together; the real
  cost replaces the reservation when Runware reports it, and a run that ends without a charge
  (refused, abandoned, failed, lost) counts nothing. A run of unknown cost is refused under a limit
  unless RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST=1 or the setting allows it.
- **Spent** (`spend_summary`): today and this month (local time), per model, from the ledger.

Money counted: a row's recorded cost; for a row still under way (preparing … finished without a
cost), its reservation. No ComfyUI import here.
"""
from __future__ import annotations

import functools
import io
import json
import math
import os
import re
import sqlite3
import statistics
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from .errors import PixVerseBudgetError, PixVerseInputError
from .spec import CapabilitySpec, load_spec

HISTORY_RUNS = 3  # the estimate is the median of the last this-many recorded costs of the same kind
HISTORY_SCAN = 500  # newest rows of a model looked at for them

ENV_DAILY_LIMIT = "RUNWARE_PIXVERSE_DAILY_LIMIT"
ENV_PROMPT_LIMIT = "RUNWARE_PIXVERSE_PROMPT_LIMIT"
ENV_ALLOW_UNKNOWN = "RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST"
# ComfyUI setting ids (registered by web/pixverse.js, stored by ComfyUI in comfy.settings.json)
SETTING_DAILY_LIMIT = "Runware.PixVerse.DailyLimit"
SETTING_PROMPT_LIMIT = "Runware.PixVerse.PromptLimit"
SETTING_ALLOW_UNKNOWN = "Runware.PixVerse.AllowUnknownCost"
SETTING_PATH = "Settings → Runware → Spending"

PRICES_PATH = Path(__file__).with_name("spec") / "prices.json"
REF = "ref"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_EPS = 1e-9


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
    from .tasks import setting_wire

    paths = set(spec.prompt_fields.values()) | {"speech.text"}
    try:
        model = spec.model(model_air)
    except KeyError:
        return paths
    return paths | {setting_wire(model, s) for s in spec.settings_of(model) if s.kind == "text"}


def _pop(task: dict, dotted: str) -> Any:
    """Remove and return the value at a dotted path (a trailing "[]" ignored); empty parents go too."""
    *parents, leaf = dotted.removesuffix("[]").split(".")
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


def _inputs(task: dict, spec: CapabilitySpec) -> dict:
    """The task's input references, taken out of whichever request layout holds them, as what they
    are (frame positions, a video, an audio clip): the same run costs the same in either layout."""
    found: dict[str, Any] = {}
    for layout in spec.layouts.values():
        frames = _pop(task, layout.frame_images)
        if isinstance(frames, list):
            found["frames"] = sorted(str(f.get("frame")) for f in frames if isinstance(f, dict))
        for role in ("video", "audio", "reference_images"):
            path = getattr(layout, role, None)
            if path and _pop(task, path) is not None:
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
    from .ledger import canonical_json

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
    rows = ledger.read(
        "SELECT request, cost, cost_class FROM jobs WHERE endpoint = ? AND model = ? AND cost IS NOT NULL "
        "AND endpoint NOT IN (SELECT endpoint FROM dry_run_endpoints) "  # hook(account): only what was billed
        "ORDER BY COALESCE(finished_at, updated_at) DESC LIMIT ?", (endpoint, model, HISTORY_SCAN))
    costs: list[float] = []
    for row in rows:
        found = row["cost_class"]
        if not found and row["request"]:
            try:
                found = cost_class(json.loads(row["request"]), spec)
            except (ValueError, TypeError):
                continue
        if found == cls:
            costs.append(float(row["cost"]))
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
             audio_seconds: Optional[float] = None, exact: bool = True) -> Estimate:
    """The estimate the panel shows. `exact`: `task` holds the real inputs (not stand-ins), so the
    ledger's fingerprint tells whether this very request is already there (then it costs nothing).
    Only a text-to-video is exact from widget values; its task is the same in either request layout."""
    if ledger is not None and exact:
        from .ledger import SUBMITTED, SUBMITTING, SUCCEEDED, fingerprint

        found = ledger.find(endpoint, fingerprint({k: v for k, v in task.items() if k != "taskUUID"}))
        if found is not None and found.reusable():
            return Estimate(0.0, "reused", f"free: re-uses finished task {found.task_uuid} from the ledger",
                            found.cost_class or "", task_uuid=found.task_uuid)
        if found is not None and found.status in (SUBMITTING, SUBMITTED, SUCCEEDED):
            return Estimate(0.0, "resumed", f"free: resumes task {found.task_uuid} (already submitted)",
                            found.cost_class or "", task_uuid=found.task_uuid)
    return estimate_new(task, ledger=ledger, endpoint=endpoint, spec=spec, audio_seconds=audio_seconds)


def task_for_widgets(kind: str, values: Mapping[str, Any], spec: Optional[CapabilitySpec] = None,
                     layout: Optional[str] = None) -> tuple[dict, bool]:
    """A node's widget values (+ its motion link as {"effect": …} / {"camera_movement": …}) → (task, exact).

    Inputs that arrive by link (images, video, audio, a linked prompt) are not known here: stand-ins
    take their place and `exact` is False (the estimate then cannot say whether the ledger already holds
    the request). So does a prompt too short or long to send: it does not change the kind of run."""
    from . import widgets
    from .pipeline import PLACEHOLDER_REF
    from .tasks import build_image_to_video, build_lipsync, build_text_to_video

    spec = spec or load_spec()
    values = dict(values)
    if kind == "lipsync":
        speech = values.get("speech_text") or None
        built = build_lipsync(video=PLACEHOLDER_REF, audio=None if speech else PLACEHOLDER_REF, speech_text=speech,
                              voice=values.get("voice"), model=values.get("model"), spec=spec, layout=layout)
        return built.task, False
    if kind == "modify":  # the source video arrives by link: a stand-in
        values["prompt"] = values.get("prompt") or "placeholder prompt"
        from .tasks import build_in_any_layout, build_modify, resolve_model

        choices = widgets.modify_choices(values)
        model = resolve_model(spec, choices.model, "modify")
        built = build_in_any_layout(model, lambda name: build_modify(choices, PLACEHOLDER_REF, spec=spec, layout=name),
                                    [layout] if layout else None)
        return built.task, False
    if kind not in ("text_to_video", "image_to_video"):
        raise PixVerseInputError("node", kind, ["text_to_video", "image_to_video", "lipsync", "modify"],
                                 "no cost estimate for it")
    exact = kind == "text_to_video" and bool(values.get("prompt"))
    values["prompt"] = values.get("prompt") or "placeholder prompt"

    def build(vals: dict) -> dict:
        choices = widgets.generation_choices(vals, spec)
        if kind == "image_to_video":
            return build_image_to_video(choices, PLACEHOLDER_REF, first_frame_size=(1000, 1000), spec=spec,
                                        layout=layout).task
        return build_text_to_video(choices, spec=spec, layout=layout).task

    try:
        return build(values), exact
    except PixVerseInputError as exc:
        if exc.parameter not in spec.prompt_fields:
            raise
        free_text = {name: "placeholder prompt" for name in spec.prompt_fields if values.get(name)}
        return build({**values, **free_text}), False


def default_endpoint() -> str:
    """The endpoint a job would use now (RUNWARE_BASE_URL or Runware's API): what ledger rows are scoped by."""
    from .client import RunwareClient

    try:
        return str(RunwareClient(api_key="estimate-only").base_url)
    except Exception:  # noqa: BLE001 - a malformed RUNWARE_BASE_URL: no history to match
        return ""


def wav_seconds(data: bytes) -> Optional[float]:
    try:
        with wave.open(io.BytesIO(data)) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, ZeroDivisionError):
        return None


# -- the spending limit --------------------------------------------------------------------------

def _limit(value: Any, name: str) -> Optional[float]:
    """A limit in US dollars: None when unset (empty, 0); an error naming `name` when not a number ≥ 0."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise PixVerseInputError(name, value, "a number of US dollars, 0 or more (0 or empty: no limit)")
    return number or None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass
class BudgetPolicy:
    """The limits in force for a run, and where each came from (for the message that says how to raise it)."""

    daily_limit: Optional[float] = None
    daily_source: str = ""
    prompt_limit: Optional[float] = None
    prompt_source: str = ""
    allow_unknown: bool = False
    allow_source: str = ""
    prompt_id: Optional[str] = None  # the queued prompt (ComfyUI) or CLI run the task belongs to

    @property
    def active(self) -> bool:
        return self.daily_limit is not None or self.prompt_limit is not None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "prompt_id"}


def load_policy(settings: Optional[Mapping[str, Any]] = None, *, prompt_id: Optional[str] = None,
                env: Optional[Mapping[str, str]] = None) -> BudgetPolicy:
    """The limits from the environment (which wins) and the ComfyUI settings (`settings`)."""
    env = os.environ if env is None else env
    settings = settings or {}
    policy = BudgetPolicy(prompt_id=prompt_id)
    for attr, env_name, setting in (("daily", ENV_DAILY_LIMIT, SETTING_DAILY_LIMIT),
                                    ("prompt", ENV_PROMPT_LIMIT, SETTING_PROMPT_LIMIT)):
        if env.get(env_name, "").strip():
            value, source = _limit(env[env_name], env_name), "env"
        else:
            value, source = _limit(settings.get(setting), f"{SETTING_PATH} ({setting})"), "setting"
        setattr(policy, f"{attr}_limit", value)
        setattr(policy, f"{attr}_source", source if value is not None else "")
    if env.get(ENV_ALLOW_UNKNOWN, "").strip():
        policy.allow_unknown, policy.allow_source = _flag(env[ENV_ALLOW_UNKNOWN]), "env"
    elif SETTING_ALLOW_UNKNOWN in settings:
        policy.allow_unknown, policy.allow_source = _flag(settings[SETTING_ALLOW_UNKNOWN]), "setting"
    return policy


def read_comfy_settings(user_dir: os.PathLike | str, user: str = "default") -> dict:
    """ComfyUI's settings of `user` (comfy.settings.json in its user directory); {} when absent or unreadable."""
    path = Path(user_dir) / user / "comfy.settings.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def day_start(now: Optional[float] = None) -> float:
    t = time.localtime(time.time() if now is None else now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def month_start(now: Optional[float] = None) -> float:
    t = time.localtime(time.time() if now is None else now)
    return time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1))


def _charged_sql() -> str:
    """SQL for what a row counts: its cost, else its reservation while it is under way."""
    from .ledger import ACTIVE

    active = ",".join(f"'{s}'" for s in ACTIVE)
    return (f"CASE WHEN endpoint IN (SELECT endpoint FROM dry_run_endpoints) THEN 0 "  # hook(account): dry runs
            f"WHEN cost IS NOT NULL THEN cost WHEN status IN ({active}) THEN COALESCE(reserved, 0) "
            f"ELSE 0 END")


def spent_since(conn_or_ledger, since: float, prompt_id: Optional[str] = None) -> float:
    sql = f"SELECT COALESCE(SUM({_charged_sql()}), 0) FROM jobs WHERE created_at >= ?"
    params: list[Any] = [since]
    if prompt_id is not None:
        sql += " AND prompt_id = ?"
        params.append(prompt_id)
    if isinstance(conn_or_ledger, sqlite3.Connection):
        return float(conn_or_ledger.execute(sql, params).fetchone()[0])
    return float(conn_or_ledger.read(sql, params)[0][0])


def _how_to_raise(kind: str, source: str) -> str:
    env_name, setting = ((ENV_DAILY_LIMIT, "Daily spending limit") if kind == "daily"
                         else (ENV_PROMPT_LIMIT, "Spending limit per queued prompt"))
    if source == "env":
        return (f"raise {env_name} (or unset it) in the environment ComfyUI or the command runs in; it wins "
                f"over the ComfyUI setting")
    return f"raise it in ComfyUI {SETTING_PATH} → {setting} (or set {env_name}, which wins over the setting)"


def _source_label(kind: str, source: str) -> str:
    if source == "env":
        return f" ({ENV_DAILY_LIMIT if kind == 'daily' else ENV_PROMPT_LIMIT})"
    return " (ComfyUI setting)"


def check_budget(conn, policy: BudgetPolicy, expected: Estimate, now: Optional[float] = None) -> None:
    """Raise PixVerseBudgetError when this run would pass a limit. `conn`: inside the claim transaction."""
    if not policy.active:
        return
    cost = expected.cost or 0.0
    how = f" ({expected.basis})" if expected.cost is not None else " (unknown; allowed by your setting)"
    checks = []
    if policy.daily_limit is not None:
        checks.append(("daily", policy.daily_limit, policy.daily_source, spent_since(conn, day_start(now)), "today"))
    if policy.prompt_limit is not None and policy.prompt_id is not None:
        checks.append(("prompt", policy.prompt_limit, policy.prompt_source,
                       spent_since(conn, 0.0, policy.prompt_id), "by this queued prompt"))
    if expected.cost is None and not policy.allow_unknown:
        limits = "; ".join(f"{usd(spent)} spent {when} of the limit of {usd(limit)}"
                           f"{_source_label(kind, source)}"
                           for kind, limit, source, spent, when in checks)
        raise PixVerseBudgetError(
            f"Spending limit: this run's cost is unknown (no run of this kind in the job ledger yet, and no price "
            f"Runware documents for it), and a limit is set ({limits or 'per queued prompt'}), so it was not started. "
            f"Nothing was uploaded or submitted. To allow runs of unknown cost under the limit, turn on "
            f"{SETTING_PATH} → Allow runs of unknown cost, or set {ENV_ALLOW_UNKNOWN}=1; or remove the limit.",
            spent=checks[0][3] if checks else None, limit=policy.daily_limit or policy.prompt_limit, expected=None,
            scope="unknown")
    for kind, limit, source, spent, when in checks:
        total = spent + cost
        if total > limit + _EPS or (expected.cost is None and spent >= limit - _EPS):
            title = "Daily spending limit" if kind == "daily" else "Spending limit per queued prompt"
            raise PixVerseBudgetError(
                f"{title} reached: {usd(spent)} spent {when} (job ledger) + this run's expected cost "
                f"{usd(expected.cost)}{how} = {usd(total)}, over the limit of {usd(limit)}"
                f"{_source_label(kind, source)}. "
                f"Nothing was uploaded or submitted. To run it, {_how_to_raise(kind, source)}"
                + ("; or wait until tomorrow (local time)." if kind == "daily" else "."),
                spent=spent, limit=limit, expected=expected.cost, scope=kind)


def budget_guard(opts, built, uploads: Sequence[Any] = (), endpoint: str = "") -> Optional[Callable]:
    """The one call the pipeline makes before any upload: the claim guard for the ledger (see
    Ledger.claim) that checks the limits and reserves the expected cost in the claim's transaction.

    None without a ledger and without a limit; an error when a limit is set but there is no ledger
    to count against (a limit is never silently bypassed)."""
    policy: Optional[BudgetPolicy] = getattr(opts, "budget", None)
    if opts.ledger is None:
        if policy is not None and policy.active:
            raise PixVerseBudgetError(
                "A spending limit is set, but the job ledger that counts the spending could not be opened, so "
                "the run was not started. Nothing was uploaded or submitted. See the log for the ledger's path.",
                spent=None, limit=policy.daily_limit or policy.prompt_limit, expected=None, scope="ledger")
        return None
    audio = next((u for u in uploads if getattr(u, "parameter", "") == "audio"), None)
    audio_seconds = wav_seconds(audio.data) if audio is not None else None
    expected = estimate_new(built.task, ledger=opts.ledger, endpoint=endpoint, spec=opts.spec,
                            audio_seconds=audio_seconds)

    def guard(conn) -> dict:
        if policy is not None:
            check_budget(conn, policy, expected)
        return {"reserved": expected.cost, "prompt_id": policy.prompt_id if policy else None,
                "cost_class": expected.cost_class}

    guard.expected = expected  # hook(account): the balance floor compares this (nodes/balance.py)
    return guard


# -- what was spent ------------------------------------------------------------------------------

def spend_summary(ledger, now: Optional[float] = None, spec: Optional[CapabilitySpec] = None) -> dict:
    """Today's and this month's spending (local time), in all and per model, from the ledger."""
    spec = spec or load_spec()
    now = time.time() if now is None else now
    today, month = day_start(now), month_start(now)
    rows = ledger.read(f"SELECT model, created_at, cost, ({_charged_sql()}) AS charged FROM jobs WHERE created_at >= ? "
                       f"AND ({_charged_sql()}) > 0", (month,))

    def label(air: str) -> str:
        try:
            return spec.model(air).name
        except KeyError:
            return air or "unknown model"

    def period(since: float) -> dict:
        chosen = [r for r in rows if r["created_at"] >= since]
        by_model: dict[str, dict] = {}
        for r in chosen:
            m = by_model.setdefault(r["model"] or "", {"model": r["model"] or "", "name": label(r["model"] or ""),
                                                       "total": 0.0, "runs": 0, "pending": 0.0})
            m["total"] += r["charged"]
            m["runs"] += 1
            if r["cost"] is None:
                m["pending"] += r["charged"]
        for m in by_model.values():
            m["total"], m["pending"] = round(m["total"], 4), round(m["pending"], 4)
        return {"total": round(sum(r["charged"] for r in chosen), 4), "runs": len(chosen),
                "pending": round(sum(r["charged"] for r in chosen if r["cost"] is None), 4),
                "by_model": sorted(by_model.values(), key=lambda m: -m["total"])}

    from . import balance as account  # hook(account): dry runs shown apart, not billed
    return {"day": time.strftime("%Y-%m-%d", time.localtime(now)),
            "month": time.strftime("%Y-%m", time.localtime(now)),
            "today": period(today), "this_month": period(month),
            "not_billed": {"today": account.not_billed(ledger, today), "this_month": account.not_billed(ledger, month)}}


def format_spend(summary: dict, policy: Optional[BudgetPolicy] = None) -> str:
    lines = []
    for key, title in (("today", f"today ({summary['day']})"), ("this_month", f"this month ({summary['month']})")):
        p = summary[key]
        pending = f", of which {usd(p['pending'])} reserved for runs under way" if p["pending"] else ""
        lines.append(f"{title}: {usd(p['total'])} in {p['runs']} run{'s' if p['runs'] != 1 else ''}{pending}")
        for m in p["by_model"]:
            lines.append(f"  {m['name']} ({m['model']}): {usd(m['total'])} in {m['runs']} run{'s' if m['runs'] != 1 else ''}")
    from .balance import not_billed_lines  # hook(account): dry runs shown apart, not billed
    lines.extend(not_billed_lines(summary))
    if policy is not None:
        if policy.daily_limit is not None:
            left = max(0.0, policy.daily_limit - summary["today"]["total"])
            lines.append(f"daily limit: {usd(policy.daily_limit)} ({'environment' if policy.daily_source == 'env' else 'setting'}), "
                         f"{usd(left)} left today")
        if policy.prompt_limit is not None:
            lines.append(f"limit per queued prompt: {usd(policy.prompt_limit)}")
        if policy.active:
            lines.append(f"runs of unknown cost: {'allowed' if policy.allow_unknown else 'refused'} under the limit")
    return "\n".join(lines)
