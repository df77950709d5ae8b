"""Bad input, property-based: whatever reaches the node layer (widget values, IMAGE/AUDIO tensors of odd
shapes, dtypes and ranges, empty or NaN audio, zero-frame videos) ends as either

- a request that Runware would take: checked by the emulator's independent validator, with the
  uploaded bytes decoded the way the emulator decodes them; or
- one of our clear errors (PixVerseInputError / MediaError), raised before anything was uploaded
  or sent;

never any other exception.

The node layer's ComfyUI-free part is driven exactly as the nodes drive it (widgets.generation_choices
→ pipeline.run, through tests/workflow_runs.py), with a client that records what would be sent
and stops at the submit: thousands of cases, no network. The same code path against the real
emulator is covered by test_fault_matrix.py and test_ledger.py.
"""
from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.keysafety import artifact_dir
import workflow_runs as runs
from nodes.job import pipeline
from nodes.requests import widgets
from nodes.client import UploadedMedia
from nodes.emulator.validate import TaskError, probe_image, probe_media, validate_video_task
from nodes.errors import MediaError, PixVerseInputError
from nodes.spec import load_spec
from nodes.workflows import WORKFLOWS

SPEC = load_spec()
OURS = (PixVerseInputError, MediaError)


class ReachedSubmit(Exception):
    def __init__(self, task: dict):
        super().__init__("submit reached")
        self.task = task


class RecordingClient:
    """Records uploads (decoded as the emulator would) and stops at the submit."""

    base_url = "recording://runware"

    def __init__(self):
        self.images, self.media, self.calls = {}, {}, []

    async def upload_image(self, data: bytes, mime: str, **_kw) -> UploadedMedia:
        self.calls.append(("imageUpload", mime, len(data)))
        ref = str(uuid.uuid4())
        self.images[ref] = probe_image(data)  # raises if the emulator could not read our bytes
        return UploadedMedia(ref)

    async def upload_media(self, data: bytes, **_kw) -> UploadedMedia:
        self.calls.append(("mediaStorage", len(data)))
        ref = str(uuid.uuid4())
        self.media[ref] = probe_media(data)
        return UploadedMedia(ref)

    async def submit_video(self, task: dict, *, cancel_check=None, watch=None):
        self.calls.append(("submit",))
        raise ReachedSubmit(task)

    async def wait_for_video(self, *a, **kw):  # pragma: no cover - never reached
        raise AssertionError("the recording client never gets this far")


def outcome(job) -> str:
    """'valid' (the emulator accepts the task) or 'refused' (our error, nothing sent)."""
    client = RecordingClient()
    opts = pipeline.JobOptions(output_dir=artifact_dir("node-inputs"), decode_frames=False, decode_audio=False)
    try:
        asyncio.run(job(client, opts))
    except ReachedSubmit as stop:
        task = {**stop.task, "deliveryMethod": "async", "includeCost": True}
        json.dumps([task], ensure_ascii=False, allow_nan=False).encode("utf-8")  # what the real client sends
        try:
            validate_video_task(task, SPEC, client.images, client.media)
        except TaskError as exc:
            raise AssertionError(f"built a task Runware would refuse: {exc.code} {exc.parameter}: {exc} "
                                 f"\n{task}") from None
        assert [c[0] for c in client.calls][-1] == "submit"
        return "valid"
    except OURS as exc:
        text = str(exc)
        assert len(text) > 10, f"unclear error: {text!r}"
        assert client.calls == [], f"{type(exc).__name__} raised after sending {client.calls}: {text}"
        return "refused"
    raise AssertionError("the job neither submitted nor raised")


# -- strategies ------------------------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)  # lone surrogates too
long_text = st.integers(1900, 2200).map(lambda n: "ä" * n)
text_value = st.one_of(any_text, long_text, st.just(""), st.just("   "))
junk = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                 any_text, st.lists(st.integers(), max_size=2), st.dictionaries(any_text, st.integers(), max_size=2))


