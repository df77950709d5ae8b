"""Checks made before anything is uploaded or paid.

Media: every input must decode and make sense, judged by its content (never by a file name): a
picture given as the lipsync video, NaN/inf pixels or samples, a 1×1 frame, a single frame, a
clip of one sample are refused with an error naming the input. Destination: the output folder must
be writable and have room for the expected video; the job ledger must accept a write. Only then
are inputs uploaded and the task submitted.

The floors below are sanity limits of this pack (no provider publishes one), far under anything a
real video or clip needs: they only catch inputs that cannot be meant.
"""
from __future__ import annotations

import math
import os
import shutil
import sqlite3
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from .. import errors as E
from ..errors import MediaError, PreflightError
from ..media import check_audio as audio_shape, probe_video
from ..money.ledger import LedgerReplaced

MIN_MEDIA_SIDE = 16          # px: a frame or image smaller than this is no picture
MIN_VIDEO_FRAMES = 2         # a reference video is a moving picture
MIN_AUDIO_SECONDS = 0.1      # a clip shorter than this carries no speech
_FINITE_BLOCK = 1 << 22      # elements checked per step (16 MB of float32): bounded extra memory

NOTHING_SENT = "nothing was uploaded or paid"

# Container signatures of still images (FFmpeg opens these as one-frame "videos").
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"BM", "a BMP image"),
                (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"))
_IMAGE_CODECS = {"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpeg2000", "pam", "ppm", "pgm", "qoi"}


# -- media -----------------------------------------------------------------------------------

def _count_nonfinite(tensor) -> int:
    """Non-finite values of a float tensor, counted block by block (no full-size temporary)."""
    if not torch.is_floating_point(tensor):
        return 0
    flat = tensor.detach().reshape(-1)
    bad = 0
    for start in range(0, flat.numel(), _FINITE_BLOCK):
        block = flat[start:start + _FINITE_BLOCK]
        bad += int(block.numel() - torch.isfinite(block).sum().item())
    return bad


def _nonfinite_error(parameter: str, bad: int, total: int, what: str) -> MediaError:
    share = "all" if bad == total else f"{bad:,} of {total:,}"
    return MediaError(f"{parameter}: {share} {what} are NaN or infinite; the node that made it produced "
                      f"invalid data. Fix or replace that input; {NOTHING_SENT}")


def check_image(image, parameter: str) -> None:
    """An IMAGE input ([B,H,W,C] or [H,W,C]) that can be sent: a sane size, finite pixels (only
    the first image of a batch is sent, so only it is checked)."""
    if not isinstance(image, torch.Tensor):
        return  # the encoder reports what it cannot convert
    first = image if image.ndim == 3 else (image[0] if image.ndim == 4 and image.shape[0] else None)
    if first is None or first.ndim != 3:
        return
    h, w = int(first.shape[0]), int(first.shape[1])
    if min(h, w) < MIN_MEDIA_SIDE:
        raise MediaError(f"{parameter}: the image is {w}x{h} px; at least {MIN_MEDIA_SIDE} px on each side "
                         f"is needed for a picture to animate; {NOTHING_SENT}")
    bad = _count_nonfinite(first)
    if bad:
        raise _nonfinite_error(parameter, bad, first.numel(), "pixel values")


def check_frames(frames, fps: Any, parameter: str = "frames") -> None:
    """IMAGE frames [N,H,W,C] for a lipsync reference: at least two frames of a sane size, finite."""
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4:
        return  # encode_frames_input says what shape it needs
    n, h, w = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
    if n < MIN_VIDEO_FRAMES:
        raise MediaError(f"{parameter}: {n} frame{'s' if n != 1 else ''}; a reference video needs at least "
                         f"{MIN_VIDEO_FRAMES} frames (a moving face); {NOTHING_SENT}")
    if min(h, w) < MIN_MEDIA_SIDE:
        raise MediaError(f"{parameter}: the frames are {w}x{h} px; at least {MIN_MEDIA_SIDE} px on each side "
                         f"is needed; {NOTHING_SENT}")
    bad = _count_nonfinite(frames)
    if bad:
        raise _nonfinite_error(parameter, bad, frames.numel(), "pixel values")


def check_audio(audio, parameter: str = "audio") -> None:
    """An AUDIO input: long enough to hold speech, finite samples (first clip of the batch)."""
    waveform, sample_rate = audio_shape(audio, parameter=parameter)
    samples = int(waveform.shape[-1])
    if samples < sample_rate * MIN_AUDIO_SECONDS:
        raise MediaError(f"{parameter}: the clip is {samples} sample{'s' if samples != 1 else ''} "
                         f"({samples / sample_rate * 1000:.1f} ms at {sample_rate} Hz); at least "
                         f"{MIN_AUDIO_SECONDS:g} s is needed; {NOTHING_SENT}")
    bad = _count_nonfinite(waveform[0])
    if bad:
        raise _nonfinite_error(parameter, bad, waveform[0].numel(), "samples")


def sniff_image(path: Path) -> Optional[str]:
    """'a PNG image' etc. when the file's first bytes are a still-image signature."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    for magic, name in _IMAGE_MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    return None


# What the video input is for, by workflow: said when a picture is connected instead.
VIDEO_PURPOSE = {"video-to-video": "the face to lip-sync", "lipsync": "the face to lip-sync",
                 "modify": "the video to modify"}


def check_video_file(path: Path, parameter: str = "video", workflow: Optional[str] = None):
    """A reference video file, judged by content: a real video stream of ≥ 2 frames of a sane size.
    Returns its probe (media.VideoInfo). `workflow` ("lipsync", "modify") only words the advice."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{parameter}: {path} is not a file; {NOTHING_SENT}")
    image = sniff_image(path)
    if image:
        raise MediaError(f"{parameter}: {path.name} is {image}, not a video (judged by its content, not its "
                         f"name). Connect a video clip{' of ' + VIDEO_PURPOSE[workflow] if workflow in VIDEO_PURPOSE else ''}; "
                         f"{NOTHING_SENT}")
    try:
        info = probe_video(path)
    except MediaError as exc:
        raise MediaError(f"{parameter}: {exc}; {NOTHING_SENT}") from None
    if info.codec in _IMAGE_CODECS and info.frame_count < MIN_VIDEO_FRAMES:
        raise MediaError(f"{parameter}: {path.name} holds a single {info.codec} picture, not a video; "
                         f"{NOTHING_SENT}")
    if info.frame_count < MIN_VIDEO_FRAMES:
        raise MediaError(f"{parameter}: {path.name} has {info.frame_count} frame; a reference video needs at "
                         f"least {MIN_VIDEO_FRAMES} frames; {NOTHING_SENT}")
    if min(info.width, info.height) < MIN_MEDIA_SIDE:
        raise MediaError(f"{parameter}: {path.name} is {info.width}x{info.height} px; at least "
                         f"{MIN_MEDIA_SIDE} px on each side is needed; {NOTHING_SENT}")
    if not (info.duration > 0 and math.isfinite(info.duration)):
        raise MediaError(f"{parameter}: {path.name} has no playing time; {NOTHING_SENT}")
    return info


