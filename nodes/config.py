"""Every environment variable and ComfyUI setting the pack reads, declared once, and the one reader.

- **The declaration** (`OPTIONS`): each `Option` names its environment variable, its ComfyUI setting id
  (registered by the web extension from what the spec route serves, stored by ComfyUI in
  `<user dir>/<user>/comfy.settings.json`), its type, default, allowed values and what it does. The README's
  configuration table (`markdown_table`, `python -m nodes options --config`) and the settings the web
  extension shows (`web_settings`) are written from it.
- **The reader** (`load`): the environment wins over the setting; read once into a frozen `Config` that
  travels in the job's options (nodes/job/pipeline.py `JobOptions.config`), so the command line and ComfyUI
  apply the same limits, floor, layout, window and start-ahead. One rule for a bad value: a
  `PixVerseInputError` naming the variable (or the setting), the value and what is allowed.
- `read_comfy_settings` is the one place that reads ComfyUI's settings file.

The key (RUNWARE_API_KEY) and the endpoint (RUNWARE_BASE_URL) are declared here too, for the table; the key
store (nodes/comfy/keystore.py) and the client (nodes/client/core.py) read them by these names where they are
used, so the key never travels in a value that could be shown. The schema service's address is read through
this module by nodes/requests/schema_store.py (`schemas_url`); the spec file's variable by nodes/spec (the
bottom layer, below this module); the emulator's balance by the emulator.

May import: spec, errors.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from .errors import PixVerseInputError
from .spec import load_spec

SETTINGS_FILE = "comfy.settings.json"
AUTO = "auto"  # the layout setting's "no forced layout"
SCHEMAS_OFF = "off"  # RUNWARE_SCHEMAS_URL's value that reads no schema
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Option:
    """One thing a user can set: where it is read from and what it means."""

    key: str  # the `Config` field (or, for an option read where it is used, just a name)
    type: str  # usd | bool | count | seconds | choice | hosts | schemas | secret | url | path
    default: Any
    what: str  # one line: what it does
    allowed: str  # what a value may be, as a refusal says it
    env: Optional[str] = None
    setting: Optional[str] = None  # a Runware.PixVerse.* ComfyUI setting id
    where: tuple[str, ...] = ()  # its place under Settings (category path), when it is a setting
    label: str = ""  # the setting's name in the settings dialog
    maximum: Optional[float] = None
    step: Optional[float] = None
    in_config: bool = True  # read by `load` into `Config` (False: read where it is used)
    more: str = ""  # the settings dialog's tooltip says this too

    @property
    def setting_name(self) -> str:
        """How a message names the setting: its place in ComfyUI's settings and its id."""
        return f"Settings → {' → '.join(self.where)} ({self.setting})"

    def how_to_set(self) -> str:
        both = [self.env or "", f"Settings → {' → '.join(self.where)}" if self.setting else ""]
        return " or ".join(x for x in both if x)


def _layout_choices() -> tuple[str, ...]:
    return (AUTO, *load_spec().layouts)


DAILY_LIMIT = Option(
    "daily_limit", "usd", 0.0, env="RUNWARE_PIXVERSE_DAILY_LIMIT", setting="Runware.PixVerse.DailyLimit",
    where=("Runware", "Spending", "Daily limit"), label="Daily spending limit (US dollars; 0 = none)", step=0.5,
    what="The most the pack may spend per local day, counted in its job ledger; a run that would pass it is "
         "refused before anything is uploaded or submitted.",
    allowed="a number of US dollars, 0 or more (0 or empty: no limit)")
PROMPT_LIMIT = Option(
    "prompt_limit", "usd", 0.0, env="RUNWARE_PIXVERSE_PROMPT_LIMIT", setting="Runware.PixVerse.PromptLimit",
    where=("Runware", "Spending", "Prompt limit"), label="Spending limit per queued prompt (US dollars; 0 = none)",
    step=0.5, what="The most one queued prompt (or one command) may spend.",
    allowed="a number of US dollars, 0 or more (0 or empty: no limit)")
