"""The job ledger notices a swap under a live process (issue 25 item 7): the file replaced by another file,
overwritten in place with other bytes, or deleted while the Ledger is open. The write that notices it is not
made (LedgerReplaced says what happened), a damaged file is moved aside untouched, a new ledger starts at the
path (with the rows the process could still read), as at start-up. Real SQLite files, real renames."""
from __future__ import annotations

import os
import time

import pytest

import fault_matrix
from support.jobs import choices, video_submissions
from support.keysafety import artifact_dir
from nodes.job import pipeline
from nodes.money import ledger as L
from nodes.money.ledger import Ledger, LedgerReplaced

EP = "http://127.0.0.1:1/v1"
GARBAGE = b"this is not a database, it is a shopping list\n" * 200


def _claim(led: Ledger, n: int):
    return led.claim(fingerprint=f"fp{n}", endpoint=EP, task_uuid=f"00000000-0000-4000-8000-{n:012d}", model="m")


@pytest.fixture
def path(request):
    return artifact_dir("ledger-swap", request.node.name) / "ledger.sqlite3"


def _aside(path):
    return sorted(path.parent.glob(path.name + ".damaged-*"))


def test_replaced_by_other_bytes_is_moved_aside_and_rows_carried(path):
    led = Ledger(path)
    _claim(led, 1)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(GARBAGE)
    os.replace(tmp, path)  # another file (another inode) now at the ledger's path
    with pytest.raises(LedgerReplaced) as info:
        _claim(led, 2)
    text = str(info.value)
    assert "was replaced by another file while this process ran" in text and "moved to" in text
    assert "1 row(s) this process could still read" in text, text
    aside = [p for p in _aside(path) if not str(p).endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == GARBAGE  # moved aside, not written into
    assert led.get("00000000-0000-4000-8000-000000000001") is not None  # the row it could still read
    _claim(led, 3)  # the new ledger takes writes
    led.close()
    with Ledger(path) as again:
        assert {e.task_uuid[-1] for e in again.entries()} == {"1", "3"}
    fault_matrix.record("ledger file replaced by other bytes under a live process", "the write refused and said; "
                        "the file moved aside unchanged; a new ledger with the rows still readable", 0, 0.0)


def test_overwritten_in_place_is_noticed(path):
    led = Ledger(path)
    _claim(led, 1)
    with open(path, "r+b") as fh:  # the same inode, other bytes
        fh.write(GARBAGE[:4096])
    with pytest.raises(LedgerReplaced) as info:
        _claim(led, 2)
    assert "overwritten with bytes that are not an SQLite database" in str(info.value)
    assert len([p for p in _aside(path) if not str(p).endswith(("-wal", "-shm"))]) == 1
    _claim(led, 3)
    led.close()
    fault_matrix.record("ledger file overwritten in place under a live process", "noticed (header) on the next "
                        "write; moved aside; a new ledger", 0, 0.0)


def test_deleted_under_the_process_starts_a_new_one(path):
    led = Ledger(path)
    _claim(led, 1)
    path.unlink()
    with pytest.raises(LedgerReplaced) as info:
        _claim(led, 2)
    assert "was deleted while this process ran" in str(info.value)
    assert path.is_file() and led.get("00000000-0000-4000-8000-000000000001") is not None
    led.close()


def test_another_good_ledger_swapped_in_is_used_as_found(path):
    led = Ledger(path)
    _claim(led, 1)
    other = path.with_name("other.sqlite3")
    with Ledger(other) as o:
        _claim(o, 7)
    os.replace(other, path)
    with pytest.raises(LedgerReplaced) as info:
        _claim(led, 2)
    assert "this process now uses the file found there" in str(info.value)
    assert not _aside(path)
    assert {e.task_uuid[-1] for e in led.entries()} == {"1", "7"}
    led.close()


def test_a_job_whose_ledger_is_swapped_mid_run_keeps_its_video_and_says_so(emu, runner):
    """While the task is processing, the ledger file is replaced by other bytes: the paid video is still
    delivered (the taskUUID is kept), the run says the ledger could not be updated, nothing is written into
    the replaced file, and a re-run is served from the new ledger (the row was carried over)."""
    def swap():
        tmp = runner.ledger_path.with_suffix(".swap")
        tmp.write_bytes(GARBAGE)
        os.replace(tmp, runner.ledger_path)

    done: list = []

    def on_progress(event):
        if event.phase == "processing" and not done:
            done.append(True)
            swap()
    t0 = time.monotonic()
    out = runner.attempt(on_progress=on_progress)
    assert done and out.error is None, out.text
    assert out.result.video_path.is_file()
    assert any("was replaced by another file while this process ran" in n for n in out.result.notices), \
        out.result.notices
    aside = [p for p in _aside(runner.ledger_path) if not str(p).endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == GARBAGE
    assert video_submissions(emu) == 1
    again = runner.attempt()  # the same request: the carried row is followed, not paid again
    assert again.error is None and video_submissions(emu) == 1, again.text
    fault_matrix.record("ledger replaced by other bytes while a job is processing",
                        "video delivered with a notice; file moved aside unchanged; re-run not paid again",
                        video_submissions(emu), time.monotonic() - t0)
