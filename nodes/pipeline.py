"""One PixVerse job end to end: validate → upload inputs → submit → wait → download → decode.

The ComfyUI nodes and the CLI both run jobs through here, so both behave the same. Nothing in
this module imports ComfyUI: progress and cancellation come in as plain callables.

Order matters for the bill: every choice is validated (by building the task with placeholder
references) before the first upload, and the video task is submitted exactly once; after that,
only polling and downloading are retried.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import MediaError
from .requests import (BuiltTask, GenerationChoices, build_image_to_video, build_lipsync,
                       build_text_to_video)
from .spec import CapabilitySpec, load_spec

DEFAULT_DEADLINE_S = 20 * 60  # Runware's SDK gives video tasks 20 minutes
PLACEHOLDER_REF = "00000000-0000-4000-8000-000000000000"  # stands in for an upload while validating


@dataclass
class Progress:
    phase: str  # uploading | submitting | queued | processing | downloading | decoding | done
    message: str
    task_uuid: Optional[str] = None
    elapsed: float = 0.0
    polls: int = 0


@dataclass
class JobOptions:
    output_dir: Path
    deadline_s: float = DEFAULT_DEADLINE_S
    cancel_check: Optional[Callable[[], bool]] = None
    on_progress: Optional[Callable[[Progress], None]] = None
    decode_frames: bool = True
    decode_audio: bool = True
    spec: Optional[CapabilitySpec] = None

    def report(self, phase: str, message: str, **kw: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(phase, message, **kw))


@dataclass
class JobResult:
    task_uuid: str
    video_path: Path
    model: str
    video: Any  # client.VideoResult
    notices: list[str] = field(default_factory=list)
    decoded: Any = None  # media.DecodedVideo, or None when nothing asked for frames or audio
    probe: Any = None  # media.VideoInfo

    @property
    def info(self) -> dict[str, Any]:
        v = self.video
        info = {
            "taskUUID": self.task_uuid,
            "videoUUID": getattr(v, "video_uuid", None),
            "videoURL": getattr(v, "video_url", None),
            "seed": getattr(v, "seed", None),
            "cost": getattr(v, "cost", None),
            "model": self.model,
            "file": str(self.video_path),
            "notices": list(self.notices),
        }
        if self.probe is not None:
            info.update(width=self.probe.width, height=self.probe.height, fps=self.probe.fps,
                        duration=round(self.probe.duration, 3), frames=self.probe.frame_count,
                        has_audio=self.probe.has_audio)
        return info

    def info_json(self) -> str:
        return json.dumps(self.info, indent=2)


def result_path(output_dir: Path, task_uuid: str) -> Path:
    """Where a task's video is kept: named by taskUUID, so a recovery finds it again."""
    return Path(output_dir) / f"pixverse_{task_uuid}.mp4"


# -- uploads ---------------------------------------------------------------------------------

async def upload_image(client, image, spec: CapabilitySpec, parameter: str, notes: list[str]) -> tuple[str, tuple[int, int]]:
    """IMAGE tensor → imageUUID. Returns the UUID and the uploaded size."""
    from .media import encode_image_for_upload

    lim = spec.input_image
    encoded = encode_image_for_upload(image, min_side=lim.min_side, max_side=lim.max_side,
                                      max_bytes=lim.max_bytes, parameter=parameter)
    notes.extend(f"{parameter}: {n}" for n in encoded.notes)
    uploaded = await client.upload_image(encoded.data, encoded.mime)
    return uploaded.uuid, (encoded.width, encoded.height)


def image_size(image) -> tuple[int, int]:
    """(width, height) of an IMAGE tensor [B,H,W,C] or [H,W,C], for choosing a size before upload."""
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) == 4:
        return int(shape[2]), int(shape[1])
    if len(shape) == 3:
        return int(shape[1]), int(shape[0])
    raise MediaError(f"image: expected an IMAGE tensor [batch, height, width, channels], got shape {shape}")


