"""What the emulator remembers between runs, as Runware does: its tasks, their results and its address.

Given a folder (the CLI's `--offline` passes one beside its job ledger; `python -m nodes.emulator
--state-dir`), the emulator keeps `tasks.json` there and its rendered videos under `media/`. A new
emulator on the same folder answers getResponse/getTaskDetails for the tasks of the last one, finishes
the ones still running, refuses their taskUUIDs as duplicates and listens on the same port when it
is free (the job ledger scopes rows by endpoint), so a re-run of a job resumes or reuses exactly as it
does against Runware. Uploads are not kept: a re-run uploads again, as after Runware let them expire.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from .validate import JobPlan

STATE_FILE = "tasks.json"
_JOB_FIELDS = ("task_uuid", "submitted_at", "state", "video_uuid", "error", "request", "finished_at")


class TaskMemory:
    def __init__(self, folder: os.PathLike | str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / STATE_FILE

    @property
    def media_dir(self) -> Path:
        return self.folder / "media"

    def load(self) -> dict[str, Any]:
        """{"port": int | None, "jobs": [job fields + "plan"], "videos": {videoUUID: file}}; empty when new."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"port": None, "jobs": [], "videos": {}}
        return {"port": data.get("port"), "jobs": list(data.get("jobs") or []),
                "videos": dict(data.get("videos") or {})}

    def save(self, port: Optional[int], jobs: list[Any], videos: dict[str, Optional[Path]]) -> None:
        """Write the state atomically (a crash mid-write leaves the previous one)."""
        data = {"port": port, "jobs": [job_record(j) for j in jobs],
                "videos": {uuid: str(path) for uuid, path in videos.items() if path is not None}}
        tmp = self.path.with_name(f".{os.getpid()}.{STATE_FILE}")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def job_record(job: Any) -> dict[str, Any]:
    return {**{name: getattr(job, name) for name in _JOB_FIELDS}, "plan": asdict(job.plan)}


def job_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for the server's Job from a saved record."""
    return {**{name: record.get(name) for name in _JOB_FIELDS}, "plan": JobPlan(**record["plan"])}
