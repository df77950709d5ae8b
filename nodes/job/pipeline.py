"""One PixVerse job end to end: validate → upload inputs → submit → wait → download → decode.

The ComfyUI nodes and the CLI both run jobs through here, so both behave the same. Nothing in
this module imports ComfyUI: progress and cancellation come in as plain callables.

Order matters for the bill: every choice is validated (by building the task with placeholder
references) and every input encoded before the first upload, and the video task is submitted
exactly once; after that, only polling and downloading are retried. With a job ledger
(`JobOptions.ledger`, see nodes/money/ledger.py) a request it already knows is served from it: its
finished MP4 reused, or its unfinished task resumed by polling; uploads and a new task happen only
otherwise, and the ledger row is on disk before the submit POST.

A workflow's job is `run(client, kind, values, opts)`: what is particular to the workflow (its uploads,
its builder call) is its slice's (nodes/workflows/); nothing here names one. The steps live in their own
modules, read top to bottom here: validate (the one draft request, nodes/workflows/draft.py; nodes/requests/layouts.py,
nodes/job/preflight.py, the spending limit in nodes/money/limits.py) → upload
(nodes/job/inputs.py) → submit (nodes/job/resubmit.py; a job's ledger row is a `ledger.Job`) → wait
(`_finish`, the client's polling) → download and decode (nodes/job/delivery.py).
Runware's schema for the model, where it can be read, judges the request last (nodes/job/schema_check.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from ..requests import layouts as L
from . import preflight, resubmit
from .. import errors as E
from ..workflows.draft import prepare  # the one draft request: every choice checked before any upload
from .claims import ClaimGroup, claim_when_allowed, off_loop  # ClaimGroup: public (a generator's count)
from ..client.http import Waiter
from ..client.models import NOT_FOUND_CODES
from ..config import Config
from ..money.balance import floor_guard, floor_of
from .delivery import JobResult, deliver, endpoint_of, reuse
from ..errors import MediaError
from .inputs import (UploadInput, check_video_source, encode_audio, encode_image_input, encode_video_source,
                     image_size, upload_inputs, with_refs)
from ..money.ledger import ABANDONED, ACTIVE, PREPARING, SUBMITTING, Job, Ledger, fingerprint, working_on
from ..money.limits import budget_guard, policy_of
from .schema_check import judge_by_schema, judged_spec
from ..requests.tasks import BuiltTask
from ..spec import CapabilitySpec, load_spec
from ..workflows import WORKFLOWS, BuildCall

DEFAULT_DEADLINE_S = 20 * 60  # Runware's SDK gives video tasks 20 minutes

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
    config: Config = field(default_factory=Config)  # every variable and setting, read once (nodes/config.py)
    prompt_id: Optional[str] = None  # the queued prompt (ComfyUI) or command whose spending the prompt limit counts
    ledger: Optional[Ledger] = None  # reuse a finished result, resume an unfinished task (None: every run submits)
    endpoint: Optional[str] = None  # what ledger rows are scoped by; default: the client's base URL
    fresh: bool = False  # submit a new task even when the ledger holds this request
    layout_memory: Optional[L.LayoutMemory] = None  # what layout worked per model; default: beside the ledger
    claim_group: Optional[ClaimGroup] = None  # one of n takes claimed together, all or none (a generator's count)

    def report(self, phase: str, message: str, **kw: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(phase, message, **kw))


# -- the job ---------------------------------------------------------------------------------

class _StaleUploads(Exception):
    """Runware refused cached upload references: upload again and resubmit (nothing was charged)."""


def plan_layout(client, build: Callable[[str], BuiltTask], model, opts: JobOptions, memory=None):
    """(LayoutChoice, BuiltTask) in this run's layout (layouts.plan); `memory`: else the job's, else its ledger's."""
    memory = memory or opts.layout_memory or L.LayoutMemory.beside(opts.ledger)
    return L.plan(model, build, opts.config.layout, memory, endpoint_of(client, opts))


