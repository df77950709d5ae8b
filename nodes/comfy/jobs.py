"""What a PixVerse node runs: its inputs → one pipeline job per video. The one home of that mapping,
used by the nodes' `execute` and by starting queued prompts early (ahead.py), so both send exactly
the same task (the job ledger then finds the early task by its fingerprint: one task per request).

`count` (Text to Video, Image to Video, Modify): that many videos from the same inputs, seeds
`seed, seed+1, …`; each variation is its own pipeline job and its own ledger row.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from ..job import pipeline
from ..requests import widgets
from ..errors import PixVerseInputError
from ..spec import load_spec

Job = Callable[[Any, pipeline.JobOptions], Awaitable[pipeline.JobResult]]  # (client, opts) → result
COUNT_INPUT = "count"


def video_input_path(video: Any, tmp: Path) -> Path:
    """A VIDEO input (or a path, from ahead.py) as a file: the file itself when it is one, else the
    video saved to an MP4 in `tmp`."""
    if isinstance(video, (str, Path)):
        return Path(video)
    # Newer ComfyUI lets Load Video trim/crop without re-encoding: the stream source is then the
    # unedited file, and only save_to() applies the edits (0.3.64 has neither method).
    edited = getattr(video, "has_pending_frame_edits", lambda: False)() or \
        tuple(getattr(video, "get_active_trim_window", lambda: (0.0, 0.0))()) != (0.0, 0.0)
    source = None if edited else getattr(video, "get_stream_source", lambda: None)()
    if isinstance(source, str) and Path(source).is_file():
        return Path(source)
    path = tmp / "reference.mp4"
    video.save_to(str(path))
    return path


def variations(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The node's inputs for each video `count` asks for (without `count`), seeds seed, seed+1, …"""
    values = dict(inputs)
    count = values.pop(COUNT_INPUT, 1)
    if count in (None, 1):
        return [values]
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= widgets.MAX_COUNT:
        raise PixVerseInputError(COUNT_INPUT, count, f"whole numbers 1-{widgets.MAX_COUNT}")
    seed = values.get("seed") or 0
    top = load_spec().seed.max
    if seed + count - 1 > top:
        raise PixVerseInputError(COUNT_INPUT, count, f"at most {top - seed + 1} with seed {seed}",
                                 f"the variations take seeds {seed}…{seed + count - 1}, past the largest seed {top}")
    return [{**values, "seed": seed + i} for i in range(count)]


@dataclass(frozen=True)
class _Video:
    """A job whose node takes a VIDEO (or frames): the VIDEO becomes a file for the job's length."""

    run: Callable[..., Awaitable[pipeline.JobResult]]
    values: dict[str, Any]

    async def __call__(self, client, opts: pipeline.JobOptions) -> pipeline.JobResult:
        video = self.values.get("video")
        with tempfile.TemporaryDirectory(prefix="pixverse-", ignore_cleanup_errors=True) as tmp:  # removed after the
            # job; a file Windows still holds open is left there rather than failing a paid result
            path = video_input_path(video, Path(tmp)) if video is not None else None
            return await self.run(client, opts, path, self.values)


async def _lipsync(client, opts, video_path, v):
    return await pipeline.lipsync(client, opts, video_path=video_path, frames=v.get("frames"),
                                  frames_fps=v.get("frames_fps", 24.0), audio=v.get("audio"),
                                  speech_text=v.get("speech_text") or None, voice=v.get("voice"),
                                  model=v.get("model"))


async def _modify(client, opts, video_path, v):
    return await pipeline.modify(client, widgets.modify_choices(v), opts, video_path=video_path,
                                 frames=v.get("frames"), frames_fps=v.get("frames_fps", 24.0),
                                 reference_image=v.get("reference_image"))


def job(kind: str, values: dict[str, Any]) -> Job:
    """One video's job for a node of `kind` with these input values (one variation)."""
    if kind == "text_to_video":
        choices = widgets.generation_choices(values)
        return lambda client, opts: pipeline.text_to_video(client, choices, opts)
    if kind == "image_to_video":
        choices = widgets.generation_choices({k: v for k, v in values.items() if k not in ("first_frame", "last_frame")})
        return lambda client, opts: pipeline.image_to_video(client, choices, values["first_frame"],
                                                            values.get("last_frame"), opts)
    if kind == "lipsync":
        return _Video(_lipsync, values)
    if kind == "modify":
        return _Video(_modify, values)
    if kind == "recover":
        task_uuid = widgets.parse_task_uuid(values.get("task_uuid"))
        return lambda client, opts: pipeline.recover(client, task_uuid, opts)
    raise ValueError(f"no job for a node of kind {kind!r}")


def jobs(kind: str, inputs: dict[str, Any]) -> list[Job]:
    """Every video's job for a node of `kind` with these inputs (`count` of them)."""
    return [job(kind, values) for values in variations(inputs)]
