"""The local Runware emulator, driven over real HTTP with httpx (not the pack's client)."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
import wave
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image

from nodes.emulator.schemas import request_schema
from skips import CTRL_C_ON_WINDOWS

from nodes.emulator import FAKE_COST_PER_SECOND_USD, EmulatorServer
from nodes.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
SPEC = load_spec()


# -- fixtures and helpers ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    with EmulatorServer(job_seconds=0.2) as emu:
        yield emu


@pytest.fixture
def emu(server):
    server.reset()
    server.job_seconds = 0.2
    yield server
    server.reset()


@pytest.fixture
def client():
    with httpx.Client(timeout=30) as c:
        yield c


def tid() -> str:
    return str(uuid.uuid4())


def post(client, emu, tasks, headers=AUTH, **kw):
    return client.post(emu.base_url, json=tasks, headers=headers, **kw)


def t2v(**over):
    """A valid text-to-video task on v4 at 360p; `over` replaces fields (None deletes one)."""
    task = {"taskType": "videoInference", "taskUUID": tid(), "model": "pixverse:1@2",
            "positivePrompt": "a red fox running through snow", "width": 640, "height": 360,
            "duration": 5, "fps": 16, "seed": 7, "deliveryMethod": "async"}
    for k, v in over.items():
        if v is None:
            task.pop(k, None)
        else:
            task[k] = v
    return task


def poll(client, emu, task_uuid, deadline=30.0):
    end = time.monotonic() + deadline
    while True:
        r = post(client, emu, [{"taskType": "getResponse", "taskUUID": task_uuid}])
        body = r.json()
        item = (body.get("data") or [{}])[0]
        if item.get("status") != "processing":
            return r, body
        assert time.monotonic() < end, f"task {task_uuid} still processing after {deadline}s"
        time.sleep(0.05)


def submit_and_wait(client, emu, task):
    r = post(client, emu, [task])
    assert r.status_code == 200, r.text
    r, body = poll(client, emu, task["taskUUID"])
    assert r.status_code == 200, r.text
    item = body["data"][0]
    assert item["status"] == "success", item
    return item


def probe(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as c:
        vs = c.streams.video[0]
        frames = sum(1 for _ in c.decode(vs))
        return {"width": vs.codec_context.width, "height": vs.codec_context.height,
                "fps": float(vs.average_rate), "frames": frames,
                "audio": len(c.streams.audio) > 0}


def png_bytes(w, h, color=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


def data_uri(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def wav_bytes(seconds: float, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                               for i in range(n)))
    return buf.getvalue()


@pytest.fixture(scope="module")
def reference_mp4(tmp_path_factory) -> bytes:
    from nodes.media.render import render_test_video

    path = tmp_path_factory.mktemp("ref") / "ref.mp4"
    render_test_video(path, width=320, height=240, fps=12, duration=2.0, with_audio=False, seed=3)
    return path.read_bytes()


def upload_media(client, emu, data: bytes) -> str:
    r = post(client, emu, [{"taskType": "mediaStorage", "taskUUID": tid(), "operation": "upload",
                            "media": base64.b64encode(data).decode()}])
    assert r.status_code == 200, r.text
    item = r.json()["data"][0]
    assert item["taskType"] == "mediaStorage" and uuid.UUID(item["mediaUUID"])
    return item["mediaUUID"]


def upload_image(client, emu, data: bytes) -> str:
    r = post(client, emu, [{"taskType": "imageUpload", "taskUUID": tid(), "image": data_uri(data)}])
    assert r.status_code == 200, r.text
    return r.json()["data"][0]["imageUUID"]


def error_of(r):
    body = r.json()
    assert "errors" in body and body["errors"], body
    return body["errors"][0]


# -- auth --------------------------------------------------------------------------------------

def test_auth_required(emu, client):
    r = client.post(emu.base_url, json=[{"taskType": "authentication", "taskUUID": tid()}])
    assert r.status_code == 401
    assert error_of(r)["code"] == "missingApiKey"
    r = post(client, emu, [{"taskType": "authentication", "taskUUID": tid()}])
    assert r.status_code == 200
    assert r.json()["data"][0]["taskType"] == "authentication"


def test_specific_api_key_enforced(client):
    with EmulatorServer(api_key="secret", job_seconds=0.1) as emu:
        r = post(client, emu, [{"taskType": "authentication", "taskUUID": tid()}],
                 headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        err = error_of(r)
        assert err["code"] == "invalidApiKey"
        assert "wrong" not in r.text
        r = post(client, emu, [{"taskType": "authentication", "taskUUID": tid()}],
                 headers={"Authorization": "Bearer secret"})
        assert r.status_code == 200 and r.json()["data"][0]["taskType"] == "authentication"


def test_requests_recorded_without_raw_key(emu, client):
    post(client, emu, [{"taskType": "authentication", "taskUUID": tid()}])
    recorded = emu.requests
    assert len(recorded) == 1
    assert recorded[0]["auth_key_sha256"] == hashlib.sha256(KEY.encode()).hexdigest()
    assert recorded[0]["body"][0]["taskType"] == "authentication"
    assert KEY not in json.dumps(recorded)


# -- uploads -----------------------------------------------------------------------------------

def test_image_upload_returns_uuid_and_url(emu, client):
    png = png_bytes(400, 300)
    r = post(client, emu, [{"taskType": "imageUpload", "taskUUID": (t := tid()), "image": data_uri(png)}])
    assert r.status_code == 200
    item = r.json()["data"][0]
    assert item["taskType"] == "imageUpload" and item["taskUUID"] == t
    uuid.UUID(item["imageUUID"])
    assert client.get(item["imageURL"]).content == png
    # bare base64 is accepted too
    r = post(client, emu, [{"taskType": "imageUpload", "taskUUID": tid(),
                            "image": base64.b64encode(png).decode()}])
    assert r.status_code == 200 and r.json()["data"][0]["imageUUID"] != item["imageUUID"]
    assert emu.stats()["uploads"] == 2


def test_image_upload_refuses_non_image(emu, client):
    r = post(client, emu, [{"taskType": "imageUpload", "taskUUID": tid(),
                            "image": data_uri(b"this is not an image at all")}])
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "invalidImage" and err["parameter"] == "image"


# -- text to video -----------------------------------------------------------------------------

def test_text_to_video_processing_then_success_and_real_mp4(emu, client):
    emu.job_seconds = 0.5
    task = t2v()
    r = post(client, emu, [task])
    assert r.status_code == 200
    assert r.json() == {"data": [{"taskType": "videoInference", "taskUUID": task["taskUUID"]}]}
    r = post(client, emu, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}])
    assert r.json()["data"][0] == {"taskType": "videoInference", "taskUUID": task["taskUUID"],
                                   "status": "processing"}
    r, body = poll(client, emu, task["taskUUID"])
    item = body["data"][0]
    assert item["status"] == "success" and item["seed"] == 7
    assert "cost" not in item and "notices" not in item
    uuid.UUID(item["videoUUID"])
    dl = client.get(item["videoURL"])
    assert dl.status_code == 200 and dl.headers["content-type"] == "video/mp4"
    info = probe(dl.content)
    assert info == {"width": 640, "height": 360, "fps": 16.0, "frames": 80, "audio": False}
    stats = emu.stats()
    assert stats["video_submissions"] == 1 and stats["downloads"] == 1 and stats["polls"] >= 2


def test_sound_effect_switch_adds_audio_and_cost(emu, client):
    task = t2v(width=360, height=360, includeCost=True,
               providerSettings={"pixverse": {"soundEffectSwitch": True,
                                              "soundEffectContent": "ocean waves"}})
    item = submit_and_wait(client, emu, task)
    assert item["cost"] == pytest.approx(5 * FAKE_COST_PER_SECOND_USD)
    info = probe(client.get(item["videoURL"]).content)
    assert info["audio"] is True
    assert (info["width"], info["height"], info["frames"]) == (360, 360, 80)


def test_fast_motion_reverts_notice_at_8_seconds(emu, client):
    fast = {"pixverse": {"motionMode": "fast"}}
    v45 = "pixverse:1@3"  # v4 refuses provider settings at 8 s (below); v4.5 runs them with a notice
    item = submit_and_wait(client, emu, t2v(model=v45, width=360, height=360, duration=8, providerSettings=fast))
    assert item["notices"] == [r.notice for r in SPEC.rules if r.notice and r.when.get("duration") == (8,)]
    assert "will run as 'normal'" in item["notices"][0]
    assert probe(client.get(item["videoURL"]).content)["frames"] == 128
    item = submit_and_wait(client, emu, t2v(model=v45, width=360, height=360, providerSettings=fast))
    assert "notices" not in item


def test_v4_provider_settings_at_8_seconds_or_1080p_are_judged_by_the_served_schema(emu, client):
    """Runware's v4 page (with providerSettings: 5 s and 360p-720p only) and the seed's v4 examples (8 s,
    1080p with a style) disagree: the spec's rule only tells (issue 24), so the emulator accepts both;
    told to serve a schema with the page's rule, it refuses (a refusal, nothing billed)."""
    for over in (dict(duration=8), dict(width=1920, height=1080)):
        item = submit_and_wait(client, emu, t2v(providerSettings={"pixverse": {"style": "anime"}}, **over))
        assert item["status"] == "success", item
    strict = request_schema(emu.spec, emu.spec.model("pixverse:1@2"))
    strict["allOf"] = strict.get("allOf", []) + [
        {"if": {"required": ["providerSettings"]}, "then": {"properties": {"duration": {"const": 5}}}}]
    emu.schemas.configure(schemas={"pixverse:1@2": strict})
    r = post(client, emu, [t2v(providerSettings={"pixverse": {"style": "anime"}}, duration=8)])
    assert r.status_code == 400
    err = error_of(r)
    assert err["parameter"] == "duration" and err["allowedValues"] == [5] and "request schema" in err["message"], err
    assert submit_and_wait(client, emu, t2v(duration=8))["status"] == "success"  # no settings: fine