async def run_in_layout(client, build: Callable[[str], BuiltTask], model, opts: JobOptions,
                        notes: Optional[list[str]] = None, uploads: Sequence[UploadInput] = ()) -> JobResult:
    """Build in the chosen layout and run; when Runware refuses the submit naming a layout field,
    rebuild in the model's other layout and run once more (nodes/requests/layouts.py). Remembers what worked."""
    spec = opts.spec or load_spec()
    endpoint = endpoint_of(client, opts)
    memory = opts.layout_memory or L.LayoutMemory.beside(opts.ledger)
    choice, built = plan_layout(client, build, model, opts, memory)
    notes = await judge_by_schema(built, spec, opts.ledger, notes, uploads)  # refuses before any upload
    try:
        result = await run_task(client, built, opts, notes, uploads)
    except E.SubmitRefused as refused:
        choice = L.after_refusal(spec, model, choice, refused.error)
        log.warning("PixVerse: %s", choice.reason)
        opts.report("submitting", choice.reason)
        try:
            result = await run_task(client, build(choice.name), opts, notes, uploads)
        except E.SubmitRefused as again:
            raise again.error from None
    if result.origin in ("new", "resumed"):
        memory.remember(endpoint, model.air, choice.name)
    result.layout, result.layout_reason = choice.name, choice.reason
    return result


async def run_task(client, built: BuiltTask, opts: JobOptions, notes: Optional[list[str]] = None,
                   uploads: Sequence[UploadInput] = ()) -> JobResult:
    """Submit once (or reuse/resume through the ledger), wait, download, decode what is wanted.

    `built.task` refers to each of `uploads` by its `ref`; they are uploaded only when a new task
    is actually submitted."""
    notices = list(built.notices) + list(notes or [])
    uploads = list(uploads)
    endpoint = endpoint_of(client, opts)
    guard = budget_guard(policy_of(opts.config, opts.prompt_id), opts.ledger, built, uploads, endpoint, opts.spec)
    takes = opts.claim_group.n if opts.claim_group is not None else 1  # a node's count: compared together
    guard = await floor_guard(client, floor_of(opts.config), guard, endpoint, ledger=opts.ledger, takes=takes,
                              report=lambda note: opts.report("submitting", note))  # the floor, if one is set
    if opts.ledger is None:
        if opts.claim_group is not None:
            opts.claim_group.arrive_without_claim()
        preflight.check_destination(opts.output_dir, built)
        refs, _ = await upload_inputs(client, uploads, opts, endpoint)
        task = with_refs(built.task, refs)
        opts.report("submitting", f"submitting {built.model.name} task", task_uuid=built.task_uuid)
        return await _send(client, task, Job(None, built.task_uuid, notices), built.model.air, opts,
                           time.monotonic() + opts.deadline_s)
    return await _run_with_ledger(client, built, opts, notices, uploads, guard)


async def _run_with_ledger(client, built: BuiltTask, opts: JobOptions, notices: list[str],
                           uploads: list[UploadInput], guard=None) -> JobResult:
    ledger = opts.ledger
    endpoint = endpoint_of(client, opts)
    request = {k: v for k, v in built.task.items() if k != "taskUUID"}
    fp = fingerprint(built.identity)  # defaults left out still count: an older row of this request is found
    deadline_at = time.monotonic() + opts.deadline_s
    fresh, retry_uploads, task_uuid = opts.fresh, True, built.task_uuid
    for _ in range(4):
        kw = dict(fingerprint=fp, endpoint=endpoint, task_uuid=task_uuid, model=built.model.air, request=request,
                  inputs={u.parameter: u.sha256 for u in uploads}, notices=notices, fresh=fresh, guard=guard)
        with working_on(task_uuid):  # from before the claim: our `preparing` row is never taken for a dead one
            claim = await _claim(ledger, kw, opts, deadline_at)
            fresh, task_uuid = False, str(uuid.uuid4())
            if claim.new:
                try:
                    return await _submit_claimed(client, built, claim.entry.task_uuid, uploads, opts, notices,
                                                 endpoint, retry_uploads, deadline_at)
                except _StaleUploads:
                    retry_uploads = False
                    continue
        result = await _follow(client, claim.entry, opts, notices, deadline_at)
        if result is not None:
            return result
        # that task is gone (lost, failed meanwhile): claim again for a new one
    raise E.PixVerseError("The job ledger kept changing under this run; run it again")


