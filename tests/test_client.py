"""Tests of nodes.client: envelope parsing (pure), and behaviour against the local emulator."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import errors as E
from nodes.client import (MalformedReply, PollPolicy, RetryPolicy, RunwareClient, SubmitResult,
                          error_of_data_item, exception_for, parse_envelope)

from support.keysafety import SENTINEL_KEY as KEY  # noqa: E402  (the session's sentinel key)
from support.jobs import Press  # noqa: E402
FAST_POLL = PollPolicy(first_delay=0.05, factor=1.5, max_delay=0.3, cancel_slice=0.05,
                       lost_after_polls=3, lost_after_seconds=0.5)
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.5, retry_after_cap=5.0)


def video_task(**over) -> dict:
    task = {"taskType": "videoInference", "taskUUID": str(uuid.uuid4()), "model": "pixverse:1@2",
            "positivePrompt": "a cat", "width": 640, "height": 360, "duration": 5}
    task.update(over)
    return task


# ---------------------------------------------------------------- envelope parsing (pure) -----

@pytest.mark.parametrize("body, n_data, n_errors", [
    ({"data": [{"taskUUID": "a"}]}, 1, 0),
    ({"data": {"taskUUID": "a"}}, 1, 0),
    ({"errors": [{"code": "x"}]}, 0, 1),
    ({"error": {"code": "x"}}, 0, 1),
    ({"error": "plain text"}, 0, 1),
    ({"data": [{"taskUUID": "a"}], "errors": [{"code": "x"}, {"code": "y"}]}, 1, 2),
    ({"data": [], "errors": [{"code": "x"}], "error": {"code": "z"}}, 0, 2),
    ([{"taskUUID": "a"}, {"taskUUID": "b"}], 2, 0),
    ({"data": [{"taskUUID": "a"}, "junk", 3]}, 1, 0),
])
def test_parse_envelope_shapes(body, n_data, n_errors):
    env = parse_envelope(json.dumps(body).encode())
    assert (len(env.data), len(env.errors)) == (n_data, n_errors)


@pytest.mark.parametrize("raw", [b"", b"<html>502 Bad Gateway</html>", b'{"data": [', b"42",
                                 b'"text"', b'{"status": "ok"}', b'{"data": "oops"}', b"\xff\xfe"])
def test_parse_envelope_malformed(raw):
    with pytest.raises(MalformedReply):
        parse_envelope(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["data", "errors", "error", "taskUUID", "status", "code", "x"]), kids,
        max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_parse_envelope_never_crashes(value):
    try:
        env = parse_envelope(json.dumps(value))
    except MalformedReply:
        return
    assert all(isinstance(d, dict) for d in env.data)
    assert all(isinstance(e, dict) for e in env.errors)


def test_filter_by_task_uuid():
    env = parse_envelope({"data": [{"taskUUID": "a"}, {"taskUUID": "b"}, {"status": "x"}],
                          "errors": [{"taskUUID": "b", "code": "taskFailed"}]})
    assert [d.get("taskUUID") for d in env.data_for("a")] == ["a", None]
    assert env.errors_for("a") == []
    assert len(env.errors_for("b")) == 1


@pytest.mark.parametrize("code, status, cls", [
    ("invalidApiKey", 401, E.RunwareAuthError),
    (None, 402, E.RunwareBalanceError),
    (None, 403, E.RunwarePermissionError),
    ("rateLimitExceeded", 429, E.RunwareRateLimitError),
    ("contentPolicyViolation", 200, E.RunwareContentPolicyError),
    ("providerContentPolicyViolation", 400, E.RunwareContentPolicyError),
    ("taskFailed", 200, E.RunwareProviderError),
    ("invalidWidth", 400, E.RunwareValidationError),
    (None, 503, E.RunwareServerError),
])
def test_exception_for_maps_codes(code, status, cls):
    item = {"code": code, "message": "boom", "taskUUID": "t-1", "parameter": "width",
            "allowedValues": [640, 960], "responseContent": {"reason": "provider text"}}
    exc = exception_for(item, status=status)
    assert type(exc) is cls
    text = str(exc)
    assert "boom" in text and "t-1" in text and "provider text" in text and "640" in text
    assert exc.task_uuid == "t-1" and exc.parameter == "width" and exc.allowed_values == [640, 960]


def test_error_of_data_item():
    assert error_of_data_item({"taskUUID": "a", "status": "processing"}) is None
    merged = error_of_data_item({"taskUUID": "a", "status": "error",
                                 "error": {"code": "taskFailed", "message": "m"}})
    assert merged == {"taskUUID": "a", "status": "error", "code": "taskFailed", "message": "m"}
    assert error_of_data_item({"taskUUID": "a", "status": "error", "error": "text"})["message"] == "text"


def _mock_client(handler, **kw) -> RunwareClient:
    return RunwareClient(KEY, "https://api.example.test/v1", transport=httpx.MockTransport(handler),
                         poll_policy=FAST_POLL, retry_policy=FAST_RETRY, **kw)


def test_envelope_variants_through_client():
    """data as an object, singular error object: parsed the same as the list forms."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        task = json.loads(request.content)[0]
        if task["taskType"] == "videoInference":
            return httpx.Response(200, json={"data": {"taskType": "videoInference",
                                                      "taskUUID": task["taskUUID"]}})
        if task["taskType"] == "getResponse":
            return httpx.Response(200, json={"data": {"taskUUID": task["taskUUID"], "status": "success",
                                                      "videoUUID": "v", "videoURL": "https://cdn.test/v.mp4",
                                                      "seed": "7", "cost": 0.25,
                                                      "notices": "fast motion reverted"}})
        return httpx.Response(400, json={"error": {"code": "invalidImage", "message": "bad image",
                                                   "taskUUID": task["taskUUID"], "parameter": "image"}})

    async def go():
        async with _mock_client(handler) as rw:
            res = await rw.generate_video(video_task(), deadline=5)
            with pytest.raises(E.RunwareValidationError, match="bad image"):
                await rw.upload_image(b"\x89PNG", "image/png")
            return res

    res = asyncio.run(go())
    assert (res.video_uuid, res.seed, res.cost, res.notices) == ("v", 7, 0.25, ["fast motion reverted"])
    sub = json.loads(seen[0].content)
    assert isinstance(sub, list) and sub[0]["deliveryMethod"] == "async" and sub[0]["includeCost"] is True
    h = seen[0].headers
    assert h["authorization"] == f"Bearer {KEY}" and h["content-type"] == "application/json"
    assert h["x-sdk-name"] == "comfyui-pixverse-runware" and h["x-sdk-version"] == "0.1.0"
    assert len(seen) == 3  # submit, one poll, one upload (400: not retried)


