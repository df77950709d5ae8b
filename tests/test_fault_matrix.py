"""The fault matrix: one test per fault, each through the real pipeline + job ledger against the
local Runware emulator, each asserting the outcome *and* how many video tasks the emulator accepted
(a video submission is what Runware bills). conftest prints the table at the end of the run.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

import fault_matrix
from jobs import (CHOICES, Runner, cli_generate_args, dead_pid, read_timeout, run_cli, start_cli,
                  value_of, video_submissions, wait_until)
from keysafety import SENTINEL_KEY, artifact_dir
from nodes import errors as E
from nodes import ledger as L
from nodes import pipeline
from nodes.ledger import fingerprint
from nodes.requests import build_text_to_video

JOB_SECONDS = 0.3


@pytest.fixture(scope="module")
def emu_server():
    from nodes.emulator import EmulatorServer

    # Only the session's sentinel key is accepted: every request below proves it was used.
    with EmulatorServer(job_seconds=JOB_SECONDS, api_key=SENTINEL_KEY) as emu:
        yield emu


@pytest.fixture
def emu(emu_server):
    emu_server.reset()
    emu_server.job_seconds = JOB_SECONDS
    yield emu_server
    emu_server.reset()
    emu_server.job_seconds = JOB_SECONDS


@pytest.fixture
def runner(emu, request):
    r = Runner(emu, request.node.name)
    yield r
    r.close()


def assert_video(result: pipeline.JobResult) -> None:
    assert result is not None
    assert result.video_path.is_file() and result.probe.frame_count == 80
    assert (result.probe.width, result.probe.height) == (640, 360)
    assert not list(result.video_path.parent.glob("*.part"))


def assert_finished_in_ledger(runner: Runner, result) -> None:
    entry = runner.entry(result.task_uuid)
    assert entry.status == L.FINISHED and entry.file_ok() and entry.local_file == str(result.video_path)
    assert entry.cost == result.video.cost and entry.result_url == result.video.video_url


# -- HTTP faults ---------------------------------------------------------------------------------

def test_submit_429_with_retry_after(emu, runner):
    emu.inject("http_status", status=429, retry_after=1, on="submit")
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    assert_finished_in_ledger(runner, out.result)
    stats = emu.stats()
    assert stats["video_submit_attempts"] == 2 and video_submissions(emu) == 1
    stamps = [r["time"] for r in emu.requests if r["method"] == "POST" and r["body"][0]["taskType"] == "videoInference"]
    assert stamps[1] - stamps[0] >= 1.0, "Retry-After: 1 was not honoured"
    fault_matrix.record("submit: HTTP 429 + Retry-After: 1", "video; the same taskUUID resent after 1 s",
                        video_submissions(emu), out.seconds)


def test_poll_429_with_retry_after(emu, runner):
    emu.inject("http_status", status=429, retry_after=1, on="poll")
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    polls = [r["time"] for r in emu.requests if r["method"] == "POST" and r["body"][0]["taskType"] == "getResponse"]
    assert polls[1] - polls[0] >= 1.0
    assert video_submissions(emu) == 1 and emu.stats()["video_submit_attempts"] == 1
    fault_matrix.record("poll: HTTP 429 + Retry-After: 1", "video; poll retried after 1 s", video_submissions(emu),
                        out.seconds)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_poll_5xx(emu, runner, status):
    emu.inject("http_status", status=status, on="poll", times=2)
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    assert emu.stats()["faults_fired"]["http_status"] == 2
    assert video_submissions(emu) == 1 and emu.stats()["video_submit_attempts"] == 1
    fault_matrix.record(f"poll: HTTP {status} (twice)", "video; polls retried", video_submissions(emu), out.seconds)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_submit_5xx_not_processed(emu, runner, status):
    """A 5xx to the submit is ambiguous: the pipeline polls over the grace period, learns Runware never
    got the task, and sends the same request (same taskUUID) again by itself: one run, one video, one
    accepted task; the resend is recorded in the ledger row."""
    emu.inject("http_status", status=status, on="submit")
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    assert_finished_in_ledger(runner, out.result)
    sent = [r["body"][0]["taskUUID"] for r in emu.requests
            if r["method"] == "POST" and r["body"][0]["taskType"] == "videoInference"]
    assert sent == [out.result.task_uuid] * 2  # the same request, the same taskUUID
    assert emu.stats()["video_submit_attempts"] == 2 and video_submissions(emu) == 1
    entry = runner.entry(out.result.task_uuid)
    assert any("sent again (resend 1 of at most 2" in n for n in entry.notices), entry.notices
    assert any("sent again" in n for n in out.result.notices)
    fault_matrix.record(f"submit: HTTP {status}, not processed",
                        "polled over the grace period: never created → same request resent once → video",
                        video_submissions(emu), out.seconds)


def test_submit_5xx_every_time_bounded(emu, runner):
    """Runware keeps refusing: resent at most RetryPolicy.submit_lost_resends times, then a clear
    error (nothing charged); the ledger row says lost."""
    emu.inject("http_status", status=503, on="submit", times=10)
    out = runner.attempt()
    assert isinstance(out.error, E.RunwareSubmissionLost), out.text
    assert "nothing was charged" in out.text and out.error.task_uuid in out.text
    assert emu.stats()["video_submit_attempts"] == 3 and video_submissions(emu) == 0
    assert runner.entry(out.error.task_uuid).status == L.LOST
    fault_matrix.record("submit: HTTP 503 every time", "resent twice (bounded), then SubmissionLost; "
                        "ledger: lost", video_submissions(emu), out.seconds)


def test_connection_reset_on_submit_after_accept(emu, runner):
    emu.inject("drop_connection", on="submit", after_accept=True)
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    assert_finished_in_ledger(runner, out.result)
    sent = {r["body"][0]["taskUUID"] for r in emu.requests
            if r["method"] == "POST" and r["body"][0]["taskType"] == "videoInference"}
    assert sent == {out.result.task_uuid}
    assert emu.stats()["video_submit_attempts"] == 1 and video_submissions(emu) == 1
    fault_matrix.record("submit: connection reset after Runware accepted",
                        "video; resolved by polling the taskUUID, not resent", video_submissions(emu), out.seconds)


def test_read_timeout_mid_poll(emu, runner):
    emu.inject("slow", delay=1.5, on="poll")
    out = runner.attempt(client_kw={"timeout": read_timeout(0.4)})
    assert out.error is None, out.text
    assert_video(out.result)
    assert emu.stats()["faults_fired"]["slow"] == 1
    assert video_submissions(emu) == 1 and emu.stats()["video_submit_attempts"] == 1
    fault_matrix.record("poll: read timeout (reply 1.5 s late, timeout 0.4 s)", "video; poll retried",
                        video_submissions(emu), out.seconds)


@pytest.mark.parametrize("on", ["submit", "poll"])
def test_malformed_json(emu, runner, on):
    emu.inject("malformed_json", on=on, times=1 if on == "submit" else 2)
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    assert emu.stats()["faults_fired"]["malformed_json"] == (1 if on == "submit" else 2)
    assert video_submissions(emu) == 1 and emu.stats()["video_submit_attempts"] == 1
    fault_matrix.record(f"{on}: malformed JSON reply", "video; " + (
        "unclear submit resolved by polling" if on == "submit" else "polls retried"), video_submissions(emu), out.seconds)


# -- task and result faults ----------------------------------------------------------------------

def test_task_error_with_provider_text(emu, runner):
    emu.inject("task_error", code="taskFailed", message="Generation failed upstream.",
               provider_message="PixVerse: the render farm is on fire", form="errors_item")
    first = runner.attempt()
    assert isinstance(first.error, E.RunwareProviderError), first.text
    uuid = first.error.task_uuid
    assert "PixVerse: the render farm is on fire" in first.text and uuid in first.text
    entry = runner.entry(uuid)
    assert entry.status == L.FAILED and "render farm is on fire" in entry.error
    assert video_submissions(emu) == 1
    # A failed task is not a result: running again submits a new task, once.
    second = runner.attempt()
    assert second.error is None and second.result.task_uuid != uuid
    assert video_submissions(emu) == 2
    fault_matrix.record("task error (provider text)",
                        "RunwareProviderError quoting PixVerse; ledger: failed; re-run submits anew",
                        "1 (+1 re-run)", first.seconds)


def test_download_422_then_ok(emu, runner):
    emu.inject("download_status", status=422, times=2)
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    assert emu.stats()["downloads"] == 3 and video_submissions(emu) == 1
    fault_matrix.record("download: HTTP 422 twice, then OK", "video; download retried", video_submissions(emu),
                        out.seconds)


def test_truncated_download(emu, runner):
    emu.inject("download_truncate")
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    assert emu.stats()["downloads"] == 2 and video_submissions(emu) == 1
    fault_matrix.record("download: truncated (connection closed half way)", "video; download retried",
                        video_submissions(emu), out.seconds)


def test_corrupt_mp4(emu, runner):
    emu.inject("corrupt_mp4")
    first = runner.attempt()
    assert isinstance(first.error, E.RunwareDownloadError), first.text
    uuid = first.error.task_uuid
    assert "not a playable video" in first.text and f"python -m nodes recover {uuid}" in first.text
    dest = pipeline.result_path(runner.out, uuid)
    assert not dest.exists() and not list(runner.out.glob("*.part"))
    assert runner.entry(uuid).status == L.SUCCEEDED  # paid for and still fetchable: never resubmitted
    assert emu.stats()["downloads"] == 2 and video_submissions(emu) == 1
    again = runner.attempt()  # the emulator keeps serving garbage for this task
    assert isinstance(again.error, E.RunwareDownloadError) and again.error.task_uuid == uuid
    assert video_submissions(emu) == 1
    fault_matrix.record("result: corrupt MP4", "DownloadError (not playable), file removed; re-run polls the "
                        "same task", video_submissions(emu), first.seconds)


def test_never_finishes_deadline(emu, runner):
    emu.inject("never_finish")
    first = runner.attempt(deadline_s=1.0)
    assert isinstance(first.error, E.RunwareTimeoutError), first.text
    assert 0.9 <= first.seconds < 3.0
    uuid = first.error.task_uuid
    assert "PixVerse Recover node" in first.text and f"python -m nodes recover {uuid}" in first.text
    assert runner.entry(uuid).status == L.SUBMITTED
    again = runner.attempt(deadline_s=0.6)  # same request: resumes the same task, still unfinished
    assert isinstance(again.error, E.RunwareTimeoutError) and again.error.task_uuid == uuid
    assert video_submissions(emu) == 1
    fault_matrix.record("task never finishes (deadline 1 s)",
                        "TimeoutError naming Recover node + CLI; re-run resumes the same task",
                        video_submissions(emu), first.seconds)


def test_user_cancel_leaves_the_task_recoverable(emu, runner):
    emu.job_seconds = 2.5
    t0 = time.monotonic()
    first = runner.attempt(cancel_check=lambda: time.monotonic() - t0 > 0.4)
    assert isinstance(first.error, E.RunwareInterrupted), first.text
    assert first.seconds < 1.2, f"cancel took {first.seconds:.2f} s"
    uuid = first.error.task_uuid
    assert "PixVerse Recover node" in first.text and f"python -m nodes recover {uuid}" in first.text
    assert runner.entry(uuid).status == L.SUBMITTED
    recovered = runner.attempt(lambda client, opts: pipeline.recover(client, uuid, opts))
    assert recovered.error is None, recovered.text
    assert_video(recovered.result)
    assert recovered.result.task_uuid == uuid and recovered.result.origin == "recovered"
    assert runner.entry(uuid).status == L.FINISHED
    before = emu.stats()["requests"]
    rerun = runner.attempt()  # the same request again: the ledger's file, no network at all
    assert rerun.error is None and rerun.result.origin == "reused" and rerun.result.task_uuid == uuid
    assert emu.stats()["requests"] == before
    assert video_submissions(emu) == 1
    fault_matrix.record("user cancel while waiting", "Interrupted in < 1 s; Recover → video; re-run reuses it",
                        video_submissions(emu), first.seconds + recovered.seconds)


def test_rerun_of_a_finished_job_needs_no_network(emu, runner):
    first = runner.run()
    before = emu.stats()["requests"]
    again = runner.attempt()
    assert again.error is None
    assert again.result.origin == "reused" and again.result.task_uuid == first.task_uuid
    assert again.result.video_path == first.video_path and again.result.info["source"] == "reused"
    assert emu.stats()["requests"] == before and video_submissions(emu) == 1
    fresh = runner.run(fresh=True)  # asked for explicitly: a new task
    assert fresh.task_uuid != first.task_uuid and video_submissions(emu) == 2
    fault_matrix.record("same request run again", "reused from the ledger, 0 requests (fresh=True: new task)",
                        "1 (+1 fresh)", again.seconds)


# -- the process dies ----------------------------------------------------------------------------

def _claim_like_the_pipeline(runner: Runner, emu, owner_pid: int) -> str:
    """A ledger row in `submitting`, owned by a process that died: as a crash during the POST leaves it."""
    built = build_text_to_video(CHOICES)
    request = {k: v for k, v in built.task.items() if k != "taskUUID"}
    claim = runner.ledger.claim(fingerprint=fingerprint(request), endpoint=emu.base_url, task_uuid=built.task_uuid,
                                model=built.model.air, request=request)
    assert claim.new
    assert runner.ledger.advance(built.task_uuid, L.SUBMITTING, owner=f"{L.HOST}:{owner_pid}")
    return built.task_uuid


def test_killed_after_the_submit_post(emu, runner):
    uuid = _claim_like_the_pipeline(runner, emu, dead_pid())

    async def post_it():  # the POST reached Runware; its process died before reading the reply
        async with runner.client() as client:
            task = build_text_to_video(CHOICES, task_uuid=uuid).task
            await client.submit_video(task)
    asyncio.run(post_it())
    out = runner.attempt()
    assert out.error is None, out.text
    assert out.result.task_uuid == uuid and out.result.origin == "resumed"
    assert_video(out.result)
    assert video_submissions(emu) == 1
    fault_matrix.record("process killed after the submit POST (ledger: submitting)",
                        "restart polls that taskUUID → video", video_submissions(emu), out.seconds)


def test_killed_before_the_submit_post(emu, runner):
    uuid = _claim_like_the_pipeline(runner, emu, dead_pid())
    out = runner.attempt()  # Runware never got it: polled, found lost, submitted anew
    assert out.error is None, out.text
    assert out.result.task_uuid != uuid and out.result.origin == "new"
    assert runner.entry(uuid).status == L.LOST
    assert emu.stats()["polls"] >= 3 and video_submissions(emu) == 1
    fault_matrix.record("process killed before the submit POST (ledger: submitting)",
                        "restart: taskNotFound → row lost → one new task", video_submissions(emu), out.seconds)


def test_cli_killed_mid_poll_resumes_the_same_task(emu, runner):
    """SIGKILL the CLI while it polls; the same command again resumes that taskUUID."""
    emu.job_seconds = 5.0
    logs = artifact_dir("jobs", runner.dir.name, "cli")
    args = cli_generate_args(runner.out, runner.ledger_path)
    t0 = time.monotonic()
    proc = start_cli(emu, args, logs, "first")
    try:
        assert wait_until(lambda: video_submissions(emu) == 1 and emu.stats()["polls"] >= 1, timeout=60), \
            (logs / "first.stderr").read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    [entry] = runner.ledger.entries()
    assert entry.status == L.SUBMITTED and not pipeline.result_path(runner.out, entry.task_uuid).exists()
    assert entry.task_uuid in (logs / "first.stderr").read_text()  # the user saw the taskUUID
    code, stdout, stderr = run_cli(emu, args, logs, "second")
    assert code == 0, stderr
    assert f"resumed task {entry.task_uuid} from the ledger" in stdout
    assert value_of(stdout, "taskUUID") == entry.task_uuid
    assert pipeline.result_path(runner.out, entry.task_uuid).is_file()
    assert video_submissions(emu) == 1 and emu.stats()["video_submit_attempts"] == 1
    seconds = time.monotonic() - t0
    before = emu.stats()["requests"]
    code, stdout, _ = run_cli(emu, args, logs, "third")
    assert code == 0 and f"reused finished task {entry.task_uuid} from the ledger" in stdout
    assert emu.stats()["requests"] == before
    fault_matrix.record("CLI process SIGKILLed mid-poll, same command again",
                        "resumed the same taskUUID → video; 3rd run reused, 0 requests",
                        video_submissions(emu), seconds)


# -- races ---------------------------------------------------------------------------------------

def test_two_runs_racing_in_one_process(emu, runner):
    """Two concurrent jobs of one request (two ComfyUI prompts), each with its own ledger connection."""
    other = L.Ledger(runner.ledger_path)

    async def both():
        async with runner.client() as a, runner.client() as b:
            return await asyncio.gather(pipeline.text_to_video(a, CHOICES, runner.opts()),
                                        pipeline.text_to_video(b, CHOICES, runner.opts(ledger=other)))
    t0 = time.monotonic()
    try:
        first, second = asyncio.run(both())
    finally:
        other.close()
    assert first.task_uuid == second.task_uuid
    assert sorted([first.origin, second.origin]) == ["new", "resumed"]
    assert_video(first)
    assert video_submissions(emu) == 1 and emu.stats()["video_submit_attempts"] == 1
    fault_matrix.record("two runs of one request at once (one process)", "one task; the second follows it",
                        video_submissions(emu), time.monotonic() - t0)


def test_two_processes_racing(emu, runner):
    emu.job_seconds = 1.0
    logs = artifact_dir("jobs", runner.dir.name, "cli")
    args = cli_generate_args(runner.out, runner.ledger_path)
    t0 = time.monotonic()
    procs = [start_cli(emu, args, logs, f"racer{i}") for i in range(2)]
    for proc in procs:
        assert proc.wait(120) == 0, (logs / "racer0.stderr").read_text() + (logs / "racer1.stderr").read_text()
    outs = [(logs / f"racer{i}.stdout").read_text() for i in range(2)]
    uuids = {value_of(o, "taskUUID") for o in outs}
    assert len(uuids) == 1 and None not in uuids
    assert sum(("resumed task" in o) or ("reused finished task" in o) for o in outs) == 1
    assert video_submissions(emu) == 1
    fault_matrix.record("two CLI processes, same command, same moment", "one task; the other resumed/reused it",
                        video_submissions(emu), time.monotonic() - t0)
