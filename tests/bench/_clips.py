"""Benchmark clips: H.264 (x264 preset medium: CABAC, B-frames, 3 refs, like a real service's
output) at a realistic bitrate, from content rich enough to need it: a multi-scale texture that
scrolls, plus fresh film grain on every frame. render.py's synthetic gradient compresses to a
fraction of a real video's bitrate, and decode time grows with the bitrate, so it would flatter us.

Clips are cached (PIXVERSE_BENCH_DIR, default /tmp/pixverse-bench), keyed by their parameters.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

GENERATOR_VERSION = 2  # bump when the content changes: cached clips are then re-made


@dataclass(frozen=True)
class ClipSpec:
    name: str
    width: int
    height: int
    fps: int
    seconds: float
    audio: bool
    bitrate: int  # target video bits per second (x264 ABR with a VBV cap)

    @property
    def frames(self) -> int:
        return round(self.fps * self.seconds)

    @property
    def tensor_bytes(self) -> int:
        return self.frames * self.width * self.height * 3 * 4

    def label(self) -> str:
        return (f"{self.width}x{self.height} {self.fps} fps {self.seconds:g} s "
                f"{'+audio' if self.audio else 'no audio'}")

    def filename(self) -> str:
        return (f"v{GENERATOR_VERSION}_{self.width}x{self.height}_{self.fps}fps_{self.seconds:g}s_"
                f"{'a' if self.audio else 'n'}_{self.bitrate // 1000}k.mp4")


CLIPS = {
    "1080p": ClipSpec("1080p", 1920, 1080, 24, 8, True, 9_000_000),
    "720p": ClipSpec("720p", 1280, 720, 16, 5, False, 5_000_000),
    "portrait": ClipSpec("portrait", 1080, 1920, 24, 5, True, 9_000_000),
    # PixVerse v6 takes any whole duration 1-15 s at every resolution: its largest result, 360
    # frames, is an 8.96 GB float32 IMAGE. Needs ~10 GB free per measurement (one at a time).
    "1080p-15s": ClipSpec("1080p-15s", 1920, 1080, 24, 15, True, 9_000_000),
}
LIPSYNC_SOURCE = ClipSpec("lipsync-src", 1280, 720, 24, 30, True, 5_000_000)


def bench_dir() -> Path:
    path = Path(os.environ.get("PIXVERSE_BENCH_DIR", "/tmp/pixverse-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _texture(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Random values on a grid of `cell`-px cells, bilinearly smoothed: soft shapes, no block edges."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    ys = np.linspace(0, gh - 1.001, h, dtype=np.float32)
    xs = np.linspace(0, gw - 1.001, w, dtype=np.float32)
    y0, x0 = ys.astype(np.int32), xs.astype(np.int32)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


class _Content:
    """yuv420p frames: three texture layers scrolling at different speeds, plus per-frame grain."""

    MARGIN = 384

    def __init__(self, width: int, height: int, seed: int = 7):
        self.rng = np.random.default_rng(seed)
        self.w, self.h = width, height
        th, tw = height + self.MARGIN, width + self.MARGIN
        luma = (0.45 * _texture(self.rng, th, tw, 96) + 0.35 * _texture(self.rng, th, tw, 12)
                + 0.20 * _texture(self.rng, th, tw, 3))
        self.luma = np.clip(16 + 219 * (luma - luma.min()) / (np.ptp(luma) + 1e-6), 16, 235).astype(np.int16)
        ch, cw = th // 2, tw // 2
        self.u = (128 + 90 * (_texture(self.rng, ch, cw, 40) - 0.5)).astype(np.uint8)
        self.v = (128 + 90 * (_texture(self.rng, ch, cw, 56) - 0.5)).astype(np.uint8)
        self.buf = np.empty((height * 3 // 2, width), dtype=np.uint8)
        self.grain = self.rng.integers(-7, 8, size=(4, height, width), dtype=np.int16)

    def frame(self, i: int) -> np.ndarray:
        w, h, m = self.w, self.h, self.MARGIN
        # A camera pan along a Lissajous path: every frame moves by a non-integer-looking amount.
        dx = int((m - 2) * (0.5 + 0.5 * math.sin(i / 37.0))) & ~1
        dy = int((m - 2) * (0.5 + 0.5 * math.sin(i / 53.0 + 1.0))) & ~1
        y = self.luma[dy:dy + h, dx:dx + w] + self.grain[i % 4][:, ::-1 if i % 8 >= 4 else 1]
        self.buf[:h] = np.clip(y, 16, 235)
        cu = self.buf[h:h + h // 4].reshape(h // 2, w // 2)
        cv = self.buf[h + h // 4:].reshape(h // 2, w // 2)
        cu[:] = self.u[dy // 2:dy // 2 + h // 2, dx // 2:dx // 2 + w // 2]
        cv[:] = self.v[dy // 2:dy // 2 + h // 2, dx // 2:dx // 2 + w // 2]
        return self.buf


def _soundtrack(seconds: float, rate: int) -> np.ndarray:
    """Stereo float32 [2,T]: a few drifting tones and soft noise (AAC has something to code)."""
    n = int(round(seconds * rate))
    t = np.arange(n, dtype=np.float64) / rate
    rng = np.random.default_rng(3)
    left = 0.2 * np.sin(2 * np.pi * (220 + 30 * np.sin(t / 2)) * t) + 0.1 * np.sin(2 * np.pi * 661 * t)
    right = 0.2 * np.sin(2 * np.pi * (330 + 20 * np.sin(t / 3)) * t) + 0.1 * np.sin(2 * np.pi * 887 * t)
    noise = 0.03 * rng.standard_normal((2, n))
    return (np.stack([left, right]) + noise).astype(np.float32)


def make_clip(spec: ClipSpec, path: Path) -> None:
    import av

    rate = Fraction(spec.fps)
    content = _Content(spec.width, spec.height)
    tmp = path.with_name(f".{os.getpid()}.{path.name}")
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = spec.width, spec.height, "yuv420p"
        vs.bit_rate = spec.bitrate
        vs.options = {"preset": "medium", "maxrate": str(int(spec.bitrate * 1.25)),
                      "bufsize": str(int(spec.bitrate * 2))}
        vs.thread_type = "AUTO"
        audio = pos = None
        if spec.audio:
            sample_rate = 44100
            audio = _soundtrack(spec.seconds, sample_rate)
            as_ = out.add_stream("aac", rate=sample_rate, layout="stereo")
            as_.bit_rate = 128_000
            pos = 0
        for i in range(spec.frames):
            frame = av.VideoFrame.from_ndarray(content.frame(i), format="yuv420p")
            frame.pts = i
            out.mux(vs.encode(frame))
            if audio is not None:
                end = min(audio.shape[1], int((i + 1) / spec.fps * sample_rate))
                while pos < end:
                    n = min(1024, end - pos)
                    af = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, pos:pos + n]),
                                                    format="fltp", layout="stereo")
                    af.sample_rate, af.pts, af.time_base = sample_rate, pos, Fraction(1, sample_rate)
                    out.mux(as_.encode(af))
                    pos += n
        out.mux(vs.encode(None))
        if audio is not None:
            out.mux(as_.encode(None))
    os.replace(tmp, path)


def ensure_clip(spec: ClipSpec, log=print) -> Path:
    path = bench_dir() / spec.filename()
    if not path.exists():
        import time

        t0 = time.perf_counter()
        log(f"  making {spec.name} clip ({spec.label()}) → {path} …")
        make_clip(spec, path)
        log(f"  made in {time.perf_counter() - t0:.1f} s")
    return path


def clip_facts(path: Path) -> dict:
    """Measured facts of a clip file: size, video bitrate, frames, audio."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        seconds = float(v.duration * v.time_base) if v.duration else c.duration / 1e6
        video_bytes = sum(p.size for p in c.demux(v) if p.size)
    with av.open(str(path)) as c:
        has_audio = bool(c.streams.audio)
        audio_rate = c.streams.audio[0].codec_context.sample_rate if has_audio else 0
    return {"bytes": path.stat().st_size, "seconds": seconds,
            "video_mbps": video_bytes * 8 / seconds / 1e6,
            "total_mbps": path.stat().st_size * 8 / seconds / 1e6,
            "has_audio": has_audio, "audio_rate": audio_rate}
