"""Start a real ComfyUI (from COMFYUI_PATH) with this pack linked in, and talk to it over HTTP.

ComfyUI runs with --base-directory in a temp folder, so the checkout itself is never touched:
the pack is symlinked into <base>/custom_nodes, and input/output/user folders live there too.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx

PACK_ROOT = Path(__file__).resolve().parents[1]
PACK_LINK_NAME = "ComfyUI-PixVerse-Runware"


def comfyui_path() -> Optional[Path]:
    value = os.environ.get("COMFYUI_PATH")
    return Path(value) if value else None


def frontend_roots() -> list[tuple[str, Optional[Path], Optional[str]]]:
    """The frontends the browser test runs against: (name, --front-end-root or None, why it is missing).

    'pinned' is the frontend ComfyUI's requirements pin (1.27.10 for 0.3.64). 'latest' is the newest
    comfyui-frontend-package from PyPI, unpacked by .ci/run into PIXVERSE_FRONTEND_LATEST (its static/
    folder); PIXVERSE_FRONTEND_LATEST_ERROR says why it could not be fetched."""
    latest = os.environ.get("PIXVERSE_FRONTEND_LATEST")
    if latest and (Path(latest) / "index.html").is_file():
        why = None
    elif os.environ.get("PIXVERSE_FRONTEND_LATEST_ERROR"):
        why = os.environ["PIXVERSE_FRONTEND_LATEST_ERROR"]
    else:
        why = ("the newest frontend is not fetched: set PIXVERSE_FRONTEND_LATEST to the static/ folder of "
               "comfyui-frontend-package (pip download comfyui-frontend-package; .ci/run does it)")
    return [("pinned", None, None), ("latest", Path(latest) if not why else None, why)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, checkout: Path, base_dir: Path, env: dict[str, str], extra_args: Optional[list[str]] = None):
        self.checkout = checkout
        self.extra_args = list(extra_args or [])
        self.base_dir = base_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = base_dir / "comfyui.log"
        self.http = httpx.Client(base_url=self.url, timeout=30, trust_env=False)

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def user_dir(self) -> Path:
        return self.base_dir / "user"

    def start(self, timeout: float = 240) -> "ComfyServer":
        for sub in ("custom_nodes", "input", "output", "temp", "user", "models"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        link = self.base_dir / "custom_nodes" / PACK_LINK_NAME
        if not link.exists():
            link.symlink_to(PACK_ROOT, target_is_directory=True)
        venv_python = self.checkout / "venv" / "bin" / "python"
        python = str(venv_python if venv_python.exists() else sys.executable)
        cmd = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base_dir), "--disable-auto-launch",
               "--user-directory", str(self.user_dir)] + self.extra_args
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.checkout, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early:\n{self.log()[-4000:]}")
            try:
                if self.http.get("/system_stats").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"ComfyUI did not start in {timeout} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # SIGINT flushes ComfyUI's buffered log
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- API -----------------------------------------------------------------------------------

    def object_info(self) -> dict:
        return self.http.get("/object_info").json()

    def queue(self, prompt: dict) -> str:
        r = self.http.post("/prompt", json={"prompt": prompt, "client_id": "pixverse-tests"})
        if r.status_code != 200:
            raise AssertionError(f"/prompt refused: {r.status_code} {json.dumps(r.json(), indent=1)[:3000]}")
        return r.json()["prompt_id"]

    def queue_raw(self, prompt: dict) -> httpx.Response:
        return self.http.post("/prompt", json={"prompt": prompt, "client_id": "pixverse-tests"})

    def wait(self, prompt_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.http.get(f"/history/{prompt_id}").json()
            entry = history.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and (
                    entry["status"].get("status_str") in ("success", "error") or entry["status"]["completed"]):
                return entry
            time.sleep(0.5)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s\n{self.log()[-3000:]}")

    def interrupt(self) -> None:
        self.http.post("/interrupt", json={})

    def output_file(self, item: dict) -> Path:
        return self.output_dir / item.get("subfolder", "") / item["filename"]


def generator_defaults(image_to_video: bool = False) -> dict:
    """Every widget input of a generator at its default (what a node queued from the UI carries,
    settings that later models added included)."""
    from nodes.spec import load_spec
    from nodes.workflows import WORKFLOWS

    return {w.name: w.default for w in WORKFLOWS["image_to_video" if image_to_video else "text_to_video"].widgets(load_spec())
            if w.kind not in ("IMAGE", "motion")}
