"""What a node needs from ComfyUI while it runs: key, folders, progress, interrupt, outputs."""
from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from typing import Optional, Sequence

import comfy.model_management
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import InputImpl, io
from server import PromptServer

from ..job import followup, pipeline
from . import keystore
from ..job.aftercare import recover_hint
from ..client import RunwareClient, public_base_url
from ..client.urls import redact_text
from ..client.window import WAIT_PREFIX
from ..errors import PixVerseError, RunwareAuthError, RunwareResultError
from .. import config
from ..money.ledger import LEDGER_FILENAME, SUBMITTED, SUBMITTING, SUCCEEDED, Ledger, forget_ledger, open_ledger
from ..requests.widgets import wired_outputs

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


class LedgerUnusable(PixVerseError):
    """The job ledger cannot be used: nothing is sent without it (a re-run could pay twice)."""


_untold: list[str] = []  # what happened to the ledger, said on the next node that runs


def open_job_ledger() -> Ledger:
    """The shared job ledger, and what the next node should say about it. A damaged file (not a database
    any more) is moved aside and a new ledger started, said in that node's notices; a ledger that cannot
    be opened at all refuses the run: without it a re-run could not find a paid task and would pay again."""
    path = ledger_path()
    try:
        return open_ledger(path)
    except sqlite3.DatabaseError as exc:
        aside = f"{path}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            forget_ledger(path)
            os.replace(path, aside)
            for journal in ("-wal", "-shm"):  # its journal goes with it, never into the new ledger
                if os.path.exists(path + journal):
                    os.replace(path + journal, aside + journal)
            ledger = open_ledger(path)
        except (OSError, sqlite3.Error) as again:
            raise LedgerUnusable(_unusable(path, again)) from None
        note = (f"the job ledger {path} was damaged ({exc}); it was moved to {aside} and a new one started. "
                "Tasks recorded only in the old file are not resumed by re-running a prompt: get one with the "
                "PixVerse Recover node and its taskUUID")
        log.warning("PixVerse: %s", note)
        _untold.append(note)
        return ledger
    except OSError as exc:
        raise LedgerUnusable(_unusable(path, exc)) from None


def untold_ledger_notes() -> list[str]:
    """What happened to the ledger that no node has said yet (then it counts as said)."""
    told, _untold[:] = list(_untold), []
    return told


def _unusable(path: str, exc: BaseException) -> str:
    return (f"The PixVerse job ledger {path} cannot be opened ({type(exc).__name__}: {exc}), so nothing was "
            "uploaded or submitted: without it a re-run could not find a paid task and would pay for it again. "
            "Make ComfyUI's user folder writable (or free some space), then queue the prompt again.")


def job_config() -> config.Config:
    """Every variable and setting (nodes/config.py): the environment, else this ComfyUI's settings
    (comfy.settings.json of its default user, read again for each run so a changed setting applies at once).
    A value that is not allowed raises PixVerseInputError naming it."""
    return config.load(user_dir=user_dir())


def prompt_id() -> Optional[str]:
    """The id of the prompt ComfyUI is running now (its spending counts against the per-prompt limit), or None
    (older ComfyUI: no executing context)."""
    try:
        return getattr(get_executing_context(), "prompt_id", None)
    except Exception:  # noqa: BLE001 - no executing context
        log.debug("no executing context for the per-prompt spending limit", exc_info=True)
        return None


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


def new_client() -> RunwareClient:
    key = keystore.load_key(user_dir())
    if not key:
        raise RunwareAuthError(keystore.MISSING_KEY_HELP)
    return RunwareClient(api_key=key)


def background(coro) -> None:
    """Run `coro` on ComfyUI's server loop (it outlives the prompt; the prompt's own loop does not)."""
    loop = PromptServer.instance.loop
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(coro)
    else:
        asyncio.run_coroutine_threadsafe(coro, loop)


def follow_in_background(task_uuids: Sequence[str], ledger: Ledger) -> None:
    """Fetch these accepted tasks to output/pixverse in the background (nodes/job/followup.py)."""
    async def go():
        async with new_client() as client:
            await followup.follow(client, task_uuids, follow_options(ledger))
    if task_uuids:
        background(go())