@st.composite
def widget_value(draw, w: widgets.Widget):
    if draw(st.integers(0, 9)) == 0:
        return draw(junk)
    if w.kind == "combo":
        return draw(st.sampled_from(list(w.options)))
    if w.kind in ("text", "string"):
        return draw(text_value)
    if w.kind == "int":
        return draw(st.one_of(st.integers(int(w.min), int(w.max)), st.integers(-2**64, 2**64)))
    if w.kind == "boolean":
        return draw(st.booleans())
    if w.kind == "motion":
        return draw(st.one_of(st.none(), st.sampled_from(SPEC.setting("effect").values).map(lambda e: {"effect": e}),
                              st.sampled_from(SPEC.setting("camera_movement").values).map(
                                  lambda c: {"camera_movement": c})))
    raise AssertionError(w.kind)


@st.composite
def generation_values(draw, image_to_video=False):
    values = {}
    for w in WORKFLOWS["image_to_video" if image_to_video else "text_to_video"].widgets(load_spec()):
        if w.kind == "IMAGE":
            continue
        if w.optional and draw(st.booleans()):
            continue
        values[w.name] = draw(widget_value(w))
    if draw(st.integers(0, 3)) == 0:  # sound content only makes sense with sound on
        values["sound_effect_content"] = ""
    if values.get("prompt") is not None and draw(st.booleans()):
        values["prompt"] = "a lighthouse on a cliff in a storm"  # often valid, to reach the upload path
        if isinstance(values.get("model"), str) and values["model"] in {m.label for m in SPEC.models} \
                and draw(st.booleans()):
            # the model's own resting values for everything it does not take: reach valid runs
            from nodes.spec.options import defaults
            kind = "image_to_video" if image_to_video else "text_to_video"
            model = SPEC.model(values["model"])
            own = defaults(SPEC, kind, model)
            for name, value in own.items():
                if name in values and name not in ("model", "resolution", "aspect_ratio"):
                    if not model.supports(name) or draw(st.booleans()):
                        values[name] = value
    return values


DTYPES = [torch.float32, torch.float16, torch.float64, torch.uint8, torch.int64, torch.bool]
FILLS = ["rand", "zeros", "ones", "nan", "inf", "neg", "big", "some_nan"]


