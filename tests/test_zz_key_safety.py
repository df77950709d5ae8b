"""Key safety. conftest orders this module last: it reads everything the run wrote.

The whole session authenticates with one random sentinel key (conftest sets RUNWARE_API_KEY). Here:
the search itself finds a planted key in every form it looks for; the run really used the key
(the emulators saw it: they record its sha256, never the header); and the key is in none of the
files the run wrote: job ledgers (SQLite, WAL included), logs (the session log and pytest's captured
output), info outputs, error texts, CLI output, the emulators' recorded requests, ComfyUI's folders
(log, user directory with its ledger and saved workflow, outputs, history), the session's temporary
folder (pytest's tmp_path folders included: keysafety.prepare points TMPDIR there), the example workflows,
and any file of the checkout changed during the session outside the artifacts. What could not be searched
(a missing folder, an unreadable file, an emulator record that was not saved) fails the check.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import tempfile

from pathlib import Path

import pytest

from support import keysafety, workers
from support.keysafety import ARTIFACTS, ROOT, SENTINEL_KEY, files_under, key_forms, recorded_requests, scan


@pytest.fixture(scope="module", autouse=True)
def everything_else_ended(request):
    """With workers (`-n`), this module runs on one of them while others may still be running tests: it
    waits until every other test of the session has ended (tests/support/workers.py)."""
    if workers.worker_id(request.config) is not None:
        missing = workers.wait_for_the_others(workers.OTHERS)
        assert not missing, f"{len(missing)} tests never ended on any worker, e.g. {missing[:3]}"
    keysafety.PASSED.update(workers.passed_modules())


def _flush() -> None:
    keysafety.dump_live_emulators()
    for handler in logging.getLogger().handlers:
        handler.flush()


@pytest.fixture
def planted(tmp_path):
    """A folder for planted keys, emptied afterwards: tmp_path is under the artifacts the last test searches."""
    yield tmp_path
    shutil.rmtree(tmp_path)


def test_the_search_finds_a_planted_key(planted):
    tmp_path = planted
    forms = key_forms(SENTINEL_KEY)
    for name, form in forms.items():
        (tmp_path / f"{name}.bin").write_bytes(b"prefix " + form + b" suffix")
    db = tmp_path / "planted.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (f"Bearer {SENTINEL_KEY}",))
    (tmp_path / "clean.txt").write_text("nothing to see " + SENTINEL_KEY[:-1])
    hits = scan([tmp_path])
    found = {(Path(path).name, form) for path, form in hits}
    for name in forms:
        assert (f"{name}.bin", name) in found, name
    assert any(path.endswith("planted.sqlite3") for path, _ in hits)
    assert not any(path.endswith("clean.txt") for path, _ in hits)
    assert scan([tmp_path / "never-written"]) == [(str(tmp_path / "never-written"), "missing")]


def test_what_cannot_be_searched_is_not_clean(tmp_path, monkeypatch):
    """A file the search cannot read is reported, not passed over (root reads every file, so the refusal
    is made by replacing Path.read_bytes for that one file)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ok.txt").write_text("nothing", encoding="utf-8")
    blocked = tmp_path / "blocked.bin"
    blocked.write_bytes(b"x")
    real = Path.read_bytes

    def refuse(self):
        if self == blocked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)
    monkeypatch.setattr(Path, "read_bytes", refuse)
    hits = scan([tmp_path])
    monkeypatch.undo()
    assert [(Path(p).name, form.split(":")[0]) for p, form in hits] == [("blocked.bin", "unreadable")]


def test_the_run_used_the_sentinel_key():
    if not ({"test_fault_matrix.py", "test_client.py", "test_ledger.py", "test_comfyui_integration.py"}
            & keysafety.PASSED):
        pytest.skip("no emulator test ran in this session")
    _flush()
    requests = recorded_requests()
    digest = hashlib.sha256(SENTINEL_KEY.encode()).hexdigest()
    assert sum(r.get("auth_key_sha256") == digest for r in requests) >= 10
    assert not [r for r in requests if any(k.lower() == "authorization" for k in r.get("headers", {}))]


def test_the_key_is_written_nowhere():
    if not (keysafety.PASSED - {"test_zz_key_safety.py"}):
        pytest.skip("no other test ran in this session: nothing to search")
    _flush()
    written = files_under(ARTIFACTS)
    names = [p.name for p in written]
    assert "session.log" in names and (ARTIFACTS / "logs" / "session.log").stat().st_size > 0
    if "test_fault_matrix.py" in keysafety.PASSED:  # the full run: every kind of file is there to search
        assert any(n.endswith(".sqlite3") for n in names), "no job ledger"
        assert "info.jsonl" in names and "errors.txt" in names and "emulator-requests.jsonl" in names
        assert any(n.endswith(".mp4") for n in names)
    if "test_comfyui_integration.py" in keysafety.PASSED:
        comfy = ARTIFACTS / "comfyui-main"  # the shared server of the real-ComfyUI modules (conftest)
        assert (comfy / "comfyui.log").is_file() and (comfy / "history.json").is_file()
        assert (comfy / "user" / "runware" / "pixverse-ledger.sqlite3").is_file()
        assert list((comfy / "user").rglob("*.json")), "no saved workflow"
    searched = [ARTIFACTS]
    if (ROOT / "example_workflows").is_dir():
        searched.append(ROOT / "example_workflows")
    assert keysafety.PROBLEMS == [], keysafety.PROBLEMS  # a record that was not saved was not searched
    assert not (ARTIFACTS / "problems.txt").exists(), (ARTIFACTS / "problems.txt").read_text()  # any worker's
    assert keysafety.TMP.is_dir() and str(keysafety.TMP) in (tempfile.gettempdir(), os.environ.get("TMPDIR"))
    strays = keysafety.written_in_checkout()  # written outside the artifacts: searched too, and named
    hits = scan(searched + strays)
    assert hits == [], f"the API key was written to (or these could not be searched): {hits}"
    if strays:
        print(f"files written in the checkout outside the artifacts (searched): {[str(p) for p in strays]}")
    print(f"searched {len(written)} files under {ARTIFACTS} for the key in {len(key_forms(SENTINEL_KEY))} forms")