async def _claim(ledger, kw: dict, opts: JobOptions, deadline_at: float):
    """The claim, with the other takes of this job's group when it has one, off the event loop; waits while
    the spending limit says another run of unknown cost must be counted first (nodes/job/claims.py)."""
    if opts.claim_group is not None:
        return await opts.claim_group.claim(ledger, kw, opts, deadline_at)
    return await claim_when_allowed(ledger, lambda: ledger.claim(**kw), opts, deadline_at)


def _stop_if_cancelled(opts: JobOptions, task_uuid: str) -> None:
    if opts.cancel_check is not None and opts.cancel_check():
        raise E.RunwareInterrupted("Cancelled before anything was sent to Runware for this task; nothing was "
                                   "charged", task_uuid=task_uuid)


async def _submit_claimed(client, built: BuiltTask, task_uuid: str, uploads: list[UploadInput],
                          opts: JobOptions, notices: list[str], endpoint: str, retry_uploads: bool,
                          deadline_at: float) -> JobResult:
    ledger = opts.ledger
    job = Job(ledger, task_uuid, notices)
    try:
        preflight.check_destination(opts.output_dir, built)
        _stop_if_cancelled(opts, task_uuid)
        refs, cached = await upload_inputs(client, uploads, opts, endpoint)  # checks cancel before each
        _stop_if_cancelled(opts, task_uuid)
        task = {**with_refs(built.task, refs), "taskUUID": task_uuid}
        with preflight.ledger_usable(ledger):
            await off_loop(job.submitting, opts.cancel_check)  # on disk before the POST: a restart polls
        _stop_if_cancelled(opts, task_uuid)
    except BaseException as exc:  # cancel, interrupt, a failure: nothing was sent, the reservation goes
        job.abandoned(f"stopped before submitting: {type(exc).__name__}: {exc}")
        raise
    opts.report("submitting", f"submitting {built.model.name} task", task_uuid=task_uuid)
    try:
        return await _send(client, task, job, built.model.air, opts, deadline_at, endpoint=endpoint,
                           uploads=uploads)
    except E.SubmitRefused as refused:
        exc = refused.error
        # submit_video raises only when Runware did not take the task (refused, rate limited, never
        # reached, cancelled before sending); an unclear outcome comes back as acknowledged=False.
        if isinstance(exc, E.RunwareInterrupted) or (isinstance(exc, E.RunwareConnectionError)
                                                     and exc.status is None):
            job.abandoned(str(exc))
        else:
            job.refused(str(exc))
        if cached and retry_uploads and isinstance(exc, E.RunwareValidationError):
            log.warning("Runware refused cached upload references (%s); uploading again", exc)
            ledger.forget_uploads(endpoint, [(u.kind, u.sha256) for u in cached])
            raise _StaleUploads() from exc
        raise


async def _send(client, task: dict, job: Job, model: str, opts: JobOptions, deadline_at: float, *,
                endpoint: Optional[str] = None, uploads: Sequence[UploadInput] = ()) -> JobResult:
    """Submit, then wait and download; send again only when Runware provably never got it (nodes/job/resubmit.py).
    A refused submit raises errors.SubmitRefused."""
    sender = resubmit.Sender(client, job, opts, task, deadline_at, endpoint=endpoint, uploads=uploads)
    try:
        while True:
            sent = await sender.send()
            try:
                return await _finish(client, job, model, opts, acknowledged=sent.acknowledged, deadline_at=deadline_at,
                                     resend_on_lost=sent.may_resend or bool(sent.unavailable_s))
            except E.RunwareSubmissionLost as lost:
                await sender.before_resend(lost)
    finally:
        sender.close()  # its slot in the endpoint's submit window (nodes/client/window.py) is free again


async def _follow(client, entry, opts: JobOptions, notices: list[str], deadline_at: float) -> Optional[JobResult]:
    """Serve a request the ledger already knows. None when its task turned out to be gone."""
    ledger = opts.ledger
    task_uuid = entry.task_uuid
    waiter = None
    while True:
        entry = ledger.get(task_uuid)
        if entry is None or entry.status not in ACTIVE:
            return None
        if entry.reusable():
            result = await reuse(entry, opts)
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
        return await _finish(client, Job(ledger, task_uuid, merged), entry.model, opts, acknowledged=acknowledged,
                             origin="resumed", deadline_at=deadline_at)
    except (E.RunwareSubmissionLost, E.RunwareProviderError) as exc:
        if _not_found(exc):
            log.warning("PixVerse: Runware does not know taskUUID=%s any more; submitting anew", task_uuid)
            return None
        raise


