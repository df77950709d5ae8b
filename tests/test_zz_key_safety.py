"""Key safety. conftest orders this module last: it reads everything the run wrote.

The whole session authenticates with one random sentinel key (conftest sets RUNWARE_API_KEY). Here:
the search itself finds a planted key in every form it looks for; the run really used the key
(the emulators saw it: they record its sha256, never the header); and the key is in none of the
files the run wrote: job ledgers (SQLite, WAL included), logs (the session log and pytest's captured
output), info outputs, error texts, CLI output, the emulators' recorded requests, ComfyUI's folders
(log, user directory with its ledger and saved workflow, outputs, history) and the example workflows.
"""
from __future__ import annotations

import hashlib
import logging
import sqlite3

import pytest

from support import keysafety
from support.keysafety import ARTIFACTS, ROOT, SENTINEL_KEY, files_under, key_forms, recorded_requests, scan


def _flush() -> None:
    keysafety.dump_live_emulators()
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_the_search_finds_a_planted_key(tmp_path):
    forms = key_forms(SENTINEL_KEY)
    for name, form in forms.items():
        (tmp_path / f"{name}.bin").write_bytes(b"prefix " + form + b" suffix")
    db = tmp_path / "planted.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (f"Bearer {SENTINEL_KEY}",))
    (tmp_path / "clean.txt").write_text("nothing to see " + SENTINEL_KEY[:-1])
    hits = scan([tmp_path])
    found = {(path.split("/")[-1], form) for path, form in hits}
    for name in forms:
        assert (f"{name}.bin", name) in found, name
    assert any(path.endswith("planted.sqlite3") for path, _ in hits)
    assert not any(path.endswith("clean.txt") for path, _ in hits)


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
    hits = scan(searched)
    assert hits == [], f"the API key was written to: {hits}"
    print(f"searched {len(written)} files under {ARTIFACTS} for the key in {len(key_forms(SENTINEL_KEY))} forms")
