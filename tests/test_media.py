"""Media codecs against real files (PyAV/PIL round trips). Small sizes: the file runs in seconds."""
from __future__ import annotations

import base64
import io
import math
import wave

import av
import numpy as np
import pytest
import torch
from PIL import Image

from nodes.errors import MediaError
from nodes.media import (
    data_uri, decode_video, encode_frames_mp4, encode_image_for_upload, encode_wav, load_audio_file,
    load_image_file, probe_video, reencode_to_fit, render_test_video, silence,
)
from nodes.spec import load_spec

LIMITS = load_spec().input_image
FIT = dict(min_side=LIMITS.min_side, max_side=LIMITS.max_side, max_bytes=LIMITS.max_bytes)


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


# -- render / probe / decode --------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_with_audio(tmp_path_factory):
    path = tmp_path_factory.mktemp("media") / "a.mp4"
    info = render_test_video(path, width=320, height=240, fps=16, duration=1, with_audio=True)
    return path, info


def test_render_and_probe(clip_with_audio):
    path, rendered = clip_with_audio
    info = probe_video(path)
    assert (info.width, info.height) == (320, 240)
    assert info.fps == pytest.approx(16.0)
    assert info.frame_count == 16
    assert info.duration == pytest.approx(1.0, abs=1e-3)
    assert info.has_audio is True
    assert info.size_bytes == path.stat().st_size > 0
    assert rendered == info


def test_decode_frames_and_audio(clip_with_audio):
    path, _ = clip_with_audio
    dec = decode_video(path)
    assert dec.frames.shape == (16, 240, 320, 3)
    assert dec.frames.dtype == torch.float32
    assert float(dec.frames.min()) >= 0.0 and float(dec.frames.max()) <= 1.0
    # A real moving pattern, not a blank or frozen clip.
    assert float(dec.frames.std()) > 0.05
    assert float((dec.frames[0] - dec.frames[-1]).abs().mean()) > 0.01
    assert (dec.fps, dec.width, dec.height, dec.frame_count) == (16.0, 320, 240, 16)
    wf, sr = dec.audio["waveform"], dec.audio["sample_rate"]
    assert wf.ndim == 3 and wf.shape[0] == 1 and wf.shape[1] >= 1 and wf.dtype == torch.float32
    assert abs(wf.shape[2] - sr * 1.0) <= sr * 0.01
    # The sine tone survived AAC: clearly non-silent.
    assert float(wf.abs().max()) > 0.1


def test_decode_without_frames(clip_with_audio):
    path, _ = clip_with_audio
    dec = decode_video(path, want_frames=False)
    assert dec.frames is None
    assert dec.frame_count == 16
    assert dec.audio is not None and dec.audio["waveform"].shape[-1] > 0
    none = decode_video(path, want_frames=False, want_audio=False)
    assert none.frames is None and none.audio is None and none.frame_count == 16


def test_no_audio_track_gives_silence(tmp_path):
    path = tmp_path / "silent.mp4"
    info = render_test_video(path, width=160, height=120, fps=16, duration=1.5, with_audio=False)
    assert info.has_audio is False and info.frame_count == 24
    dec = decode_video(path)
    wf, sr = dec.audio["waveform"], dec.audio["sample_rate"]
    assert wf.shape[0] == 1 and wf.shape[-1] == round(1.5 * sr)
    assert float(wf.abs().max()) == 0.0


def test_render_audio_seconds_sets_length(tmp_path):
    path = tmp_path / "lipsync.mp4"
    info = render_test_video(path, width=160, height=120, fps=24, duration=5, with_audio=True, audio_seconds=2.5)
    assert info.frame_count == 60
    assert info.duration == pytest.approx(2.5, abs=0.05)
    audio = load_audio_file(path)
    assert audio["waveform"].shape[-1] / audio["sample_rate"] == pytest.approx(2.5, abs=0.03)


def test_render_exact_fractional_fps(tmp_path):
    path = tmp_path / "ntsc.mp4"
    info = render_test_video(path, width=64, height=48, fps=30000 / 1001, duration=1, with_audio=False)
    assert info.frame_count == 30
    assert info.fps == pytest.approx(30000 / 1001, rel=1e-6)


@pytest.mark.parametrize("faststart", [True, False])
def test_truncated_file_is_media_error(tmp_path, faststart):
    path = tmp_path / "full.mp4"
    render_test_video(path, width=160, height=120, fps=16, duration=2, with_audio=True, faststart=faststart)
    cut = tmp_path / "cut.mp4"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    for call in (probe_video, decode_video, lambda p: decode_video(p, want_frames=False)):
        with pytest.raises(MediaError) as err:
            call(cut)
        assert not isinstance(err.value, av.FFmpegError)
        assert str(cut) in str(err.value)