def _not_found(exc: BaseException) -> bool:
    # The client turns every wording of "not found" (after its grace period) into one of these.
    return isinstance(exc, E.RunwareSubmissionLost) or getattr(exc, "code", None) in NOT_FOUND_CODES


async def recover_local(task_uuid: str, opts: JobOptions) -> Optional[JobResult]:
    """The ledger's finished video of this task, if it is still on disk; no network, no key needed."""
    entry = opts.ledger.get(task_uuid) if opts.ledger is not None else None
    if entry is None or not entry.reusable():
        return None
    return await reuse(entry, opts)


async def recover(client, task_uuid: str, opts: JobOptions, model: str = "", *,
                  settle_after: Optional[float] = None) -> JobResult:
    """Fetch a task submitted earlier (by a run that was cancelled, timed out or crashed); never send it.

    With a ledger: served from it when the video is already on disk; otherwise polled, and the result
    recorded there. A task whose submit went without a clear reply (row `submitting`: the run stopped
    while the POST was on its way) is polled until Runware has it, or for `settle_after` seconds (default:
    the client's read timeout, the longest such a POST could still arrive); then it is settled `lost`
    (nothing was charged) and RunwareSubmissionLost is raised."""
    notices: list[str] = []
    acknowledged = True
    ledger = opts.ledger
    if ledger is not None:
        entry = ledger.get(task_uuid) or ledger.adopt(task_uuid, endpoint=endpoint_of(client, opts), model=model)
        model = model or entry.model
        notices = list(entry.notices)
        if entry.reusable():
            result = await reuse(entry, opts)
            if result is not None:
                return result
        acknowledged = entry.status != SUBMITTING
    job = Job(ledger, task_uuid, notices)
    if acknowledged:
        return await _finish(client, job, model, opts, acknowledged=True, origin="recovered")
    timeout = getattr(client, "timeout", None)
    end = time.monotonic() + (settle_after if settle_after is not None else (getattr(timeout, "read", None) or 60.0))
    while True:
        try:
            return await _finish(client, job, model, opts, origin="recovered", acknowledged=False,
                                 resend_on_lost=True)
        except E.RunwareSubmissionLost as lost:
            if time.monotonic() >= end:
                job.lost(f"Runware never received it (checked after the run stopped): {lost}")
                raise
        await asyncio.sleep(1.0)


def _record_wait_error(job: Job, exc: BaseException) -> None:
    text = str(exc)
    if _not_found(exc):
        job.lost(text)
    elif isinstance(exc, (E.RunwareProviderError, E.RunwareContentPolicyError, E.RunwareValidationError)):
        job.failed(text)
    else:  # timeout, cancel, network: the task is still recoverable by its taskUUID
        job.note(text)


async def _finish(client, job: Job, model: str, opts: JobOptions, *,
                  acknowledged: bool = True, origin: str = "new",
                  deadline_at: Optional[float] = None, resend_on_lost: bool = False) -> JobResult:
    """Wait for the task, download, verify and decode its video. From here on the task is Runware's
    (and billed): every failure is a typed error naming the taskUUID and how to recover it
    (see nodes/job/aftercare.py). `resend_on_lost`: a `RunwareSubmissionLost` is left to the caller
    (which sends the task again) instead of marking the ledger row lost."""
    started = time.monotonic()
    deadline_at = started + opts.deadline_s if deadline_at is None else deadline_at
    task_uuid = job.task_uuid
    seen = [acknowledged]

    def on_poll(event) -> None:
        if not seen[0]:  # an unclear submit turned out to be received
            job.submitted()
            seen[0] = True
        opts.report(event.phase, f"{event.phase} {event.elapsed:.0f} s", task_uuid=task_uuid,
                    elapsed=event.elapsed, polls=event.polls)

    try:
        with working_on(task_uuid):  # the jobs tab shows it running while this waits (ledger.Entry.in_progress)
            video = await client.wait_for_video(task_uuid, deadline=max(0.0, deadline_at - time.monotonic()),
                                                cancel_check=opts.cancel_check, on_progress=on_poll,
                                                acknowledged=acknowledged)
    except E.RunwareError as exc:
        video = await _from_task_details(client, task_uuid, exc) if acknowledged and _not_found(exc) else None
        if video is not None:
            job.notices.append("getResponse no longer knew this task; its result was found with getTaskDetails")
            with working_on(task_uuid):
                return await deliver(client, job, model, video, opts, origin, started, deadline_at)
        if not (resend_on_lost and isinstance(exc, E.RunwareSubmissionLost)):
            _record_wait_error(job, exc)
        raise
    with working_on(task_uuid):
        return await deliver(client, job, model, video, opts, origin, started, deadline_at)


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


