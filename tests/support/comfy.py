"""Start a real ComfyUI (from COMFYUI_PATH) with this pack linked in, and talk to it over HTTP.

ComfyUI runs with --base-directory in a folder under the session's test artifacts (searched for the key by
test_zz_key_safety), so the checkout itself is never touched: the pack is symlinked into
<base>/custom_nodes, and input/output/user folders live there too.

`ComfyPool` starts each kind of server once per test session (conftest's `comfy_pool`): every real-ComfyUI
module shares the "main" server, every browser module the server of its frontend. Between tests the
harness puts the pack's settings back (`settings_snapshot` / `restore_settings`) and empties the queue.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import httpx

PACK_ROOT = Path(__file__).resolve().parents[2]
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

    @property
    def settings_path(self) -> Path:
        return self.user_dir / "default" / "comfy.settings.json"

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
        self.begin_stop()
        self.finish_stop()

    def begin_stop(self) -> None:
        """Ask ComfyUI to exit (SIGINT flushes its buffered log) without waiting for it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def finish_stop(self, timeout: float = 20) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=timeout)
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

    def set_setting(self, setting_id: str, value) -> None:
        """Change one ComfyUI setting through the running server (what the settings dialog does)."""
        r = self.http.post(f"/settings/{setting_id}", json=value)
        assert r.status_code == 200, f"POST /settings/{setting_id} answered {r.status_code}: {r.text[:500]}"

    def settings_snapshot(self) -> Optional[str]:
        return self.settings_path.read_text(encoding="utf-8") if self.settings_path.exists() else None

    def restore_settings(self, snapshot: Optional[str]) -> None:
        """Put the settings file back as it was (ComfyUI and the pack read it per request and per run)."""
        if self.settings_snapshot() == snapshot:
            return
        if snapshot is None:
            self.settings_path.unlink()
        else:
            self.settings_path.write_text(snapshot, encoding="utf-8")

    def settle(self, timeout: float = 120) -> None:
        """Nothing queued and nothing running: what a test left behind is cleared (pending prompts deleted,
        the running one interrupted) and waited out, so the next test starts on an idle server."""
        queue = self.http.get("/queue").json()
        if not queue.get("queue_running") and not queue.get("queue_pending"):
            return
        self.http.post("/queue", json={"clear": True})
        self.interrupt()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = self.http.get("/queue").json()
            if not queue.get("queue_running") and not queue.get("queue_pending"):
                return
            time.sleep(0.2)
        raise AssertionError(f"ComfyUI still busy {timeout} s after clear + interrupt: {queue}")

    def free_caches(self) -> None:
        """Make ComfyUI forget its node outputs (POST /free, as after a restart), and wait until it has: its
        prompt worker handles the request right after the prompt it runs (or at once when idle), so once a
        tiny prompt queued after it has finished, the next prompt starts with empty caches."""
        assert self.http.post("/free", json={"free_memory": True}).status_code == 200
        marker = f"caches dropped {time.monotonic_ns()}"
        entry = self.wait(self.queue({"1": {"class_type": "PrimitiveString", "inputs": {"value": marker}},
                                      "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}), 60)
        assert entry["status"]["status_str"] == "success", entry["status"]

    def clear_history(self) -> None:
        assert self.http.post("/history", json={"clear": True}).status_code == 200

    def output_file(self, item: dict) -> Path:
        return self.output_dir / item.get("subfolder", "") / item["filename"]


def generator_defaults(image_to_video: bool = False) -> dict:
    """Every widget input of a generator at its default (what a node queued from the UI carries,
    settings that later models added included)."""
    from nodes.spec import load_spec
    from nodes.workflows import WORKFLOWS

    kind = "image_to_video" if image_to_video else "text_to_video"
    return {w.name: w.default for w in WORKFLOWS[kind].widgets(load_spec()) if w.kind not in ("IMAGE", "motion")}


# -- one server per kind per session -------------------------------------------------------------

@dataclass
class ServerKind:
    """What a pooled server is started with. Servers of one kind are interchangeable; a test that needs
    another environment at ComfyUI's start names another kind (and says why)."""
    name: str
    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    prepare: Optional[Callable[[Path], None]] = None  # writes files into the base folder before the start


class ComfyPool:
    """Servers by kind, started on first use and stopped at the end of the session."""

    def __init__(self, root: Path, started: Optional[list[str]] = None):
        self.root = root
        self._servers: dict[str, ComfyServer] = {}
        self._stopping: list[ComfyServer] = []
        self.started = started if started is not None else []  # the kind of every start, in order

    def get(self, kind: ServerKind) -> ComfyServer:
        server = self._servers.get(kind.name)
        if server is None:
            base = self.root / f"comfyui-{kind.name}"
            base.mkdir(parents=True, exist_ok=True)
            if kind.prepare is not None:
                kind.prepare(base)
            server = ComfyServer(comfyui_path(), base, kind.env, extra_args=kind.extra_args)
            self.started.append(kind.name)
            server.start()
            self._servers[kind.name] = server
        return server

    def crash_and_restart(self, name: str) -> ComfyServer:
        """Kill server `name` (no clean shutdown) and start a new one on the same folder and environment."""
        old = self._servers[name]
        old.proc.kill()
        old.proc.wait()
        old.finish_stop()
        server = ComfyServer(old.checkout, old.base_dir, old.env, extra_args=old.extra_args)
        self.started.append(f"{name} (restarted)")
        server.start()
        self._servers[name] = server
        return server

    def stop(self, name: str) -> None:
        """Ask a server no later test needs (one of a kind made for one test) to exit; it is waited for at the
        session's end. Its folder stays."""
        server = self._servers.pop(name, None)
        if server is not None:
            server.begin_stop()
            self._stopping.append(server)

    def close(self) -> list[str]:
        """Stop every server (all asked at once, then waited for); the tail of each one's log."""
        servers = list(self._servers.items()) + [(s.base_dir.name, s) for s in self._stopping]
        for _, server in servers:
            server.begin_stop()
        tails = []
        for name, server in servers:
            server.finish_stop()
            tails.append(f"--- ComfyUI '{name}' log tail ---\n{server.log()[-1500:]}")
        self._servers.clear()
        self._stopping.clear()
        return tails


def pack_env(emulator_url: str, key: Optional[str]) -> dict[str, str]:
    """The environment of a pooled ComfyUI: the emulator as Runware, the key (None: no key in the environment,
    as for a user who enters it in the settings dialog), and every RUNWARE_PIXVERSE_* variable empty, so the
    settings decide and the test process's own environment never leaks in."""
    from nodes import config

    env = {config.BASE_URL.env: emulator_url, config.API_KEY.env: key or ""}
    env.update({o.env: "" for o in config.OPTIONS if o.env and o.env.startswith("RUNWARE_PIXVERSE_")})
    return env


def generator_values(image_to_video: bool = False, **over) -> dict:
    """A generator's inputs as a queued node carries them: every widget at its default, then the cheapest
    run (v5, 360p, 5 s, 16:9, 16 fps, seed 1), then `over`."""
    from nodes.spec import load_spec

    values = generator_defaults(image_to_video)
    values.update(model=load_spec().model("pixverse:1@5").label, prompt="a lighthouse in a storm, waves crashing",
                  negative_prompt="", aspect_ratio="auto" if image_to_video else "16:9", resolution="360p",
                  duration=5, fps=16, seed=1, style="none", motion_mode="normal", sound_effects=False,
                  sound_effect_content="")
    values.update(over)
    return values
