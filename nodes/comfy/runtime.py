"""What a node needs from ComfyUI while it runs: key, folders, progress, interrupt, outputs."""
from __future__ import annotations

import logging
import os
from typing import Optional

import comfy.model_management
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import InputImpl, io
from server import PromptServer

from .. import keystore, pipeline
from ..aftercare import recover_hint
from ..client import RunwareClient
from ..client.urls import redact_text
from ..errors import PixVerseError, RunwareAuthError, RunwareResultError
from ..layouts import override
from ..ledger import LEDGER_FILENAME, open_ledger
from ..limits import load_policy
from ..settings import read_comfy_settings
from ..widgets import wired_outputs

try:  # ComfyUI's executing context (which prompt, which node); absent in older ComfyUI
    from comfy_execution.utils import get_executing_context
except ImportError:  # then no per-prompt limit, and the output wiring is not read
    get_executing_context = None

log = logging.getLogger("pixverse")

OUTPUT_SUBFOLDER = "pixverse"
# Bar positions for each phase; the wait itself moves between queued and downloading.
PHASE_PROGRESS = {"uploading": 5, "submitting": 10, "queued": 12, "processing": 15, "downloading": 85,
                  "decoding": 92, "done": 100}
EXPECTED_WAIT_S = 90.0  # bar pacing only; PixVerse jobs take about a minute or two


def user_dir() -> str:
    return folder_paths.get_user_directory()


def output_dir() -> str:
    return os.path.join(folder_paths.get_output_directory(), OUTPUT_SUBFOLDER)


def ledger_path() -> str:
    """The job ledger: ComfyUI's user directory, beside the pack's settings (never in output/)."""
    return os.path.join(user_dir(), "runware", LEDGER_FILENAME)


def open_job_ledger():
    """The shared job ledger, or None (logged) when the file cannot be opened: a broken ledger
    must not stop a job, though without it a re-run cannot reuse or resume a paid task."""
    try:
        return open_ledger(ledger_path())
    except Exception:
        log.warning("PixVerse: the job ledger %s could not be opened; running without it", ledger_path(),
                    exc_info=True)
        return None


def budget_policy():
    """The spending limits for a job: the environment, else this ComfyUI's settings (comfy.settings.json of
    its default user, re-read for every job so a changed setting applies at once), and the queued prompt."""
    prompt_id = None
    try:
        ctx = get_executing_context()
        prompt_id = getattr(ctx, "prompt_id", None)
    except Exception:  # noqa: BLE001 - no executing context (older ComfyUI): no per-prompt limit
        log.debug("no executing context for the per-prompt spending limit", exc_info=True)
    return load_policy(read_comfy_settings(user_dir()), prompt_id=prompt_id)


def decode_plan(wanted: Optional[set[str]]) -> tuple[bool, bool]:
    """(decode frames?, decode audio?) for a node whose connected outputs are `wanted` (None: not
    known, decode both). A 1080p 8 s result is 4.8 GB as frames; nothing is decoded for a node
    whose frames and audio go nowhere."""
    if wanted is None:
        return True, True
    return "frames" in wanted, "audio" in wanted


def wiring_fingerprint():
    """`fingerprint_inputs` of the nodes with the generators' outputs: which of frames/audio are
    connected, read from the running prompt (a fingerprint sees neither the node id nor the prompt
    as inputs; ComfyUI's executing context and prompt queue have both).

    ComfyUI reuses a node's cached outputs while its inputs and this value stay the same. Without
    it, connecting `frames` to a node that ran with `frames` unconnected (same widgets) would hand
    out the cached empty batch. With it the node runs again, and the job ledger serves the finished
    task from disk: no new submission, no new charge. NaN (never equal to itself: always run again)
    when the wiring cannot be read."""
    try:
        ctx = get_executing_context()
        queue = PromptServer.instance.prompt_queue
        read = getattr(queue, "get_current_queue_volatile", None) or queue.get_current_queue
        # Queue items: (number, prompt_id, prompt, extra_data, outputs_to_execute, ...)
        prompt = next(item[2] for item in read()[0] if item[1] == ctx.prompt_id)
        frames, audio = decode_plan(wired_outputs(prompt, ctx.node_id))
    except Exception:  # noqa: BLE001 - unknown wiring: always re-run (free, from the ledger)
        log.debug("output wiring not readable; the node will run again", exc_info=True)
        return float("nan")
    return f"frames={int(frames)} audio={int(audio)}"


