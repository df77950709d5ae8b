"""One PixVerse job end to end: validate → upload inputs → submit → wait → download → decode.

The ComfyUI nodes and the CLI both run jobs through here, so both behave the same. Nothing in
this module imports ComfyUI: progress and cancellation come in as plain callables.

Order matters for the bill: every choice is validated (by building the task with placeholder
references) and every input encoded before the first upload, and the video task is submitted
exactly once; after that, only polling and downloading are retried. With a job ledger
(`JobOptions.ledger`, see nodes/ledger.py) a request it already knows is served from it: its
finished MP4 reused, or its unfinished task resumed by polling; uploads and a new task happen only
otherwise, and the ledger row is on disk before the submit POST.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from . import aftercare, preflight, resubmit
from . import errors as E
from .errors import MediaError
from .tasks import (BuiltTask, GenerationChoices, build_image_to_video, build_lipsync, build_modify,
                    build_text_to_video, resolve_model)
from .spec import CapabilitySpec, load_spec

DEFAULT_DEADLINE_S = 20 * 60  # Runware's SDK gives video tasks 20 minutes
PLACEHOLDER_REF = "00000000-0000-4000-8000-000000000000"  # stands in for an upload while validating

log = logging.getLogger("pixverse")


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
    # The job ledger (nodes.ledger.Ledger): reuse a finished result, resume an unfinished task,
    # submit only otherwise. None: no ledger, every run submits.
    ledger: Any = None
    endpoint: Optional[str] = None  # what ledger rows are scoped by; default: the client's base URL
    fresh: bool = False  # submit a new task even when the ledger holds this request
    resume_unfinished: bool = True  # False: the endpoint cannot know earlier tasks (per-run emulator)
    layout: Optional[str] = None  # force a request layout (else RUNWARE_PIXVERSE_LAYOUT, memory, the model's)
    layout_memory: Any = None  # nodes.layouts.LayoutMemory; default: beside the ledger
    budget: Any = None  # nodes.costs.BudgetPolicy: the spending limits checked before a new task is claimed

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
    origin: str = "new"  # new | resumed (an earlier run's task) | reused (ledger file) | recovered
    layout: Optional[str] = None  # the request layout the task was built in, and why
    layout_reason: Optional[str] = None

    @property
    def info(self) -> dict[str, Any]:
        v = self.video
        info = {
            "taskUUID": self.task_uuid,
            "videoUUID": getattr(v, "video_uuid", None),
            "videoURL": _shown_url(None, v) if getattr(v, "video_url", None) else None,
            "seed": getattr(v, "seed", None),
            "cost": getattr(v, "cost", None),
            "model": self.model,
            "file": str(self.video_path),
            "notices": list(self.notices),
            "source": self.origin,
        }
        if self.layout:
            info.update(layout=self.layout, layout_reason=self.layout_reason)
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


# -- inputs: encoded before anything is sent, uploaded only when a new task is submitted -------

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

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def ref(self) -> str:
        return f"sha256:{self.sha256}"


def encode_image_input(image, spec: CapabilitySpec, parameter: str, notes: list[str]) -> UploadInput:
    """IMAGE tensor → PNG/JPEG bytes fitted to the spec's limits."""
    from .media import encode_image_for_upload

    lim = spec.input_image
    encoded = encode_image_for_upload(image, min_side=lim.min_side, max_side=lim.max_side,
                                      max_bytes=lim.max_bytes, parameter=parameter)
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
    from .media import encode_wav

    return encode_wav(audio, max_seconds=spec.lipsync_limits.audio_max_seconds, parameter="audio")


