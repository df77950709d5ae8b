"""PixVerse v6 returns up to 15 s (360 frames at 24 fps): the renderer writes such a clip whole, and
decoding it holds the output tensor plus a small constant, never a second copy of the frames.

Small frames (320×180) so CI stays quick; the 1080p figures (an 8.96 GB tensor) come from the
benchmark, run by hand: python tests/bench/bench_media.py --sections decode --clips 1080p-15s.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nodes.media import decode_video, probe_video, render_test_video

WORKER = Path(__file__).resolve().parent / "bench" / "_worker.py"
W, H, FPS, SECONDS = 320, 180, 24, 15
FRAMES = FPS * SECONDS  # 360


@pytest.fixture(scope="module")
def clip_15s(tmp_path_factory):
    path = tmp_path_factory.mktemp("v6") / "v6_15s.mp4"
    info = render_test_video(path, width=W, height=H, fps=FPS, duration=SECONDS, with_audio=True, seed=5)
    return path, info


def test_renderer_writes_15_seconds_whole(clip_15s):
    path, info = clip_15s
    assert (info.frame_count, info.width, info.height, info.has_audio) == (FRAMES, W, H, True)
    assert info.duration == pytest.approx(SECONDS, abs=1e-3)
    assert probe_video(path) == info
    dec = decode_video(path)
    assert dec.frames.shape == (FRAMES, H, W, 3) and dec.frame_count == FRAMES
    assert dec.duration == pytest.approx(SECONDS, abs=1e-6)
    # The last second is real, moving picture (not padding or a frozen frame).
    assert float((dec.frames[-1] - dec.frames[-FPS]).abs().mean()) > 0.01
    wf, sr = dec.audio["waveform"], dec.audio["sample_rate"]
    assert wf.shape[-1] / sr == pytest.approx(SECONDS, abs=0.03)
    assert float(wf[..., -sr // 2:].abs().max()) > 0.1  # the tone lasts to the end


def test_decode_peak_is_the_tensor_plus_a_constant(clip_15s):
    """Peak RSS added by decode_video (measured in a fresh process, like the benchmark) ≤ 1.05× the
    tensor + 24 MB. Measured: +20 MB over a 249 MB tensor (audio, threads, a few frames); a uint8
    copy of all frames would add 62 MB, a float one 249 MB."""
    path, _ = clip_15s
    proc = subprocess.run([sys.executable, str(WORKER), "ours", str(path)], capture_output=True, text=True,
                          timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, proc.stderr[-3000:]
    r = json.loads(line[7:])
    if r["peak_extra"] is None:
        pytest.skip("needs Linux's /proc (/proc/self/clear_refs not writable here): the peak cannot be reset")
    tensor = FRAMES * H * W * 3 * torch.float32.itemsize
    assert r["shape"] == [FRAMES, H, W, 3] and r["tensor_bytes"] == tensor
    assert r["audio_samples"] > 0
    assert r["peak_extra"] <= 1.05 * tensor + 24 * 2**20, (
        f"decode peak +{r['peak_extra'] / 2**20:.1f} MB for a {tensor / 2**20:.1f} MB tensor")