ALLOW_UNKNOWN_COST = Option(
    "allow_unknown_cost", "bool", False, env="RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST",
    setting="Runware.PixVerse.AllowUnknownCost", where=("Runware", "Spending", "Unknown cost"),
    label="Allow runs of unknown cost under a limit",
    what="A run of a kind the ledger has not seen (and without a price Runware documents) has no expected cost; "
         "under a limit it is refused unless this is on.",
    allowed="1, true, yes or on; 0, false, no or off")
MIN_BALANCE = Option(
    "min_balance", "usd", 0.0, env="RUNWARE_PIXVERSE_MIN_BALANCE", setting="Runware.PixVerse.MinBalance",
    where=("Runware", "Spending", "Keep at least"),
    label="Keep at least (US dollars of Runware balance; 0 = no floor)", step=1,
    what="A new run whose expected cost would take your Runware balance below this is refused before anything "
         "is uploaded. When the balance cannot be read, runs go ahead.",
    allowed="a number of US dollars, 0 or more (0 or empty: no floor)")
START_AHEAD = Option(
    "start_ahead", "count", 0, env="RUNWARE_PIXVERSE_START_AHEAD", setting="Runware.PixVerse.StartAhead",
    where=("Runware", "Many videos", "Start queued prompts early"),
    label="Start queued prompts early (tasks at once; 0 = off)", maximum=64, step=1,
    what="Send up to N tasks of prompts still waiting in ComfyUI's queue to Runware at once; each node picks "
         "its task up from the job ledger in its turn (one task, one charge).",
    more="ComfyUI runs one prompt at a time. With N above 0, each PixVerse node of a prompt still waiting in the "
         "queue whose inputs are known (its widgets, Effect/Camera, Load Image/Video/Audio) is sent to Runware at "
         "once, up to N tasks. A prompt removed from the queue after its task started cannot take it back: that "
         "video is still paid, still downloaded to output/pixverse and listed in the job ledger.",
    allowed="a whole number from 0 to 64 (0 or empty: off)")
LAYOUT = Option(
    "layout", "choice", AUTO, env="RUNWARE_PIXVERSE_LAYOUT", setting="Runware.PixVerse.Layout",
    where=("Runware", "PixVerse", "Request layout"), label="Request layout",
    what="auto: each model's preferred request layout, Runware's current one first, falling back once when "
         "Runware refuses it, and remembered. A layout name forces that layout for the models that speak it.",
    allowed="auto or a layout of the spec (`python -m nodes options`)")
UNAVAILABLE_WINDOW = Option(
    "unavailable_window", "seconds", 120.0, env="RUNWARE_PIXVERSE_UNAVAILABLE_WINDOW",
    what="How long a submit refused with HTTP 503 (Runware unavailable) is sent again, same taskUUID, before "
         "its outcome is checked by polling.",
    allowed="a number of seconds, 0 or more")
ALLOWED_HOSTS = Option(
    "allowed_hosts", "hosts", "", env="RUNWARE_PIXVERSE_ALLOWED_HOSTS",
    what="Host names (besides localhost and IP addresses) through which the browser may reach the pack's key, "
         "balance, spend and job routes.",
    allowed="comma-separated host names; .suffix for a domain and its subdomains; * for any")
API_KEY = Option(
    "api_key", "secret", "", env="RUNWARE_API_KEY", in_config=False,
    what="Your Runware API key; wins over the key stored from Settings → Runware → API key (never shown).",
    allowed="a Runware API key (my.runware.ai)")
BASE_URL = Option(
    "base_url", "url", "https://api.runware.ai/v1", env="RUNWARE_BASE_URL", in_config=False,
    what="The Runware endpoint; point it at the local emulator (`python -m nodes.emulator`) for a dry run.",
    allowed="an http(s) URL")
SCHEMAS_URL = Option(
    "schemas_url", "schemas", "https://schemas.runware.ai", env="RUNWARE_SCHEMAS_URL", in_config=False,
    what="Runware's public schema service (registry.json, resolve/<model>), read without the key before a run; "
         "off reads nothing (the pack's own spec then checks every request). Read by nodes/requests/schema_store.py.",
    allowed="an http(s) URL without credentials, or off")