def test_no_key_explains_how(monkeypatch):
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    with pytest.raises(E.RunwareAuthError) as info:
        RunwareClient()
    text = str(info.value)
    assert "RUNWARE_API_KEY" in text and "Settings" in text and "python -m nodes.emulator" in text
    assert "RUNWARE_BASE_URL=http://127.0.0.1:8765/v1" in text


def test_env_defaults(monkeypatch):
    monkeypatch.setenv("RUNWARE_API_KEY", KEY)
    monkeypatch.delenv("RUNWARE_BASE_URL", raising=False)
    rw = RunwareClient()
    assert rw.base_url == "https://api.runware.ai/v1"
    assert KEY not in repr(rw) and KEY not in str(rw)
    monkeypatch.setenv("RUNWARE_BASE_URL", "http://127.0.0.1:8765/v1")
    assert RunwareClient().base_url == "http://127.0.0.1:8765/v1"


# ---------------------------------------------------------------- against the local emulator -----

@pytest.fixture(scope="module")
def emu_server():
    emulator = pytest.importorskip("nodes.emulator")
    server = emulator.EmulatorServer(host="127.0.0.1", port=0, job_seconds=0.5, api_key=None).start()
    yield server
    server.stop()


@pytest.fixture
def emu(emu_server):
    emu_server.reset()
    emu_server.job_seconds = 0.5
    emu_server.api_key = None
    yield emu_server
    emu_server.api_key = None
    emu_server.reset()