def test_image_to_video_with_uploaded_first_frame(emu, client):
    first = upload_image(client, emu, png_bytes(640, 360))
    last = data_uri(png_bytes(640, 360, (0, 0, 200)))
    task = t2v(frameImages=[{"inputImage": first, "frame": "first"},
                            {"inputImage": last, "frame": "last"}])
    item = submit_and_wait(client, emu, task)
    assert item["status"] == "success"


def test_image_to_video_image_limits_checked_on_use(emu, client):
    small = upload_image(client, emu, png_bytes(200, 200))
    r = post(client, emu, [t2v(frameImages=[{"inputImage": small, "frame": "first"}])])
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "invalidInputImage"
    assert err["parameter"] == "frameImages[0].inputImage"
    ok = upload_image(client, emu, png_bytes(400, 400))
    r = post(client, emu, [t2v(frameImages=[{"inputImage": ok, "frame": "last"}])])
    assert r.status_code == 400 and error_of(r)["code"] == "invalidFrameImages"
    r = post(client, emu, [t2v(frameImages=[{"inputImage": str(uuid.uuid4()), "frame": "first"}])])
    assert r.status_code == 400 and error_of(r)["parameter"] == "frameImages[0].inputImage"
    assert emu.stats()["video_submissions"] == 0


# -- validation --------------------------------------------------------------------------------