def encode_audio(audio, spec: CapabilitySpec):
    """AUDIO → WAV bytes, refused past the spec's lipsync audio length."""
    from .media import encode_wav

    return encode_wav(audio, max_seconds=spec.lipsync_limits.audio_max_seconds, parameter="audio")


async def upload_video_file(client, path: Path, spec: CapabilitySpec, notes: list[str]) -> str:
    """A reference video for lipsync: ≤ the spec's seconds; re-encoded when over its bytes."""
    from .media import probe_video, reencode_to_fit

    lim = spec.lipsync_limits
    info = probe_video(path)
    if info.duration > lim.video_max_seconds + 0.05:
        raise MediaError(f"video: {info.duration:.1f} s is too long; PixVerse LipSync takes at most "
                         f"{lim.video_max_seconds:g} s")
    if info.size_bytes > lim.video_max_bytes:
        fitted = Path(tempfile.mkdtemp(prefix="pixverse-")) / "reference.mp4"
        info = reencode_to_fit(path, lim.video_max_bytes, fitted)
        notes.append(f"video: re-encoded to {info.size_bytes / 1e6:.1f} MB to fit the "
                     f"{lim.video_max_bytes / 2**20:g} MB limit")
        path = fitted
    return (await client.upload_media(Path(path).read_bytes())).uuid


async def upload_frames(client, frames, fps: float, spec: CapabilitySpec, notes: list[str], audio=None) -> str:
    """IMAGE frames [N,H,W,3] → an MP4 → mediaUUID."""
    from .media import encode_frames_mp4

    shape = tuple(getattr(frames, "shape", ()))
    if len(shape) != 4 or shape[0] == 0:
        raise MediaError(f"frames: expected a batch of frames [N, height, width, 3], got shape {shape}")
    if not fps or fps <= 0:
        raise MediaError(f"frames_fps: {fps!r} must be above 0")
    seconds = shape[0] / fps
    if seconds > spec.lipsync_limits.video_max_seconds + 1e-6:
        raise MediaError(f"frames: {shape[0]} frames at {fps:g} fps is {seconds:.1f} s; PixVerse LipSync "
                         f"takes at most {spec.lipsync_limits.video_max_seconds:g} s")
    path = Path(tempfile.mkdtemp(prefix="pixverse-")) / "frames.mp4"
    encode_frames_mp4(frames, fps, path, audio=audio)
    return await upload_video_file(client, path, spec, notes)


# -- the job ---------------------------------------------------------------------------------

async def run_task(client, built: BuiltTask, opts: JobOptions, notes: Optional[list[str]] = None) -> JobResult:
    """Submit once, wait, download, decode what is wanted."""
    task_uuid = built.task_uuid
    notices = list(built.notices) + list(notes or [])
    opts.report("submitting", f"submitting {built.model.name} task", task_uuid=task_uuid)
    submitted = await client.submit_video(built.task, cancel_check=opts.cancel_check)
    # A submit whose reply was lost is resolved by polling the same taskUUID, never by resending.
    return await _finish(client, task_uuid, built.model.air, opts, notices, acknowledged=submitted.acknowledged)


async def recover(client, task_uuid: str, opts: JobOptions, model: str = "") -> JobResult:
    """Fetch a task submitted earlier (by a run that was cancelled, timed out or crashed)."""
    return await _finish(client, task_uuid, model, opts, [])


async def _finish(client, task_uuid: str, model: str, opts: JobOptions, notices: list[str],
                  acknowledged: bool = True) -> JobResult:
    started = time.monotonic()

    def on_poll(event) -> None:
        opts.report(event.phase, f"{event.phase} {event.elapsed:.0f} s", task_uuid=task_uuid,
                    elapsed=event.elapsed, polls=event.polls)

    video = await client.wait_for_video(task_uuid, deadline=opts.deadline_s,
                                        cancel_check=opts.cancel_check, on_progress=on_poll,
                                        acknowledged=acknowledged)
    notices.extend(n for n in (getattr(video, "notices", None) or []) if n not in notices)
    dest = result_path(opts.output_dir, task_uuid)
    if not dest.exists():
        opts.report("downloading", "downloading result", task_uuid=task_uuid,
                    elapsed=time.monotonic() - started)
        dest.parent.mkdir(parents=True, exist_ok=True)
        await client.download(video.video_url, dest, task_uuid=task_uuid)
    return await finish_local(task_uuid, dest, model, video, notices, opts)


