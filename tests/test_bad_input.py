"""Bad inputs are refused before anything is uploaded or paid: each case through the Python API
(the pipeline) and, where a file can carry it, the CLI; each asserts the message (naming the input)
and counts uploads and video submissions on the emulator (both must be 0). conftest prints the table.
"""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import fault_matrix
from support.jobs import CHOICES
from support.keysafety import artifact_dir
import workflow_runs as runs
from nodes import errors as E
from nodes.money import ledger as L
from nodes.job import pipeline
from nodes.requests.tasks import GenerationChoices

SPEECH = {"speech_text": "Hello there", "voice": None}


def counts(emu) -> tuple[int, int]:
    s = emu.stats()
    return s["uploads"], s["video_submit_attempts"]


def refused(runner, emu, job, error_cls, *words, what: str, via: str = "Python API", **opt_kw):
    out = runner.attempt(job, **opt_kw)
    assert isinstance(out.error, error_cls), f"{type(out.error).__name__}: {out.text}"
    for word in words:
        assert word in out.text, out.text
    assert "Traceback" not in out.text
    uploads, submissions = counts(emu)
    assert (uploads, submissions) == (0, 0), (uploads, submissions, out.text)
    assert not [e for e in runner.ledger.entries() if e.status not in (L.ABANDONED,)]
    fault_matrix.record_bad_input(via, what, out.text, uploads, submissions)
    return out


# -- media files -------------------------------------------------------------------------------