INVALID = [
    ("size 202x360", dict(model="pixverse:1@1", width=202, height=360), "invalidWidth", "width"),
    ("height not listed for width", dict(width=640, height=640), "invalidHeight", "height"),
    ("camera typo", dict(providerSettings={"pixverse": {"cameraMovement": "crane_u"}}),
     "invalidCameraMovement", "providerSettings.pixverse.cameraMovement"),
    ("camera on v5", dict(model="pixverse:1@5", providerSettings={"pixverse": {"cameraMovement": "crane_up"}}),
     "unsupportedParameter", "providerSettings.pixverse.cameraMovement"),
    ("camera on v3.5", dict(model="pixverse:1@1", width=640,
                            providerSettings={"pixverse": {"cameraMovement": "zoom_in"}}),
     "unsupportedParameter", "providerSettings.pixverse.cameraMovement"),
    ("effect + camera", dict(model="pixverse:1@3", providerSettings={
        "pixverse": {"effect": "boom drop", "cameraMovement": "hitchcock"}}),
     "incompatibleParameters", "providerSettings.pixverse.cameraMovement"),
    ("watermark", dict(providerSettings={"pixverse": {"watermark": False}}),
     "unknownParameter", "providerSettings.pixverse.watermark"),
    ("sound content without switch", dict(providerSettings={"pixverse": {"soundEffectContent": "rain"}}),
     "incompatibleParameters", "providerSettings.pixverse.soundEffectContent"),
    ("sound content too short", dict(providerSettings={"pixverse": {"soundEffectSwitch": True,
                                                                    "soundEffectContent": "x"}}),
     "invalidSoundEffectContent", "providerSettings.pixverse.soundEffectContent"),
    ("duration 6", dict(duration=6), "invalidDuration", "duration"),
    ("fps 30", dict(fps=30), "invalidFps", "fps"),
    ("prompt too short", dict(positivePrompt="a"), "invalidPositivePrompt", "positivePrompt"),
    ("no prompt", dict(positivePrompt=None), "missingPositivePrompt", "positivePrompt"),
    ("unknown field", dict(watermark=False), "unknownParameter", "watermark"),
    ("unknown model", dict(model="pixverse:9@9"), "invalidModel", "model"),
    ("sync delivery", dict(deliveryMethod="sync"), "invalidDeliveryMethod", "deliveryMethod"),
    ("bad taskUUID", dict(taskUUID="not-a-uuid"), "invalidTaskUUID", "taskUUID"),
    ("lipsync field on generator", dict(referenceVideos=[str(uuid.uuid4())]),
     "unsupportedParameter", "referenceVideos"),
]