def make_tensor(shape, dtype, fill, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(shape, generator=g, dtype=torch.float64) if fill in ("rand", "some_nan") else torch.zeros(shape,
                                                                                                         dtype=torch.float64)
    if fill == "ones":
        t += 1
    elif fill == "nan":
        t += math.nan
    elif fill == "inf":
        t += math.inf
    elif fill == "neg":
        t -= 3
    elif fill == "big":
        t += 300
    elif fill == "some_nan" and t.numel():
        t.view(-1)[:: max(1, t.numel() // 7)] = math.nan
    if dtype in (torch.uint8, torch.int64, torch.bool):
        t = torch.nan_to_num(t, nan=0.0, posinf=255.0, neginf=0.0)
        if dtype == torch.uint8:
            t = t.clamp(0, 255)
    return t.to(dtype)


SIDES = [0, 1, 3, 16, 64, 300, 333]


@st.composite
def images(draw):
    kind = draw(st.integers(0, 19))
    if kind >= 12:  # a plausible IMAGE, in any dtype and value range
        h, w = draw(st.sampled_from([64, 300, 333])), draw(st.sampled_from([64, 300, 333, 520]))
        return make_tensor((1, h, w, 3), draw(st.sampled_from(DTYPES)), draw(st.sampled_from(FILLS)),
                           draw(st.integers(0, 99)))
    if kind == 0:
        return draw(st.one_of(st.none(), any_text, st.integers(), st.just(np.zeros((8, 8, 3), np.float32))))
    ndim = draw(st.sampled_from([2, 3, 4, 4, 4, 4, 5]))
    h, w = draw(st.sampled_from(SIDES)), draw(st.sampled_from(SIDES + [4001]))
    if h * w > 400_000:
        h = 1
    channels = draw(st.sampled_from([3, 3, 3, 1, 4, 0, 2, 5]))
    batch = draw(st.sampled_from([1, 1, 2, 0]))
    shape = {2: (h, w), 3: (h, w, channels), 4: (batch, h, w, channels), 5: (1, batch, h, w, channels)}[ndim]
    return make_tensor(shape, draw(st.sampled_from(DTYPES)), draw(st.sampled_from(FILLS)), draw(st.integers(0, 99)))


GOOD_I2V = {"model": SPEC.model("pixverse:1@3").label, "prompt": "the cat yawns and stretches", "aspect_ratio": "auto",
            "resolution": "360p", "duration": 5, "fps": 16, "seed": 3, "style": "none", "motion_mode": "normal",
            "sound_effects": False, "sound_effect_content": ""}


@st.composite
def audios(draw):
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.one_of(st.just({}), st.just({"waveform": None, "sample_rate": 44100}),
                              st.just({"sample_rate": 16000}), any_text, st.integers(),
                              st.just({"waveform": [0.0] * 10, "sample_rate": 16000})))
    ndim = draw(st.sampled_from([3, 3, 3, 2, 1, 4]))
    b, c = draw(st.sampled_from([1, 1, 0, 2])), draw(st.sampled_from([1, 2, 0, 3]))
    rate = draw(st.sampled_from([16000, 44100, 8000, 0, -1, 1, 10**9, math.nan, math.inf, 22050.5, "44100", None]))
    seconds = draw(st.sampled_from([0.0, 0.001, 0.5, 2.0, 31.0]))
    n = int(seconds * rate) if isinstance(rate, (int, float)) and math.isfinite(rate) and 0 < rate < 10**6 else \
        draw(st.sampled_from([0, 1, 100]))
    shape = {3: (b, c, n), 2: (c, n), 1: (n,), 4: (1, b, c, n)}[ndim]
    dtype = draw(st.sampled_from([torch.float32, torch.float32, torch.float64, torch.float16, torch.int16]))
    fill = draw(st.sampled_from(["rand", "zeros", "nan", "inf", "big", "some_nan"]))
    wave = make_tensor(shape, dtype, fill, draw(st.integers(0, 99)))
    if dtype.is_floating_point and fill == "rand":
        wave = wave * 2 - 1
    return {"waveform": wave, "sample_rate": rate}


@pytest.fixture(scope="module")
def video_files():
    """A real short talking-head stand-in, an empty file, a text file and a zero-frame MP4."""
    import av

    from nodes.media import render_test_video

    d = artifact_dir("node-inputs", "videos")
    good = d / "talk.mp4"
    if not good.exists():
        render_test_video(good, width=160, height=120, fps=8, duration=1.0, with_audio=True)
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    text = d / "notes.mp4"
    text.write_text("not a video at all")
    zero = d / "zero-frames.mp4"
    with av.open(str(zero), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    return {"good": good, "empty": empty, "text": text, "zero": zero, "missing": d / "missing.mp4"}


@st.composite
def frame_batches(draw):
    n = draw(st.sampled_from([0, 1, 3]))
    h, w = draw(st.sampled_from([0, 1, 2, 17, 32])), draw(st.sampled_from([0, 1, 2, 17, 32]))
    channels = draw(st.sampled_from([3, 3, 1, 4]))
    shape = draw(st.sampled_from([(n, h, w, channels), (h, w, channels), (n, h, w)]))
    return make_tensor(shape, draw(st.sampled_from(DTYPES)), draw(st.sampled_from(FILLS)), draw(st.integers(0, 99)))


# -- the properties --------------------------------------------------------------------------------

def test_text_to_video_widget_values():
    seen = Counter()

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(generation_values())
    def check(values):
        def job(client, opts):
            return runs.text_to_video(client, widgets.generation_choices(values), opts)
        seen[outcome(job)] += 1
    check()
    print("outcomes:", dict(seen))
    assert seen["valid"] >= 5 and seen["refused"] >= 20, seen


def test_image_to_video_widget_values_and_frames():
    seen = Counter()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.data_too_large])
    @given(generation_values(image_to_video=True), images(), st.one_of(st.none(), images()), st.booleans())
    def check(values, first, last, good_choices):
        if good_choices:
            values = dict(GOOD_I2V)

        def job(client, opts):
            return runs.image_to_video(client, widgets.generation_choices(values), first, last, opts)
        seen[outcome(job)] += 1
    check()
    print("outcomes:", dict(seen))
    assert seen["valid"] >= 5 and seen["refused"] >= 20, seen


def test_lipsync_inputs(video_files):
    seen = Counter()
    lip = WORKFLOWS["lipsync"].widgets(load_spec())

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.data_too_large])
    @given(source=st.sampled_from(["video:good", "video:good", "video:empty", "video:text", "video:zero",
                                   "video:missing", "frames", "both", "neither"]),
           frames=frame_batches(),
           frames_fps=st.sampled_from([24.0, 8.0, 1.0, 0.0, -5.0, math.nan, math.inf, 1e-9, 1e6]),
           audio=st.one_of(st.none(), audios()),
           speech=st.one_of(st.just(""), st.just("Hello there, how are you?"), text_value),
           voice=st.one_of(st.sampled_from(list(SPEC.voices.values)), junk),
           model=st.one_of(st.just(lip[0].default), junk),
           tame=st.booleans())
    def check(source, frames, frames_fps, audio, speech, voice, model, tame):
        if tame:  # valid choices around the odd media, so the upload path is reached often
            model, voice = lip[0].default, "Emily"
            source = source if source in ("video:good", "frames") else "video:good"
            speech = "" if audio is not None else "Hello there, how are you?"
            frames_fps = 8.0
        video_path = video_files[source.split(":")[1]] if source.startswith("video:") else (
            video_files["good"] if source == "both" else None)
        use_frames = frames if source in ("frames", "both") else None

        def job(client, opts):  # exactly what PixVerseLipSync.execute passes
            return runs.lipsync(client, opts, video_path=video_path, frames=use_frames, frames_fps=frames_fps,
                                    audio=audio, speech_text=speech or None, voice=voice, model=model)
        seen[outcome(job)] += 1
    check()
    print("outcomes:", dict(seen))
    assert seen["valid"] >= 5 and seen["refused"] >= 20, seen


