"""A busy account (issue 25 §1): Runware refuses submits past the account's concurrency (HTTP 429
rateLimitExceeded "Too many concurrent generations…"); the jobs that run together wait for a free slot in one
per-endpoint window and send the same taskUUID again — against the emulator (`max_concurrent`) over 127.0.0.1.

What is counted is what the emulator saw: accepted video tasks, busy refusals, how many ran at once."""
from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

import fault_matrix
from support.jobs import CHOICES, choices, video_submissions
from support.keysafety import artifact_dir
import workflow_runs as runs
from nodes import errors as E
from nodes.client import window as W
from nodes.job import pipeline
from nodes.money import ledger as L
from nodes.requests.tasks import build_text_to_video


def _many(runner, n, *, first_seed=300, collect=None, **opt_kw):
    """n takes of one text-to-video run (a node's `count`), claimed together, run concurrently."""
    group = pipeline.ClaimGroup(n) if n > 1 else None

    async def go():
        async with runner.client() as client:
            def opts():
                kw = dict(opt_kw)
                if collect is not None:
                    kw["on_progress"] = collect.append
                return runner.opts(claim_group=group, **kw)
            return await asyncio.gather(*(runs.text_to_video(client, choices(seed=first_seed + i), opts())
                                          for i in range(n)), return_exceptions=True)
    return asyncio.run(go())


def _accepted_once(emu) -> None:
    """Every taskUUID the emulator accepted was accepted once; a refused submit was sent again with its own."""
    submits = Counter(t.get("taskUUID") for t in emu.video_tasks())
    assert emu.stats()["duplicate_submits"] == 0
    assert all(emu.job(u) is not None for u in submits), "a taskUUID was sent but never accepted"


def test_is_busy_reads_runware_and_provider_words():
    busy = [E.RunwareRateLimitError("Too many requests"),
            E.RunwareError("x", status=429),
            E.RunwareProviderError("Too many simultaneous generations", code="500044"),
            E.RunwareServerError("The provider is busy, try again later"),
            E.RunwareProviderError("Concurrent generation limit reached for this account")]
    calm = [E.RunwareValidationError("Invalid value for duration", parameter="duration"),
            E.RunwareBalanceError("Insufficient credits", status=402),
            E.RunwareAuthError("Invalid API key", status=401),
            E.RunwareContentPolicyError("The prompt was refused")]
    assert all(W.is_busy(e) for e in busy), [e for e in busy if not W.is_busy(e)]
    assert not any(W.is_busy(e) for e in calm), [e for e in calm if W.is_busy(e)]


def test_the_window_shrinks_to_what_runs_and_grows_by_one_per_accept():
    window = W.SubmitWindow("http://example.invalid/v1")

    async def go():
        from nodes.client.http import Waiter
        slots = [window.slot() for _ in range(4)]
        for s in slots:
            await s.take(Waiter(None, 1.0, None))
        assert window.running == 4 and window.limit is None
        slots[0].accepted()
        assert window.limit is None  # no limit until a busy refusal
        assert slots[3].refused() == 3 and window.limit == 3
        assert slots[2].refused() == 2 and window.limit == 2
        waiting = []
        late = window.slot()
        with pytest.raises(E.RunwareTimeoutError):  # full: waits, and the deadline ends the wait
            await late.take(Waiter(None, 0.3, None), waiting.append)
        assert waiting == [2] and not late.held
        slots[1].release()
        await late.take(Waiter(None, 1.0, None))
        late.accepted()
        assert window.limit == 3 and window.running == 2
        for s in (slots[0], late, late):
            s.release()
        assert window.running == 0
    asyncio.run(go())


def test_count_5_on_an_account_that_renders_2_at_once_makes_5_videos(emu, runner):
    emu.max_concurrent = 2
    emu.job_seconds = 0.6
    said = []
    t0 = time.monotonic()
    results = _many(runner, 5, collect=said)
    assert all(isinstance(r, pipeline.JobResult) and r.origin == "new" for r in results), results
    assert all(r.video_path.is_file() for r in results)
    stats = emu.stats()
    assert stats["video_submissions"] == 5 and len({r.task_uuid for r in results}) == 5
    assert stats["peak_running"] <= 2 and stats["busy_refusals"] >= 1, stats
    _accepted_once(emu)
    waits = [e.message for e in said if e.message.startswith(W.WAIT_PREFIX)]
    assert waits and all(m.endswith("running)") for m in waits), waits
    assert all(runner.entry(r.task_uuid).status == L.FINISHED for r in results)
    fault_matrix.record("busy account (2 at once): count 5", f"5 videos, at most {stats['peak_running']} running, "
                        f"{stats['busy_refusals']} busy refusals (not billed)", stats["video_submissions"],
                        time.monotonic() - t0)