@pytest.mark.parametrize("label,over,code,parameter", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_generation_tasks_refused(emu, client, label, over, code, parameter):
    r = post(client, emu, [t2v(**over)])
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert (err["code"], err["parameter"]) == (code, parameter), err
    assert err["taskType"] == "videoInference" and "documentation" in err
    stats = emu.stats()
    assert stats["video_submissions"] == 0 and stats["video_submit_attempts"] == 1


def test_invalid_values_named_with_allowed_values(emu, client):
    err = error_of(post(client, emu, [t2v(providerSettings={"pixverse": {"cameraMovement": "crane_u"}})]))
    assert "crane_u" in err["message"] and "crane_up" in err["message"]
    assert err["allowedValues"] == list(SPEC.setting("camera_movement").values)
    err = error_of(post(client, emu, [t2v(model="pixverse:1@1", width=202, height=360)]))
    assert "202" in err["message"] and "270x360" in err["message"]
    assert 270 in err["allowedValues"] and 202 not in err["allowedValues"]


# -- lipsync -----------------------------------------------------------------------------------

def lipsync(video_uuid, **extra):
    return {"taskType": "videoInference", "taskUUID": tid(), "model": "pixverse:lipsync@1",
            "referenceVideos": [video_uuid], "deliveryMethod": "async", **extra}


def test_lipsync_with_audio_takes_reference_size_and_audio_length(emu, client, reference_mp4):
    video = upload_media(client, emu, reference_mp4)
    audio = upload_media(client, emu, wav_bytes(1.5))
    item = submit_and_wait(client, emu, lipsync(video, inputAudios=[audio]))
    data = client.get(item["videoURL"]).content
    info = probe(data)
    assert (info["width"], info["height"], info["fps"], info["audio"]) == (320, 240, 12.0, True)
    assert info["frames"] == 18  # 1.5 s at 12 fps


def test_lipsync_with_speech(emu, client, reference_mp4):
    video = upload_media(client, emu, reference_mp4)
    item = submit_and_wait(client, emu, lipsync(video, speech={"voice": "Emily", "text": "x" * 20}))
    info = probe(client.get(item["videoURL"]).content)
    assert info["audio"] is True and info["frames"] == round(20 * 0.07 * 12)


def test_lipsync_invalid(emu, client, reference_mp4):
    video = upload_media(client, emu, reference_mp4)
    audio = upload_media(client, emu, wav_bytes(0.5))
    r = post(client, emu, [lipsync(video, speech={"voice": "2", "text": "Hello there"})])
    assert r.status_code == 400
    err = error_of(r)
    assert (err["code"], err["parameter"]) == ("invalidVoice", "speech.voice")
    assert err["allowedValues"] == list(SPEC.voices.values)
    err = error_of(post(client, emu, [lipsync(video, inputAudios=[audio],
                                              speech={"voice": "auto", "text": "hi"})]))
    assert err["code"] == "incompatibleParameters"
    err = error_of(post(client, emu, [lipsync(video, inputAudios=[audio], positivePrompt="talk")]))
    assert (err["code"], err["parameter"]) == ("unsupportedParameter", "positivePrompt")
    err = error_of(post(client, emu, [lipsync(video)]))
    assert err["code"] == "missingInputAudios"
    err = error_of(post(client, emu, [lipsync(audio, speech={"text": "hi"})]))
    assert (err["code"], err["parameter"]) == ("invalidReferenceVideos", "referenceVideos[0]")
    err = error_of(post(client, emu, [lipsync(video, speech={"voice": "auto", "text": "y" * 201})]))
    assert (err["code"], err["parameter"]) == ("invalidSpeechText", "speech.text")
    assert emu.stats()["video_submissions"] == 0


# -- polling protocol --------------------------------------------------------------------------

def test_unknown_task_uuid_is_task_not_found(emu, client):
    r = post(client, emu, [{"taskType": "getResponse", "taskUUID": tid()}])
    assert r.status_code == 400
    err = error_of(r)
    assert (err["code"], err["parameter"]) == ("taskNotFound", "taskUUID")


def test_duplicate_submit_refused_and_counted(emu, client):
    task = t2v()
    assert post(client, emu, [task]).status_code == 200
    r = post(client, emu, [task])
    assert r.status_code == 400 and error_of(r)["code"] == "duplicateTaskUUID"
    stats = emu.stats()
    assert (stats["video_submissions"], stats["video_submit_attempts"], stats["duplicate_submits"]) == (1, 2, 1)


def test_multi_task_request_answers_each(emu, client):
    task = t2v()
    post(client, emu, [task])
    r = post(client, emu, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]},
                           {"taskType": "getResponse", "taskUUID": tid()}])
    body = r.json()
    assert r.status_code == 200
    assert body["data"][0]["taskUUID"] == task["taskUUID"]
    assert body["errors"][0]["code"] == "taskNotFound"