def interrupted() -> bool:
    return comfy.model_management.processing_interrupted()


class NodeRuntime:
    def __init__(self, node_id: Optional[str]):
        self.node_id = node_id
        self.task_uuid: Optional[str] = None
        self.bar = comfy.utils.ProgressBar(100, node_id=node_id)

    def text(self, message: str) -> None:
        try:
            if self.node_id is not None and PromptServer.instance is not None:
                PromptServer.instance.send_progress_text(message, self.node_id)
        except Exception:  # progress is best effort; never fail a paid job over it
            log.debug("progress text not sent", exc_info=True)

    def on_progress(self, event: pipeline.Progress) -> None:
        if event.task_uuid:
            self.task_uuid = event.task_uuid
        value = PHASE_PROGRESS.get(event.phase, 0)
        if event.phase == "processing":
            span = PHASE_PROGRESS["downloading"] - value
            value += int(span * min(event.elapsed / EXPECTED_WAIT_S, 0.95))
        self.bar.update_absolute(value)
        lines = [f"PixVerse: {event.phase}" + (f" ({event.elapsed:.0f} s)" if event.elapsed else "")]
        if self.task_uuid:
            lines.append(f"taskUUID: {self.task_uuid}")
        if event.phase == "done":
            lines.append(event.message)
        self.text("\n".join(lines))

    def job_options(self, wanted: Optional[set[str]]) -> pipeline.JobOptions:
        frames, audio = decode_plan(wanted)
        return pipeline.JobOptions(output_dir=output_dir(), cancel_check=interrupted,
                                   on_progress=self.on_progress, decode_frames=frames, decode_audio=audio,
                                   ledger=open_job_ledger(), budget=budget_policy(),
                                   layout=override(read_comfy_settings(user_dir())))

    def client(self):
        key = keystore.load_key(user_dir())
        if not key:
            raise RunwareAuthError(keystore.MISSING_KEY_HELP)
        return RunwareClient(api_key=key)

    def unexpected(self, exc: Exception) -> Exception:
        """An error no layer below turned into a PixVerse error: say what it was and, once a task
        was submitted, how to get its video."""
        log.warning("PixVerse: unexpected error", exc_info=True)
        text = f"unexpected {type(exc).__name__}: {redact_text(str(exc))}"
        if self.task_uuid:
            err: Exception = RunwareResultError(f"Task {self.task_uuid} stopped here: {text}. "
                                                + recover_hint(self.task_uuid), task_uuid=self.task_uuid)
        else:
            err = PixVerseError(f"PixVerse: {text}; no task was submitted")
        self.text(f"error: {err}")
        return err

    def interrupted(self, exc: Exception) -> None:
        """Cancel pressed while waiting: say how to recover, then end the way ComfyUI expects."""
        self.text(f"Cancelled. {exc}")
        log.warning("PixVerse: %s", exc)
        raise comfy.model_management.InterruptProcessingException()

    def outputs(self, result: pipeline.JobResult) -> io.NodeOutput:
        decoded = result.decoded
        fps = float(decoded.fps if decoded is not None else result.probe.fps)
        # An output nobody connected is not decoded: frames → an empty batch [0,H,W,3], audio → 0
        # samples (see the tooltips). wiring_fingerprint() keeps ComfyUI from reusing them once wired.
        audio = decoded.audio if decoded is not None and decoded.audio is not None else \
            {"waveform": torch.zeros((1, 1, 0), dtype=torch.float32), "sample_rate": 44100}
        frames = decoded.frames if decoded is not None and decoded.frames is not None else \
            torch.zeros((0, result.probe.height, result.probe.width, 3), dtype=torch.float32)
        video = InputImpl.VideoFromFile(str(result.video_path))
        # Shown on the node by web/pixverse.js (onExecuted): the last taskUUID, its cost and what came back.
        info = result.info
        shown = {k: info.get(k) for k in ("taskUUID", "cost", "seed", "model", "width", "height", "fps",
                                          "duration", "notices")}
        return io.NodeOutput(video, frames, audio, fps, result.info_json(), ui={"pixverse_info": [shown]})
