"""The jobs tab ends every job (issue 25 item 9): a row left in a running status by a run that ended (a refused
result URL, a process killed while its task was processing, a follow-up that gave up) shows as ended, with what
it means for the bill and what to do; a row a live run works on shows running. The route's reply, built from
a real ledger after real runs against the emulator (the browser side: tests/test_browser_jobs_panel.py)."""
from __future__ import annotations

import time
import uuid

import fault_matrix
from support.jobs import dead_pid, video_submissions
from nodes.comfy.panel_routes import jobs_for
from nodes.money import ledger as L


def _card(ledger, task_uuid):
    return next(j for j in jobs_for(ledger, limit=100)["jobs"] if j["task_uuid"] == task_uuid)


def test_a_refused_result_url_ends_in_the_tab_with_what_to_do(emu, runner):
    emu.inject("result_url", url="file:///etc/passwd")
    t0 = time.monotonic()
    out = runner.attempt()
    task = out.error.task_uuid
    assert runner.entry(task).status == L.SUCCEEDED  # before: "running · downloading the video" forever
    card = _card(runner.ledger, task)
    assert card["kind"] == "stopped", card
    assert card["reason"].startswith("the video was made (billed) but not saved: ") and "only http" in \
        card["reason"], card
    assert f"python -m nodes recover {task}" in card["recover"], card
    fault_matrix.record("jobs tab: result URL refused", "ended: made (billed), not saved + how to recover; "
                        "no running card", video_submissions(emu), time.monotonic() - t0)


def test_a_killed_process_task_and_a_live_one(emu, runner):
    """A submitted row whose process died shows ended (Runware has it, billed, Recover); one a live coroutine of
    this process polls shows running, and ends when its run does."""
    ledger = runner.ledger
    dead = str(uuid.uuid4())
    ledger.claim(fingerprint="fp-dead", endpoint="http://127.0.0.1:1/v1", task_uuid=dead, model="pixverse:1@5")
    ledger.advance(dead, L.SUBMITTED, submitted_at=time.time(), owner=f"{L.HOST}:{dead_pid()}")
    card = _card(ledger, dead)
    assert card["kind"] == "stopped" and "Runware has the task; billed" in card["reason"], card
    assert f"python -m nodes recover {dead}" in card["recover"]

    seen: list[str] = []
    emu.job_seconds = 1.0

    def on_progress(event):
        if event.phase == "processing" and event.task_uuid and not seen:
            seen.append(_card(ledger, event.task_uuid)["kind"])
    out = runner.attempt(on_progress=on_progress)
    assert out.error is None and seen == ["running"], (seen, out.text)
    assert _card(ledger, out.result.task_uuid)["kind"] == "finished"
    fault_matrix.record("jobs tab: a killed process's task; a live one", "ended (billed, Recover) / running "
                        "while polled, then finished", video_submissions(emu), 0.0)


def test_preparing_row_of_an_ended_run_says_nothing_was_billed(runner):
    ledger = runner.ledger
    gone = str(uuid.uuid4())
    ledger.claim(fingerprint="fp-gone", endpoint="http://127.0.0.1:1/v1", task_uuid=gone, model="pixverse:1@5")
    card = _card(ledger, gone)  # claimed by this process, no coroutine works on it
    assert card["kind"] == "stopped" and "nothing billed" in card["reason"]
    assert card["recover"] == "Nothing was submitted or billed: run it again."