SPEC_PATH = Option(
    "spec_path", "path", "the pack's nodes/spec/pixverse.json", env="PIXVERSE_SPEC_PATH", in_config=False,
    what="Load another capability spec file (to try an edit of models or settings); read by nodes/spec itself.",
    allowed="a path to a spec JSON file")
EMULATOR_BALANCE = Option(
    "emulator_balance", "usd", 1000.0, env="RUNWARE_EMULATOR_BALANCE", in_config=False,
    what="The local emulator only: the balance its account starts with (then a task it cannot pay is refused "
         "as Runware refuses it).",
    allowed="a number of US dollars")

OPTIONS: tuple[Option, ...] = (API_KEY, BASE_URL, DAILY_LIMIT, PROMPT_LIMIT, ALLOW_UNKNOWN_COST, MIN_BALANCE,
                               START_AHEAD, LAYOUT, UNAVAILABLE_WINDOW, ALLOWED_HOSTS, SCHEMAS_URL, SPEC_PATH,
                               EMULATOR_BALANCE)
BY_KEY = {o.key: o for o in OPTIONS}
SETTINGS: tuple[Option, ...] = tuple(o for o in OPTIONS if o.setting)


@dataclass(frozen=True)
class Config:
    """Every variable and setting a run needs, read once (`load`). The defaults: nothing set."""

    daily_limit: Optional[float] = None  # US dollars; None: no limit
    prompt_limit: Optional[float] = None
    allow_unknown_cost: bool = False
    min_balance: Optional[float] = None  # US dollars; None: no floor
    start_ahead: int = 0
    layout: Optional[str] = None  # a forced request layout; None: automatic
    unavailable_window: float = 120.0
    allowed_hosts: tuple[str, ...] = ()
    # where each value came from: key → "env" | "setting" (absent: the default)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, key: str) -> str:
        return self.sources.get(key, "")


def read_comfy_settings(user_dir: os.PathLike | str, user: str = "default") -> dict:
    """ComfyUI's settings of `user` (comfy.settings.json in its user directory); {} when absent or unreadable."""
    path = Path(user_dir) / user / SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _number(raw: Any) -> Optional[float]:
    if isinstance(raw, bool):
        return None
    try:
        number = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _usd(option: Option, raw: Any) -> Optional[float]:
    number = _number(raw)
    if number is None or number < 0:
        raise ValueError
    return number or None