# -- faults ------------------------------------------------------------------------------------

def test_fault_http_429_with_retry_after_on_poll(emu, client):
    task = t2v()
    post(client, emu, [task])
    emu.inject("http_status", status=429, retry_after=1, on="poll")
    r = post(client, emu, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}])
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert error_of(r)["code"] == "rateLimitExceeded"
    r = post(client, emu, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}])
    assert r.status_code == 200


def test_fault_http_503_on_submit_is_not_accepted(emu, client):
    emu.inject("http_status", status=503, on="submit")
    task = t2v()
    assert post(client, emu, [{"taskType": "authentication"}]).status_code == 200  # not a submit
    r = post(client, emu, [task])
    assert r.status_code == 503
    assert emu.stats()["video_submissions"] == 0
    assert error_of(post(client, emu, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]))["code"] == "taskNotFound"
    assert post(client, emu, [task]).status_code == 200
    assert emu.stats()["video_submit_attempts"] == 2


def test_fault_drop_connection_after_accept(emu, client):
    emu.inject("drop_connection", on="submit")
    task = t2v()
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, emu, [task])
    assert emu.stats()["video_submissions"] == 1
    r, body = poll(client, emu, task["taskUUID"])
    assert body["data"][0]["status"] == "success"


def test_fault_drop_connection_before_accept(emu, client):
    emu.inject("drop_connection", on="submit", after_accept=False)
    task = t2v()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(client, emu, [task])
    assert emu.stats()["video_submissions"] == 0
    r = post(client, emu, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}])
    assert error_of(r)["code"] == "taskNotFound"