def follow_orphans_at_start() -> None:
    """After a restart (or a crash): the accepted tasks no live run follows any more, fetched."""
    async def go():
        try:
            ledger = open_job_ledger()
            found = followup.orphans(ledger, public_base_url())
            if found and keystore.load_key(user_dir()):
                log.info("PixVerse: following %d paid task(s) that an earlier run left unfinished", len(found))
                async with new_client() as client:
                    await followup.follow(client, found, follow_options(ledger))
        except Exception:  # noqa: BLE001 - never stops ComfyUI from starting
            log.warning("PixVerse: could not follow earlier unfinished tasks", exc_info=True)
    background(go())


def early_job_options(prompt_id: Optional[str]) -> pipeline.JobOptions:
    """A new task started without its node: started early for a queued prompt (ahead.py)."""
    return pipeline.JobOptions(output_dir=output_dir(), decode_frames=False, decode_audio=False,
                               ledger=open_job_ledger(), config=job_config(), prompt_id=prompt_id)


def follow_options(ledger: Ledger) -> pipeline.JobOptions:
    """Fetching tasks Runware already has (nodes/job/followup.py): nothing new is sent, so no limit, floor or
    layout applies, and a setting that is not allowed never stands between a paid task and its video."""
    return pipeline.JobOptions(output_dir=output_dir(), decode_frames=False, decode_audio=False, ledger=ledger)