def encode_video_file_input(path: Path, spec: CapabilitySpec, notes: list[str]) -> UploadInput:
    """A reference video for lipsync: ≤ the spec's seconds; re-encoded when over its bytes."""
    from .media import probe_video, reencode_to_fit

    lim = spec.lipsync_limits
    info = probe_video(path)
    if info.duration > lim.video_max_seconds + 0.05:
        raise MediaError(f"video: {info.duration:.1f} s is too long; PixVerse LipSync takes at most "
                         f"{lim.video_max_seconds:g} s")
    if info.size_bytes > lim.video_max_bytes:
        with tempfile.TemporaryDirectory(prefix="pixverse-") as tmp:  # removed once read
            fitted = Path(tmp) / "reference.mp4"
            info = reencode_to_fit(path, lim.video_max_bytes, fitted)
            notes.append(f"video: re-encoded to {info.size_bytes / 1e6:.1f} MB to fit the "
                         f"{lim.video_max_bytes / 2**20:g} MB limit")
            return UploadInput("video", "media", fitted.read_bytes(), "video/mp4")
    return UploadInput("video", "media", Path(path).read_bytes(), "video/mp4")


def encode_frames_input(frames, fps: float, spec: CapabilitySpec, notes: list[str], audio=None) -> UploadInput:
    """IMAGE frames [N,H,W,3] → an MP4 for lipsync."""
    from .media import encode_frames_mp4

    shape = tuple(getattr(frames, "shape", ()))
    if len(shape) != 4 or shape[0] == 0:
        raise MediaError(f"frames: expected a batch of frames [N, height, width, 3], got shape {shape}")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not fps > 0 or fps == float("inf"):
        raise MediaError(f"frames_fps: {fps!r} must be a number above 0")
    seconds = shape[0] / fps
    if seconds > spec.lipsync_limits.video_max_seconds + 1e-6:
        raise MediaError(f"frames: {shape[0]} frames at {fps:g} fps is {seconds:.1f} s; PixVerse LipSync "
                         f"takes at most {spec.lipsync_limits.video_max_seconds:g} s")
    with tempfile.TemporaryDirectory(prefix="pixverse-") as tmp:  # no MP4 left behind
        path = Path(tmp) / "frames.mp4"
        encode_frames_mp4(frames, fps, path, audio=audio)
        return encode_video_file_input(path, spec, notes)


def _endpoint(client, opts: JobOptions) -> str:
    return opts.endpoint or str(getattr(client, "base_url", "") or "")


