"""The fault matrix: one test per fault, each through the real pipeline + job ledger against the
local Runware emulator, each asserting the outcome *and* how many video tasks the emulator accepted
(a video submission is what Runware bills). conftest prints the table at the end of the run.
"""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

import fault_matrix
from support.jobs import FAST_RETRY, Press, choices, frame
from support.jobs import (CHOICES, Runner, cli_generate_args, dead_pid, read_timeout, run_cli, start_cli,
                  value_of, video_submissions, wait_until)
from support.keysafety import SENTINEL_KEY, artifact_dir
import workflow_runs as runs
from nodes import errors as E
from nodes.money import ledger as L
from nodes.job import delivery, followup, pipeline
from nodes import config
from nodes.config import Config
from nodes.money import limits
from nodes.money.ledger import fingerprint
from nodes.requests.tasks import build_text_to_video


def _limit(daily: float, allow: bool = False) -> Config:
    """The job's configuration with a daily limit set in the environment (and runs of unknown cost allowed)."""
    return Config(daily_limit=daily, allow_unknown_cost=allow,
                  sources={"daily_limit": "env", **({"allow_unknown_cost": "env"} if allow else {})})

JOB_SECONDS = 0.3  # the emulator's job length (conftest's `emu`)


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


@pytest.mark.parametrize("status", [500, 502])  # 503 (Runware unavailable): test_runware_unavailable_*
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
    emu.inject("http_status", status=500, on="submit", times=10)
    out = runner.attempt()
    assert isinstance(out.error, E.RunwareSubmissionLost), out.text
    assert "nothing was charged" in out.text and out.error.task_uuid in out.text
    assert emu.stats()["video_submit_attempts"] == 3 and video_submissions(emu) == 0
    assert runner.entry(out.error.task_uuid).status == L.LOST
    fault_matrix.record("submit: HTTP 500 every time", "resent twice (bounded), then SubmissionLost; "
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
    dest = delivery.result_path(runner.out, uuid)
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
    assert 0.9 <= first.seconds < 10 * 1.0  # by the deadline, never before it; the bound: a multiple of it
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
    press = Press(emu, lambda: emu.stats()["polls"] >= 1)  # pressed while Runware renders it
    first = runner.attempt(cancel_check=press)
    assert isinstance(first.error, E.RunwareInterrupted), first.text
    assert press.more("polls") <= 1, "it went on polling after the cancel"
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
    claim = runner.ledger.claim(fingerprint=fingerprint(built.identity), endpoint=emu.base_url, task_uuid=built.task_uuid,
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


def test_cli_killed_mid_poll_resumes_the_same_task(emu, runner, cli):
    """SIGKILL the CLI while it polls; the same command again resumes that taskUUID."""
    emu.job_seconds = 5.0
    logs = artifact_dir("jobs", runner.dir.name, "cli")
    args = cli_generate_args(runner.out, runner.ledger_path)
    t0 = time.monotonic()
    proc = start_cli(emu, args, logs, "first")
    try:
        assert wait_until(lambda: video_submissions(emu) == 1 and emu.stats()["polls"] >= 1, timeout=60), \
            (logs / "first.stderr").read_text()
        proc.kill()  # SIGKILL; TerminateProcess on Windows
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (1 if os.name == "nt" else -signal.SIGKILL)
    [entry] = runner.ledger.entries()
    assert entry.status == L.SUBMITTED and not delivery.result_path(runner.out, entry.task_uuid).exists()
    assert entry.task_uuid in (logs / "first.stderr").read_text()  # the user saw the taskUUID
    code, stdout, stderr = cli(emu, args, logs, "second")  # no signal: in this process
    assert code == 0, stderr
    assert f"resumed task {entry.task_uuid} from the ledger" in stdout
    assert value_of(stdout, "taskUUID") == entry.task_uuid
    assert delivery.result_path(runner.out, entry.task_uuid).is_file()
    assert video_submissions(emu) == 1 and emu.stats()["video_submit_attempts"] == 1
    seconds = time.monotonic() - t0
    before = emu.stats()["requests"]
    code, stdout, _ = cli(emu, args, logs, "third")
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
            return await asyncio.gather(runs.text_to_video(a, CHOICES, runner.opts()),
                                        runs.text_to_video(b, CHOICES, runner.opts(ledger=other)))
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


# -- after an accepted task: the result cannot be fetched or kept ---------------------------------

def _on_phase(phase: str, action):
    """An on_progress callback that runs `action` once, the first time `phase` is reported."""
    done = []

    def report(event):
        if event.phase == phase and not done:
            done.append(True)
            action()
    return report


def assert_recoverable(out, runner, *words):
    """A clear error after acceptance: typed, naming the taskUUID and both ways to recover it."""
    assert isinstance(out.error, E.RunwareError), f"{type(out.error).__name__}: {out.text}"
    uuid = out.error.task_uuid
    assert uuid and uuid in out.text, out.text
    assert "PixVerse Recover node" in out.text and f"python -m nodes recover {uuid}" in out.text, out.text
    for word in words:
        assert word in out.text, out.text
    assert "Traceback" not in out.text
    return uuid


def test_output_folder_read_only_after_accept(emu, runner):
    from tinyfs import tiny_fs

    with tiny_fs(runner.dir / "ro-out", 8 << 20) as fs:
        out = runner.attempt(output_dir=fs.path, on_progress=_on_phase("processing", fs.read_only))
        uuid = assert_recoverable(out, runner, "read-only")
        assert isinstance(out.error, E.RunwareResultError)
        entry = runner.entry(uuid)
        assert entry.status == L.SUCCEEDED and entry.local_file is None, entry
        assert entry.error.startswith("video not downloaded:") and "read-only" in entry.error
        assert video_submissions(emu) == 1
        fs.writable()
        recovered = runner.attempt(lambda client, opts: pipeline.recover(client, uuid, opts), output_dir=fs.path)
        assert recovered.error is None, recovered.text
        assert recovered.result.task_uuid == uuid and recovered.result.video_path.is_file()
        assert runner.entry(uuid).status == L.FINISHED and video_submissions(emu) == 1
    fault_matrix.record("output folder turns read-only after the submit (ledger elsewhere)",
                        "RunwareResultError naming taskUUID + Recover; ledger: succeeded, 'video not "
                        "downloaded'; Recover → video", video_submissions(emu), out.seconds)


def test_disk_full_while_writing_the_mp4(emu, runner):
    from tinyfs import tiny_fs

    with tiny_fs(runner.dir / "full-out", 4 << 20) as fs:
        filler = []
        out = runner.attempt(output_dir=fs.path,
                             on_progress=_on_phase("processing", lambda: filler.append(fs.fill(48 << 10))))
        uuid = assert_recoverable(out, runner, "is full")
        assert isinstance(out.error, E.RunwareResultError)
        assert not list(fs.path.glob("*.part")) and not delivery.result_path(fs.path, uuid).exists()
        entry = runner.entry(uuid)
        assert entry.status == L.SUCCEEDED and "video not downloaded" in entry.error
        filler[0].unlink()
        again = runner.attempt(output_dir=fs.path)  # the same job again: resumes the paid task
        assert again.error is None, again.text
        assert again.result.task_uuid == uuid and again.result.origin == "resumed"
        assert video_submissions(emu) == 1
    fault_matrix.record("disk full while writing the MP4 (4 MB tmpfs filled mid-run)",
                        "RunwareResultError 'disk is full' + Recover, no .part left; re-run resumes → video",
                        video_submissions(emu), out.seconds)


def _lock_ledger(path):
    """Another program (a separate process) holding the ledger locked; returns it (kill to release)."""
    import subprocess
    import sys

    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_ledger_locked_by_another_program_while_processing(emu, runner):
    ledger = L.Ledger(runner.ledger_path, timeout=0.3)
    holder = []
    try:
        out = runner.attempt(ledger=ledger,
                             on_progress=_on_phase("processing", lambda: holder.append(_lock_ledger(runner.ledger_path))))
    finally:
        for proc in holder:
            proc.stdin.close()
            proc.wait(10)
        ledger.close()
    assert holder, "the lock was never taken"
    assert out.error is None, out.text
    assert out.result.video_path.is_file()
    assert any("could not be updated" in n and out.result.task_uuid in n for n in out.result.notices), out.result.notices
    entry = runner.entry(out.result.task_uuid)
    assert entry.status == L.SUBMITTED  # what is true in the ledger: not recorded as finished
    again = runner.attempt()  # lock gone: resumes the task, finds the file, records it
    assert again.error is None and again.result.task_uuid == out.result.task_uuid
    assert runner.entry(out.result.task_uuid).status == L.FINISHED
    assert video_submissions(emu) == 1
    fault_matrix.record("ledger locked by another process while the job runs",
                        "video delivered + notice naming the taskUUID; ledger row stays 'submitted'; "
                        "next run records it (no new task)", video_submissions(emu), out.seconds)


def test_video_url_with_file_scheme(emu, runner):
    emu.inject("result_url", url="file:///etc/passwd")
    out = runner.attempt()
    uuid = assert_recoverable(out, runner, "scheme is 'file'", "only http and https")
    assert isinstance(out.error, E.RunwareDownloadError)
    entry = runner.entry(uuid)
    assert entry.status == L.SUCCEEDED and entry.local_file is None and "video not downloaded" in entry.error
    assert emu.stats()["downloads"] == 0 and video_submissions(emu) == 1
    fault_matrix.record("videoURL file:///etc/passwd (hostile server)",
                        "DownloadError 'only http and https' + Recover; nothing fetched; ledger: succeeded, "
                        "not downloaded", video_submissions(emu), out.seconds)


def test_video_url_on_a_link_local_address(emu, runner):
    from nodes.client.urls import URLPolicy

    emu.inject("result_url", url="http://169.254.169.254/latest/meta-data/{video}.mp4")

    async def job(client, opts):
        client.url_policy = URLPolicy(allow_local=False)  # as with Runware's public base URL
        return await runs.text_to_video(client, CHOICES, opts)
    out = runner.attempt(job)
    assert_recoverable(out, runner, "169.254.169.254", "private address")
    assert video_submissions(emu) == 1
    fault_matrix.record("videoURL on a link-local address (169.254.169.254)",
                        "refused before any request (public addresses only) + Recover",
                        video_submissions(emu), out.seconds)


@pytest.mark.parametrize("location,ok", [("file:///etc/passwd", False), ("{origin}/media/{video}.mp4", True)])
def test_download_redirect(emu, runner, location, ok):
    emu.inject("download_redirect", location=location)
    out = runner.attempt()
    if ok:
        assert out.error is None, out.text
        assert_video(out.result)
        assert emu.stats()["downloads"] == 2
    else:
        assert_recoverable(out, runner, "scheme is 'file'")
        assert emu.stats()["downloads"] == 1
    assert video_submissions(emu) == 1
    fault_matrix.record(f"download redirected to {location.split(':')[0]}{'' if ok else '://'}…",
                        "followed (http) → video" if ok else "redirect refused (only http/https) + Recover",
                        video_submissions(emu), out.seconds)


def test_dripping_download_ends_by_the_deadline(emu, runner):
    emu.inject("download_drip", chunk=1, interval=5.0)
    out = runner.attempt(deadline_s=3.0)
    assert_recoverable(out, runner, "deadline")
    assert isinstance(out.error, E.RunwareTimeoutError)
    assert out.seconds < 4.0, f"took {out.seconds:.2f} s for a 3 s deadline"
    assert not list(runner.out.glob("*.part"))
    assert runner.entry(out.error.task_uuid).status == L.SUCCEEDED and video_submissions(emu) == 1
    fault_matrix.record("download drips 1 byte / 5 s (deadline 3 s)", "TimeoutError by the deadline + Recover; "
                        "no .part left", video_submissions(emu), out.seconds)


def test_dripping_download_ends_on_cancel(emu, runner):
    emu.inject("download_drip", chunk=1, interval=5.0)
    pressed = []
    out = runner.attempt(cancel_check=lambda: bool(pressed),
                         on_progress=_on_phase("downloading", lambda: pressed.append(time.monotonic())))
    assert_recoverable(out, runner, "Cancelled while downloading")
    assert isinstance(out.error, E.RunwareInterrupted)
    late = time.monotonic() - pressed[0]
    assert late < 5.0 / 2, f"cancel took {late:.2f} s"  # never waits for the next 5-second drip
    fault_matrix.record("download drips 1 byte / 5 s, user cancels", f"Interrupted {late:.2f} s after the "
                        "cancel + Recover", video_submissions(emu), out.seconds)


def test_poll_answer_not_understood_is_unknown_not_failed(emu, runner):
    emu.inject("http_status", status=400, code="somethingOdd", message="Mysterious.", on="poll", times=2)
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    assert video_submissions(emu) == 1
    emu.inject("http_status", status=400, code="somethingOdd", message="Mysterious.", on="poll", times=20)
    second = runner.attempt(fresh=True)
    uuid = assert_recoverable(second, runner, "not understood")
    assert runner.entry(uuid).status == L.SUBMITTED  # unknown: resumable, never 'failed'
    fault_matrix.record("poll: error code not understood (twice; then always)",
                        "treated as unknown: retried → video; always → error + Recover, ledger stays "
                        "'submitted' (not failed)", "1 (+1 fresh)", out.seconds + second.seconds)


def test_recover_falls_back_to_get_task_details(emu, runner):
    first = runner.run()
    uuid = first.task_uuid
    first.video_path.unlink()
    emu.forget_finished = True  # getResponse no longer knows finished tasks
    out = runner.attempt(lambda client, opts: pipeline.recover(client, uuid, opts))
    assert out.error is None, out.text
    assert out.result.task_uuid == uuid and out.result.video_path.is_file()
    assert any("getTaskDetails" in n for n in out.result.notices)
    assert emu.stats()["task_details"] == 1 and runner.entry(uuid).status == L.FINISHED
    assert video_submissions(emu) == 1
    fault_matrix.record("Recover after getResponse forgot the task", "getTaskDetails → the same video, no new task",
                        video_submissions(emu), out.seconds)


def test_hostile_server_puts_the_key_in_the_video_url(tmp_path):
    """A server that echoes the key into the videoURL path and signs it with a query: neither the
    key nor the query reaches an error, the ledger, the info output or the log."""
    import logging

    from nodes.emulator import EmulatorServer

    key = "hostile-test-key-" + "7" * 24  # not the session's sentinel: the emulator records its paths
    with EmulatorServer(job_seconds=0.2) as server:
        run_dir = artifact_dir("jobs", "hostile_key")
        ledger = L.Ledger(run_dir / "ledger.sqlite3")
        records = []
        handler = logging.Handler()
        handler.emit = lambda record: records.append(record.getMessage())
        logging.getLogger().addHandler(handler)
        try:
            for url, expect_ok in ((f"{{origin}}/media/{{video}}.mp4?sig=SIGNED-SECRET&k={key}", True),
                                   (f"{{origin}}/media/{key}/{{video}}.mp4?sig=SIGNED-SECRET", False)):
                server.inject("result_url", url=url)

                async def go():
                    from support.jobs import FAST_POLL, FAST_RETRY
                    from nodes.client import RunwareClient

                    async with RunwareClient(api_key=key, base_url=f"http://user:{key}@127.0.0.1:{server.port}/v1",
                                             poll_policy=FAST_POLL, retry_policy=FAST_RETRY) as client:
                        assert key not in client.base_url and key not in repr(client)
                        opts = pipeline.JobOptions(output_dir=run_dir / "out", ledger=ledger, decode_frames=False,
                                                   decode_audio=False, deadline_s=30, fresh=True)
                        return await runs.text_to_video(client, CHOICES, opts)
                try:
                    result, error = asyncio.run(go()), None
                except E.PixVerseError as exc:
                    result, error = None, exc
                if expect_ok:
                    assert error is None, error
                    assert "SIGNED-SECRET" not in result.info_json() and key not in result.info_json()
                else:
                    assert isinstance(error, E.RunwareDownloadError), error
                    assert key not in str(error) and "***" in str(error)
        finally:
            logging.getLogger().removeHandler(handler)
        rows = [vars(e) for e in ledger.entries()]
        ledger.close()
        blob = repr(rows) + "\n".join(records)
        assert key not in blob and "SIGNED-SECRET" not in blob
        assert all(r["endpoint"] == f"http://127.0.0.1:{server.port}/v1" for r in rows)
    fault_matrix.record("hostile server: key in the videoURL path + signed query; key as base-URL userinfo",
                        "key and query absent from errors, ledger, info and logs", 2, 0.0)


def test_cli_after_payment_failure_is_a_clear_error(emu, runner, cli):
    """The CLI shows the same clear error (taskUUID, Recover) and no traceback; the same command run
    again after the cause is gone resumes the paid task."""
    from tinyfs import tiny_fs

    logs = artifact_dir("jobs", runner.dir.name, "cli")
    with tiny_fs(runner.dir / "cli-out", 8 << 20) as fs:
        args = cli_generate_args(fs.path, runner.ledger_path)
        emu.job_seconds = 1.5
        proc = start_cli(emu, args, logs, "first")
        try:
            assert wait_until(lambda: video_submissions(emu) == 1, timeout=60), (logs / "first.stderr").read_text()
            fs.read_only()
            assert proc.wait(120) == 2
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stderr = (logs / "first.stderr").read_text()
        [entry] = runner.ledger.entries()
        assert "Traceback" not in stderr and "read-only" in stderr, stderr
        assert entry.task_uuid in stderr and f"python -m nodes recover {entry.task_uuid}" in stderr
        assert entry.status == L.SUCCEEDED and "video not downloaded" in entry.error
        fs.writable()
        code, stdout, stderr2 = cli(emu, args, logs, "second")  # no signal: in this process
        assert code == 0, stderr2
        assert value_of(stdout, "taskUUID") == entry.task_uuid and video_submissions(emu) == 1
    fault_matrix.record("CLI: output folder turns read-only mid-run, then the same command again",
                        "exit 2, 'error: … read-only …' with taskUUID + recover command, no traceback; "
                        "re-run resumes → video", video_submissions(emu), 0.0)


def test_submit_5xx_but_accepted_and_hidden_is_never_billed_twice(emu, runner):
    """The worst case for a resend: Runware took the task, answered 503, and its polls cannot find the
    task over the whole grace period. The resend carries the same taskUUID, Runware refuses it as a
    duplicate, and the run follows the one task: one submission, one video."""
    emu.inject("http_status", status=503, on="submit", after_accept=True)
    emu.inject("hide_task", times=5)
    out = runner.attempt()
    assert out.error is None, out.text
    assert_video(out.result)
    stats = emu.stats()
    assert stats["video_submit_attempts"] == 2 and stats["duplicate_submits"] == 1
    assert video_submissions(emu) == 1
    assert_finished_in_ledger(runner, out.result)
    fault_matrix.record("submit: HTTP 503 though accepted, task hidden from polls over the grace period",
                        "resent with the same taskUUID → refused as duplicate → followed → video (one task)",
                        video_submissions(emu), out.seconds)


# -- money under concurrency, cancel, Runware unavailable (issue 17 items 1, 2, 5, 10; issue 18 count) ---

def _many(runner, jobs, **opt_kw):
    """Run `jobs` (each `job(client, opts)`) concurrently in one event loop; results or exceptions."""
    async def go():
        async with runner.client() as client:
            return await asyncio.gather(*(job(client, runner.opts(**opt_kw)) for job in jobs),
                                        return_exceptions=True)
    return asyncio.run(go())


def _t2v(**over):
    return lambda client, opts: runs.text_to_video(client, choices(**over), opts)


def _i2v(image, **over):
    return lambda client, opts: runs.image_to_video(client, choices(**over), image, None, opts)


def test_runs_of_unknown_cost_at_once_wait_for_the_first_ones_cost(emu, runner):
    """Five runs of unknown cost at once under a daily limit of $0.50: the first runs alone (no reservation
    can stand for it), the others wait; once its cost ($0.20) is in the ledger each is checked with it: one
    more fits ($0.40), three are refused. Before: all five ran."""
    emu.job_seconds = 1.0
    policy = _limit(0.5, allow=True)
    waits: list[str] = []
    t0 = time.monotonic()
    results = _many(runner, [_t2v(prompt=f"overlapping boat {i}") for i in range(5)], config=policy,
                    on_progress=lambda p: waits.append(p.message) if p.message == limits.WAIT_TEXT else None)
    seconds = time.monotonic() - t0
    done = [r for r in results if isinstance(r, pipeline.JobResult)]
    refused = [r for r in results if isinstance(r, E.PixVerseBudgetError)]
    assert len(done) == 2 and len(refused) == 3, results
    assert video_submissions(emu) == 2 and len(waits) >= 3
    assert all("$0.40 spent today (job ledger) + this run's expected cost $0.20 (" in str(r) for r in refused), refused
    spent = runner.ledger.spent_since(limits.day_start())
    assert spent == pytest.approx(0.4) and spent <= policy.daily_limit
    fault_matrix.record("5 runs of unknown cost at once, daily limit $0.50",
                        "1st alone, others wait for its cost; 1 more fits, 3 refused; $0.40 spent",
                        video_submissions(emu), seconds)


def test_cli_runs_of_unknown_cost_at_once_hold_the_limit(emu, runner):
    """The issue's case: 5 CLI processes at once, RUNWARE_PIXVERSE_DAILY_LIMIT=0.3 and unknown cost allowed
    (before: all five ran, $1.50). Now one runs, the others wait for its cost ($0.20) and are refused."""
    emu.job_seconds = 3.0
    log = runner.dir
    env_over = {"RUNWARE_PIXVERSE_DAILY_LIMIT": "0.3", "RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST": "1"}
    saved = {k: os.environ.get(k) for k in env_over}
    os.environ.update(env_over)
    t0 = time.monotonic()
    try:
        procs = [start_cli(emu, cli_generate_args(runner.out, runner.ledger_path, prompt=f"cli boat {i}"), log,
                           f"cli{i}") for i in range(5)]
        codes = [p.wait(180) for p in procs]
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    seconds = time.monotonic() - t0
    errs = [(log / f"cli{i}.stderr").read_text() for i in range(5)]
    assert sorted(codes) == [0, 2, 2, 2, 2], (codes, errs)
    assert sum("Daily spending limit reached: $0.20 spent today" in e for e in errs) == 4, errs
    assert video_submissions(emu) == 1
    assert runner.ledger.spent_since(limits.day_start()) == pytest.approx(0.2)
    fault_matrix.record("5 CLI runs of unknown cost at once, daily limit $0.30",
                        "1 runs, 4 wait for its cost, then refused; $0.20 spent", video_submissions(emu), seconds)


def _known_i2v_cost(runner):
    """One image-to-video run, so the ledger knows what such a run costs ($0.20)."""
    runner.run(_i2v(frame(100), prompt="history"))
    return 5 * 0.04


def test_cancel_during_a_stalled_upload(emu, runner):
    """An upload that stalls 20 s, cancelled (interrupt check) while it hangs: the run ends long before the stall,
    nothing is submitted, and the reservation is released ("$X left today" unchanged)."""
    cost = _known_i2v_cost(runner)
    policy = _limit(5.0)
    spent_before = runner.ledger.spent_since(limits.day_start())
    emu.inject("slow", delay=20, on="upload")
    uploads = emu.stats()["uploads"]
    press = Press(emu, lambda: emu.stats()["uploads"] > uploads)  # pressed while the upload hangs
    out = runner.attempt(_i2v(frame(101), prompt="stalled upload"), config=policy, cancel_check=press)
    assert isinstance(out.error, E.RunwareInterrupted), out.text
    assert press.since() < 20 / 4, f"the run ended {press.since():.2f} s after the cancel (the stall: 20 s)"
    assert emu.stats()["video_submit_attempts"] == 1 and video_submissions(emu) == 1  # only the history run
    rows = [e for e in runner.ledger.entries() if e.status != L.FINISHED]
    assert [r.status for r in rows] == [L.ABANDONED] and rows[0].reserved == pytest.approx(cost)
    assert runner.ledger.spent_since(limits.day_start()) == pytest.approx(spent_before)
    fault_matrix.record("cancel during a 20 s stalled upload", "Interrupted < 5 s after the cancel; row "
                        "abandoned, reservation released", video_submissions(emu) - 1, out.seconds)


def test_asyncio_cancel_mid_upload_releases_the_reservation(emu, runner):
    """ComfyUI cancels the other nodes of a prompt (CancelledError) while one is uploading: its row is settled
    abandoned, so nothing stays reserved and no task is sent."""
    cost = _known_i2v_cost(runner)
    policy = _limit(5.0)
    left_before = limits.format_spend(limits.spend_summary(runner.ledger), limits.policy_of(policy))
    emu.inject("slow", delay=10, on="upload")

    async def go():
        async with runner.client() as client:
            uploads = emu.stats()["uploads"]
            job = asyncio.ensure_future(_i2v(frame(102), prompt="cancelled upload")(client, runner.opts(config=policy)))
            while emu.stats()["uploads"] == uploads and not job.done():  # until the upload hangs
                await asyncio.sleep(0.02)
            reserved = runner.ledger.spent_since(limits.day_start())
            job.cancel()
            t0 = time.monotonic()
            with pytest.raises(asyncio.CancelledError):
                await job
            return reserved, time.monotonic() - t0
    reserved, seconds = asyncio.run(go())
    assert reserved == pytest.approx(2 * cost)  # the reservation was there while it uploaded
    assert seconds < 10 / 4  # not waiting for the 10 s stall
    assert limits.format_spend(limits.spend_summary(runner.ledger), limits.policy_of(policy)) == left_before
    assert [e.status for e in runner.ledger.entries()] == [L.FINISHED, L.ABANDONED]
    assert video_submissions(emu) == 1
    fault_matrix.record("asyncio cancel mid-upload (a sibling node failed)", "row abandoned; '$X left today' "
                        "unchanged", 0, seconds)


def test_killed_run_leaves_no_reservation(emu, runner):
    """A `preparing` row of a process that died was never sent: it stops counting at the next check."""
    runner.ledger.claim(fingerprint="f", endpoint=emu.base_url, task_uuid="dead-row",
                        guard=lambda led: {"reserved": 0.25})
    runner.ledger._conn.execute("UPDATE jobs SET owner = ? WHERE task_uuid = 'dead-row'", (f"{L.HOST}:{dead_pid()}",))
    assert runner.ledger.spent_since(limits.day_start()) == pytest.approx(0.25)
    assert runner.ledger.release_dead_claims() == 1
    assert runner.ledger.get("dead-row").status == L.ABANDONED
    assert runner.ledger.spent_since(limits.day_start()) == 0


def test_cancel_during_a_stalled_submit_then_settled_in_the_background(emu, runner):
    """The submit POST stalls (4 s) and the user cancels while it hangs: the run ends before the reply with an
    error naming the taskUUID and Recover; the row stays `submitting` marked to be checked; followed in the
    background (nodes/job/followup.py: what the comfy layer runs) it is found at Runware and finished. One task
    billed, none lost."""
    emu.inject("slow", delay=4, on="submit")
    press = Press(emu, lambda: emu.stats()["video_submit_attempts"] >= 1)
    out = runner.attempt(cancel_check=press)
    assert isinstance(out.error, E.RunwareInterrupted), out.text
    assert press.since() < 4 / 2, f"the run ended {press.since():.2f} s after the cancel (the stall: 4 s)"
    uuid = out.error.task_uuid
    assert uuid in out.text and "PixVerse Recover node" in out.text and "may have it" in out.text
    entry = runner.entry(uuid)
    assert entry.status == L.SUBMITTING and "followup" in (entry.error or "")
    assert followup.orphans(runner.ledger, emu.base_url) == [uuid]  # what the comfy layer follows
    settled = runner.attempt(lambda client, opts: pipeline.recover(client, uuid, opts, settle_after=10))
    assert settled.error is None, settled.text
    assert_video(settled.result)
    assert runner.entry(uuid).status == L.FINISHED and video_submissions(emu) == 1
    assert followup.orphans(runner.ledger, emu.base_url) == []
    fault_matrix.record("cancel 1 s into a 4 s stalled submit POST", "Interrupted < 1.5 s naming the task; "
                        "settled in the background → video", video_submissions(emu), out.seconds + settled.seconds)


def test_cancel_before_the_submit_sends_nothing(emu, runner):
    """A cancel seen between the uploads and the submit: nothing is sent after it (before: submitted and billed)."""
    calls = []

    def cancel():
        calls.append(1)
        return emu.stats()["uploads"] >= 1  # true once the upload went through
    out = runner.attempt(_i2v(frame(103), prompt="cancel after upload"), cancel_check=cancel)
    assert isinstance(out.error, E.RunwareInterrupted), out.text
    assert emu.stats()["video_submit_attempts"] == 0 and video_submissions(emu) == 0
    assert [e.status for e in runner.ledger.entries()] == [L.ABANDONED]
    fault_matrix.record("cancel between the upload and the submit", "nothing sent after the cancel; row abandoned",
                        0, out.seconds)


def _unavailable_for(window: float) -> Config:
    """The job's configuration with this unavailable window (as RUNWARE_PIXVERSE_UNAVAILABLE_WINDOW reads)."""
    return config.load(env={config.UNAVAILABLE_WINDOW.env: str(window)})


def test_runware_unavailable_for_a_while(emu, runner):
    """Runware answers 503 to every submit for ~3 s (once with Retry-After: 1): the same taskUUID is sent again
    with backoff until it is taken, with "Runware unavailable, retrying (n)" as progress; one task billed."""
    emu.inject("http_status", status=503, on="submit", retry_after=1)
    emu.inject("http_status", status=503, on="submit", times=1000)
    threading.Timer(3.0, emu.clear_faults).start()
    said: list[str] = []
    out = runner.attempt(config=_unavailable_for(30),
                         on_progress=lambda p: said.append(p.message))
    assert out.error is None, out.text
    assert_video(out.result)
    sent = [r for r in emu.requests if r["method"] == "POST" and r["body"][0]["taskType"] == "videoInference"]
    assert {r["body"][0]["taskUUID"] for r in sent} == {out.result.task_uuid} and len(sent) >= 3
    assert sent[1]["time"] - sent[0]["time"] >= 1.0  # Retry-After honoured
    assert "Runware unavailable, retrying (1)" in said and video_submissions(emu) == 1
    assert out.seconds >= 3.0
    fault_matrix.record("submit: HTTP 503 for ~3 s (Runware unavailable)", "same taskUUID resent with backoff "
                        "until taken → video", video_submissions(emu), out.seconds)


def test_runware_unavailable_past_the_window(emu, runner):
    """503 longer than the window (1.5 s here; 2 minutes by default): a clear error, nothing charged, row lost."""
    emu.inject("http_status", status=503, on="submit", times=10000)
    out = runner.attempt(config=_unavailable_for(1.5))
    assert isinstance(out.error, E.RunwareSubmissionLost), out.text
    assert "Runware was unavailable (HTTP 503" in out.text and "nothing was charged" in out.text
    assert "RUNWARE_PIXVERSE_UNAVAILABLE_WINDOW" in out.text
    assert runner.entry(out.error.task_uuid).status == L.LOST and video_submissions(emu) == 0
    assert out.seconds < 6
    emu.clear_faults()
    fault_matrix.record("submit: HTTP 503 past the window (1.5 s)", "SubmissionLost 'Runware was unavailable'; "
                        "row lost", video_submissions(emu), out.seconds)


# -- count: takes claimed all or none (issue 18 §1) ---------------------------------------------------------

def _takes(n, group, first_seed=20):
    return [_i2v(frame(200), prompt="takes", seed=first_seed + i) for i in range(n)], group


def test_three_takes_under_a_limit_that_fits_two_are_all_refused(emu, runner):
    cost = _known_i2v_cost(runner)
    spent = runner.ledger.spent_since(limits.day_start())
    before = (emu.stats()["uploads"], video_submissions(emu))
    group = pipeline.ClaimGroup(3)
    policy = _limit(spent + 2 * cost + 0.05)
    jobs, _ = _takes(3, group)
    t0 = time.monotonic()
    results = _many(runner, jobs, config=policy, claim_group=group)
    assert all(isinstance(r, E.PixVerseBudgetError) for r in results), results
    assert (emu.stats()["uploads"], video_submissions(emu)) == before  # 0 uploads, 0 submissions
    assert len(runner.ledger.entries()) == 1
    fault_matrix.record("count 3, limit fits 2", "all 3 refused before any upload", 0, time.monotonic() - t0)
    group = pipeline.ClaimGroup(3)
    policy = _limit(spent + 3 * cost + 0.05)
    jobs, _ = _takes(3, group)
    t0 = time.monotonic()
    results = _many(runner, jobs, config=policy, claim_group=group)
    assert all(isinstance(r, pipeline.JobResult) and r.origin == "new" for r in results), results
    assert video_submissions(emu) == before[1] + 3 and len({r.task_uuid for r in results}) == 3
    fault_matrix.record("count 3, limit fits 3", "3 tasks", 3, time.monotonic() - t0)
    # the same takes again: reused rows count as arrived, nothing new is claimed or paid
    group = pipeline.ClaimGroup(3)
    jobs, _ = _takes(3, group)
    again = _many(runner, jobs, config=_limit(0.01), claim_group=group)
    assert all(isinstance(r, pipeline.JobResult) and r.origin == "reused" for r in again), again


def test_a_take_with_a_bad_input_breaks_the_group(emu, runner):
    group = pipeline.ClaimGroup(3)
    jobs, _ = _takes(2, group, first_seed=40)
    tiny = frame(300, h=2, w=2)  # 2×2 px: refused before anything is sent
    jobs.append(lambda client, opts: runs.image_to_video(client, choices(seed=42), tiny, None, opts))
    results = _many(runner, jobs, claim_group=group)
    assert all(isinstance(r, E.PixVerseError) for r in results), results
    assert "takes are claimed all or none" in str(results[0]) and emu.stats()["uploads"] == 0
    assert video_submissions(emu) == 0 and runner.ledger.entries() == []
    fault_matrix.record("count 3, one take with a bad image", "all 3 stop before any upload", 0, 0.0)



def test_a_locked_ledger_does_not_hide_a_cancel(emu, runner):
    """Another program holds the ledger locked before the claim (SQLite waits up to 30 s per write): the claim
    runs off the event loop, so a cancel at 1 s ends the run at once; nothing is sent, nothing stays reserved."""
    holder = _lock_ledger(runner.ledger_path)
    t0 = time.monotonic()
    try:
        out = runner.attempt(cancel_check=lambda: time.monotonic() - t0 > 1.0)
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert isinstance(out.error, E.RunwareInterrupted), out.text
    assert out.seconds - 1.0 < 30 / 4, f"the cancel was seen {out.seconds - 1:.2f} s late"  # the lock: 30 s
    assert "nothing was sent or charged" in out.text
    assert wait_until(lambda: runner.ledger.release_dead_claims() >= 0 and
                      all(e.status == L.ABANDONED for e in runner.ledger.entries()), 35)
    assert video_submissions(emu) == 0 and runner.ledger.spent_since(0) == 0
    fault_matrix.record("ledger locked before the claim; cancel at 1 s", "Interrupted at once (claim off the "
                        "event loop); nothing sent", 0, out.seconds)


def test_cancel_during_a_submit_runware_never_took_is_settled_lost(emu, runner):
    """The stalled submit ends in a refusal Runware never processed: followed in the background, it is polled
    over its window, found nowhere, and its row settled `lost` (nothing charged), never sent again."""
    emu.inject("slow", delay=2, on="submit")
    emu.inject("http_status", status=500, on="submit")
    press = Press(emu, lambda: emu.stats()["video_submit_attempts"] >= 1)  # pressed while the submit hangs
    out = runner.attempt(cancel_check=press)
    assert isinstance(out.error, E.RunwareInterrupted), (out.seconds, out.text)
    assert press.more("video_submit_attempts") == 0  # it did not wait for the 500 and try again
    uuid = out.error.task_uuid
    t1 = time.monotonic()
    with pytest.raises(E.RunwareSubmissionLost):
        asyncio.run(runner._go(lambda client, opts: pipeline.recover(client, uuid, opts, settle_after=3), {}, {}))
    assert runner.entry(uuid).status == L.LOST and video_submissions(emu) == 0
    assert emu.stats()["video_submit_attempts"] == 1  # never sent again
    fault_matrix.record("cancel during a submit POST Runware refused", "Interrupted at once; settled in the "
                        "background: row lost, nothing sent again", 0, out.seconds + time.monotonic() - t1)


def test_a_ledger_locked_after_the_submit_holds_the_loop_briefly(emu, runner):
    """The ledger (default 30 s timeout) is locked by another program while the job runs: each write after the
    submit waits at most 2 s (Ledger.brief), so the video is delivered in seconds, not minutes, with a notice."""
    holder = []
    try:
        out = runner.attempt(on_progress=_on_phase("processing",
                                                   lambda: holder.append(_lock_ledger(runner.ledger_path))))
    finally:
        for proc in holder:
            proc.stdin.close()
            proc.wait(10)
    assert holder and out.error is None, out.text
    assert out.seconds < 10, out.seconds
    assert any("could not be updated" in n for n in out.result.notices), out.result.notices
    assert video_submissions(emu) == 1
    fault_matrix.record("ledger (30 s timeout) locked while the job runs", "video in seconds: each later write "
                        "waits ≤ 2 s, then a notice", video_submissions(emu), out.seconds)


def test_takes_of_unknown_cost_under_a_limit_are_refused_together(emu, runner):
    """count 3 of a run whose cost nobody knows yet, under a limit: only one run of unknown cost may be under
    way, so the three cannot start together: all refused with what to do, before any upload."""
    group = pipeline.ClaimGroup(3)
    jobs = [_t2v(prompt="unknown takes", seed=60 + i) for i in range(3)]
    results = _many(runner, jobs, claim_group=group,
                    config=_limit(5.0, allow=True))
    assert all(isinstance(r, E.PixVerseBudgetError) for r in results), results
    assert "Run it once with count 1" in str(results[0])
    assert emu.stats()["video_submit_attempts"] == 0 and runner.ledger.entries() == []
    fault_matrix.record("count 3 of unknown cost under a limit", "all 3 refused (run once with count 1 first)",
                        0, 0.0)


def test_takes_wait_with_the_others_for_a_run_of_unknown_cost(emu, runner):
    """A run of unknown cost is under way when 2 takes of a known-cost run arrive: the group waits for its cost,
    then both are claimed together (limit fits all three)."""
    runner.run(_t2v(prompt="history of known"))  # t2v of this kind: $0.20 known
    emu.job_seconds = 1.5
    policy = _limit(5.0, allow=True)
    group = pipeline.ClaimGroup(2)
    said: list[str] = []

    async def go():
        async with runner.client() as client:
            unknown = asyncio.ensure_future(runs.image_to_video(client, choices(prompt="unknown i2v"),
                                                                    frame(400), None, runner.opts(config=policy)))
            while len(runner.ledger.entries()) < 2 and not unknown.done():  # until its row (unknown cost) is in
                await asyncio.sleep(0.02)
            takes = [runs.text_to_video(client, choices(prompt="known takes", seed=70 + i),
                                            runner.opts(config=policy, claim_group=group,
                                                        on_progress=lambda p: said.append(p.message)))
                     for i in range(2)]
            return await asyncio.gather(unknown, *takes, return_exceptions=True)
    results = asyncio.run(go())
    assert all(isinstance(r, pipeline.JobResult) for r in results), results
    assert limits.WAIT_TEXT in said and video_submissions(emu) == 4