class NodeRuntime:
    """One node's run of `count` jobs: their progress, options, outcome and outputs."""

    def __init__(self, node_id: Optional[str], count: int = 1, sends_tasks: bool = True):
        self.node_id = node_id
        self.count = count
        self.task_uuids: list[Optional[str]] = [None] * count
        self.lines = [""] * count
        self.values = [0] * count
        self.notices: list[str] = []
        self.ledger: Optional[Ledger] = None
        # read once for the node's run (job_options); a Recover sends nothing new, so no setting stands in its way
        self.config: Optional[config.Config] = None if sends_tasks else config.Config()
        self.cancelled = False
        self.bar = comfy.utils.ProgressBar(100, node_id=node_id)

    @property
    def task_uuid(self) -> Optional[str]:
        return next((u for u in self.task_uuids if u), None)

    def text(self, message: str) -> None:
        try:
            if self.node_id is not None and PromptServer.instance is not None:
                PromptServer.instance.send_progress_text(message, self.node_id)
        except Exception:  # progress is best effort; never fail a paid job over it
            log.debug("progress text not sent", exc_info=True)

    def cancel_check(self) -> bool:
        self.cancelled = self.cancelled or interrupted()
        return self.cancelled

    def on_progress(self, index: int, event: pipeline.Progress) -> None:
        if event.task_uuid:
            self.task_uuids[index] = event.task_uuid
        value = PHASE_PROGRESS.get(event.phase, 0)
        if event.phase == "processing":
            span = PHASE_PROGRESS["downloading"] - value
            value += int(span * min(event.elapsed / EXPECTED_WAIT_S, 0.95))
        self.values[index] = value
        try:  # ComfyUI's progress hook raises on Cancel: seen by cancel_check instead, between steps
            self.bar.update_absolute(sum(self.values) // self.count)
        except comfy.model_management.InterruptProcessingException:
            self.cancelled = True
        head = f"{index + 1}/{self.count} " if self.count > 1 else ""
        line = f"{head}PixVerse: {event.phase}" + (f" ({event.elapsed:.0f} s)" if event.elapsed else "")
        if self.task_uuids[index]:
            line += f"\n{head}taskUUID: {self.task_uuids[index]}"
        if event.phase == "done" or str(event.message).startswith(WAIT_PREFIX):  # the account is busy: say so
            line += f"\n{head}{event.message}" if event.phase != "done" else f"\n{event.message}"
        self.lines[index] = line
        self.text("\n".join(x for x in self.lines if x))

    def job_options(self, wanted: Optional[set[str]], index: int = 0, claim_group=None) -> pipeline.JobOptions:
        frames, audio = decode_plan(wanted)
        if self.config is None:
            self.config = job_config()  # a bad value refuses the run here, before anything is opened or sent
        if self.ledger is None:
            self.ledger, self.notices = open_job_ledger(), untold_ledger_notes()
        return pipeline.JobOptions(output_dir=output_dir(), cancel_check=self.cancel_check,
                                   on_progress=lambda event: self.on_progress(index, event),
                                   decode_frames=frames, decode_audio=audio, ledger=self.ledger,
                                   config=self.config, prompt_id=prompt_id(), claim_group=claim_group)

    def accepted(self) -> list[str]:
        """taskUUIDs of this node's tasks that Runware has (or may have): billed, to be fetched."""
        if self.ledger is None:
            return []
        found = []
        for task_uuid in filter(None, self.task_uuids):
            entry = self.ledger.get(task_uuid)
            if entry is not None and entry.status in (SUBMITTING, SUBMITTED, SUCCEEDED):
                found.append(task_uuid)
        return found

    def stopped(self, why: str) -> str:
        """What to tell when the run stops early: nothing was sent, or which paid tasks go on."""
        paid = self.accepted()
        if not paid:
            return f"{why} before anything was sent to Runware: nothing was charged."
        follow_in_background(paid, self.ledger)
        hints = " ".join(recover_hint(u) for u in paid)
        return (f"{why} after Runware accepted task{'s' if len(paid) > 1 else ''} {', '.join(paid)} (billed). "
                f"{'They go' if len(paid) > 1 else 'It goes'} on in the background to output/{OUTPUT_SUBFOLDER}. "
                + hints)

    def unexpected(self, exc: BaseException) -> Exception:
        """An error no layer below turned into a PixVerse error: say what it was and, once a task
        was submitted, how to get its video."""
        log.warning("PixVerse: unexpected error", exc_info=True)
        text = f"unexpected {type(exc).__name__}: {redact_text(str(exc))}"
        paid = self.accepted()
        if paid:
            err: Exception = RunwareResultError(f"Task {paid[0]} stopped here: {text}. " + recover_hint(paid[0]),
                                                task_uuid=paid[0])
        else:
            err = PixVerseError(f"PixVerse: {text}; no task was submitted")
        self.text(f"error: {err}")
        return err

    def interrupt(self) -> BaseException:
        """Cancel pressed: say what happened to the money, then end the way ComfyUI expects."""
        message = self.stopped("Cancelled")
        self.text(message)
        log.warning("PixVerse: %s", message)
        return comfy.model_management.InterruptProcessingException()

    def outputs(self, results: Sequence[pipeline.JobResult], as_lists: bool) -> io.NodeOutput:
        """One result's outputs, or (as_lists) each output a list with one item per video."""
        parts = [self._outputs(r) for r in results]
        shown = [p[5] for p in parts]
        if as_lists:
            return io.NodeOutput(*[[p[i] for p in parts] for i in range(5)], ui={"pixverse_info": shown})
        return io.NodeOutput(*parts[0][:5], ui={"pixverse_info": shown})

    def _outputs(self, result: pipeline.JobResult) -> tuple:
        result.notices.extend(n for n in self.notices if n not in result.notices)
        decoded = result.decoded
        fps = float(decoded.fps if decoded is not None else result.probe.fps)
        # An output nobody connected is not decoded: frames → an empty batch [0,H,W,3], audio → 0
        # samples (see the tooltips). wiring_fingerprint() keeps ComfyUI from reusing them once wired.
        audio = decoded.audio if decoded is not None and decoded.audio is not None else \
            {"waveform": torch.zeros((1, 1, 0), dtype=torch.float32), "sample_rate": 44100}
        frames = decoded.frames if decoded is not None and decoded.frames is not None else \
            torch.zeros((0, result.probe.height, result.probe.width, 3), dtype=torch.float32)
        video = InputImpl.VideoFromFile(str(result.video_path))
        # Shown on the node by web/pixverse.js (onExecuted): each taskUUID, its cost and what came back.
        info = result.info
        shown = {k: info.get(k) for k in ("taskUUID", "cost", "seed", "model", "width", "height", "fps",
                                          "duration", "notices")}
        return video, frames, audio, fps, result.info_json(), shown