def _bool(option: Option, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    text = raw.strip().lower() if isinstance(raw, str) else None
    if text not in _TRUE + _FALSE:
        raise ValueError
    return text in _TRUE


def _count(option: Option, raw: Any) -> int:
    number = _number(raw)
    if number is None or number != int(number) or number < 0 or (option.maximum is not None
                                                                  and number > option.maximum):
        raise ValueError
    return int(number)


def _seconds(option: Option, raw: Any) -> float:
    number = _number(raw)
    if number is None or number < 0:
        raise ValueError
    return number


def _hosts(option: Option, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, str):
        raise ValueError
    return tuple(e.strip().lower().rstrip(".") for e in raw.split(",") if e.strip())


def _schemas(option: Option, raw: Any) -> Optional[str]:
    text = raw.strip() if isinstance(raw, str) else ""
    if text.lower() == SCHEMAS_OFF:
        return None
    netloc = text.split("/")[2] if text.count("/") >= 2 else ""
    if not text.lower().startswith(("http://", "https://")) or not netloc or "@" in netloc:
        raise ValueError
    return text.rstrip("/")


_PARSERS = {"usd": _usd, "bool": _bool, "count": _count, "seconds": _seconds, "hosts": _hosts, "schemas": _schemas}
_BLANK = {"usd": None, "hosts": (), "choice": None}  # what a blank value means (else the default)


def parse(option: Option, raw: Any, name: str) -> Any:
    """`raw` (a variable's text or a setting's JSON value) as `option`'s type; PixVerseInputError naming `name`
    when it is not allowed. A blank value means the default (no limit, no floor, no forced layout)."""
    if _blank(raw):
        return _BLANK.get(option.type, option.default)
    if option.type == "choice":
        text = raw.strip().lower() if isinstance(raw, str) else None
        choices = _layout_choices()
        if text not in choices:
            raise PixVerseInputError(name, raw, list(choices), "not a request layout")
        return None if text == AUTO else text
    try:
        return _PARSERS[option.type](option, raw)
    except (ValueError, TypeError):
        raise PixVerseInputError(name, raw, option.allowed, "not allowed") from None


def read_one(option: Option, settings: Optional[Mapping[str, Any]] = None,
             env: Optional[Mapping[str, str]] = None) -> tuple[Any, str]:
    """(value, source) of one option: the variable when set (non-blank), else the setting, else the default."""
    env = os.environ if env is None else env
    if option.env and str(env.get(option.env, "")).strip():
        return parse(option, env[option.env], option.env), "env"
    if option.setting and settings and not _blank(settings.get(option.setting)):
        return parse(option, settings[option.setting], option.setting_name), "setting"
    return parse(option, None, option.env or option.key), ""


def schemas_url(env: Optional[Mapping[str, str]] = None, unset: Optional[str] = None) -> Optional[str]:
    """Runware's schema service's base URL (no trailing slash), or None when the variable says off; `unset`
    (when given) instead of the default while the variable is not set. A value that is not an http(s) URL
    without credentials is refused (PixVerseInputError), naming the variable."""
    value, source = read_one(SCHEMAS_URL, None, env)
    return value if source or unset is None else unset


def load(settings: Optional[Mapping[str, Any]] = None, *, user_dir: Optional[os.PathLike | str] = None,
         env: Optional[Mapping[str, str]] = None) -> Config:
    """Every option, read once: the environment (`env`, default os.environ) wins over ComfyUI's settings
    (`settings`, or read from `user_dir`'s settings file). Raises PixVerseInputError for the first bad value,
    naming the variable or the setting, the value and what is allowed."""
    if settings is None and user_dir is not None:
        settings = read_comfy_settings(user_dir)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        if not option.in_config:
            continue
        value, source = read_one(option, settings, env)
        values[option.key] = value
        if source and value is not None:
            sources[option.key] = source
    return Config(**values, sources=sources)


# -- what is shown: the README's table, the web extension's settings --------------------------------------

def _default_text(option: Option) -> str:
    if option.type == "usd" and option.in_config:
        return "0 (none)"
    if option.type == "bool":
        return "off"
    if option.type in ("hosts", "secret"):
        return "none"
    if option.type in ("choice", "url", "schemas"):
        return f"`{option.default}`"
    return f"{option.default:g}" if isinstance(option.default, float) else str(option.default)


def markdown_table() -> str:
    """The README's configuration table: every variable and setting, as declared (the variable wins)."""
    rows = ["| variable | setting (Settings → Runware → …) | default | allowed | what it does |",
            "|---|---|---|---|---|"]
    for o in OPTIONS:
        setting = f"{' → '.join(o.where[1:])} (`{o.setting}`)" if o.setting else "—"
        rows.append(f"| `{o.env}` | {setting} | {_default_text(o)} | {o.allowed} | {o.what.replace('|', '/')} |")
    return "\n".join(rows)


_WEB_TYPES = {"usd": "number", "count": "number", "bool": "boolean", "choice": "combo"}


def web_settings() -> list[dict]:
    """The ComfyUI settings the server reads, as the web extension registers them (id, place, name, tooltip,
    type, default, range, choices). Their ids, types and defaults never change: saved settings still apply."""
    out = []
    for o in SETTINGS:
        entry: dict[str, Any] = {
            "key": o.key, "id": o.setting, "category": list(o.where), "name": o.label,
            "tooltip": " ".join(filter(None, (o.what, o.more, f"{o.env} in ComfyUI's environment wins."))), "type": _WEB_TYPES[o.type],
            "defaultValue": o.default if o.type != "usd" else 0}
        if entry["type"] == "number":
            entry["attrs"] = {"min": 0, "step": o.step, **({"max": o.maximum} if o.maximum is not None else {})}
        if o.type == "choice":
            entry["options"] = list(_layout_choices())
        out.append(entry)
    return out


def setting_ids() -> dict[str, str]:
    """The ComfyUI settings the server reads, by key."""
    return {o.key: o.setting for o in SETTINGS}