def test_fault_slow(emu, client):
    emu.inject("slow", delay=0.6, on="auth")
    t0 = time.monotonic()
    r = post(client, emu, [{"taskType": "authentication"}])
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.55
    emu.inject("slow", delay=1.0, on="any")
    with pytest.raises(httpx.ReadTimeout):
        post(client, emu, [{"taskType": "authentication"}], timeout=0.3)


def test_fault_malformed_json(emu, client):
    emu.inject("malformed_json", on="submit")
    task = t2v()
    r = post(client, emu, [task])
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    assert emu.stats()["video_submissions"] == 1  # processed, reply garbled


def test_fault_task_error_data_status(emu, client):
    emu.inject("task_error", code="providerContentPolicyViolation", message="refused",
               provider_message="PixVerse said no")
    task = t2v()
    post(client, emu, [task])
    r, body = poll(client, emu, task["taskUUID"])
    assert r.status_code == 200
    item = body["data"][0]
    assert item["status"] == "error"
    assert item["error"] == {"code": "providerContentPolicyViolation", "message": "refused",
                             "responseContent": "PixVerse said no"}


def test_fault_task_error_errors_item(emu, client):
    emu.inject("task_error", form="errors_item", code="timeoutProvider", message="too slow")
    task = t2v()
    post(client, emu, [task])
    end = time.monotonic() + 10
    while True:
        r = post(client, emu, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}])
        if "errors" in r.json() or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert r.status_code == 400
    err = error_of(r)
    assert (err["code"], err["taskUUID"], err["taskType"]) == ("timeoutProvider", task["taskUUID"], "videoInference")


def test_fault_never_finish(emu, client):
    emu.job_seconds = 0.05
    emu.inject("never_finish")
    stuck, ok = t2v(), t2v()
    post(client, emu, [stuck])
    post(client, emu, [ok])
    poll(client, emu, ok["taskUUID"])  # submitted after `stuck`, with the same job length: `stuck` is due too
    r = post(client, emu, [{"taskType": "getResponse", "taskUUID": stuck["taskUUID"]}])
    assert r.json()["data"][0]["status"] == "processing"


def test_finish_running_ends_the_wait_of_running_jobs(emu, client):
    emu.job_seconds = 120.0
    long = t2v()
    post(client, emu, [long])
    r = post(client, emu, [{"taskType": "getResponse", "taskUUID": long["taskUUID"]}])
    assert r.json()["data"][0]["status"] == "processing"
    assert emu.finish_running() == 1
    _, body = poll(client, emu, long["taskUUID"], deadline=20.0)  # not 120 s later
    assert body["data"][0]["status"] == "success"
    assert emu.finish_running() == 0  # nothing left running


def test_fault_download_status_then_ok(emu, client):
    item = submit_and_wait(client, emu, t2v())
    emu.inject("download_status", status=422, times=2)
    assert client.get(item["videoURL"]).status_code == 422
    assert client.get(item["videoURL"]).status_code == 422
    r = client.get(item["videoURL"])
    assert r.status_code == 200 and probe(r.content)["frames"] == 80
    assert emu.stats()["downloads"] == 3


def test_fault_download_truncate(emu, client):
    item = submit_and_wait(client, emu, t2v())
    emu.inject("download_truncate")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(item["videoURL"])
    assert probe(client.get(item["videoURL"]).content)["frames"] == 80