def test_not_a_video_and_missing_file(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(MediaError, match="junk.mp4"):
        probe_video(junk)
    with pytest.raises(MediaError, match="not found"):
        decode_video(tmp_path / "missing.mp4")


# -- encode frames ------------------------------------------------------------------------------

def test_encode_frames_round_trip(tmp_path):
    n, h, w = 12, 96, 128
    ramp = torch.linspace(0, 1, w).view(1, 1, w, 1).expand(n, h, w, 3).clone()
    ramp[:, :, :, 1] = torch.arange(n).view(n, 1, 1) / n  # green changes per frame
    path = tmp_path / "frames.mp4"
    info = encode_frames_mp4(ramp, 12, path, crf=18)
    assert (info.width, info.height, info.frame_count) == (w, h, n)
    assert info.fps == pytest.approx(12.0) and info.has_audio is False
    dec = decode_video(path)
    assert dec.frames.shape == (n, h, w, 3)
    # Lossy, but close to what went in.
    assert float((dec.frames - ramp).abs().mean()) < 0.03


def test_encode_frames_odd_size_and_audio(tmp_path):
    frames = torch.rand(8, 51, 67, 3)
    audio = {"waveform": torch.sin(torch.linspace(0, 2000, 22050)).view(1, 1, -1).repeat(1, 2, 1) * 0.5,
             "sample_rate": 22050}
    path = tmp_path / "odd.mp4"
    info = encode_frames_mp4(frames, 8, path, audio=audio)
    assert (info.width, info.height) == (66, 50)  # cropped to even sides for yuv420p
    assert info.frame_count == 8 and info.has_audio
    dec = decode_video(path)
    assert dec.audio["sample_rate"] == 22050 and dec.audio["waveform"].shape[1] == 2
    assert abs(dec.audio["waveform"].shape[-1] - 22050) <= 220


def test_encode_frames_rejects_empty(tmp_path):
    with pytest.raises(MediaError, match="frames"):
        encode_frames_mp4(torch.zeros(0, 16, 16, 3), 16, tmp_path / "x.mp4")


def test_reencode_to_fit(tmp_path):
    src = tmp_path / "big.mp4"
    frames = torch.rand(24, 128, 160, 3)  # noise: expensive to encode, so the file is big
    big = encode_frames_mp4(frames, 12, src, crf=10, audio=silence(2.0, 44100))
    limit = big.size_bytes // 4
    out = tmp_path / "small.mp4"
    small = reencode_to_fit(src, limit, out)
    assert small.size_bytes <= limit
    assert small.frame_count == big.frame_count and small.has_audio
    # Already small enough: copied, same bytes.
    same = reencode_to_fit(out, limit, tmp_path / "copy.mp4")
    assert (tmp_path / "copy.mp4").read_bytes() == out.read_bytes() and same.size_bytes == small.size_bytes


# -- images -------------------------------------------------------------------------------------

def test_image_small_is_upscaled_to_min_side():
    enc = encode_image_for_upload(torch.rand(1, 100, 100, 3), **FIT)
    assert (enc.width, enc.height) == (LIMITS.min_side, LIMITS.min_side)
    assert _png_size(enc.data) == (LIMITS.min_side, LIMITS.min_side)
    assert enc.mime == "image/png"
    assert any("resized 100x100" in n for n in enc.notes)


def test_image_large_is_downscaled_keeping_aspect():
    img = torch.zeros(1, 2500, 5000, 3)
    img[..., 0] = torch.linspace(0, 1, 5000)
    enc = encode_image_for_upload(img, **FIT)
    assert (enc.width, enc.height) == (4000, 2000)
    assert _png_size(enc.data) == (4000, 2000)
    assert any("5000x2500" in n and "4000x2000" in n for n in enc.notes)


def test_image_in_range_is_untouched():
    enc = encode_image_for_upload(torch.rand(640, 480, 3), **FIT)  # [H,W,C] accepted too
    assert (enc.width, enc.height) == (480, 640) and enc.notes == []


def test_image_impossible_aspect_names_the_size():
    with pytest.raises(MediaError) as err:
        encode_image_for_upload(torch.rand(1, 5000, 100, 3), parameter="first_frame", **FIT)
    msg = str(err.value)
    assert "first_frame" in msg and "100x5000" in msg
    assert str(LIMITS.min_side) in msg and str(LIMITS.max_side) in msg


def test_image_empty_tensor():
    with pytest.raises(MediaError, match="empty"):
        encode_image_for_upload(torch.zeros(1, 0, 10, 3), **FIT)


def test_image_nan_inf_and_range_are_cleaned():
    img = torch.full((1, 400, 400, 3), float("nan"))
    img[:, :100] = float("inf")
    img[:, 100:200] = 7.0
    img[:, 200:300] = -3.0
    enc = encode_image_for_upload(img.to(torch.float16), **FIT)
    with Image.open(io.BytesIO(enc.data)) as im:
        arr = np.asarray(im)
    assert arr[:100].max() == 0          # inf → 0
    assert arr[100:200].min() == 255     # clamped to 1
    assert arr[200:300].max() == 0       # clamped to 0
    assert arr[300:].max() == 0          # NaN → 0


def test_image_batch_alpha_and_grey():
    batch = torch.ones(3, 320, 320, 4)
    batch[0, ..., 3] = 0.5  # half alpha: composited on black → ~128
    enc = encode_image_for_upload(batch, **FIT)
    assert "batch of 3: used the first image" in enc.notes
    with Image.open(io.BytesIO(enc.data)) as im:
        assert im.mode == "RGB" and abs(int(np.asarray(im)[0, 0, 0]) - 128) <= 1
    grey = encode_image_for_upload(torch.full((1, 320, 320, 1), 0.25), **FIT)
    with Image.open(io.BytesIO(grey.data)) as im:
        assert tuple(np.asarray(im)[5, 5]) == (64, 64, 64)


def test_image_over_byte_limit_falls_back_to_jpeg():
    noise = torch.rand(1, 600, 600, 3)  # ~1 MB as PNG
    enc = encode_image_for_upload(noise, min_side=300, max_side=4000, max_bytes=400_000)
    assert enc.mime == "image/jpeg" and len(enc.data) <= 400_000
    assert enc.data[:2] == b"\xff\xd8"
    assert any("JPEG quality" in n for n in enc.notes)
    with pytest.raises(MediaError, match="limit"):
        encode_image_for_upload(noise, min_side=300, max_side=4000, max_bytes=1000)


def test_data_uri_and_load_image_file(tmp_path):
    enc = encode_image_for_upload(torch.rand(1, 300, 310, 3), **FIT)
    uri = data_uri(enc)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == enc.data
    path = tmp_path / "x.png"
    path.write_bytes(enc.data)
    loaded = load_image_file(path)
    assert loaded.shape == (1, 300, 310, 3) and loaded.dtype == torch.float32
    with pytest.raises(MediaError, match="cannot read image"):
        load_image_file(tmp_path / "nope.png")


# -- audio --------------------------------------------------------------------------------------

def _tone(seconds: float, sr: int = 16000, channels: int = 1) -> dict:
    t = torch.arange(round(seconds * sr)) / sr
    return {"waveform": (0.5 * torch.sin(2 * math.pi * 440 * t)).repeat(1, channels, 1), "sample_rate": sr}


def test_encode_wav_length_and_content():
    audio = _tone(2.0, channels=2)
    audio["waveform"][0, 0, :10] = float("nan")
    audio["waveform"][0, 1, :10] = 5.0
    enc = encode_wav(audio, max_seconds=load_spec().lipsync_limits.audio_max_seconds)
    assert (enc.sample_rate, enc.channels) == (16000, 2) and enc.duration == pytest.approx(2.0)
    with wave.open(io.BytesIO(enc.data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (2, 2, 16000, 32000)
        pcm = np.frombuffer(w.readframes(10), dtype="<i2").reshape(10, 2)
    assert (pcm[:, 0] == 0).all() and (pcm[:, 1] == 32767).all()


def test_encode_wav_over_limit_names_both_numbers():
    with pytest.raises(MediaError) as err:
        encode_wav(_tone(31.5, sr=8000), max_seconds=30, parameter="audio")
    assert "31.50" in str(err.value) and "30" in str(err.value) and "audio" in str(err.value)


@pytest.mark.parametrize("bad", [
    {"waveform": torch.zeros(1, 1, 0), "sample_rate": 44100},
    {"waveform": torch.zeros(100), "sample_rate": 44100},
    {"sample_rate": 44100},
    {"waveform": torch.zeros(1, 1, 10), "sample_rate": 0},
    "not audio",
])
def test_encode_wav_rejects_bad_input(bad):
    with pytest.raises(MediaError):
        encode_wav(bad)


def test_silence_and_load_audio_file(tmp_path):
    s = silence(0.5, 8000, channels=2)
    assert s["waveform"].shape == (1, 2, 4000) and s["sample_rate"] == 8000
    path = tmp_path / "tone.wav"
    path.write_bytes(encode_wav(_tone(0.75)).data)
    audio = load_audio_file(path)
    assert audio["sample_rate"] == 16000 and audio["waveform"].shape == (1, 1, 12000)
    assert audio["waveform"].dtype == torch.float32
    assert float((audio["waveform"] - _tone(0.75)["waveform"]).abs().max()) < 1e-3


# -- decode internals ---------------------------------------------------------------------------

def test_frame_buffer_grows_and_keeps_frames():
    from nodes.media.video import _FrameBuffer

    buf = _FrameBuffer(2, 4, 5)
    for i in range(40):
        buf.add(np.full((4, 5, 3), i, dtype=np.uint8))
    out = buf.result()
    assert out.shape == (40, 4, 5, 3) and out.dtype == torch.float32
    assert torch.allclose(out[:, 0, 0, 0], torch.arange(40, dtype=torch.float32) / 255)


def test_decode_mkv_without_frame_count(clip_with_audio, tmp_path):
    """Matroska records no frame count: the buffer is sized from duration × fps instead."""
    src, _ = clip_with_audio
    mkv = tmp_path / "remux.mkv"
    with av.open(str(src)) as inp, av.open(str(mkv), "w", format="matroska") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in (inp.streams.video[0], inp.streams.audio[0])}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    with av.open(str(mkv)) as check:
        assert check.streams.video[0].frames == 0
    assert probe_video(mkv).frame_count == 16
    dec = decode_video(mkv)
    assert dec.frames.shape == (16, 240, 320, 3) and dec.audio["waveform"].shape[-1] > 40000