def make_client(emu, **kw) -> RunwareClient:
    kw.setdefault("poll_policy", FAST_POLL)
    kw.setdefault("retry_policy", FAST_RETRY)
    return RunwareClient(KEY, emu.base_url, **kw)


def generate(emu, task=None, *, deadline=60.0, dest: Path | None = None, **kw):
    async def go():
        async with make_client(emu) as rw:
            res = await rw.generate_video(task or video_task(), deadline=deadline, **kw)
            path = await rw.download(res.video_url, dest) if dest is not None else None
            return res, path
    return asyncio.run(go())


def assert_playable(path: Path, size=(640, 360)):
    import av
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == size
        assert next(container.decode(video=0)) is not None


def test_happy_path_download_playable(emu, tmp_path):
    events = []
    task = video_task()
    res, path = generate(emu, task, dest=tmp_path / "out.mp4", on_progress=events.append)
    assert res.task_uuid == task["taskUUID"] and res.video_uuid and res.video_url
    assert res.cost is not None and res.cost > 0 and res.polls >= 1 and res.elapsed > 0
    assert res.raw["status"] == "success"
    assert path == tmp_path / "out.mp4" and path.stat().st_size > 0
    assert not list(tmp_path.glob("*.part"))
    assert_playable(path)
    assert events and all(e.phase in ("queued", "processing") and e.task_uuid == res.task_uuid
                          for e in events)
    assert [e.polls for e in events] == sorted(e.polls for e in events)
    stats = emu.stats()
    assert stats["video_submissions"] == 1 and stats["video_submit_attempts"] == 1
    assert stats["downloads"] == 1
    reqs = emu.requests
    submit = next(r for r in reqs if r["method"] == "POST"
                  and r["body"][0]["taskType"] == "videoInference")
    assert submit["body"][0]["deliveryMethod"] == "async" and submit["body"][0]["includeCost"] is True
    hdrs = {k.lower(): v for k, v in submit["headers"].items()}
    assert submit["had_auth"] and hdrs["x-sdk-name"] == "comfyui-pixverse-runware"
    assert hdrs["x-sdk-version"] == "0.1.0" and hdrs["content-type"] == "application/json"
    download = next(r for r in reqs if r["method"] == "GET")
    assert not download["had_auth"], "the API key must never go with a download"


def test_submit_without_task_uuid_gets_one(emu):
    task = video_task()
    del task["taskUUID"]
    res, _ = generate(emu, task)
    uuid.UUID(res.task_uuid)
    assert emu.stats()["video_submissions"] == 1


