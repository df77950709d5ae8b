"""Runware's own Python SDK (runware-sdk, a test-only dependency) against our emulator and our builder.

1. The official client, REST transport pointed at the emulator, drives an image upload, a media upload,
   a v6 text to video, a v6 first + last frame image to video in Runware's current layout, and a
   lipsync: the emulator must answer it as Runware would, and the videos must be what was asked for.
2. For every model and every layout it speaks, every top-level key our builder sends is one that the
   SDK's request type for that model declares (current layout), or one the seed page's examples use
   (seed layout).
3. An oracle for the spec's values that does not come from our spec: each model's enumerations in
   nodes/spec/pixverse.json (resolutions, durations) are the values of the `Literal` types of the SDK's
   request type for it (`typing.get_args`), or a range of whole numbers where the SDK says only `int`;
   and every value the builder sends for an enumerated field is one of them. (The SDK types width and
   height as int and provider settings as an object: the seed page's literal examples stay their oracle,
   tests/test_spec.py.)
"""
from __future__ import annotations

import asyncio
import base64
import io
import itertools
import re
import typing

import httpx
import numpy as np
import pytest
from PIL import Image

from support import keysafety
from nodes.media import probe_video, render_test_video
from nodes.spec import load_spec
from nodes.requests.tasks import GenerationChoices, build_image_to_video, build_lipsync, build_modify, build_text_to_video

runware = pytest.importorskip("runware", reason="runware-sdk is not installed (requirements-dev.txt)")
from runware.types import task_map  # noqa: E402

SPEC = load_spec()


def sdk_params() -> dict[str, set[str]]:
    """AIR → the keys the SDK's generated request type declares for it."""
    out = {}
    for name, cls in vars(task_map).items():
        if name.startswith("Pixverse") and name.endswith("Params"):
            air = re.search(r"`([^`]+)`", cls.__doc__ or "").group(1)
            out[air] = set(cls.__annotations__)
    return out


def _field_type(annotation):
    """The type inside NotRequired[...] / Required[...]."""
    while typing.get_origin(annotation) in (typing.NotRequired, typing.Required):
        annotation = typing.get_args(annotation)[0]
    return annotation


def sdk_fields() -> dict[str, dict[str, object]]:
    """AIR → {field: its type} of the SDK's generated request type for it."""
    out = {}
    for name, cls in vars(task_map).items():
        if name.startswith("Pixverse") and name.endswith("Params"):
            hints = {k: _field_type(v) for k, v in typing.get_type_hints(cls, include_extras=True).items()}
            air, = typing.get_args(hints["model"])
            out[air] = hints
    return out


def sdk_enumerations(fields: dict[str, object]) -> dict[str, tuple]:
    """{field: the values its Literal type allows}, without the constants (model, taskType, outputType)."""
    return {k: typing.get_args(t) for k, t in fields.items()
            if typing.get_origin(t) is typing.Literal and k not in ("model", "taskType", "outputType")}


def png_data_uri(w=640, h=480) -> str:
    y, x = np.mgrid[0:h, 0:w]
    buf = io.BytesIO()
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_the_official_sdk_drives_the_emulator(tmp_path, emu):
    from runware import Runware

    talk = tmp_path / "talk.mp4"
    render_test_video(talk, width=320, height=240, fps=16, duration=2.0, with_audio=True)
    emu.layouts = ("current",)  # conftest's emu (the session's key) puts every layout back after the test
    async def go():
        async with Runware(api_key=keysafety.SENTINEL_KEY, transport="rest", http_base_url=emu.base_url,
                           poll_timeout=60_000, max_retries=1) as rw:
            first = (await rw.image_upload({"image": png_data_uri()}))[0]["imageUUID"]
            last = (await rw.image_upload({"image": png_data_uri(480, 640)}))[0]["imageUUID"]
            media = (await rw.media_storage({"operation": "upload",
                                             "media": base64.b64encode(talk.read_bytes()).decode()}))[0]
            v6 = "pixverse:1@8"
            t2v = build_text_to_video(GenerationChoices(model=v6, prompt="a lighthouse at dusk",
                                                        resolution="360p", duration=3, audio=True),
                                      layout="current").task
            i2v = build_image_to_video(GenerationChoices(model=v6, prompt="from one picture to the other",
                                                         resolution="540p", aspect_ratio="auto", duration=2,
                                                         thinking="enabled"),
                                       first, last, first_frame_size=(640, 480), layout="current").task
            lip = build_lipsync(video=media["mediaUUID"], audio=media["mediaUUID"], layout="current").task
            results = []
            for task in (t2v, i2v, lip):
                task = {k: v for k, v in task.items() if k != "taskUUID"}  # the SDK makes its own
                results.append((task, (await rw.run({**task, "includeCost": True}))[0]))
            return results
    results = asyncio.run(go())
    assert len(emu.video_tasks()) == 3 and emu.stats()["jobs"]["success"] == 3
    sizes = [(640, 360, 3.0), (720, 540, 2.0), (320, 240, 2.0)]
    for (task, result), (w, h, seconds) in zip(results, sizes):
        assert result["status"] == "success" and result["videoURL"] and result.get("cost") is not None
        path = tmp_path / f"{result['taskUUID']}.mp4"
        path.write_bytes(httpx.get(result["videoURL"], timeout=30).content)
        info = probe_video(path)
        assert (info.width, info.height) == (w, h) and abs(info.duration - seconds) < 0.2, (task["model"], info)
    sent = emu.video_tasks()
    assert "inputs" in sent[1] and sent[1]["inputs"]["frameImages"][1]["frame"] == "last"
    assert sent[2]["inputs"] == {"video": results[2][0]["inputs"]["video"], "audio": results[2][0]["inputs"]["audio"]}


