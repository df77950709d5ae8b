"""A finished task's video: downloaded, checked that it plays, recorded, decoded into a JobResult.

`deliver` runs after Runware reported success (the task is billed): the ledger learns the result
first (`Job.succeeded`), then the MP4 is downloaded (once more if it does not play), recorded
(`Job.finished`) and decoded; any failure on the way becomes a typed error naming the taskUUID and
Recover (nodes/job/aftercare.py). `reuse` serves a finished ledger entry whose file is on disk, without
any network call.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import aftercare, provenance
from ..money.balance import after_task
from .. import errors as E
from ..client.models import VideoResult
from ..client.urls import public_url
from ..errors import MediaError
from ..money.ledger import Job
from ..media import decode_video, probe_video

log = logging.getLogger("pixverse")


def result_path(output_dir: Path, task_uuid: str) -> Path:
    """Where a task's video is kept: named by taskUUID, so a recovery finds it again."""
    return Path(output_dir) / f"pixverse_{task_uuid}.mp4"


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
            "videoURL": shown_url(None, v) if getattr(v, "video_url", None) else None,
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


async def reuse(entry, opts, origin: str = "reused") -> Optional[JobResult]:
    """A finished ledger entry whose file is on disk → the result, without any network call."""
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


def endpoint_of(client, opts) -> str:
    """What ledger rows are scoped by: the job's endpoint, else the client's base URL."""
    return opts.endpoint or str(getattr(client, "base_url", "") or "")


async def deliver(client, job: Job, model: str, video: Any, opts,
                     origin: str, started: float, deadline_at: float) -> JobResult:
    dest = result_path(Path(os.path.abspath(opts.output_dir)), job.task_uuid)
    try:
        return await _save(client, job, model, video, dest, opts, origin, started, deadline_at)
    except BaseException as exc:
        raise aftercare.failure(exc, job, dest=dest, scrub=getattr(client, "scrub", lambda t: t)) from None


async def _save(client, job: Job, model: str, video: Any, dest: Path, opts,
                   origin: str, started: float, deadline_at: float) -> JobResult:
    notices = job.notices
    notices.extend(n for n in (getattr(video, "notices", None) or []) if n not in notices)
    job.succeeded(video_uuid=video.video_uuid, result_url=shown_url(client, video), seed=video.seed,
                  cost=video.cost)
    after_task(job.ledger, endpoint_of(client, opts), getattr(video, "raw", None))  # a new balance reading next
    probe = await fetch_verified(client, video.video_url, dest, job.task_uuid, opts, started, deadline_at)
    await asyncio.to_thread(provenance.record, dest, task_uuid=job.task_uuid, model=model, video=video,
                            endpoint=endpoint_of(client, opts), ledger=job.ledger, origin=origin)
    job.finished(dest, dest.stat().st_size)
    return await finish_local(job.task_uuid, dest, model, video, notices, opts, probe=probe, origin=origin)


def shown_url(client, video: Any) -> str:
    """The result URL as the ledger and the node's info may keep it: no query, userinfo or key."""
    shown = getattr(video, "shown_url", "") or ""
    if shown:
        return shown
    public = getattr(client, "public_url", None)
    return public(video.video_url) if public is not None else public_url(video.video_url)


async def fetch_verified(client, url: str, dest: Path, task_uuid: str, opts, started: float,
                          deadline_at: Optional[float] = None):
    """Download (unless a good copy is there) and check that the MP4 plays; one more download if not."""
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
                       opts, probe: Any = None, origin: str = "new") -> JobResult:
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