# -- destination -----------------------------------------------------------------------------

# Bits per pixel per frame of a typical provider MP4 (H.264, high quality), a frame rate, and a
# margin: an over-estimate, so a folder that passes has room for the real file.
_BITS_PER_PIXEL = 0.12
_ASSUMED_FPS = 30
_MARGIN = 2.0
_DEFAULT_SECONDS = 30.0          # lipsync: up to the reference's length (≤ 30 s)
_DEFAULT_PIXELS = 1920 * 1080


def expected_bytes(task: dict) -> int:
    """A generous estimate of the result MP4's size, from the task's duration and size."""
    seconds = task.get("duration") if isinstance(task.get("duration"), (int, float)) else _DEFAULT_SECONDS
    width, height = task.get("width"), task.get("height")
    pixels = width * height if isinstance(width, int) and isinstance(height, int) else _DEFAULT_PIXELS
    return int(seconds * pixels * _ASSUMED_FPS * _BITS_PER_PIXEL / 8 * _MARGIN) + (1 << 20)


def check_destination(output_dir: os.PathLike | str, built: Any = None, need_bytes: Optional[int] = None) -> None:
    """The output folder exists (made if needed), takes a new file, and has room for the video."""
    folder = Path(os.path.abspath(output_dir))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".pixverse-write-check-{uuid.uuid4().hex[:8]}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
            try:
                probe.unlink()
            except OSError:
                pass
    except OSError as exc:
        raise PreflightError(f"output folder {folder}: cannot write there: {E.os_error_text(exc, folder)}. Choose a "
                             f"writable folder (--out, or ComfyUI's --output-directory); {NOTHING_SENT}") from None
    if need_bytes is None:
        task = getattr(built, "task", None)
        need_bytes = expected_bytes(task) if isinstance(task, dict) else 0
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need_bytes and free < need_bytes:
        raise PreflightError(f"output folder {folder}: {free / 1e6:.1f} MB free, but the video may need up to "
                             f"{need_bytes / 1e6:.1f} MB. Free some space or choose another folder; {NOTHING_SENT}")


@contextmanager
def ledger_usable(ledger: Any) -> Iterator[None]:
    """A ledger write that fails before the submit: a clear error, the run stops unpaid."""
    try:
        yield
    except LedgerReplaced as exc:  # it says what happened to the file and what was done about it
        raise PreflightError(f"{exc}; {NOTHING_SENT}") from None
    except (sqlite3.Error, OSError) as exc:
        path = getattr(ledger, "path", "")
        raise PreflightError(f"the job ledger {path} cannot be written ({type(exc).__name__}: {exc}): another "
                             f"program may hold it locked, or its folder is read-only or full. Close that "
                             f"program, or choose another ledger file (--ledger); {NOTHING_SENT}") from None