@pytest.mark.parametrize("values", [
    {"model": None, "prompt": "x"},
    {"model": "pixverse:1@5", "prompt": 42},
    {"model": "pixverse:1@5", "prompt": "a fine prompt", "duration": "five"},
    {"model": "pixverse:1@5", "prompt": "a fine prompt", "motion": {"effect": ["boom drop"]}},
    {"model": "pixverse:1@5", "prompt": "a fine prompt", "motion": "boom drop"},
    {"model": "pixverse:1@5", "prompt": "a \ud800 lone surrogate"},
])
def test_wrong_types_name_the_input(values):
    def job(client, opts):
        return runs.text_to_video(client, widgets.generation_choices(values), opts)
    assert outcome(job) == "refused"


def test_known_good_inputs_are_valid(video_files):
    """The properties above are not vacuous: a plain valid job of each kind reaches the submit."""
    gen = {w.name: w.default for w in WORKFLOWS["text_to_video"].widgets(load_spec()) if w.kind not in ("IMAGE", "motion")}
    gen["prompt"] = "a lighthouse on a cliff in a storm"
    assert outcome(lambda c, o: runs.text_to_video(c, widgets.generation_choices(gen), o)) == "valid"
    img = torch.rand(1, 480, 640, 3)
    assert outcome(lambda c, o: runs.image_to_video(c, widgets.generation_choices(GOOD_I2V), img, None, o)) == \
        "valid"
    assert outcome(lambda c, o: runs.lipsync(c, o, video_path=video_files["good"], speech_text="Hello there",
                                                 voice="Emily")) == "valid"
    wave = {"waveform": torch.rand(1, 1, 16000) * 2 - 1, "sample_rate": 16000}
    assert outcome(lambda c, o: runs.lipsync(c, o, frames=torch.rand(8, 32, 32, 3), frames_fps=8.0,
                                                 audio=wave)) == "valid"
