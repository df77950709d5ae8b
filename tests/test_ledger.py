"""The job ledger (nodes/money/ledger.py) on its own, and the pipeline's use of it: fingerprints, claims and
races, status transitions, the upload cache and Runware's 30-day retention."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from support.jobs import Runner, choices, dead_pid, frame, video_submissions, wait_until
from support.keysafety import ROOT, artifact_dir
import workflow_runs as runs
from nodes.money import ledger as L
from nodes.job import pipeline
from nodes.money.ledger import Ledger, fingerprint

EP = "http://127.0.0.1:1/v1"


@pytest.fixture
def ledger(request):
    path = artifact_dir("ledgers", request.node.name) / "ledger.sqlite3"
    with Ledger(path) as led:
        yield led


def task(**over):
    t = {"taskType": "videoInference", "taskUUID": "11111111-1111-4111-8111-111111111111", "model": "pixverse:1@5",
         "positivePrompt": "a cat", "width": 640, "height": 360, "duration": 5,
         "frameImages": [{"inputImage": "sha256:" + "ab" * 32, "frame": "first"}]}
    t.update(over)
    return t


# -- fingerprint ---------------------------------------------------------------------------------

def test_fingerprint_ignores_the_task_uuid_and_key_order():
    a = task()
    b = dict(reversed(list(task(taskUUID="22222222-2222-4222-8222-222222222222").items())))
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 64


@pytest.mark.parametrize("change", [dict(positivePrompt="a dog"), dict(width=360), dict(seed=1),
                                    dict(frameImages=[{"inputImage": "sha256:" + "cd" * 32, "frame": "first"}])])
def test_fingerprint_changes_with_anything_but_the_uuid(change):
    assert fingerprint(task()) != fingerprint(task(**change))


# -- claims --------------------------------------------------------------------------------------

def claim(ledger, uuid, fp="fp-1", **kw):
    return ledger.claim(fingerprint=fp, endpoint=EP, task_uuid=uuid, model="pixverse:1@5",
                        request={"positivePrompt": "x"}, **kw)


def test_claim_then_follow(ledger):
    first = claim(ledger, "u1")
    assert first.new and first.entry.status == L.PREPARING and first.entry.owner.endswith(f":{os.getpid()}")
    second = claim(ledger, "u2")
    assert not second.new and second.entry.task_uuid == "u1"
    assert ledger.get("u2") is None
    assert claim(ledger, "u3", fp="fp-2").new  # another request
    assert ledger.claim(fingerprint="fp-1", endpoint="https://elsewhere/v1", task_uuid="u4").new  # another endpoint


def test_fresh_claims_anew_and_becomes_the_one_followed(ledger):
    claim(ledger, "u1")
    assert claim(ledger, "u2", fresh=True).new
    assert claim(ledger, "u3").entry.task_uuid == "u2"


@pytest.mark.parametrize("status", [L.FAILED, L.LOST, L.REFUSED, L.ABANDONED])
def test_ended_rows_are_not_followed(ledger, status):
    claim(ledger, "u1")
    assert ledger.settle("u1", status, "why")
    nxt = claim(ledger, "u2")
    assert nxt.new and ledger.get("u1").status == status and ledger.get("u1").error == "why"


def test_status_never_goes_back(ledger):
    claim(ledger, "u1")
    assert ledger.advance("u1", L.SUBMITTED)
    assert not ledger.advance("u1", L.SUBMITTING)
    ledger.record_success("u1", video_uuid="v", result_url="https://cdn/v.mp4", seed=3, cost=0.2, notices=["n"])
    e = ledger.get("u1")
    assert (e.status, e.video_uuid, e.seed, e.cost, e.notices) == (L.SUCCEEDED, "v", 3, 0.2, ["n"])
    assert not ledger.settle("u1", L.FAILED, "late failure")  # a result is in: not a failure
    assert not ledger.settle("u1", L.REFUSED, "x") and not ledger.advance("u1", L.SUBMITTED)
    assert ledger.get("u1").status == L.SUCCEEDED


def test_finished_entry_needs_its_file(ledger, tmp_path):
    claim(ledger, "u1")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 100)
    ledger.record_file("u1", video, 100)
    assert ledger.get("u1").reusable()
    video.write_bytes(b"x" * 50)  # changed on disk
    assert not ledger.get("u1").reusable()
    video.unlink()
    assert not ledger.get("u1").reusable()
    assert claim(ledger, "u2").entry.task_uuid == "u1"  # still followed: it is re-fetched by polling


def test_owner_alive(ledger):
    claim(ledger, "u1")
    entry = ledger.get("u1")
    assert not entry.owner_alive()  # this process, but no coroutine working on it
    with L.working_on("u1"):
        assert entry.owner_alive()
    entry.owner = f"{L.HOST}:{dead_pid()}"
    assert not entry.owner_alive()
    entry.owner = f"{L.HOST}:{os.getppid()}"
    assert entry.owner_alive()
    assert not entry.owner_alive(now=entry.updated_at + L.OWNER_STALE_SECONDS + 1)
    entry.owner = "another-host:1"
    assert entry.owner_alive() and not entry.owner_alive(now=entry.updated_at + L.OWNER_STALE_SECONDS + 1)


def test_claim_race_between_threads(tmp_path):
    path = artifact_dir("ledgers", f"thread-race-{uuid.uuid4().hex[:8]}") / "ledger.sqlite3"
    ledgers = [Ledger(path) for _ in range(8)]
    barrier = threading.Barrier(len(ledgers))
    results = [None] * len(ledgers)

    def go(i):
        barrier.wait()
        results[i] = ledgers[i].claim(fingerprint="same", endpoint=EP, task_uuid=f"t{i}")
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(ledgers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for led in ledgers:
        led.close()
    winners = [r for r in results if r.new]
    assert len(winners) == 1
    assert {r.entry.task_uuid for r in results} == {winners[0].entry.task_uuid}


def test_claim_race_between_processes():
    path = artifact_dir("ledgers", f"process-race-{uuid.uuid4().hex[:8]}") / "ledger.sqlite3"
    go = time.time() + 1.5
    code = ("import sys, time, json; sys.path.insert(0, sys.argv[1]); from nodes.money.ledger import Ledger; "
            "led = Ledger(sys.argv[2]); time.sleep(max(0, float(sys.argv[3]) - time.time())); "
            "c = led.claim(fingerprint='same', endpoint='e', task_uuid=sys.argv[4]); "
            "print(json.dumps([c.new, c.entry.task_uuid]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(path), str(go), f"p{i}"],
                              stdout=subprocess.PIPE, text=True) for i in range(4)]
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(new for new, _ in outs) == 1
    assert len({uuid for _, uuid in outs}) == 1


def test_the_ledger_stores_no_credentials(ledger):
    claim(ledger, "u1")
    cols = [r[1] for t in ("jobs", "uploads") for r in ledger._conn.execute(f"PRAGMA table_info({t})")]
    assert not [c for c in cols if any(w in c.lower() for w in ("key", "auth", "header", "token", "secret"))]


# -- the upload cache ----------------------------------------------------------------------------

def test_upload_retention_is_runwares_30_days(ledger):
    assert L.RUNWARE_UPLOAD_RETENTION_DAYS == 30
    ledger.remember_upload(EP, "image", "h1", "img-uuid", "https://img", 123)
    now = time.time()
    assert ledger.cached_upload(EP, "image", "h1") == "img-uuid"
    assert ledger.cached_upload(EP, "media", "h1") is None and ledger.cached_upload("other", "image", "h1") is None
    day = 86400
    assert ledger.cached_upload(EP, "image", "h1", now=now + 28 * day) == "img-uuid"
    assert ledger.cached_upload(EP, "image", "h1", now=now + 29.5 * day) is None  # too close to 30 days
    ledger._conn.execute("UPDATE uploads SET last_used_at = ?", (now - 29.5 * day,))
    assert ledger.cached_upload(EP, "image", "h1") is None
    ledger.touch_uploads(EP, [("image", "h1")])  # used in a task: 30 days again
    assert ledger.cached_upload(EP, "image", "h1") == "img-uuid"
    ledger.forget_uploads(EP, [("image", "h1")])
    assert ledger.cached_upload(EP, "image", "h1") is None


# -- the pipeline with a ledger, against the emulator ----------------------------------------------



def i2v(image, last=None, **over):
    return lambda client, opts: runs.image_to_video(client, choices(**over), image, last, opts)


def test_the_row_is_on_disk_before_the_submit_post(emu, runner):
    """While Runware is reading the submit, another process already finds the task in the ledger."""
    emu.inject("slow", delay=1.0, on="submit")
    seen = {}

    def watch():
        assert wait_until(lambda: emu.stats()["video_submit_attempts"] == 1, timeout=30, step=0.01)
        with Ledger(runner.ledger_path) as other:
            seen["rows"] = [(e.task_uuid, e.status) for e in other.entries()]
    watcher = threading.Thread(target=watch)
    watcher.start()
    result = runner.run()
    watcher.join()
    assert seen["rows"] == [(result.task_uuid, L.SUBMITTING)]
    assert runner.entry(result.task_uuid).status == L.FINISHED


def test_image_to_video_uploads_once_and_reuses(emu, runner):
    img = frame(1)
    first = runner.run(i2v(img))
    stats = emu.stats()
    assert stats["image_uploads"] == 1 and video_submissions(emu) == 1
    entry = runner.entry(first.task_uuid)
    request = json.loads(entry.request)
    ref = request["frameImages"][0]["inputImage"]
    assert ref.startswith("sha256:") and entry.inputs["first_frame"] == ref[len("sha256:"):]
    sent = [r["body"][0] for r in emu.requests if r["method"] == "POST" and r["body"][0]["taskType"] == "videoInference"]
    assert sent[0]["frameImages"][0]["inputImage"] not in entry.request  # the upload's UUID is not in the fingerprint
    before = emu.stats()["requests"]
    again = runner.run(i2v(img.clone()))  # equal pixels, another tensor
    assert again.origin == "reused" and again.task_uuid == first.task_uuid
    assert emu.stats()["requests"] == before
    other = runner.run(i2v(img, prompt="the boat capsizes"))  # new request, same image: no new upload
    assert other.origin == "new" and other.task_uuid != first.task_uuid
    assert emu.stats()["image_uploads"] == 1 and video_submissions(emu) == 2


def test_same_first_and_last_frame_is_uploaded_once(emu, runner):
    img = frame(2)
    result = runner.run(i2v(img, img, model="pixverse:1@3"))
    assert emu.stats()["image_uploads"] == 1
    sent = [r["body"][0] for r in emu.requests if r["method"] == "POST" and r["body"][0]["taskType"] == "videoInference"]
    refs = [f["inputImage"] for f in sent[0]["frameImages"]]
    assert len(refs) == 2 and refs[0] == refs[1] and not refs[0].startswith("sha256:")
    assert result.video_path.is_file()


def test_a_result_outlives_its_upload_in_the_cache(emu, runner):
    """The fingerprint uses content hashes: after the upload cache expired, the same request still
    finds its finished task (and a deleted file is fetched again by polling), uploading nothing."""
    img = frame(3)
    first = runner.run(i2v(img))
    runner.ledger._conn.execute("UPDATE uploads SET last_used_at = last_used_at - ?", (40 * 86400,))
    before = emu.stats()
    again = runner.run(i2v(img))
    assert again.origin == "reused" and emu.stats()["requests"] == before["requests"]
    first.video_path.unlink()
    refetched = runner.run(i2v(img))
    assert refetched.origin == "resumed" and refetched.task_uuid == first.task_uuid
    after = emu.stats()
    assert after["image_uploads"] == 1 and video_submissions(emu) == 1 and after["downloads"] == 2
    assert refetched.video_path.is_file()


def test_expired_cached_upload_is_uploaded_again(emu, runner):
    img = frame(4)
    runner.run(i2v(img))
    runner.ledger._conn.execute("UPDATE uploads SET last_used_at = last_used_at - ?", (30 * 86400,))
    runner.run(i2v(img, prompt="a different take"))
    assert emu.stats()["image_uploads"] == 2 and video_submissions(emu) == 2


def test_upload_runware_forgot_is_uploaded_again_without_paying_twice(emu, runner):
    img = frame(5)
    runner.run(i2v(img))
    emu.reset()  # Runware lost the upload although our cache still lists it
    result = runner.run(i2v(img, prompt="the same frame, another prompt"))
    stats = emu.stats()
    assert result.video_path.is_file()
    assert stats["rejected_submits"] == 1 and stats["image_uploads"] == 1 and video_submissions(emu) == 1
    refused = [e for e in runner.ledger.entries() if e.status == L.REFUSED]
    assert len(refused) == 1 and "imageUUID" in refused[0].error


def test_recover_of_a_task_the_ledger_never_saw(emu, runner):
    other = Runner(emu, "recover-elsewhere")  # submitted from another machine / ledger
    try:
        done = other.run()
    finally:
        other.close()
    got = runner.run(lambda client, opts: pipeline.recover(client, done.task_uuid, opts))
    assert got.origin == "recovered" and got.task_uuid == done.task_uuid
    entry = runner.entry(done.task_uuid)
    assert entry.status == L.FINISHED and entry.fingerprint is None and entry.file_ok()
    local = asyncio.run(pipeline.recover_local(done.task_uuid, runner.opts()))
    assert local is not None and local.origin == "reused"
    assert video_submissions(emu) == 1


def test_the_core_never_imports_comfyui():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import nodes.money.ledger, nodes.job.pipeline, nodes.cli.main, "
            "nodes.requests.widgets; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('comfy', 'comfy_api', 'folder_paths', 'server', 'comfy_execution')]; print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_recover_is_served_from_the_ledger_without_a_key(emu, runner):
    import subprocess as sp

    from support.jobs import cli_command, cli_env

    done = runner.run()
    before = emu.stats()["requests"]
    env = {k: v for k, v in cli_env(emu).items() if k != "RUNWARE_API_KEY"}
    proc = sp.run(cli_command("recover", done.task_uuid.upper(), "--out", str(runner.out), "--ledger",
                              str(runner.ledger_path)), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    (runner.dir / "cli-recover.stdout").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    assert f"reused finished task {done.task_uuid} from the ledger" in proc.stdout
    assert f"output: {done.video_path}" in proc.stdout and f"ledger: {runner.ledger_path}" in proc.stderr
    assert emu.stats()["requests"] == before


def test_a_job_record_walks_its_transitions_and_keeps_its_task_when_a_write_fails(tmp_path):
    """ledger.Job: typed transitions; after acceptance a failed local write never loses the taskUUID
    (the run goes on and the user is told in its notices); without a ledger every step does nothing."""
    led = Ledger(tmp_path / "ledger.sqlite3")
    claim(led, "u1")
    job = L.Job(led, "u1")
    job.submitting()
    assert led.get("u1").status == L.SUBMITTING
    assert job.submitted() and led.get("u1").status == L.SUBMITTED
    assert job.succeeded(video_uuid="v", result_url="https://x/v.mp4", seed=7, cost=0.2)
    assert led.get("u1").status == L.SUCCEEDED and led.get("u1").cost == 0.2
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    assert job.finished(video, 10) and led.get("u1").reusable()
    assert not job.failed("too late") and led.get("u1").status == L.FINISHED  # a result in is never undone

    claim(led, "u2", fp="fp-2")
    refused = L.Job(led, "u2")
    assert refused.refused("invalid") and led.get("u2").status == L.REFUSED
    claim(led, "u3", fp="fp-3")
    led.close()  # now every write fails, as with a locked, read-only or full ledger
    accepted = L.Job(led, "u3", ["earlier notice"])
    assert accepted.task_uuid == "u3" and not accepted.submitted()
    assert accepted.notices[0] == "earlier notice" and "u3" in accepted.notices[1]
    assert "could not be updated" in accepted.notices[1]
    assert not accepted.note("timeout") and len(accepted.notices) == 2  # logged, not told twice
    with pytest.raises(Exception):
        accepted.submitting()  # the one write that must reach the disk before the POST

    none = L.Job(None, "u4")
    assert not none.submitted() and not none.finished(video, 10) and none.notices == []
    none.submitting()


# -- money2: groups, runs of unknown cost, dead claims, the CLI's unexpected-error text -----------------------

def _kw(n: int, **over):
    return dict(fingerprint=f"fp{n}", endpoint="e", task_uuid=f"t{n}", **over)


def test_claim_many_is_all_or_none(ledger):
    ledger.claim(**_kw(0))
    def refuse_third(led):
        if len(led.entries()) >= 3:
            raise RuntimeError("limit")
        return {"reserved": 0.2}
    with pytest.raises(RuntimeError):
        ledger.claim_many([_kw(1, guard=refuse_third), _kw(2, guard=refuse_third), _kw(3, guard=refuse_third)])
    assert [e.task_uuid for e in ledger.entries()] == ["t0"]  # nothing of the group went in
    claims = ledger.claim_many([_kw(0), _kw(1, guard=lambda led: {"reserved": 0.2})])
    assert [c.new for c in claims] == [False, True]  # a row already there counts as claimed, no new one
    assert claims[1].entry.reserved == 0.2 and claims[1].entry.status == L.PREPARING


def test_unaccounted_rows_are_the_live_ones_of_unknown_cost(ledger):
    with L.working_on("t1"):
        ledger.claim(**_kw(1))                                   # unknown cost, run alive
        ledger.claim(**_kw(2, guard=lambda led: {"reserved": 0.3}))  # reserved: accounted for
        assert [e.task_uuid for e in ledger.unaccounted(0)] == ["t1"]
        ledger.advance("t1", L.SUBMITTED)
        ledger.record_success("t1", video_uuid="v", result_url="u", seed=1, cost=0.25, notices=[])
        assert ledger.unaccounted(0) == []  # its cost is known now


def test_release_dead_claims_keeps_live_and_sent_rows(ledger):
    with L.working_on("t1"):
        ledger.claim(**_kw(1, guard=lambda led: {"reserved": 0.3}))
        ledger.claim(**_kw(2, guard=lambda led: {"reserved": 0.3}))  # nobody works on it: a dead run's row
        ledger.claim(**_kw(3, guard=lambda led: {"reserved": 0.3}))
        ledger.advance("t3", L.SUBMITTING)  # may have gone out: never released here
        assert ledger.release_dead_claims() == 1
        assert [ledger.get(t).status for t in ("t1", "t2", "t3")] == [L.PREPARING, L.ABANDONED, L.SUBMITTING]
        assert ledger.spent_since(0) == pytest.approx(0.6)


def test_cli_unexpected_error_says_a_task_is_not_lost_only_when_one_was_sent(monkeypatch):
    from nodes.cli import main as cli
    from nodes.job.pipeline import Progress

    monkeypatch.setattr(cli, "_SENT", [])
    cli._progress(Progress("uploading", "uploading first_frame"))
    assert cli._after_unexpected() == "No task was submitted to Runware by this command, so nothing was charged"
    cli._progress(Progress("submitting", "submitting", task_uuid="abc"))
    assert "Task abc submitted above is not lost" in cli._after_unexpected()


def test_a_request_sent_before_defaults_were_left_out_is_still_the_same_request(tmp_path):
    """Settings at their documented default are no longer sent (motion_mode "normal"), yet a ledger row of
    the same request from before — its task carried motionMode "normal" — is still found: reused, not paid
    for again."""
    from support.jobs import choices
    from nodes.requests.tasks import build_text_to_video

    built = build_text_to_video(choices(settings={"motion_mode": "normal"}))
    assert "motionMode" not in str(built.task) and built.defaults_left_out
    before = {k: v for k, v in built.task.items() if k != "taskUUID"}
    before.setdefault("providerSettings", {}).setdefault("pixverse", {})["motionMode"] = "normal"
    assert fingerprint(built.identity) == fingerprint(before)
    assert fingerprint({k: v for k, v in built.task.items() if k != "taskUUID"}) != fingerprint(before)


def test_a_damaged_file_is_closed_when_the_ledger_refuses_it(tmp_path):
    """The ComfyUI layer moves a damaged ledger aside and starts a new one: Windows cannot rename a file that
    is open, so the refused Ledger must not keep its connection (the exception's traceback holds it)."""
    import sqlite3
    from pathlib import Path

    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError) as refused:
        Ledger(path)
    assert refused.traceback  # the traceback (and the half-made Ledger in it) is still alive here
    fds = Path("/proc/self/fd")
    if fds.is_dir():  # Linux: no descriptor of this process is on the file
        held = []
        for fd in os.listdir(fds):
            try:
                held.append(os.path.realpath(fds / fd))
            except OSError:
                continue
        assert str(path.resolve()) not in held
    os.replace(path, tmp_path / "ledger.sqlite3.damaged")  # what Windows refuses while it is open
    with Ledger(path) as fresh:
        assert fresh.entries() == []