def test_download_range_resumes_after_truncation(emu, client):
    item = submit_and_wait(client, emu, t2v())
    full = client.get(item["videoURL"]).content
    r = client.get(item["videoURL"], headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.content == full[100:]
    assert r.headers["Content-Range"] == f"bytes 100-{len(full) - 1}/{len(full)}"
    assert client.get(item["videoURL"], headers={"Range": f"bytes={len(full)}-"}).status_code == 416


def test_fault_corrupt_mp4(emu, client, tmp_path):
    from nodes.errors import MediaError
    from nodes.media import probe_video

    emu.inject("corrupt_mp4")
    item = submit_and_wait(client, emu, t2v())
    r = client.get(item["videoURL"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(r.content)
    # Garbage may or may not be sniffed as some container by FFmpeg; it never has a video stream.
    with pytest.raises(MediaError):
        probe_video(path)


def test_inject_rejects_unknown_kind_and_params(emu):
    with pytest.raises(ValueError):
        emu.inject("earthquake")
    with pytest.raises(ValueError):
        emu.inject("http_status", stauts=500)


# -- control routes ----------------------------------------------------------------------------

def test_control_routes(emu, client):
    origin = emu.base_url[:-3]
    r = client.post(f"{origin}/_emulator/faults", json={"kind": "http_status", "status": 502, "on": "any"})
    assert r.status_code == 200 and r.json()["added"][0]["status"] == 502
    assert post(client, emu, [{"taskType": "authentication"}]).status_code == 502
    assert client.post(f"{origin}/_emulator/faults", json={"kind": "nope"}).status_code == 400
    r = client.post(f"{origin}/_emulator/config", json={"job_seconds": 0.7})
    assert r.json()["job_seconds"] == 0.7 and emu.job_seconds == 0.7
    stats = client.get(f"{origin}/_emulator/stats").json()
    assert stats["requests"] == 1 and stats["faults_fired"]["http_status"] == 1
    assert client.post(f"{origin}/_emulator/reset").json() == {"ok": True}
    assert client.get(f"{origin}/_emulator/stats").json()["requests"] == 0


# -- CLI ---------------------------------------------------------------------------------------

def test_cli_serves_and_stops_on_sigint():
    if os.name == "nt":
        pytest.skip(CTRL_C_ON_WINDOWS)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "nodes.emulator", "--port", "0", "--api-key", "k"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        base = line.split()[-1]
        r = httpx.post(base, json=[{"taskType": "authentication"}], headers={"Authorization": "Bearer k"})
        assert r.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- wire layout follows the spec ------------------------------------------------------------

def test_strict_layouts_refuse_the_other_layout_as_unknown_parameters():
    """With both layouts accepted (the default) either is taken; a strict mode refuses the other's
    fields the way Runware refuses unknown parameters; one task may not mix them."""
    from nodes.emulator.validate import ImageInfo, TaskError, validate_video_task

    img = ImageInfo(data=png_bytes(400, 400), width=400, height=400, format="PNG")
    ref = "11111111-2222-4333-8444-555555555555"
    images = {ref: img}
    current = t2v(inputs={"frameImages": [{"image": ref, "frame": "first"}]}, resolution="720p")
    del current["width"], current["height"]
    current.pop("fps", None)  # the current layout has no fps
    seed = t2v(frameImages=[{"inputImage": ref, "frame": "first"}])
    assert validate_video_task(current, SPEC, images, {}).layout == "current"
    assert (validate_video_task(current, SPEC, images, {}).width, 720) == (720, 720)
    assert validate_video_task(seed, SPEC, images, {}).layout == "seed"
    with pytest.raises(TaskError) as exc:
        validate_video_task(current, SPEC, images, {}, layouts=("seed",))
    assert (exc.value.code, exc.value.parameter) == ("unknownParameter", "inputs")
    with pytest.raises(TaskError) as exc:
        validate_video_task(seed, SPEC, images, {}, layouts=("current",))
    assert exc.value.code == "unknownParameter" and exc.value.parameter in ("fps", "frameImages")
    with pytest.raises(TaskError) as exc:
        validate_video_task({**seed, "inputs": current["inputs"]}, SPEC, images, {})
    assert exc.value.code == "incompatibleParameters"
    with pytest.raises(TaskError) as exc:  # current layout: frames and width/height exclude each other
        validate_video_task({**current, "width": 640, "height": 360}, SPEC, images, {})
    assert exc.value.code == "incompatibleParameters"


def test_lipsync_media_limits_from_spec():
    from nodes.emulator.validate import MediaInfo, TaskError, validate_video_task

    lim = SPEC.lipsync_limits
    vid = "aaaaaaaa-0000-4000-8000-000000000001"
    aud = "aaaaaaaa-0000-4000-8000-000000000002"

    def run(video: MediaInfo, audio: MediaInfo):
        task = lipsync(vid, inputAudios=[aud])
        return validate_video_task(task, SPEC, {}, {vid: video, aud: audio})

    good_v = MediaInfo(data=b"v", duration=2.0, has_video=True, width=320, height=240, fps=25.0)
    good_a = MediaInfo(data=b"a", duration=lim.audio_max_seconds, has_audio=True)
    assert run(good_v, good_a).duration == lim.audio_max_seconds
    cases = [
        (MediaInfo(data=b"v", duration=lim.video_max_seconds + 1, has_video=True, width=320,
                   height=240, fps=25.0), good_a, "referenceVideos[0]"),
        (MediaInfo(data=b"v" * (lim.video_max_bytes + 1), duration=2.0, has_video=True, width=320,
                   height=240, fps=25.0), good_a, "referenceVideos[0]"),
        (good_v, MediaInfo(data=b"a", duration=lim.audio_max_seconds + 1, has_audio=True),
         "inputAudios[0]"),
    ]
    for video, audio, parameter in cases:
        with pytest.raises(TaskError) as exc:
            run(video, audio)
        assert exc.value.parameter == parameter and exc.value.status == 400


def test_a_state_folder_remembers_tasks_across_restarts(client, tmp_path):
    """As Runware does: a new emulator on the same folder knows the earlier one's tasks (finished or still
    running), refuses their taskUUIDs as duplicates and listens at the same address when it is free."""
    state = tmp_path / "state"
    with EmulatorServer(job_seconds=0.2, state_dir=str(state)) as first:
        done, running = t2v(), t2v(seed=8)
        submit_and_wait(client, first, done)
        first.job_seconds = 3.0
        assert post(client, first, [running]).status_code == 200
        port = first.port
    with EmulatorServer(job_seconds=3.0, state_dir=str(state)) as second:
        assert second.port == port  # the same endpoint: the job ledger's rows still match
        _, body = poll(client, second, done["taskUUID"])
        item = body["data"][0]
        assert item["status"] == "success" and client.get(item["videoURL"]).status_code == 200
        _, body = poll(client, second, running["taskUUID"])
        assert body["data"][0]["status"] == "success"  # finished after the restart
        again = post(client, second, [done])
        assert "duplicate" in again.text.lower()
        assert second.stats()["video_submissions"] == 0


def test_a_sound_track_when_a_sound_switch_is_on():
    """Which settings give the rendered video sound is the emulator's own knowledge (Runware's side):
    PixVerse's sound effects on v4, the model-made audio on v5.5; nothing else does."""
    from nodes.emulator.validate import validate_video_task

    def plan(task):
        return validate_video_task(task, SPEC, {}, {})

    assert not plan(t2v()).with_audio
    assert plan(t2v(providerSettings={"pixverse": {"soundEffectSwitch": True}})).with_audio
    assert not plan(t2v(providerSettings={"pixverse": {"soundEffectSwitch": False, "motionMode": "fast"}})).with_audio
    from nodes.requests.tasks import GenerationChoices, build_text_to_video

    for audio in (True, False):
        v55 = build_text_to_video(GenerationChoices(model="pixverse:1@6", prompt="a fox", audio=audio), spec=SPEC)
        assert plan({**v55.task, "deliveryMethod": "async"}).with_audio is audio
