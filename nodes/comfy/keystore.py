"""Where the Runware API key comes from: RUNWARE_API_KEY, else a 0600 file in ComfyUI's user directory.

The key never goes into a widget, a workflow or PNG metadata; only this module reads the file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..config import API_KEY
from ..errors import no_key_message

ENV_VAR = API_KEY.env or ""
KEY_DIR = "runware"
KEY_FILE = "api_key"

MISSING_KEY_HELP = no_key_message()


def key_path(user_dir: os.PathLike | str) -> Path:
    return Path(user_dir) / KEY_DIR / KEY_FILE


def load_key(user_dir: Optional[os.PathLike | str] = None) -> Optional[str]:
    key = os.environ.get(ENV_VAR, "").strip()
    if key:
        return key
    if user_dir is not None:
        path = key_path(user_dir)
        if path.is_file():
            key = path.read_text(encoding="utf-8").strip()
            return key or None
    return None


def save_key(user_dir: os.PathLike | str, key: str) -> Path:
    """Write atomically with mode 0600 from the first byte (POSIX). Windows has no mode bits (os.chmod only
    sets the read-only flag there): the file is guarded by the access list of ComfyUI's user folder."""
    path = key_path(user_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key.strip())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def delete_key(user_dir: os.PathLike | str) -> bool:
    path = key_path(user_dir)
    if path.exists():
        path.unlink()
        return True
    return False


def mask(key: Optional[str]) -> str:
    if not key:
        return ""
    return "•" * 8 + (key[-4:] if len(key) >= 12 else "")
