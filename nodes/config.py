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