def test_poll_429_honours_retry_after(emu):
    emu.inject("http_status", status=429, retry_after=1, on="poll", times=1)
    emu.job_seconds = 0.2
    t0 = time.monotonic()
    res, _ = generate(emu)
    assert res.video_url
    stamps = [r["time"] for r in emu.requests
              if r["method"] == "POST" and r["body"][0]["taskType"] == "getResponse"]
    assert len(stamps) >= 2 and stamps[1] - stamps[0] >= 1.0, "Retry-After: 1 not honoured"
    assert time.monotonic() - t0 >= 1.0
    assert emu.stats()["video_submissions"] == 1 and emu.stats()["video_submit_attempts"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_poll_5xx_retried(emu, status):
    emu.inject("http_status", status=status, on="poll", times=2)
    res, _ = generate(emu)
    assert res.video_url
    stats = emu.stats()
    assert stats["video_submissions"] == 1 and stats["faults_fired"]["http_status"] == 2


def test_poll_malformed_json_retried(emu):
    emu.inject("malformed_json", on="poll", times=2)
    res, _ = generate(emu)
    assert res.video_url
    stats = emu.stats()
    assert stats["video_submissions"] == 1 and stats["faults_fired"]["malformed_json"] == 2


def test_submit_429_resends_same_task_once_accepted(emu):
    emu.inject("http_status", status=429, retry_after=0.3, on="submit", times=2)
    task = video_task()
    res, _ = generate(emu, task)
    assert res.task_uuid == task["taskUUID"]
    stats = emu.stats()
    assert stats["video_submit_attempts"] == 3 and stats["video_submissions"] == 1
    assert stats["duplicate_submits"] == 0
    sent = {r["body"][0]["taskUUID"] for r in emu.requests
            if r["method"] == "POST" and r["body"][0]["taskType"] == "videoInference"}
    assert sent == {task["taskUUID"]}


def test_submit_429_gives_up_after_a_few(emu):
    emu.inject("http_status", status=429, retry_after=0.1, on="submit", times=10)
    with pytest.raises(E.RunwareRateLimitError) as info:
        generate(emu)
    assert emu.stats()["video_submit_attempts"] == FAST_RETRY.submit_rate_limit_retries + 1
    assert emu.stats()["video_submissions"] == 0 and info.value.task_uuid


def test_submit_drop_after_accept_resolved_by_polling(emu):
    emu.inject("drop_connection", on="submit", after_accept=True)

    async def go():
        async with make_client(emu) as rw:
            task = video_task()
            sub = await rw.submit_video(task)
            assert sub == SubmitResult(task["taskUUID"], acknowledged=False)
            return await rw.wait_for_video(sub.task_uuid, deadline=60, acknowledged=sub.acknowledged)

    res = asyncio.run(go())
    assert res.video_url
    stats = emu.stats()
    assert stats["video_submissions"] == 1 and stats["video_submit_attempts"] == 1


@pytest.mark.parametrize("fault", [
    dict(kind="drop_connection", on="submit", after_accept=False),
    dict(kind="http_status", status=502, on="submit"),
])
def test_submit_lost_is_reported_never_resent(emu, fault):
    emu.inject(fault.pop("kind"), **fault)
    task = video_task()
    t0 = time.monotonic()
    with pytest.raises(E.RunwareSubmissionLost) as info:
        generate(emu, task)
    assert time.monotonic() - t0 < 10
    text = str(info.value)
    assert task["taskUUID"] in text and "nothing was charged" in text and "safe to run again" in text
    stats = emu.stats()
    assert stats["video_submit_attempts"] == 1 and stats["video_submissions"] == 0
    assert stats["polls"] >= FAST_POLL.lost_after_polls


def test_submit_validation_error_not_retried(emu):
    with pytest.raises(E.RunwareValidationError) as info:
        generate(emu, video_task(width=641))
    assert info.value.status == 400 and info.value.task_uuid
    stats = emu.stats()
    assert stats["video_submit_attempts"] == 1 and stats["video_submissions"] == 0 and stats["polls"] == 0


@pytest.mark.parametrize("form", ["data_status", "errors_item"])
def test_task_error_both_forms(emu, form):
    emu.inject("task_error", code="taskFailed", message="Generation failed upstream.",
               provider_message="PixVerse: the GPU caught fire", form=form)
    task = video_task()
    with pytest.raises(E.RunwareProviderError) as info:
        generate(emu, task)
    exc = info.value
    assert exc.task_uuid == task["taskUUID"] and exc.code == "taskFailed"
    text = str(exc)
    assert task["taskUUID"] in text and "PixVerse: the GPU caught fire" in text
    assert "Generation failed upstream" in text
    assert emu.stats()["video_submissions"] == 1


@pytest.mark.parametrize("form", ["data_status", "errors_item"])
def test_task_content_policy(emu, form):
    emu.inject("task_error", code="providerContentPolicyViolation", message="Refused by policy.",
               provider_message="PixVerse: prompt refused", form=form)
    task = video_task()
    with pytest.raises(E.RunwareContentPolicyError) as info:
        generate(emu, task)
    assert task["taskUUID"] in str(info.value) and "PixVerse: prompt refused" in str(info.value)
    assert emu.stats()["video_submissions"] == 1


def test_download_422_then_ok(emu, tmp_path):
    emu.inject("download_status", status=422, times=2)
    res, path = generate(emu, dest=tmp_path / "v.mp4")
    assert path.exists() and not list(tmp_path.glob("*.part"))
    assert_playable(path)
    stats = emu.stats()
    assert stats["downloads"] == 3 and stats["video_submissions"] == 1


def test_download_truncated_retried(emu, tmp_path):
    emu.inject("download_truncate")
    res, path = generate(emu, dest=tmp_path / "v.mp4")
    assert not list(tmp_path.glob("*.part"))
    assert_playable(path)

    async def fetch_again():
        async with make_client(emu) as rw:
            return await rw.download(res.video_url, tmp_path / "again.mp4")
    again = asyncio.run(fetch_again())
    assert again.read_bytes() == path.read_bytes()
    stats = emu.stats()
    assert stats["downloads"] == 3 and stats["video_submissions"] == 1


def test_download_failures_leave_nothing(emu, tmp_path):
    emu.inject("download_status", status=502, times=10)
    res, _ = generate(emu)
    dest = tmp_path / "v.mp4"

    async def go():
        async with make_client(emu) as rw:
            return await rw.download(res.video_url, dest, attempts=3, task_uuid=res.task_uuid)
    with pytest.raises(E.RunwareDownloadError) as info:
        asyncio.run(go())
    assert res.task_uuid in str(info.value) and "recover" in str(info.value)
    assert not dest.exists() and not list(tmp_path.glob("*.part"))
    assert emu.stats()["downloads"] == 3


def test_download_over_max_bytes(emu, tmp_path):
    res, _ = generate(emu)
    dest = tmp_path / "v.mp4"

    async def go():
        async with make_client(emu) as rw:
            return await rw.download(res.video_url, dest, max_bytes=1000)
    with pytest.raises(E.RunwareDownloadError, match="limit"):
        asyncio.run(go())
    assert not dest.exists() and not list(tmp_path.glob("*.part"))
    assert emu.stats()["downloads"] == 1


def test_never_finish_deadline(emu):
    emu.inject("never_finish")
    task = video_task()
    t0 = time.monotonic()
    with pytest.raises(E.RunwareTimeoutError) as info:
        generate(emu, task, deadline=1.5)
    took = time.monotonic() - t0
    # never before the deadline; and it does end (a client that ignored the deadline would poll for ever):
    # the bound is a multiple of the deadline, which a loaded machine does not reach
    assert 1.5 <= took < 10 * 1.5, took
    text = str(info.value)
    assert task["taskUUID"] in text and f"python -m nodes recover {task['taskUUID']}" in text
    assert emu.stats()["video_submissions"] == 1


def test_cancel_check_interrupts_quickly(emu):
    emu.inject("never_finish")
    task = video_task()
    press = Press(emu, lambda: emu.stats()["polls"] >= 2)
    with pytest.raises(E.RunwareInterrupted) as info:
        generate(emu, task, deadline=60, cancel_check=press)
    assert press.more("polls") <= 1  # at most the poll in flight when it was pressed
    assert press.since() < 60 / 4  # long before the deadline would have ended it
    text = str(info.value)
    assert task["taskUUID"] in text and "may still finish" in text and "recover" in text
    assert emu.stats()["video_submissions"] == 1


def test_cancel_during_slow_poll(emu):
    """A poll hanging on a slow reply is abandoned within a cancel slice."""
    emu.job_seconds = 300
    stall = 40.0
    emu.inject("slow", delay=stall, on="poll")
    press = Press(emu, lambda: emu.stats()["polls"] >= 1)  # pressed while the first poll hangs
    with pytest.raises(E.RunwareInterrupted):
        generate(emu, deadline=60, cancel_check=press)
    assert press.more("polls") == 0 and press.since() < stall / 4  # not waiting for the slow reply
    assert emu.stats()["video_submissions"] == 1


def test_asyncio_cancellation_propagates(emu):
    emu.inject("never_finish")

    async def go():
        async with make_client(emu) as rw:
            job = asyncio.ensure_future(rw.generate_video(video_task(), deadline=60))
            while emu.stats()["polls"] < 1 and not job.done():  # cancelled while it polls, not before it began
                await asyncio.sleep(0.02)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
    asyncio.run(go())
    assert emu.stats()["video_submissions"] == 1


def test_bad_key(emu, caplog):
    emu.api_key = "the-one-true-key-xyz"
    caplog.set_level(logging.DEBUG)

    async def go():
        async with make_client(emu) as rw:
            assert KEY not in repr(rw)
            with pytest.raises(E.RunwareAuthError) as check:
                await rw.check_key()
            with pytest.raises(E.RunwareAuthError) as submit:
                await rw.generate_video(video_task(), deadline=10)
            return check.value, submit.value
    for exc in asyncio.run(go()):
        assert exc.status == 401 and exc.code == "invalidApiKey"
        assert KEY not in str(exc) and KEY not in repr(exc) and "RUNWARE_API_KEY" in str(exc)
    stats = emu.stats()
    # one authentication POST, one submit: a 401 is never retried
    assert stats["auth_failures"] == 2 and stats["requests"] == 2
    assert stats["video_submissions"] == 0
    assert caplog.records and KEY not in caplog.text


def test_key_never_logged(emu, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    emu.inject("http_status", status=503, on="poll")
    emu.inject("download_status", status=422)
    generate(emu, dest=tmp_path / "v.mp4")
    assert any(r.name == "pixverse.runware" for r in caplog.records)
    assert KEY not in caplog.text


def test_check_key_and_uploads(emu, tmp_path):
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (320, 320), (200, 30, 30)).save(buf, format="PNG")
    emu.inject("http_status", status=503, on="upload")

    async def go():
        async with make_client(emu) as rw:
            assert await rw.check_key() is True
            img = await rw.upload_image(buf.getvalue(), "image/png")
            res = await rw.generate_video(video_task(), deadline=60)
            video = await rw.download(res.video_url, tmp_path / "v.mp4")
            media = await rw.upload_media(video.read_bytes())
            with pytest.raises(E.RunwareValidationError) as bad:
                await rw.upload_image(b"not an image", "image/png")
            return img, media, bad.value
    img, media, bad = asyncio.run(go())
    uuid.UUID(img.uuid)
    uuid.UUID(media.uuid)
    assert img.url and media.url
    assert bad.code == "invalidImage" and bad.parameter == "image"
    stats = emu.stats()
    assert stats["image_uploads"] == 3 and stats["media_uploads"] == 1 and stats["auth_checks"] == 1
    assert stats["video_submissions"] == 1


def test_usable_from_several_event_loops(emu):
    rw = make_client(emu)
    try:
        assert asyncio.run(rw.check_key())
        assert asyncio.run(rw.check_key())  # the first loop is gone; a new pool is made
    finally:
        asyncio.run(rw.aclose())
    assert emu.stats()["auth_checks"] == 2


def test_the_unavailable_window_comes_from_the_configuration():
    """2 minutes of 503s by default; the variable sets it (read once into the job's configuration, which the
    pipeline hands the client in the SubmitWatch); a value that is not a number is refused, naming it."""
    from nodes import config
    from nodes.client.models import SubmitWatch
    from nodes.errors import PixVerseInputError

    name = config.UNAVAILABLE_WINDOW.env
    assert RetryPolicy().unavailable_window == 120.0 == config.load(env={}).unavailable_window
    assert config.load(env={name: "15"}).unavailable_window == 15.0
    with pytest.raises(PixVerseInputError) as err:
        config.load(env={name: "soon"})
    assert f"{name} = 'soon'" in str(err.value) and "seconds" in str(err.value)
    assert RetryPolicy(unavailable_window=3).unavailable_window == 3 and SubmitWatch().unavailable_window is None