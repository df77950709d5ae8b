"""A job's inputs: encoded and checked before anything is sent, uploaded only when a new task is.

Each input becomes an `UploadInput`: the exact bytes that would be sent, standing in the task as
"sha256:<hash>" until Runware's imageUUID/mediaUUID is known (`with_refs`). The job ledger's
fingerprint is computed from that form, so identical inputs match even after an upload expired, and
its upload cache spares an upload Runware still keeps (`upload_inputs`).
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from . import preflight
from ..errors import MediaError, RunwareInterrupted
from ..media import encode_frames_mp4, encode_image_for_upload, encode_wav, probe_video, reencode_to_fit
from ..spec import CapabilitySpec


@dataclass
class UploadInput:
    """An input that goes to Runware as an upload, as the exact bytes that would be sent.

    `ref` ("sha256:<hash>") stands for it in the task until the upload's UUID is known: the
    ledger's fingerprint is computed from that form, so identical inputs match even after an
    upload expired, and a finished result is found before anything is uploaded."""

    parameter: str  # first_frame | last_frame | video | audio
    kind: str  # "image" (imageUpload → imageUUID) | "media" (mediaStorage → mediaUUID)
    data: bytes
    mime: str = ""
    sha256: str = ""
    seconds: Optional[float] = None  # an audio clip's length (lipsync is priced per second of it)

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def ref(self) -> str:
        return f"sha256:{self.sha256}"


def encode_image_input(image, spec: CapabilitySpec, parameter: str, notes: list[str]) -> UploadInput:
    """IMAGE tensor → PNG/JPEG bytes fitted to the spec's limits."""
    lim = spec.input_image
    encoded = encode_image_for_upload(image, min_side=lim.min_side, max_side=lim.max_side,
                                      max_bytes=lim.max_bytes, parameter=parameter,
                                      send_max_side=lim.upload_max_side, target_bytes=lim.upload_max_bytes)
    notes.extend(f"{parameter}: {n}" for n in encoded.notes)
    return UploadInput(parameter, "image", encoded.data, encoded.mime)


def image_size(image, parameter: str = "image") -> tuple[int, int]:
    """(width, height) of an IMAGE tensor [B,H,W,C] or [H,W,C], for choosing a size before upload."""
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) == 4:
        size = int(shape[2]), int(shape[1])
    elif len(shape) == 3:
        size = int(shape[1]), int(shape[0])
    else:
        raise MediaError(f"{parameter}: expected an IMAGE tensor [batch, height, width, channels], got shape {shape}")
    if min(size) < 1 or min(shape) < 1:
        raise MediaError(f"{parameter}: the image is empty (shape {list(shape)})")
    return size


def encode_audio(audio, spec: CapabilitySpec):
    """AUDIO → WAV bytes, refused past the spec's lipsync audio length."""
    return encode_wav(audio, max_seconds=spec.lipsync_limits.audio_max_seconds, parameter="audio")


def encode_video_file_input(path: Path, spec: CapabilitySpec, notes: list[str]) -> UploadInput:
    """A reference video for lipsync: ≤ the spec's seconds; re-encoded when over its bytes."""
    lim = spec.lipsync_limits
    info = probe_video(path)
    if info.duration > lim.video_max_seconds + 0.05:
        raise MediaError(f"video: {info.duration:.1f} s is too long; PixVerse LipSync takes at most "
                         f"{lim.video_max_seconds:g} s")
    if info.size_bytes > lim.video_max_bytes:
        with tempfile.TemporaryDirectory(prefix="pixverse-", ignore_cleanup_errors=True) as tmp:  # removed once read
            fitted = Path(tmp) / "reference.mp4"
            info = reencode_to_fit(path, lim.video_max_bytes, fitted)
            notes.append(f"video: re-encoded to {info.size_bytes / 1e6:.1f} MB to fit the "
                         f"{lim.video_max_bytes / 2**20:g} MB limit")
            return UploadInput("video", "media", fitted.read_bytes(), "video/mp4")
    return UploadInput("video", "media", Path(path).read_bytes(), "video/mp4")