async def finish_local(task_uuid: str, dest: Path, model: str, video: Any, notices: list[str],
                       opts: JobOptions) -> JobResult:
    import asyncio

    from .media import decode_video, probe_video

    probe = await asyncio.to_thread(probe_video, dest)
    decoded = None
    if opts.decode_frames or opts.decode_audio:
        opts.report("decoding", "decoding frames", task_uuid=task_uuid)
        decoded = await asyncio.to_thread(decode_video, dest, want_frames=opts.decode_frames,
                                          want_audio=opts.decode_audio)
    cost = getattr(video, "cost", None)
    opts.report("done", "done" + (f", cost {cost}" if cost is not None else ""), task_uuid=task_uuid)
    return JobResult(task_uuid=task_uuid, video_path=dest, model=model, video=video, notices=notices,
                     decoded=decoded, probe=probe)


async def text_to_video(client, choices: GenerationChoices, opts: JobOptions) -> JobResult:
    built = build_text_to_video(choices, spec=opts.spec)
    return await run_task(client, built, opts)


async def image_to_video(client, choices: GenerationChoices, first_frame, last_frame, opts: JobOptions) -> JobResult:
    spec = opts.spec or load_spec()
    first_size = image_size(first_frame)
    if last_frame is not None:
        image_size(last_frame)
    # Validate everything before the first upload: nothing is sent for a request Runware would refuse.
    build_image_to_video(choices, PLACEHOLDER_REF, PLACEHOLDER_REF if last_frame is not None else None,
                         first_frame_size=first_size, spec=spec)
    notes: list[str] = []
    opts.report("uploading", "uploading first frame")
    first_ref, _ = await upload_image(client, first_frame, spec, "first_frame", notes)
    last_ref = None
    if last_frame is not None:
        opts.report("uploading", "uploading last frame")
        last_ref, _ = await upload_image(client, last_frame, spec, "last_frame", notes)
    built = build_image_to_video(choices, first_ref, last_ref, first_frame_size=first_size, spec=spec)
    return await run_task(client, built, opts, notes)


async def lipsync(client, opts: JobOptions, *, video_path: Optional[Path] = None, frames=None,
                  frames_fps: Optional[float] = None, audio=None, speech_text: Optional[str] = None,
                  voice: Optional[str] = None, model: Optional[str] = None) -> JobResult:
    spec = opts.spec or load_spec()
    if (video_path is None) == (frames is None):
        raise MediaError("video / frames: connect exactly one reference: a VIDEO or IMAGE frames"
                         + (" (both are connected)" if video_path is not None else " (neither is connected)"))
    build_lipsync(video=PLACEHOLDER_REF, audio=PLACEHOLDER_REF if audio is not None else None,
                  speech_text=speech_text, voice=voice, model=model, spec=spec)
    wav = encode_audio(audio, spec) if audio is not None else None  # refuse a long clip before any upload
    notes: list[str] = []
    opts.report("uploading", "uploading reference video")
    if video_path is not None:
        video_ref = await upload_video_file(client, Path(video_path), spec, notes)
    else:
        video_ref = await upload_frames(client, frames, frames_fps, spec, notes)
    audio_ref = None
    if wav is not None:
        opts.report("uploading", "uploading audio")
        audio_ref = (await client.upload_media(wav.data)).uuid
    built = build_lipsync(video=video_ref, audio=audio_ref, speech_text=speech_text, voice=voice,
                          model=model, spec=spec)
    return await run_task(client, built, opts, notes)
