"""Provenance beside every paid video: `pixverse_<taskUUID>.json` next to the MP4, and a note in the MP4 itself.

Written when a task's video is saved (nodes/job/delivery.py): the taskUUID, the model and workflow, the request
as sent (each upload standing as ``sha256:<hash of the uploaded bytes>``, with the upload's UUID beside it; no
key, no header), the seed, the cost, the times, and the inputs' hashes (the CLI and batch add the input files'
names and file hashes, `note_input_files`). The MP4's container `comment` tag names the taskUUID and how to
fetch it again, so a video moved away from its JSON still says where it came from.

`task_of(text)` reads a taskUUID, a provenance JSON or a tagged video: `python -m nodes recover FILE.json`
polls that task again (never a new task) and downloads its video.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from ..workflows import WORKFLOWS, by_command
from ..errors import PixVerseError
from ..media.tags import read_comment, tag_video
from ..requests.widgets import parse_task_uuid
from ..spec import load_spec

log = logging.getLogger("pixverse")

FORMAT = "pixverse-runware-provenance/1"
_TAG = re.compile(r"taskUUID=([0-9a-fA-F-]{36})(?:.*?model=(\S+))?")


def sidecar_path(video_path: os.PathLike | str) -> Path:
    """Where a video's provenance is kept: beside it, same name, `.json`."""
    return Path(video_path).with_suffix(".json")


def comment_for(task_uuid: str, model: str) -> str:
    return (f"PixVerse via Runware: taskUUID={task_uuid} model={model} — `python -m nodes recover {task_uuid}` "
            f"(or the PixVerse Recover node) fetches it again without a new task")


def _workflow(model: str, request: Optional[Mapping[str, Any]]) -> str:
    try:
        flows = load_spec().model(model).workflows
    except (KeyError, ValueError):
        flows = ()
    if len(flows) == 1:
        return flows[0]
    # a model that serves several workflows (text and image to video): the one whose slice sends frames
    # (a required image input) when the request carries them, else the one that sends none
    has_frames = "frameImages" in json.dumps(request or {})
    for workflow in WORKFLOWS.values():
        if workflow.command in flows and any(m.kind == "image" and m.required for m in workflow.media) == has_frames:
            return workflow.command
    return flows[0] if flows else ""


def record(video_path: Path, *, task_uuid: str, model: str, video: Any, endpoint: str, ledger: Any = None,
           origin: str = "new") -> Optional[Path]:
    """Write the provenance JSON beside `video_path` and tag the video; the JSON's path, or None when it could not
    be written (logged: the video is what matters)."""
    entry = ledger.get(task_uuid) if ledger is not None else None
    request = json.loads(entry.request) if entry is not None and entry.request else None
    inputs = []
    for parameter, sha in sorted((entry.inputs if entry is not None else {}).items()):
        kind = "media" if parameter in ("video", "audio") else "image"
        ref = ledger.cached_upload(endpoint, kind, sha) if ledger is not None else None
        inputs.append({"parameter": parameter, "uploaded_sha256": sha, "uploaded_as": ref})
    now = time.time()
    data = {
        "format": FORMAT,
        "taskUUID": task_uuid,
        "model": model,
        "workflow": _workflow(model, request),
        "endpoint": endpoint,
        "request": request,
        "request_note": "as sent, without taskUUID; each upload stands as sha256:<hash of the uploaded bytes>, "
                        "its UUID is in inputs[].uploaded_as",
        "seed": getattr(video, "seed", None),
        "cost": getattr(video, "cost", None),
        "dry_run": bool((getattr(video, "raw", None) or {}).get("dryRun")),
        "videoUUID": getattr(video, "video_uuid", None),
        "inputs": inputs,
        "times": {"claimed": _iso(entry.created_at if entry else None),
                  "submitted": _iso(entry.submitted_at if entry else None), "saved": _iso(now)},
        "file": Path(video_path).name,
        "source": origin,
        "recover": f"python -m nodes recover {sidecar_path(video_path).name}",
    }
    path = sidecar_path(video_path)
    earlier = _read(path)
    if earlier.get("taskUUID") == task_uuid:  # fetched again: what the first save knew stays
        for key in ("input_files", "source"):
            if key in earlier:
                data[key] = earlier[key]
        data["times"]["first_saved"] = earlier.get("times", {}).get("first_saved") or earlier.get("times", {}).get("saved")
    try:
        _write_json(path, data)
    except OSError as exc:
        log.warning("PixVerse: the provenance of task %s could not be written to %s (%s)", task_uuid, path, exc)
        return None
    tag_video(Path(video_path), comment_for(task_uuid, model))
    return path


def note_input_files(video_path: os.PathLike | str, files: Mapping[str, Any]) -> None:
    """Add the input files' names and file hashes (the CLI's and batch's `--first-frame` …) to the JSON."""
    path = sidecar_path(video_path)
    named = {k: Path(v) for k, v in files.items() if v}
    if not named or not path.is_file():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["input_files"] = [{"parameter": k, "name": p.name, "path": str(p.resolve()), "sha256": _file_sha(p)}
                               for k, p in sorted(named.items())]
        _write_json(path, data)
    except (OSError, ValueError) as exc:
        log.warning("PixVerse: the input files could not be added to %s (%s)", path, exc)


def files_of(args: Any) -> dict[str, Any]:
    """The input files of a `generate` command line (argparse namespace): each media input of its workflow
    (nodes/workflows/: the slice's `media`, whose names are the file options) → its path."""
    workflow = by_command(getattr(args, "workflow", "") or "")
    names = [m.name for m in workflow.media] if workflow is not None else []
    return {name: getattr(args, name) for name in names if getattr(args, name, None)}


def task_of(text: str) -> tuple[str, str]:
    """(taskUUID, model) from a taskUUID, a provenance JSON, or a video this pack tagged."""
    candidate = Path(str(text).strip())
    if candidate.suffix.lower() == ".json" or (candidate.suffix and candidate.is_file()):
        if not candidate.is_file():
            raise PixVerseError(f"{candidate}: no such file (a taskUUID, a provenance .json or a PixVerse video)")
        if candidate.suffix.lower() == ".json":
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise PixVerseError(f"{candidate}: not a provenance file this pack wrote ({exc})") from None
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise PixVerseError(f"{candidate}: not a provenance file this pack wrote (no \"format\": {FORMAT!r})")
            return parse_task_uuid(data.get("taskUUID")), str(data.get("model") or "")
        found = _TAG.search(read_comment(candidate) or "")
        if not found:
            raise PixVerseError(f"{candidate}: this video carries no PixVerse taskUUID in its metadata")
        return parse_task_uuid(found.group(1)), found.group(2) or ""
    return parse_task_uuid(text), ""


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _iso(t: Optional[float]) -> Optional[str]:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