def png_bytes(width: int = 64, height: int = 64) -> bytes:
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG header declaring width×height over a tiny (incomplete) body: what a bomb looks like
    until it is decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))
    body = zlib.compress(b"\0" * (1 << 20), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def one_frame_mp4(path):
    from nodes.media import encode_frames_mp4

    encode_frames_mp4(torch.rand(1, 64, 64, 3), 24.0, path)
    return path


def float_wav(path, samples: np.ndarray, rate: int = 16000):
    """A 32-bit float WAV (format 3), which can hold NaN."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" +
                     b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    return path


def lipsync_job(**kw):
    args = {"speech_text": "Hello there"} if "audio" not in kw else {}
    return lambda client, opts: runs.lipsync(client, opts, **{**args, **kw})


def i2v_job(first, last=None):
    return lambda client, opts: runs.image_to_video(client, CHOICES, first, last, opts)


# -- Python API ----------------------------------------------------------------------------------

def test_png_given_as_the_lipsync_video(emu, runner, tmp_path):
    fake = tmp_path / "talking-head.mp4"
    fake.write_bytes(png_bytes())
    refused(runner, emu, lipsync_job(video_path=fake), E.MediaError, "video:", "PNG image, not a video",
            "judged by its content", what="lipsync video = PNG named .mp4")


def test_one_frame_video(emu, runner, tmp_path):
    refused(runner, emu, lipsync_job(video_path=one_frame_mp4(tmp_path / "one.mp4")), E.MediaError, "video:",
            "1 frame", what="lipsync video of 1 frame")


@pytest.mark.parametrize("shape,word", [((10, 1, 1, 3), "1x1 px"), ((1, 64, 64, 3), "1 frame")])
def test_degenerate_frames(emu, runner, shape, word):
    refused(runner, emu, lipsync_job(frames=torch.rand(*shape), frames_fps=24.0), E.MediaError, "frames:", word,
            what=f"lipsync frames {list(shape)}")


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_frames(emu, runner, value):
    refused(runner, emu, lipsync_job(frames=torch.full((8, 64, 64, 3), value), frames_fps=24.0), E.MediaError,
            "frames: all", "NaN or infinite", what=f"lipsync frames all {value}")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_first_frame(emu, runner, value):
    refused(runner, emu, i2v_job(torch.full((1, 400, 400, 3), value)), E.MediaError, "first_frame: all",
            "NaN or infinite", what=f"first_frame all {value}")


def test_some_nan_in_last_frame(emu, runner):
    last = torch.rand(1, 400, 400, 3)
    last[0, :10, :10] = math.nan
    refused(runner, emu, i2v_job(torch.rand(1, 400, 400, 3), last), E.MediaError, "last_frame: 300 of 480,000",
            what="last_frame with 100 NaN pixels")


def test_one_pixel_image(emu, runner):
    refused(runner, emu, i2v_job(torch.rand(1, 1, 1, 3)), E.MediaError, "first_frame:", "1x1 px",
            what="first_frame 1x1")


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_audio(emu, runner, tmp_path, value):
    from nodes.media import render_test_video

    video = tmp_path / "ref.mp4"
    render_test_video(video, width=320, height=240, fps=24, duration=1.0, with_audio=False)
    audio = {"waveform": torch.full((1, 1, 16000), value), "sample_rate": 16000}
    refused(runner, emu, lipsync_job(video_path=video, audio=audio), E.MediaError, "audio: all", "NaN or infinite",
            what=f"audio all {value}")


def test_one_sample_audio(emu, runner, tmp_path):
    from nodes.media import render_test_video

    video = tmp_path / "ref.mp4"
    render_test_video(video, width=320, height=240, fps=24, duration=1.0, with_audio=False)
    audio = {"waveform": torch.zeros((1, 1, 1)), "sample_rate": 44100}
    refused(runner, emu, lipsync_job(video_path=video, audio=audio), E.MediaError, "audio:", "1 sample",
            what="audio of 1 sample")


@pytest.mark.parametrize("field,value,word", [("seed", math.nan, "seed = nan"),
                                              ("prompt", b"\xff\xfe bytes", "prompt = b'")])
def test_python_api_wraps_pydantic(field, value, word):
    with pytest.raises(E.PixVerseInputError) as info:
        GenerationChoices(**{"model": "pixverse:1@5", "prompt": "x", field: value})
    assert word in str(info.value) and "wrong type or value" in str(info.value)
    fault_matrix.record_bad_input("Python API", f"GenerationChoices({field}={value!r})", str(info.value), 0, 0)


# -- destination ------------------------------------------------------------------------------

def test_output_folder_read_only(emu, runner):
    from tinyfs import tiny_fs

    with tiny_fs(runner.dir / "ro", 8 << 20) as fs:
        fs.read_only()
        refused(runner, emu, None, E.PreflightError, f"output folder {fs.path}", "read-only",
                "nothing was uploaded or paid", what="output folder on a read-only file system",
                output_dir=fs.path)
    assert runner.ledger.entries()[0].status == L.ABANDONED


def test_output_folder_without_room(emu, runner):
    from tinyfs import tiny_fs

    big = CHOICES.model_copy(update={"resolution": "1080p", "duration": 8})
    with tiny_fs(runner.dir / "small", 2 << 20) as fs:
        refused(runner, emu, lambda client, opts: runs.text_to_video(client, big, opts), E.PreflightError,
                "MB free, but the video may need up to", what="output folder with 2 MB free (1080p 8 s)",
                output_dir=fs.path)


def test_ledger_locked_before_submitting(emu, runner, cli):
    from test_fault_matrix import _lock_ledger

    ledger = L.Ledger(runner.ledger_path, timeout=0.3)  # opened first: opening waits on a lock too
    proc = _lock_ledger(runner.ledger_path)
    try:
        refused(runner, emu, None, E.PreflightError, "job ledger", "cannot be written", "locked",
                what="job ledger locked by another process", ledger=ledger)
    finally:
        proc.stdin.close()
        proc.wait(10)
        ledger.close()


# -- CLI ---------------------------------------------------------------------------------------

def cli_refused(cli, emu, name: str, args: list[str], *words: str, what: str):
    logs = artifact_dir("bad-input-cli")
    code, stdout, stderr = cli(emu, args, logs, name)  # nodes.cli.main in this process (conftest)
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    for word in words:
        assert word in stderr, stderr
    uploads, submissions = counts(emu)
    assert (uploads, submissions) == (0, 0)
    message = next(line for line in stderr.splitlines() if line.startswith("error:"))
    fault_matrix.record_bad_input("CLI", what, message, uploads, submissions)


def test_cli_png_as_lipsync_video(emu, tmp_path, cli):
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(png_bytes())
    cli_refused(cli, emu, "png_video", ["generate", "lipsync", "--video", str(fake), "--speech-text", "Hi there",
                                   "--out", str(tmp_path / "out")],
                "video: clip.mp4 is a PNG image, not a video", what="--video PNG named .mp4")


def test_cli_one_frame_video(emu, tmp_path, cli):
    video = one_frame_mp4(tmp_path / "one.mp4")
    cli_refused(cli, emu, "one_frame", ["generate", "lipsync", "--video", str(video), "--speech-text", "Hi there",
                                   "--out", str(tmp_path / "out")], "video: one.mp4 has 1 frame",
                what="--video with 1 frame")


@pytest.mark.parametrize("samples,words,what", [
    (np.zeros(1), ("audio:", "1 sample"), "--audio WAV of 1 sample"),
    (np.full(16000, np.nan), ("audio: all", "NaN or infinite"), "--audio WAV of NaN floats")])
def test_cli_bad_audio(emu, tmp_path, samples, words, what, cli):
    from nodes.media import render_test_video

    video = tmp_path / "ref.mp4"
    render_test_video(video, width=320, height=240, fps=24, duration=1.0, with_audio=False)
    wav = float_wav(tmp_path / "a.wav", samples)
    cli_refused(cli, emu, "bad_audio", ["generate", "lipsync", "--video", str(video), "--audio", str(wav),
                                   "--out", str(tmp_path / "out")], *words, what=what)


@pytest.mark.parametrize("data,words,what", [
    (bomb_png(), ("declares 400 megapixels", "refused before decoding"), "--first-frame PNG bomb 20000x20000 (1 KB)"),
    (bomb_png(12000, 12000), ("12000x12000", "refused before decoding"), "--first-frame PNG 12000x12000 (144 MP)"),
    (png_bytes(1, 1), ("first_frame:", "1x1 px"), "--first-frame 1x1 PNG")])
def test_cli_bad_first_frame(emu, tmp_path, data, words, what, cli):
    path = tmp_path / "frame.png"
    path.write_bytes(data)
    cli_refused(cli, emu, "bad_frame", ["generate", "image-to-video", "--first-frame", str(path), "--prompt", "a cat",
                                   "--model", "pixverse:1@5", "--resolution", "360p", "--out", str(tmp_path / "out")],
                *words, what=what)


def test_cli_output_folder_read_only(emu, tmp_path, cli):
    from tinyfs import tiny_fs

    with tiny_fs(tmp_path / "ro", 4 << 20) as fs:
        fs.read_only()
        cli_refused(cli, emu, "ro_out", ["generate", "text-to-video", "--prompt", "a fox", "--out", str(fs.path),
                                    "--ledger", str(tmp_path / "ledger.sqlite3")], "read-only",
                    what="--out on a read-only file system (ledger elsewhere)")


# -- memory of a huge image ------------------------------------------------------------------------

def test_huge_png_is_reduced_while_loading_with_bounded_memory(tmp_path):
    """A 100-megapixel PNG through load_image_file(max_side=4000), in a fresh process: its peak memory
    (ru_maxrss) is printed with the figures and must stay far below a full-size float decode (2.4 GB)."""
    import subprocess
    import sys

    from nodes.media.images import _png_bytes

    if not Path("/proc/self/statm").is_file():
        pytest.skip("needs Linux's /proc (/proc/self/statm) to sample the memory of the decode")
    side = 10000
    arr = np.zeros((side, side, 3), dtype=np.uint8)
    arr[:, :, 0] = (np.arange(side) % 251).astype(np.uint8)[None, :]
    path = tmp_path / "huge.png"
    path.write_bytes(_png_bytes(arr))
    del arr
    code = r"""
import sys, threading, time
sys.path.insert(0, sys.argv[2])
from nodes.media import load_image_file
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20
peak, stop = [0.0], []
def sample():
    while not stop:
        peak[0] = max(peak[0], rss()); time.sleep(0.002)
before = rss(); t = threading.Thread(target=sample); t.start(); t0 = time.monotonic()
img = load_image_file(sys.argv[1], max_side=int(sys.argv[3]) if sys.argv[3] != "0" else None)
seconds = time.monotonic() - t0; stop.append(1); t.join()
print(tuple(img.shape), before, max(peak[0], rss()), seconds)
"""
    from support.keysafety import ROOT

    figures = {}
    for max_side in ("4000", "0"):  # 0: the whole image at full size, as before this change
        out = subprocess.run([sys.executable, "-c", code, str(path), str(ROOT), max_side], capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        head, before, peak, seconds = out.stdout.strip().rsplit(" ", 3)
        figures[max_side] = (head, float(peak) - float(before), float(seconds))
    shape, grown_mb, seconds = figures["4000"]
    full_shape, full_mb, full_seconds = figures["0"]
    fault_matrix.FIGURES.append(
        f"100 MP PNG (10000x10000) → load_image_file(max_side=4000): {shape}, peak +{grown_mb:.0f} MB RSS, "
        f"{seconds:.2f} s; without max_side (full size): {full_shape}, peak +{full_mb:.0f} MB, {full_seconds:.2f} s")
    assert shape == "(1, 4000, 4000, 3)"
    assert grown_mb < 700, f"{grown_mb:.0f} MB"