def test_retry_after_is_honoured_and_every_take_ends_with_a_video(emu, runner):
    emu.max_concurrent, emu.busy_retry_after = 1, 0.3
    emu.job_seconds = 0.3
    t0 = time.monotonic()
    results = _many(runner, 3, first_seed=400)
    assert all(isinstance(r, pipeline.JobResult) for r in results), results
    stats = emu.stats()
    assert stats["video_submissions"] == 3 and stats["peak_running"] == 1, stats
    _accepted_once(emu)
    fault_matrix.record("busy account (1 at once, Retry-After 0.3 s): count 3", "3 videos one after another",
                        stats["video_submissions"], time.monotonic() - t0)


def test_cancel_while_waiting_for_a_slot_charges_nothing(emu, runner):
    emu.max_concurrent = 1
    emu.job_seconds = 3.0
    said = []
    seen_wait = lambda: any(e.message.startswith(W.WAIT_PREFIX) and e.task_uuid for e in said)  # noqa: E731
    cancel_after_wait = {"on": False}

    def cancel() -> bool:  # only the take that waits is cancelled, once it said it waits
        return cancel_after_wait["on"]

    async def go():
        async with runner.client() as client:
            first = asyncio.ensure_future(runs.text_to_video(client, choices(seed=500), runner.opts()))
            while emu.stats()["video_submissions"] < 1:
                await asyncio.sleep(0.02)
            second = asyncio.ensure_future(runs.text_to_video(
                client, choices(seed=501), runner.opts(on_progress=said.append, cancel_check=cancel)))
            while not seen_wait():
                await asyncio.sleep(0.02)
            cancel_after_wait["on"] = True
            return await asyncio.gather(first, second, return_exceptions=True)
    t0 = time.monotonic()
    first, second = asyncio.run(go())
    assert isinstance(first, pipeline.JobResult), first
    assert isinstance(second, E.RunwareInterrupted), second
    assert "waiting for a free slot" in str(second) and "nothing was charged" in str(second)
    assert emu.stats()["video_submissions"] == 1
    rows = {e.task_uuid: e for e in runner.ledger.entries()}
    assert rows[second.task_uuid].status == L.ABANDONED
    fault_matrix.record("busy account: cancel while waiting for a slot", "RunwareInterrupted 'nothing was charged'; "
                        "row abandoned", 1, time.monotonic() - t0)


def test_busy_until_the_deadline_says_nothing_was_charged(emu, runner):
    emu.max_concurrent = 1
    emu.job_seconds = 4.0

    async def go():
        async with runner.client() as client:
            first = asyncio.ensure_future(runs.text_to_video(client, choices(seed=600), runner.opts()))
            while emu.stats()["video_submissions"] < 1:
                await asyncio.sleep(0.02)
            second = await asyncio.gather(runs.text_to_video(client, choices(seed=601),
                                                                 runner.opts(deadline_s=1.0)),
                                          return_exceptions=True)
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            return second[0]
    t0 = time.monotonic()
    second = asyncio.run(go())
    assert isinstance(second, E.RunwareRateLimitError), second
    assert "nothing was charged" in str(second) and "deadline" in str(second)
    assert emu.stats()["video_submissions"] == 1
    row = runner.entry(second.task_uuid)
    assert row.status == L.REFUSED and "nothing was charged" in row.error
    fault_matrix.record("busy account until the job's deadline", "RunwareRateLimitError 'never accepted, nothing "
                        "was charged'; row refused", 1, time.monotonic() - t0)


