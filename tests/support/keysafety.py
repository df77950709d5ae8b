"""The test session's sentinel API key and its artifacts folder.

conftest puts SENTINEL_KEY in RUNWARE_API_KEY before any test runs, so every client the suite makes
(in this process, in CLI subprocesses, in a real ComfyUI) authenticates with it. Tests write what
the code under test writes (ledgers, logs, info outputs, error texts, subprocess output, ComfyUI's
folders, the emulators' recorded requests) under ARTIFACTS, and test_zz_key_safety, which runs
last, searches all of it for the key. The session's temporary folder is ARTIFACTS/tmp too (TMPDIR,
TEMP, TMP and tempfile.tempdir, inherited by every subprocess), so pytest's tmp_path folders and
whatever the code under test puts in a temporary folder are searched as well. The search is strict:
a file it cannot read, a folder it was told to search that is missing, or a record of an emulator
that could not be saved is a failure, never a pass.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_ROOT = ROOT / "test-artifacts"
_ENV = "PIXVERSE_TEST_SENTINEL_KEY"
_RUN_ENV = "PIXVERSE_TEST_ARTIFACTS"

# One key per session, unlike any real key and unlike any earlier session's.
SENTINEL_KEY = os.environ.get(_ENV) or f"rw-sentinel-{secrets.token_hex(16)}"
os.environ[_ENV] = SENTINEL_KEY

ARTIFACTS = Path(os.environ.get(_RUN_ENV) or
                 ARTIFACTS_ROOT / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
os.environ[_RUN_ENV] = str(ARTIFACTS)
KEEP_OLD_RUNS_S = 6 * 3600

TMP = ARTIFACTS / "tmp"  # the session's temporary folder (see prepare)
STARTED = time.time()
# Folders of the checkout that are not the tests' to write (environments, caches, version control)
NOT_WRITTEN_BY_TESTS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".hypothesis", ".pytest_cache",
                        "test-artifacts"}

_lock = threading.Lock()
PROBLEMS: list[str] = []  # what kept something from being searched (a failed dump); the key check fails on it
COLLECTED: set[str] = set()  # test module file names of this session (conftest fills it)
PASSED: set[str] = set()  # test modules with at least one passed test


def prepare() -> Path:
    """Create this run's folder and make its tmp/ the session's temporary folder (this process and every
    subprocess); drop other runs' folders older than a few hours."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    TMP.mkdir(exist_ok=True)
    for name in ("TMPDIR", "TEMP", "TMP"):  # POSIX reads TMPDIR, Windows TEMP/TMP
        os.environ[name] = str(TMP)
    tempfile.tempdir = str(TMP)
    now = time.time()
    for old in ARTIFACTS_ROOT.glob("run-*"):
        if old != ARTIFACTS and old.is_dir() and now - old.stat().st_mtime > KEEP_OLD_RUNS_S:
            shutil.rmtree(old, ignore_errors=True)
    return ARTIFACTS


def artifact_dir(*parts: str) -> Path:
    path = ARTIFACTS.joinpath(*[p.replace("/", "_").replace("[", "_").replace("]", "") for p in parts])
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_text(relative: str, text: str) -> Path:
    path = ARTIFACTS / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path, "a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return path


def save_requests(source: str, requests: Iterable[dict[str, Any]]) -> None:
    """An emulator's recorded requests (Authorization is never recorded; its sha256 is)."""
    lines = [json.dumps({"source": source, **r}, default=str, ensure_ascii=False) for r in requests]
    if lines:
        save_text("emulator-requests.jsonl", "\n".join(lines))


# -- the search --------------------------------------------------------------------------------

def key_forms(key: str) -> dict[str, bytes]:
    """The byte strings a leaked key would show up as: as is, UTF-16, and base64 at any alignment."""
    raw = key.encode("utf-8")
    forms = {"plain": raw, "utf-16-le": key.encode("utf-16-le"), "utf-16-be": key.encode("utf-16-be")}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        core = encoded[4 if shift else 0:-4]  # drop the groups the padding bytes or the end touch
        forms[f"base64+{shift}"] = core
        forms[f"base64url+{shift}"] = core.replace(b"+", b"-").replace(b"/", b"_")
    return forms


def files_under(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink() and path.is_file():
                out.append(path)
    return out


def written_in_checkout(since: float = STARTED) -> list[Path]:
    """Files of the checkout (outside the artifacts, environments and caches) changed since the session
    began: what a test wrote where it should not have (a default output folder, a stray ledger)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in NOT_WRITTEN_BY_TESTS
                       and not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            path = Path(dirpath) / name
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since:
                    out.append(path)
            except FileNotFoundError:
                continue
    return out


def scan(paths: Iterable[Path], key: str = SENTINEL_KEY) -> list[tuple[str, str]]:
    """[(file, form)] for every file under `paths` that holds the key in any form. A path that is missing
    or a file that cannot be read is in the list too (form "missing" / "unreadable: …"): what was not
    searched cannot count as clean. A file removed while the search walks (a SQLite journal) is skipped."""
    forms = key_forms(key)
    hits = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            hits.append((str(root), "missing"))
            continue
        for path in ([root] if root.is_file() else files_under(root)):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                hits.append((str(path), f"unreadable: {exc}"))
                continue
            hits.extend((str(path), name) for name, form in forms.items() if form in data)
    return hits


# -- emulators: their recorded requests are saved before a reset or stop forgets them ------------

_emulators: list = []


def track_emulators() -> None:
    """Wrap EmulatorServer so every instance's recorded requests reach the artifacts folder."""
    from nodes.emulator import EmulatorServer

    if getattr(EmulatorServer, "_keysafety_wrapped", False):
        return
    start, reset, stop = EmulatorServer.start, EmulatorServer.reset, EmulatorServer.stop

    def dump(self) -> None:
        try:
            save_requests(f"emulator:{self.port}", self.requests)
        except Exception as exc:  # noqa: BLE001 - never break the test over the record; the key check fails
            problem = f"the requests of emulator :{self.port} could not be saved: {type(exc).__name__}: {exc}"
            PROBLEMS.append(problem)
            save_text("problems.txt", problem)  # for the key check on another worker

    def tracked_start(self):
        if self not in _emulators:
            _emulators.append(self)
        return start(self)

    def tracked_reset(self):
        dump(self)
        return reset(self)

    def tracked_stop(self):
        if self._thread is not None:
            dump(self)
            with self._lock:
                self._requests.clear()
        return stop(self)

    EmulatorServer.start, EmulatorServer.reset, EmulatorServer.stop = tracked_start, tracked_reset, tracked_stop
    EmulatorServer._keysafety_wrapped = True


def dump_live_emulators() -> None:
    for emu in list(_emulators):
        if emu._thread is not None:
            save_requests(f"emulator:{emu.port}", emu.requests)
            with emu._lock:
                emu._requests.clear()


def recorded_requests() -> list[dict[str, Any]]:
    path = ARTIFACTS / "emulator-requests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

