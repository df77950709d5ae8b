"""Start queued prompts early (opt-in): the configuration's `start_ahead` N (nodes/config.py: a variable or
the setting *Runware → Many videos → Start queued prompts early*).

ComfyUI runs one prompt at a time, so ten queued PixVerse prompts take ten job lengths although
Runware runs them side by side. When a prompt is queued (ComfyUI's on-prompt hook), each PixVerse
node in it whose inputs are all known at that moment — widget values, Effect/Camera links, images
from Load Image, videos from Load Video — is started at once through the job ledger, with exactly the
job the node itself will run (nodes/comfy/jobs.py). When the prompt's turn comes, the node finds the
task in the ledger by its fingerprint and resumes or reuses it: one task per request, always.

At most N tasks started this way run at once; the spending limits are checked for each as for any
new task. A prompt removed from the queue after its task started cannot take the task back: the
video is paid, downloaded to output/pixverse and listed by the ledger.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Optional

import folder_paths

from ..spec.kinds import BY_KIND
from . import jobs, posted, runtime

log = logging.getLogger("pixverse")

QUEUE_WAIT_S = 10.0  # how long to look for a just-posted prompt in the queue (it may fail validation)
STARTABLE = ("text_to_video", "image_to_video", "lipsync", "modify")


def _resolve_link(prompt: dict, link: list) -> tuple[bool, Any]:
    """An input that comes from another node: (True, its value), or (False, None) when it is not
    known before the prompt runs."""
    motion = posted.motion_from(prompt, link)
    if motion is not None:
        return True, motion
    source = prompt.get(str(link[0])) or {}
    kind = source.get("class_type")
    inputs = source.get("inputs") or {}
    if any(isinstance(v, list) for v in inputs.values()):
        return False, None  # the source itself depends on another node
    if kind == "LoadImage" and link[1] == 0:
        return True, _load_v1("LoadImage", inputs)[0]
    if kind == "LoadAudio" and link[1] == 0:
        return True, _load_v1("LoadAudio", inputs)[0]
    if kind == "LoadVideo" and link[1] == 0 and isinstance(inputs.get("file"), str):
        return True, folder_paths.get_annotated_filepath(inputs["file"])
    return False, None


def _load_v1(class_type: str, inputs: dict) -> tuple:
    """What ComfyUI's own loader node returns for these inputs: the very tensor the node will get."""
    import nodes as comfy_nodes  # ComfyUI's nodes.py (this pack's package is not named `nodes` there)

    cls = comfy_nodes.NODE_CLASS_MAPPINGS[class_type]
    return getattr(cls(), cls.FUNCTION)(**inputs)


def startable(prompt: dict) -> list[tuple[str, str, dict]]:
    """(node id, kind, inputs) of each PixVerse node whose inputs are all known now."""
    kinds = {BY_KIND[k].node_id: k for k in STARTABLE}
    found = []
    for node_id, node in prompt.items():
        kind = kinds.get(node.get("class_type"))
        if kind is None:
            continue
        values, known = {}, True
        for name, value in (node.get("inputs") or {}).items():
            if isinstance(value, list) and len(value) == 2:
                try:
                    known, value = _resolve_link(prompt, value)
                except Exception:  # noqa: BLE001 - a loader that fails here fails again in its turn, with its message
                    log.debug("PixVerse: input %s of node %s not known ahead", name, node_id, exc_info=True)
                    known = False
                if not known:
                    break
            values[name] = value
        if known:
            found.append((str(node_id), kind, values))
    return found


class Starter:
    """Starts the PixVerse nodes of queued prompts on the server's event loop, N at a time."""

    def __init__(self) -> None:
        self._slots: Optional[asyncio.Semaphore] = None
        self._size = 0
        self.running: set[asyncio.Task] = set()

    def on_prompt(self, json_data: dict) -> dict:
        """ComfyUI's on-prompt hook: runs before the prompt is validated and queued."""
        try:
            n = runtime.job_config().start_ahead  # a value not allowed: logged below; the node refuses it
            if n <= 0 or not isinstance(json_data.get("prompt"), dict):
                return json_data
            json_data.setdefault("prompt_id", str(uuid.uuid4()))  # ComfyUI keeps a given prompt_id
            task = asyncio.get_running_loop().create_task(self._when_queued(str(json_data["prompt_id"]), n))
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        except Exception:  # noqa: BLE001 - never stand between the user and the queue
            log.warning("PixVerse: could not start queued prompt early", exc_info=True)
        return json_data

    async def _when_queued(self, prompt_id: str, n: int) -> None:
        prompt = await _pending_prompt(prompt_id)
        if prompt is None:
            return  # refused by validation, or already running: the nodes run in their turn
        if self._slots is None or self._size != n:
            self._slots, self._size = asyncio.Semaphore(n), n
        started = []
        for node_id, kind, values in startable(prompt):
            try:
                node_jobs = jobs.jobs(kind, values)
            except Exception as exc:  # noqa: BLE001 - a refused choice is the node's to report in its turn
                log.info("PixVerse: node %s not started early: %s", node_id, exc)
                continue
            started += [self._run(prompt_id, node_id, j) for j in node_jobs]
        if started:
            log.info("PixVerse: starting %d task(s) of queued prompt %s early", len(started), prompt_id)
            await asyncio.gather(*started)

    async def _run(self, prompt_id: str, node_id: str, job) -> None:
        async with self._slots:
            if await _pending_prompt(prompt_id, wait=0) is None:
                return  # running now (the node does it) or removed from the queue: nothing sent
            try:
                opts = runtime.early_job_options(prompt_id)
                async with runtime.new_client() as client:
                    result = await job(client, opts)
                log.info("PixVerse: early task %s of prompt %s (node %s) is ready: %s", result.task_uuid,
                         prompt_id, node_id, result.video_path)
            except Exception as exc:  # noqa: BLE001 - the node reports it in its turn (and resumes from the ledger)
                log.warning("PixVerse: early start of node %s in prompt %s stopped: %s", node_id, prompt_id, exc)


def _queue():
    from server import PromptServer

    return PromptServer.instance.prompt_queue


async def _pending_prompt(prompt_id: str, wait: float = QUEUE_WAIT_S) -> Optional[dict]:
    """The validated prompt of `prompt_id` while it waits in the queue, else None."""
    loop = asyncio.get_running_loop()
    until = loop.time() + wait
    while True:
        _, pending = _queue().get_current_queue_volatile()
        for item in pending:  # (number, prompt_id, prompt, extra_data, outputs_to_execute)
            if item[1] == prompt_id:
                return item[2]
        if loop.time() >= until:
            return None
        await asyncio.sleep(0.05)


STARTER = Starter()