def representative_tasks(model, layout):
    """Every workflow of the model with every setting it takes set (the frames it takes; audio and speech)."""
    settings = {}
    for s in SPEC.settings_of(model):
        if s.via:
            continue
        settings[s.input] = {"enum": s.values[0] if s.values else None, "boolean": True,
                             "text": "rain on a tin roof", "integer": s.min}[s.kind]
    if "thinking" in settings:
        settings["thinking"] = "enabled"
    tasks = []
    if "text-to-video" in model.workflows:
        c = GenerationChoices(model=model.air, prompt="a paper boat", negative_prompt="blurry", seed=3,
                              resolution=model.resolution_default, aspect_ratio=model.aspect_ratio_default,
                              **settings)
        tasks.append(build_text_to_video(c, layout=layout).task)
        effect = [s for s in SPEC.motion_settings() if model.supports(s.input)]
        for s in effect:
            tasks.append(build_text_to_video(c.model_copy(update={"settings": {**settings, s.input: s.values[0]}}),
                                             layout=layout).task)
    if "image-to-video" in model.workflows:
        c = GenerationChoices(model=model.air, prompt="a paper boat", aspect_ratio="auto", **settings)
        last = "img-2" if "last" in model.frame_images else None  # v5 Fast: a first frame only
        tasks.append(build_image_to_video(c, "img-1", last, first_frame_size=(640, 480), layout=layout).task)
    if "video-to-video" in model.workflows:
        tasks.append(build_lipsync(video="v-1", audio="a-1", model=model.air, layout=layout).task)
        tasks.append(build_lipsync(video="v-1", speech_text="hello", voice="Emily", model=model.air,
                                   layout=layout).task)
    if "modify" in model.workflows:
        c = GenerationChoices(model=model.air, prompt="make it snow", resolution="540p", seed=1, **settings)
        tasks.append(build_modify(c, "v-1", "img-1", layout=layout).task)
    return tasks


def seed_page_keys(seed) -> set[str]:
    keys = set()
    for model in seed["models"].values():
        for _, task in model["examples"]:
            keys |= set(task)
    for _, task in seed["intro_examples"]:
        keys |= set(task)
    return keys


@pytest.mark.parametrize("model", [m.air for m in SPEC.models])
def test_every_key_we_send_is_declared_for_the_model(model, seed):
    declared = sdk_params()
    m = SPEC.model(model)
    transport = {"deliveryMethod", "includeCost"}  # the client adds these; both are declared too
    for layout in m.layouts:
        # seed layout: what the seed page's examples send, plus Runware's common fields the SDK declares
        # for the model (seed, negativePrompt) that are not the current layout's own (inputs, resolution)
        current_only = {"inputs", "resolution"}
        allowed = declared[m.air] if layout == "current" else \
            seed_page_keys(seed) | transport | (declared[m.air] - current_only)
        for task in representative_tasks(m, layout):
            extra = set(task) - allowed
            assert not extra, f"{m.air} in the {layout} layout sends {sorted(extra)}, not declared"
    assert set(declared) == {m.air for m in SPEC.models}, "the SDK and our spec know the same PixVerse models"


# -- the SDK's Literal types as an oracle for the spec's values ------------------------------------------------

COMPARED = {"resolution", "duration", "outputFormat"}  # every enumerated field of the SDK's PixVerse types


@pytest.mark.parametrize("air", sorted(sdk_fields()))
def test_each_models_values_are_the_sdks_literal_types(air):
    fields = sdk_fields()[air]
    enums = sdk_enumerations(fields)
    model = SPEC.model(air)
    # a field the SDK enumerates that this test does not judge yet fails here until it is compared
    assert set(enums) <= COMPARED, f"{air}: the SDK enumerates {sorted(set(enums) - COMPARED)}: compare them"
    if "resolution" in fields:
        assert set(model.resolutions) == set(enums["resolution"]), (air, model.resolutions, enums["resolution"])
    else:
        assert not model.resolutions, f"{air}: the SDK declares no resolution, the spec offers {model.resolutions}"
    if "duration" in enums:
        assert model.durations is not None and set(model.durations.all) == set(enums["duration"]), \
            (air, model.durations, enums["duration"])
    elif "duration" in fields:  # the SDK says only int (v5.5, v5.6, v6): whole seconds, any we offer
        assert fields["duration"] is int and model.durations is not None and model.durations.all
    else:
        assert model.durations is None, f"{air}: the SDK declares no duration, the spec offers {model.durations}"
    assert set(enums["outputFormat"]) == {"MP4", "WEBM", "MOV"}  # the spec's note on output options says so


@pytest.mark.parametrize("air", sorted(sdk_fields()))
def test_every_value_the_builder_sends_is_one_the_sdk_allows(air):
    fields = sdk_fields()[air]
    enums = sdk_enumerations(fields)
    model = SPEC.model(air)
    tasks = list(representative_tasks(model, "current"))
    for res in model.resolutions:  # every resolution the nodes offer, through the builder
        if "text-to-video" in model.workflows:
            tasks.append(build_text_to_video(GenerationChoices(model=air, prompt="a paper boat", resolution=res,
                                                               aspect_ratio=model.aspect_ratio_default),
                                             layout="current").task)
    checked = 0
    for task in tasks:
        for field, allowed in enums.items():
            if field in task:
                assert task[field] in allowed, f"{air} sends {field}={task[field]!r}; the SDK allows {allowed}"
                checked += 1
        if "duration" in task and "duration" in fields and "duration" not in enums:
            assert isinstance(task["duration"], int) and not isinstance(task["duration"], bool)
    assert checked or not (set(enums) - {"outputFormat"}), f"{air}: no enumerated value was checked"
