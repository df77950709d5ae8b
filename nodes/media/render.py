"""Synthetic test clips: real MP4s (H.264 + optional AAC) for the local Runware emulator and tests.

Frames are built directly in yuv420p with numpy (no RGB→YUV conversion), one at a time, so a
1920×1080 24 fps 8 s clip renders in a few seconds on two cores and memory stays at one frame.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import MediaError
from .video import VideoInfo, _even, _fps_fraction, write_h264_mp4

_SAMPLE_RATE = 44100


class _Pattern:
    """A diagonal luma gradient scrolling one step per frame, chroma bands, and a moving square."""

    def __init__(self, width: int, height: int, seed: int):
        rng = np.random.default_rng(seed)
        self.w, self.h = width, height
        self.cw, self.ch = width // 2, height // 2
        self.speed = int(rng.integers(2, 7))
        self.phase = float(rng.uniform(0, 2 * math.pi))
        self.square = max(4, min(width, height) // 6) & ~1  # even: aligns with chroma samples
        # Wide enough that any per-frame shift is a plain slice of it (values repeat every 256).
        y = np.arange(height, dtype=np.int32)[:, None]
        x = np.arange(width + 256, dtype=np.int32)[None, :]
        self.luma = ((x + y) % 220 + 16).astype(np.uint8)       # video range 16..235
        cx = np.arange(self.cw + 256, dtype=np.int32)[None, :]
        cy = np.arange(self.ch, dtype=np.int32)[:, None]
        self.u = (128 + 60 * np.sin((cx + cy) / 40.0 + self.phase)).astype(np.uint8)
        self.v = np.broadcast_to((128 + 60 * np.cos(cy / 25.0 + self.phase)).astype(np.uint8),
                                 (self.ch, self.cw))
        self.buf = np.empty(width * height * 3 // 2, dtype=np.uint8)

    def frame(self, i: int) -> np.ndarray:
        w, h, cw, ch = self.w, self.h, self.cw, self.ch
        ysz, csz = w * h, cw * ch
        Y = self.buf[:ysz].reshape(h, w)
        U = self.buf[ysz:ysz + csz].reshape(ch, cw)
        V = self.buf[ysz + csz:].reshape(ch, cw)
        shift = (i * self.speed) % 220
        Y[:] = self.luma[:, shift:shift + w]
        U[:] = self.u[:, (shift // 2):(shift // 2) + cw]
        V[:] = self.v
        # The square bounces along a Lissajous path; its position depends on the frame number.
        s = self.square
        t = i / 24.0
        x0 = int((w - s) * (0.5 + 0.5 * math.sin(1.3 * t + self.phase))) & ~1
        y0 = int((h - s) * (0.5 + 0.5 * math.sin(0.9 * t + 2 * self.phase))) & ~1
        Y[y0:y0 + s, x0:x0 + s] = 235
        U[y0 // 2:(y0 + s) // 2, x0 // 2:(x0 + s) // 2] = 90
        V[y0 // 2:(y0 + s) // 2, x0 // 2:(x0 + s) // 2] = 240
        return self.buf.reshape(h * 3 // 2, w)


def sine_tone(seconds: float, *, sample_rate: int = _SAMPLE_RATE, frequency: float = 440.0,
              amplitude: float = 0.3) -> np.ndarray:
    """A mono float32 [1,T] sine tone with 10 ms fades (no clicks at the ends)."""
    n = max(0, round(seconds * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    tone = amplitude * np.sin(2 * np.pi * frequency * t)
    fade = min(n // 2, int(0.01 * sample_rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        tone[:fade] *= ramp
        tone[n - fade:] *= ramp[::-1]
    return tone.astype(np.float32)[None, :]


def render_test_video(path: Union[str, Path], *, width: int, height: int, fps: float, duration: float,
                      with_audio: bool, audio_seconds: Optional[float] = None, seed: int = 0,
                      crf: int = 30, faststart: bool = True) -> VideoInfo:
    """Write an MP4 of round(fps × duration) frames at width×height, with a sine-tone AAC track
    when `with_audio`. With `audio_seconds` (lipsync: the output has the audio's length) the
    video lasts `audio_seconds` too and the audio track, when present, is exactly that long.

    `faststart=False` leaves the index at the end, as a plain ffmpeg run would.
    Odd sides are rounded down to even: H.264 4:2:0 (what players accept) needs even sides.
    """
    import av

    if audio_seconds is not None:
        duration = audio_seconds
    if not (duration > 0 and math.isfinite(duration)):
        raise MediaError(f"duration must be a positive number of seconds, got {duration}")
    if width < 2 or height < 2:
        raise MediaError(f"size must be at least 2x2, got {width}x{height}")
    rate: Fraction = _fps_fraction(fps)
    n_frames = max(1, round(float(rate) * duration))
    w, h = _even(int(width)), _even(int(height))
    pattern = _Pattern(w, h, seed)

    audio = None
    if with_audio:
        freq = 220.0 * 2 ** ((seed % 12) / 12)  # a different note per seed
        audio = (sine_tone(duration, frequency=freq), _SAMPLE_RATE, 64_000)
    pictures = (av.VideoFrame.from_ndarray(pattern.frame(i), format="yuv420p") for i in range(n_frames))
    return write_h264_mp4(path, pictures, w, h, rate, crf=crf, preset="ultrafast", audio=audio,
                          faststart=faststart, what="render test video")