async def run(client, kind: str, values: Mapping[str, Any], opts: JobOptions) -> JobResult:
    """One video of workflow `kind`: see `_run`. When `opts` carry a `claim_group`, the run is one take of
    that group: a failure before its claim breaks the group (none is claimed)."""
    group = opts.claim_group
    if group is None:
        return await _run(client, kind, values, opts)
    token = group.join()
    try:
        result = await _run(client, kind, values, opts)
    except BaseException as exc:
        group.leave(token, exc)
        raise
    group.leave(token, None)
    return result


async def _run(client, kind: str, values: Mapping[str, Any], opts: JobOptions) -> JobResult:
    """One video of workflow `kind` (nodes/workflows/) from its inputs: the widget values and, for each of
    its media inputs, an IMAGE tensor, an AUDIO dict or a video file path (or IMAGE `frames` at
    `frames_fps` in place of a video); None where not given.

    Everything is checked before the first upload — the media by content, every choice by the one draft
    request (nodes/workflows/draft.py, in the layout this run uses) — and every input is encoded; nothing is
    sent for a request Runware would refuse. Then the workflow's builder makes the task with the uploads'
    references, and it runs (`run_in_layout`)."""
    workflow = WORKFLOWS[kind]
    spec = await judged_spec(opts.spec or load_spec(), opts.ledger, lambda s: workflow.model(values, s))
    videos = [m for m in workflow.media if m.kind == "video"]
    images = [m for m in workflow.media if m.kind == "image" and (m.required or values.get(m.name) is not None)]
    for m in videos:
        if m.frames and (values.get(m.name) is None) == (values.get("frames") is None):
            raise MediaError(f"{m.name} / frames: connect exactly one source: a VIDEO or IMAGE frames"
                             + (" (both are connected)" if values.get(m.name) is not None else " (neither is connected)"))
    sizes = {}
    for m in images:
        sizes[m.name] = image_size(values[m.name], m.name)
        preflight.check_image(values[m.name], m.name)
    drafting = prepare(kind, values, spec=spec, sizes=sizes, known=True)
    plan_layout(client, drafting.build, drafting.model, opts)  # every choice checked before anything is encoded
    for m in videos:
        check_video_source(values.get(m.name), values.get("frames"), values.get("frames_fps", 24.0), m.purpose)
    audios = [m for m in workflow.media if m.kind == "audio" and values.get(m.name) is not None]
    for m in audios:
        preflight.check_audio(values[m.name], m.name)
    notes: list[str] = []
    encoded: dict[str, UploadInput] = {}
    for m in audios:  # refuse a long clip before a video is encoded
        wav = encode_audio(values[m.name], spec)
        encoded[m.name] = UploadInput(m.name, "media", wav.data, "audio/wav", seconds=wav.duration)
    for m in workflow.media:
        if m.kind == "video":
            encoded[m.name] = encode_video_source(values.get(m.name), values.get("frames"),
                                                  values.get("frames_fps", 24.0), spec, notes)
        elif m.kind == "image" and values.get(m.name) is not None:
            encoded[m.name] = encode_image_input(values[m.name], spec, m.name, notes)
    uploads = [encoded[m.name] for m in workflow.media if m.name in encoded]
    call = BuildCall(values, {m.name: encoded[m.name].ref if m.name in encoded else None for m in workflow.media},
                     sizes, spec)
    return await run_in_layout(client, lambda layout: workflow.build(call, layout), drafting.model, opts, notes,
                               uploads)