def test_batch_of_12_rows_on_an_account_that_renders_2_at_once(emu, request, cli):
    from test_batch import batch_args, results, rows, write_jsonl

    emu.max_concurrent = 2
    emu.job_seconds = 0.5
    d = artifact_dir("busy", request.node.name)
    file = write_jsonl(d / "jobs.jsonl", rows(12))
    t0 = time.monotonic()
    code, stdout, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "8"), d, "batch")
    assert code == 0, stderr
    got = results(d / "out")
    assert {r["status"] for r in got} == {"done"} and len({r["taskUUID"] for r in got}) == 12
    stats = emu.stats()
    assert stats["video_submissions"] == 12 and stats["peak_running"] <= 2 and stats["busy_refusals"] >= 1, stats
    _accepted_once(emu)
    assert "waiting for a free slot at Runware (" in stderr and "nothing is charged for a refused submit" in stderr
    fault_matrix.record("busy account (2 at once): batch 12 rows --jobs 8",
                        f"12 done, at most {stats['peak_running']} running", 12, time.monotonic() - t0)


def test_emulator_refuses_past_its_concurrency_with_429_and_retry_after(emu):
    import httpx
    from support.keysafety import SENTINEL_KEY

    emu.max_concurrent, emu.busy_retry_after = 1, 2
    emu.job_seconds = 2.0
    headers = {"Authorization": f"Bearer {SENTINEL_KEY}"}
    with httpx.Client(timeout=10) as http:
        ok = http.post(emu.base_url, json=[{**build_text_to_video(CHOICES).task, "deliveryMethod": "async"}], headers=headers)
        busy = http.post(emu.base_url, json=[{**build_text_to_video(CHOICES).task, "deliveryMethod": "async"}], headers=headers)
    assert ok.status_code == 200, ok.text
    assert busy.status_code == 429 and busy.headers.get("retry-after") == "2"
    err = busy.json()["errors"][0]
    assert err["code"] == "rateLimitExceeded" and err["message"].startswith("Too many concurrent generations")
    assert "nothing was charged" in err["message"]
    assert emu.stats()["video_submissions"] == 1 and emu.stats()["busy_refusals"] == 1


def test_emulator_command_line_refuses_a_concurrency_below_one():
    import subprocess
    import sys

    from support.keysafety import ROOT

    out = subprocess.run([sys.executable, "-m", "nodes.emulator", "--port", "0", "--max-concurrent", "0"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--max-concurrent 0: at least 1" in out.stderr, out.stderr


def test_a_busy_refusal_whose_task_arrived_after_all_is_followed_not_paid_twice(emu, runner):
    """The submit is answered 429 although Runware took the task: the same taskUUID sent again is refused as a
    duplicate, and the job follows the task it already has (one task, one video)."""
    emu.inject("http_status", status=429, retry_after=0.1, on="submit", after_accept=True)
    t0 = time.monotonic()
    out = runner.attempt()
    assert out.error is None, out.text
    assert video_submissions(emu) == 1 and emu.stats()["duplicate_submits"] == 1
    assert out.result.video_path.is_file() and runner.entry(out.result.task_uuid).status == L.FINISHED
    fault_matrix.record("submit: 429 after the task was taken", "the same taskUUID again: duplicate, followed; "
                        "1 video", 1, time.monotonic() - t0)


def test_a_job_stopped_by_asyncio_while_waiting_is_settled_abandoned(emu, runner):
    """asyncio cancellation (a batch's second Ctrl-C, a closing loop) while a job waits for a slot: its row is not
    left `submitting` (nothing was accepted)."""
    emu.max_concurrent = 1
    emu.job_seconds = 2.0
    said = []

    async def go():
        async with runner.client() as client:
            first = asyncio.ensure_future(runs.text_to_video(client, choices(seed=800), runner.opts()))
            while video_submissions(emu) < 1:
                await asyncio.sleep(0.02)
            second = asyncio.ensure_future(runs.text_to_video(client, choices(seed=801),
                                                                  runner.opts(on_progress=said.append)))
            while not any(e.message.startswith(W.WAIT_PREFIX) and e.task_uuid for e in said):
                await asyncio.sleep(0.02)
            second.cancel()
            return await asyncio.gather(first, second, return_exceptions=True)
    first, second = asyncio.run(go())
    assert isinstance(first, pipeline.JobResult) and isinstance(second, asyncio.CancelledError), (first, second)
    waiting = next(e.task_uuid for e in said if e.task_uuid)
    row = runner.entry(waiting)
    assert row.status == L.ABANDONED and "never accepted" in row.error, (row.status, row.error)
    assert video_submissions(emu) == 1