def encode_frames_input(frames, fps: float, spec: CapabilitySpec, notes: list[str], audio=None) -> UploadInput:
    """IMAGE frames [N,H,W,3] → an MP4 for lipsync."""
    shape = tuple(getattr(frames, "shape", ()))
    if len(shape) != 4 or shape[0] == 0:
        raise MediaError(f"frames: expected a batch of frames [N, height, width, 3], got shape {shape}")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not fps > 0 or fps == float("inf"):
        raise MediaError(f"frames_fps: {fps!r} must be a number above 0")
    seconds = shape[0] / fps
    if seconds > spec.lipsync_limits.video_max_seconds + 1e-6:
        raise MediaError(f"frames: {shape[0]} frames at {fps:g} fps is {seconds:.1f} s; PixVerse LipSync "
                         f"takes at most {spec.lipsync_limits.video_max_seconds:g} s")
    with tempfile.TemporaryDirectory(prefix="pixverse-", ignore_cleanup_errors=True) as tmp:  # no MP4 left behind
        path = Path(tmp) / "frames.mp4"
        encode_frames_mp4(frames, fps, path, audio=audio, max_side=spec.lipsync_limits.frames_max_side)
        return encode_video_file_input(path, spec, notes)


def check_video_source(video_path: Optional[Path], frames, frames_fps, workflow: Optional[str] = None) -> None:
    """A VIDEO file or IMAGE frames, judged by content before anything is encoded or sent."""
    if video_path is not None:
        preflight.check_video_file(Path(video_path), "video", workflow=workflow)
    else:
        preflight.check_frames(frames, frames_fps, "frames")


def encode_video_source(video_path: Optional[Path], frames, frames_fps, spec: CapabilitySpec,
                        notes: list[str]) -> UploadInput:
    if video_path is not None:
        return encode_video_file_input(Path(video_path), spec, notes)
    return encode_frames_input(frames, frames_fps, spec, notes)


async def upload_inputs(client, uploads: Sequence[UploadInput], opts,
                        endpoint: str) -> tuple[dict[str, str], list[UploadInput]]:
    """Upload each input (or take its UUID from the ledger's upload cache while Runware keeps it).

    Returns {ref: Runware UUID} and the inputs that came from the cache."""
    ledger = opts.ledger
    refs: dict[str, str] = {}
    cached: list[UploadInput] = []
    for up in uploads:
        if up.ref in refs:  # the same bytes twice (first frame = last frame): one upload
            continue
        known = ledger.cached_upload(endpoint, up.kind, up.sha256) if ledger is not None else None
        if known:
            opts.report("uploading", f"{up.parameter}: already on Runware, not uploaded again")
            refs[up.ref] = known
            cached.append(up)
            continue
        if opts.cancel_check is not None and opts.cancel_check():  # nothing more goes out after a cancel
            raise RunwareInterrupted(f"Cancelled before {up.parameter} was uploaded; no task was sent, nothing "
                                     f"was charged")
        opts.report("uploading", f"uploading {up.parameter}")
        if up.kind == "image":  # the request is raced with the cancel check (seen within 0.2 s)
            uploaded = await client.upload_image(up.data, up.mime, cancel_check=opts.cancel_check)
        else:
            uploaded = await client.upload_media(up.data, cancel_check=opts.cancel_check)
        if ledger is not None:
            ledger.remember_upload(endpoint, up.kind, up.sha256, uploaded.uuid, uploaded.url, len(up.data))
        refs[up.ref] = uploaded.uuid
    return refs, cached


def with_refs(value: Any, refs: dict[str, str]) -> Any:
    """`value` (a task) with every "sha256:…" reference replaced by its Runware UUID."""
    if isinstance(value, str):
        return refs.get(value, value)
    if isinstance(value, list):
        return [with_refs(v, refs) for v in value]
    if isinstance(value, dict):
        return {k: with_refs(v, refs) for k, v in value.items()}
    return value
