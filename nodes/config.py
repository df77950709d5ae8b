"""ComfyUI's settings file, read without ComfyUI (the limits and the layout override live there too).

ComfyUI keeps each user's settings in `<user dir>/<user>/comfy.settings.json`; the pack's own settings
(registered by web/pixverse.js) are stored there under ids like "Runware.PixVerse.DailyLimit".

May import: errors.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def read_comfy_settings(user_dir: os.PathLike | str, user: str = "default") -> dict:
    """ComfyUI's settings of `user` (comfy.settings.json in its user directory); {} when absent or unreadable."""
    path = Path(user_dir) / user / "comfy.settings.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# Start queued prompts early (nodes/comfy/ahead.py): how many tasks may run ahead of the queue.
START_AHEAD_ENV = "RUNWARE_PIXVERSE_START_AHEAD"
START_AHEAD_SETTING = "Runware.PixVerse.StartAhead"


def start_ahead(settings: dict | None = None) -> int:
    """N, how many tasks of still-queued prompts may run at once (0: off). The environment wins."""
    raw = os.environ.get(START_AHEAD_ENV, "").strip()
    if not raw and isinstance(settings, dict):
        raw = str(settings.get(START_AHEAD_SETTING) or "").strip()
    try:
        return max(0, int(float(raw))) if raw else 0
    except ValueError:
        return 0


# Runware's schema service (nodes/requests/schema_store.py): registry.json and /resolve/<AIR>, read without
# the API key. "off" reads nothing (every request is then checked by the pack's spec only).
SCHEMAS_URL_ENV = "RUNWARE_SCHEMAS_URL"
SCHEMAS_URL_DEFAULT = "https://schemas.runware.ai"
SCHEMAS_OFF = "off"


def schemas_url() -> str | None:
    """The schema service's base URL (no trailing slash), or None when RUNWARE_SCHEMAS_URL is "off".
    A value that is not an http(s) URL is refused, naming the variable."""
    raw = os.environ.get(SCHEMAS_URL_ENV, "").strip() or SCHEMAS_URL_DEFAULT
    if raw.lower() == SCHEMAS_OFF:
        return None
    if not raw.lower().startswith(("http://", "https://")) or "@" in raw.split("/")[2:3][0]:
        raise ValueError(f"{SCHEMAS_URL_ENV}={raw!r}: give an http(s) URL without credentials "
                         f"(default {SCHEMAS_URL_DEFAULT}), or {SCHEMAS_OFF!r} to read no schema")
    return raw.rstrip("/")