async def upload_inputs(client, uploads: Sequence[UploadInput], opts: JobOptions,
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
        opts.report("uploading", f"uploading {up.parameter}")
        if up.kind == "image":
            uploaded = await client.upload_image(up.data, up.mime)
        else:
            uploaded = await client.upload_media(up.data)
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


# -- the job ---------------------------------------------------------------------------------

class _StaleUploads(Exception):
    """Runware refused cached upload references: upload again and resubmit (nothing was charged)."""


def plan_layout(client, build: Callable[[str], BuiltTask], model, opts: JobOptions):
    """(LayoutChoice, BuiltTask): the chosen layout, or the next one when the chosen one cannot express
    the request (an image-to-video with a set aspect ratio needs width/height). Raises the chosen
    layout's PixVerseInputError when none can; an explicit override is never replaced."""
    from . import layouts as L

    memory = opts.layout_memory
    if memory is None:
        memory = opts.layout_memory = L.LayoutMemory.beside(opts.ledger)
    override = opts.layout or L.override_from_env()
    choice = L.choose(model, override, memory, _endpoint(client, opts))
    try:
        return choice, build(choice.name)
    except E.PixVerseInputError as first:
        other = None if override else L.other_layout(model, choice.name)
        if other is None:
            raise
        try:
            built = build(other)
        except E.PixVerseInputError:
            raise first from None
        return L.LayoutChoice(other, f"the {choice.name} layout cannot send this request ({first.reason})"), built


async def run_in_layout(client, build: Callable[[str], BuiltTask], model, opts: JobOptions,
                        notes: Optional[list[str]] = None, uploads: Sequence[UploadInput] = ()) -> JobResult:
    """Build in the chosen layout and run; when Runware refuses the submit naming a layout field,
    rebuild in the model's other layout and run once more (nodes/layouts.py). Remembers what worked."""
    from . import layouts as L

    spec = opts.spec or load_spec()
    endpoint = _endpoint(client, opts)
    choice, built = plan_layout(client, build, model, opts)
    try:
        result = await run_task(client, built, opts, notes, uploads)
    except E.RunwareValidationError as exc:
        field_name = L.refusal_field(spec, exc) if getattr(exc, "refused_at_submit", False) else None
        other = L.other_layout(model, choice.name) if field_name and not choice.forced else None
        if other is None:
            raise
        why = f"Runware refused the {choice.name} layout ({exc.code or 'invalid'} on {field_name}); rebuilt in " \
              f"the {other} layout and sent once more (the refused submit created no task)"
        log.warning("PixVerse: %s", why)
        opts.report("submitting", why)
        choice = L.LayoutChoice(other, why)
        result = await run_task(client, build(choice.name), opts, notes, uploads)
    if result.origin in ("new", "resumed"):
        opts.layout_memory.remember(endpoint, model.air, choice.name)
    result.layout, result.layout_reason = choice.name, choice.reason
    return result


async def run_task(client, built: BuiltTask, opts: JobOptions, notes: Optional[list[str]] = None,
                   uploads: Sequence[UploadInput] = ()) -> JobResult:
    """Submit once (or reuse/resume through the ledger), wait, download, decode what is wanted.

    `built.task` refers to each of `uploads` by its `ref`; they are uploaded only when a new task
    is actually submitted."""
    notices = list(built.notices) + list(notes or [])
    uploads = list(uploads)
    from .costs import budget_guard  # the spending limit: checked (and reserved) when the task is claimed

    guard = budget_guard(opts, built, uploads, _endpoint(client, opts))
    from .balance import floor_guard  # hook(account): the balance floor, before anything is uploaded
    guard = await floor_guard(client, opts, guard, _endpoint(client, opts))  # hook(account)
    if opts.ledger is None:
        preflight.check_destination(opts.output_dir, built)
        refs, _ = await upload_inputs(client, uploads, opts, _endpoint(client, opts))
        task = with_refs(built.task, refs)
        opts.report("submitting", f"submitting {built.model.name} task", task_uuid=built.task_uuid)
        return await resubmit.send_and_finish(client, task, built.task_uuid, built.model.air, opts, notices,
                                              time.monotonic() + opts.deadline_s, _finish)
    return await _run_with_ledger(client, built, opts, notices, uploads, guard)


async def _run_with_ledger(client, built: BuiltTask, opts: JobOptions, notices: list[str],
                           uploads: list[UploadInput], guard=None) -> JobResult:
    from .ledger import fingerprint, working_on

    ledger = opts.ledger
    endpoint = _endpoint(client, opts)
    request = {k: v for k, v in built.task.items() if k != "taskUUID"}
    fp = fingerprint(request)
    deadline_at = time.monotonic() + opts.deadline_s
    fresh, retry_uploads, task_uuid = opts.fresh, True, built.task_uuid
    for _ in range(4):
        with preflight.ledger_usable(ledger):
            claim = ledger.claim(fingerprint=fp, endpoint=endpoint, task_uuid=task_uuid, model=built.model.air,
                                 request=request, inputs={u.parameter: u.sha256 for u in uploads},
                                 notices=notices, fresh=fresh, resume=opts.resume_unfinished, guard=guard)
        fresh, task_uuid = False, str(uuid.uuid4())
        if not claim.new:
            result = await _follow(client, claim.entry, opts, notices, deadline_at)
            if result is not None:
                return result
            continue  # that task is gone (lost, failed meanwhile): claim again for a new one
        with working_on(claim.entry.task_uuid):
            try:
                return await _submit_claimed(client, built, claim.entry.task_uuid, uploads, opts, notices,
                                             endpoint, retry_uploads, deadline_at)
            except _StaleUploads:
                retry_uploads = False
    raise E.PixVerseError("The job ledger kept changing under this run; run it again")


async def _submit_claimed(client, built: BuiltTask, task_uuid: str, uploads: list[UploadInput],
                          opts: JobOptions, notices: list[str], endpoint: str, retry_uploads: bool,
                          deadline_at: float) -> JobResult:
    from .ledger import ABANDONED, REFUSED, SUBMITTING

    ledger = opts.ledger
    try:
        preflight.check_destination(opts.output_dir, built)
        refs, cached = await upload_inputs(client, uploads, opts, endpoint)
        task = {**with_refs(built.task, refs), "taskUUID": task_uuid}
        with preflight.ledger_usable(ledger):
            ledger.advance(task_uuid, SUBMITTING)  # on disk before the POST: a restart polls, never resends
    except BaseException as exc:
        aftercare.ledger_write(ledger, "settle", task_uuid, ABANDONED,
                               f"stopped before submitting: {type(exc).__name__}: {exc}", task_uuid=task_uuid)
        raise
    opts.report("submitting", f"submitting {built.model.name} task", task_uuid=task_uuid)
    try:
        return await resubmit.send_and_finish(client, task, task_uuid, built.model.air, opts, notices,
                                              deadline_at, _finish, ledger=ledger, endpoint=endpoint,
                                              uploads=uploads)
    except resubmit.Refused as refused:
        exc = refused.error
        # submit_video raises only when Runware did not take the task (refused, rate limited, never
        # reached, cancelled before sending); an unclear outcome comes back as acknowledged=False.
        if isinstance(exc, E.RunwareInterrupted) or (isinstance(exc, E.RunwareConnectionError)
                                                     and exc.status is None):
            ledger.settle(task_uuid, ABANDONED, str(exc))
        else:
            ledger.settle(task_uuid, REFUSED, str(exc))
        if cached and retry_uploads and isinstance(exc, E.RunwareValidationError):
            log.warning("Runware refused cached upload references (%s); uploading again", exc)
            ledger.forget_uploads(endpoint, [(u.kind, u.sha256) for u in cached])
            raise _StaleUploads() from exc
        raise exc from None


async def _follow(client, entry, opts: JobOptions, notices: list[str], deadline_at: float) -> Optional[JobResult]:
    """Serve a request the ledger already knows. None when its task turned out to be gone."""
    from .client.http import Waiter
    from .ledger import ABANDONED, ACTIVE, PREPARING, SUBMITTING

    ledger = opts.ledger
    task_uuid = entry.task_uuid
    waiter = None
    while True:
        entry = ledger.get(task_uuid)
        if entry is None or entry.status not in ACTIVE:
            return None
        if entry.reusable():
            result = await _reuse(entry, opts)
            if result is not None:
                return result
        if entry.status in (PREPARING, SUBMITTING) and entry.owner_alive():
            # Another run (prompt, process) claimed this request and is submitting it: wait for it.
            if waiter is None:
                opts.report("queued", "the same request is being submitted by another run; waiting for it",
                            task_uuid=task_uuid)
                waiter = Waiter(task_uuid, max(0.0, deadline_at - time.monotonic()), opts.cancel_check, 0.1)
            await waiter.sleep(0.2)
            continue
        if entry.status == PREPARING:  # its run stopped before sending anything
            ledger.settle(task_uuid, ABANDONED, "the run that claimed it stopped before submitting")
            return None
        break
    acknowledged = entry.status != SUBMITTING
    log.info("PixVerse: resuming taskUUID=%s from the job ledger (status %s)", task_uuid, entry.status)
    opts.report("queued", f"resuming task {task_uuid} from the ledger (not submitted again)", task_uuid=task_uuid)
    merged = list(notices) + [n for n in entry.notices if n not in notices]
    try:
        return await _finish(client, task_uuid, entry.model, opts, merged, acknowledged=acknowledged,
                             origin="resumed", deadline_at=deadline_at)
    except (E.RunwareSubmissionLost, E.RunwareProviderError) as exc:
        if _not_found(exc):
            log.warning("PixVerse: Runware does not know taskUUID=%s any more; submitting anew", task_uuid)
            return None
        raise


async def _reuse(entry, opts: JobOptions, origin: str = "reused") -> Optional[JobResult]:
    """A finished ledger entry whose file is on disk → the result, without any network call."""
    from .client.models import VideoResult
    from .media import probe_video

    try:
        probe = await asyncio.to_thread(probe_video, entry.local_file)
    except MediaError:
        log.warning("PixVerse: %s no longer plays; fetching task %s again", entry.local_file, entry.task_uuid)
        return None
    opts.report("done", f"reused finished task {entry.task_uuid} from the ledger", task_uuid=entry.task_uuid)
    video = VideoResult(task_uuid=entry.task_uuid, video_uuid=entry.video_uuid, video_url=entry.result_url or "",
                        seed=entry.seed, cost=entry.cost, raw={}, notices=list(entry.notices))
    return await finish_local(entry.task_uuid, Path(entry.local_file), entry.model, video,
                              list(entry.notices), opts, probe=probe, origin=origin)


def _not_found(exc: BaseException) -> bool:
    from .client.models import NOT_FOUND_CODES

    # The client turns every wording of "not found" (after its grace period) into one of these.
    return isinstance(exc, E.RunwareSubmissionLost) or getattr(exc, "code", None) in NOT_FOUND_CODES


async def recover_local(task_uuid: str, opts: JobOptions) -> Optional[JobResult]:
    """The ledger's finished video of this task, if it is still on disk; no network, no key needed."""
    entry = opts.ledger.get(task_uuid) if opts.ledger is not None else None
    if entry is None or not entry.reusable():
        return None
    return await _reuse(entry, opts)


async def recover(client, task_uuid: str, opts: JobOptions, model: str = "") -> JobResult:
    """Fetch a task submitted earlier (by a run that was cancelled, timed out or crashed).

    With a ledger: served from it when the video is already on disk; otherwise polled, and the
    result recorded there."""
    notices: list[str] = []
    acknowledged = True
    ledger = opts.ledger
    if ledger is not None:
        from .ledger import SUBMITTING

        entry = ledger.get(task_uuid) or ledger.adopt(task_uuid, endpoint=_endpoint(client, opts), model=model)
        model = model or entry.model
        notices = list(entry.notices)
        if entry.reusable():
            result = await _reuse(entry, opts)
            if result is not None:
                return result
        acknowledged = entry.status != SUBMITTING
    return await _finish(client, task_uuid, model, opts, notices, acknowledged=acknowledged, origin="recovered")


def _record_wait_error(ledger, task_uuid: str, exc: BaseException) -> None:
    from .ledger import FAILED, LOST

    text = str(exc)
    if _not_found(exc):
        ledger.settle(task_uuid, LOST, text)
    elif isinstance(exc, (E.RunwareProviderError, E.RunwareContentPolicyError, E.RunwareValidationError)):
        ledger.settle(task_uuid, FAILED, text)
    else:  # timeout, cancel, network: the task is still recoverable by its taskUUID
        ledger.note_error(task_uuid, text)


async def _finish(client, task_uuid: str, model: str, opts: JobOptions, notices: list[str],
                  acknowledged: bool = True, origin: str = "new",
                  deadline_at: Optional[float] = None, resend_on_lost: bool = False) -> JobResult:
    """Wait for the task, download, verify and decode its video. From here on the task is Runware's
    (and billed): every failure is a typed error naming the taskUUID and how to recover it
    (see nodes/aftercare.py). `resend_on_lost`: a `RunwareSubmissionLost` is left to the caller
    (which sends the task again) instead of marking the ledger row lost."""
    started = time.monotonic()
    deadline_at = started + opts.deadline_s if deadline_at is None else deadline_at
    ledger = opts.ledger
    seen = [acknowledged]

    def on_poll(event) -> None:
        if not seen[0] and ledger is not None:  # an unclear submit turned out to be received
            from .ledger import SUBMITTED

            aftercare.ledger_write(ledger, "advance", task_uuid, SUBMITTED, submitted_at=time.time(),
                                   task_uuid=task_uuid, tell=notices)
            seen[0] = True
        opts.report(event.phase, f"{event.phase} {event.elapsed:.0f} s", task_uuid=task_uuid,
                    elapsed=event.elapsed, polls=event.polls)

    try:
        video = await client.wait_for_video(task_uuid, deadline=max(0.0, deadline_at - time.monotonic()),
                                            cancel_check=opts.cancel_check, on_progress=on_poll,
                                            acknowledged=acknowledged)
    except E.RunwareError as exc:
        video = await _from_task_details(client, task_uuid, exc) if acknowledged and _not_found(exc) else None
        if video is not None:
            notices.append("getResponse no longer knew this task; its result was found with getTaskDetails")
            return await _delivered(client, task_uuid, model, video, opts, notices, origin, started, deadline_at)
        if ledger is not None and not (resend_on_lost and isinstance(exc, E.RunwareSubmissionLost)):
            try:
                _record_wait_error(ledger, task_uuid, exc)
            except (sqlite3.Error, OSError):
                log.warning("PixVerse: the job ledger could not record %s for taskUUID=%s", type(exc).__name__,
                            task_uuid, exc_info=True)
        raise
    return await _delivered(client, task_uuid, model, video, opts, notices, origin, started, deadline_at)


async def _from_task_details(client, task_uuid: str, why: BaseException):
    """The last resort when getResponse does not know an accepted task: Runware's getTaskDetails."""
    details = getattr(client, "get_task_details", None)
    if details is None:
        return None
    try:
        found = client.video_from_details(await details(task_uuid), task_uuid)
    except E.RunwareError as exc:
        log.info("PixVerse: getTaskDetails for taskUUID=%s did not help (%s)", task_uuid, exc)
        return None
    if found is not None:
        log.warning("PixVerse: getResponse does not know taskUUID=%s (%s); getTaskDetails has its result",
                    task_uuid, getattr(why, "code", None) or type(why).__name__)
    return found


async def _delivered(client, task_uuid: str, model: str, video: Any, opts: JobOptions, notices: list[str],
                     origin: str, started: float, deadline_at: float) -> JobResult:
    dest = result_path(Path(os.path.abspath(opts.output_dir)), task_uuid)
    try:
        return await _deliver(client, task_uuid, model, video, dest, opts, notices, origin, started, deadline_at)
    except BaseException as exc:
        raise aftercare.failure(exc, task_uuid, ledger=opts.ledger, dest=dest,
                                scrub=getattr(client, "_scrub", lambda t: t)) from None


async def _deliver(client, task_uuid: str, model: str, video: Any, dest: Path, opts: JobOptions,
                   notices: list[str], origin: str, started: float, deadline_at: float) -> JobResult:
    ledger = opts.ledger
    notices.extend(n for n in (getattr(video, "notices", None) or []) if n not in notices)
    aftercare.ledger_write(ledger, "record_success", task_uuid, video_uuid=video.video_uuid,
                           result_url=_shown_url(client, video), seed=video.seed, cost=video.cost,
                           notices=list(notices), task_uuid=task_uuid, tell=notices)
    from .balance import after_task  # hook(account): a new balance reading; an endpoint that bills nothing
    after_task(ledger, _endpoint(client, opts), getattr(video, "raw", None))  # hook(account)
    probe = await _fetch_verified(client, video.video_url, dest, task_uuid, opts, started, deadline_at)
    aftercare.ledger_write(ledger, "record_file", task_uuid, dest, dest.stat().st_size, task_uuid=task_uuid,
                           tell=notices)
    return await finish_local(task_uuid, dest, model, video, notices, opts, probe=probe, origin=origin)


def _shown_url(client, video: Any) -> str:
    """The result URL as the ledger and the node's info may keep it: no query, userinfo or key."""
    shown = getattr(video, "shown_url", "") or ""
    if shown:
        return shown
    public = getattr(client, "public_url", None)
    if public is not None:
        return public(video.video_url)
    from .client.urls import public_url

    return public_url(video.video_url)


async def _fetch_verified(client, url: str, dest: Path, task_uuid: str, opts: JobOptions, started: float,
                          deadline_at: Optional[float] = None):
    """Download (unless a good copy is there) and check that the MP4 plays; one more download if not."""
    from .media import probe_video

    for attempt in (1, 2):
        if not dest.exists():
            opts.report("downloading", "downloading result", task_uuid=task_uuid,
                        elapsed=time.monotonic() - started)
            left = None if deadline_at is None else max(0.0, deadline_at - time.monotonic())
            await client.download(url, dest, task_uuid=task_uuid, deadline=left, cancel_check=opts.cancel_check)
        try:
            return await asyncio.to_thread(probe_video, dest)
        except MediaError as exc:
            dest.unlink(missing_ok=True)
            log.warning("PixVerse: the result of taskUUID=%s does not play (%s)", task_uuid, exc)
            if attempt == 2:
                raise E.RunwareDownloadError(
                    f"The result of task {task_uuid} downloaded but is not a playable video, twice "
                    f"({exc}); the file was removed. " + E.recover_hint(task_uuid, finished=True),
                    task_uuid=task_uuid) from None


async def finish_local(task_uuid: str, dest: Path, model: str, video: Any, notices: list[str],
                       opts: JobOptions, probe: Any = None, origin: str = "new") -> JobResult:
    from .media import decode_video, probe_video

    if probe is None:
        probe = await asyncio.to_thread(probe_video, dest)
    decoded = None
    if opts.decode_frames or opts.decode_audio:
        opts.report("decoding", "decoding frames", task_uuid=task_uuid)
        decoded = await asyncio.to_thread(decode_video, dest, want_frames=opts.decode_frames,
                                          want_audio=opts.decode_audio)
    cost = getattr(video, "cost", None)
    how = {"reused": " (reused from the job ledger, no new charge)",
           "resumed": " (resumed an earlier run's task)"}.get(origin, "")
    opts.report("done", "done" + how + (f", cost {cost}" if cost is not None else ""), task_uuid=task_uuid)
    return JobResult(task_uuid=task_uuid, video_path=dest, model=model, video=video, notices=notices,
                     decoded=decoded, probe=probe, origin=origin)


async def text_to_video(client, choices: GenerationChoices, opts: JobOptions) -> JobResult:
    spec = opts.spec or load_spec()
    model = resolve_model(spec, choices.model, "text-to-video")
    return await run_in_layout(client, lambda layout: build_text_to_video(choices, spec=spec, layout=layout),
                               model, opts)


async def image_to_video(client, choices: GenerationChoices, first_frame, last_frame, opts: JobOptions) -> JobResult:
    spec = opts.spec or load_spec()
    first_size = image_size(first_frame, "first_frame")
    preflight.check_image(first_frame, "first_frame")
    if last_frame is not None:
        image_size(last_frame, "last_frame")
        preflight.check_image(last_frame, "last_frame")
    # Validate everything before the first upload: nothing is sent for a request Runware would refuse.
    model = resolve_model(spec, choices.model, "image-to-video")

    def build_with(first_ref: str, last_ref: Optional[str]) -> Callable[[str], BuiltTask]:
        return lambda layout: build_image_to_video(choices, first_ref, last_ref, first_frame_size=first_size,
                                                   spec=spec, layout=layout)
    plan_layout(client, build_with(PLACEHOLDER_REF, PLACEHOLDER_REF if last_frame is not None else None), model, opts)
    notes: list[str] = []
    uploads = [encode_image_input(first_frame, spec, "first_frame", notes)]
    if last_frame is not None:
        uploads.append(encode_image_input(last_frame, spec, "last_frame", notes))

    build = build_with(uploads[0].ref, uploads[1].ref if last_frame is not None else None)
    return await run_in_layout(client, build, model, opts, notes, uploads)


def check_video_source(video_path: Optional[Path], frames, frames_fps) -> None:
    """A VIDEO file or IMAGE frames, judged by content before anything is encoded or sent."""
    if video_path is not None:
        preflight.check_video_file(Path(video_path), "video")
    else:
        preflight.check_frames(frames, frames_fps, "frames")


def encode_video_source(video_path: Optional[Path], frames, frames_fps, spec: CapabilitySpec,
                        notes: list[str]) -> UploadInput:
    if video_path is not None:
        return encode_video_file_input(Path(video_path), spec, notes)
    return encode_frames_input(frames, frames_fps, spec, notes)


async def lipsync(client, opts: JobOptions, *, video_path: Optional[Path] = None, frames=None,
                  frames_fps: Optional[float] = None, audio=None, speech_text: Optional[str] = None,
                  voice: Optional[str] = None, model: Optional[str] = None) -> JobResult:
    spec = opts.spec or load_spec()
    if (video_path is None) == (frames is None):
        raise MediaError("video / frames: connect exactly one reference: a VIDEO or IMAGE frames"
                         + (" (both are connected)" if video_path is not None else " (neither is connected)"))
    checked = build_lipsync(video=PLACEHOLDER_REF, audio=PLACEHOLDER_REF if audio is not None else None,
                            speech_text=speech_text, voice=voice, model=model, spec=spec)
    # Judged by content before anything is encoded or sent: a picture as the video, NaN samples, …
    check_video_source(video_path, frames, frames_fps)
    if audio is not None:
        preflight.check_audio(audio, "audio")
    wav = encode_audio(audio, spec) if audio is not None else None  # refuse a long clip before any upload
    notes: list[str] = []
    video_input = encode_video_source(video_path, frames, frames_fps, spec, notes)
    uploads = [video_input]
    if wav is not None:
        uploads.append(UploadInput("audio", "media", wav.data, "audio/wav"))

    def build(layout: str) -> BuiltTask:
        return build_lipsync(video=video_input.ref, audio=uploads[1].ref if wav is not None else None,
                             speech_text=speech_text, voice=voice, model=model, spec=spec, layout=layout)
    return await run_in_layout(client, build, checked.model, opts, notes, uploads)


async def modify(client, choices: GenerationChoices, opts: JobOptions, *, video_path: Optional[Path] = None,
                 frames=None, frames_fps: Optional[float] = None, reference_image=None) -> JobResult:
    """A source video (a file, or frames at frames_fps) changed as the prompt says."""
    spec = opts.spec or load_spec()
    if (video_path is None) == (frames is None):
        raise MediaError("video / frames: connect exactly one source: a VIDEO or IMAGE frames"
                         + (" (both are connected)" if video_path is not None else " (neither is connected)"))
    model = resolve_model(spec, choices.model, "modify")
    reference_ref = PLACEHOLDER_REF if reference_image is not None else None
    plan_layout(client, lambda layout: build_modify(choices, PLACEHOLDER_REF, reference_ref, spec=spec,
                                                    layout=layout), model, opts)
    check_video_source(video_path, frames, frames_fps)
    if reference_image is not None:
        image_size(reference_image, "reference_image")
        preflight.check_image(reference_image, "reference_image")
    notes: list[str] = []
    uploads = [encode_video_source(video_path, frames, frames_fps, spec, notes)]
    if reference_image is not None:
        uploads.append(encode_image_input(reference_image, spec, "reference_image", notes))

    def build(layout: str) -> BuiltTask:
        return build_modify(choices, uploads[0].ref, uploads[1].ref if reference_image is not None else None,
                            spec=spec, layout=layout)
    return await run_in_layout(client, build, model, opts, notes, uploads)
