"""Start queued prompts early (opt-in): the configuration's `start_ahead` N (nodes/config.py: a variable or
the setting *Runware → Many videos → Start queued prompts early*).

ComfyUI runs one prompt at a time, so ten queued PixVerse prompts take ten job lengths although
Runware runs them side by side. When a prompt is queued (ComfyUI's on-prompt hook), each node of a
workflow that starts ahead (nodes/workflows/) whose inputs are all known at that moment — widget values, Effect/Camera links, images
from Load Image, videos from Load Video — is started at once through the job ledger, with exactly the
job the node itself will run (nodes/comfy/jobs.py). When the prompt's turn comes, the node finds the
task in the ledger by its fingerprint and resumes or reuses it: one task per request, always.

At most N tasks started this way run at once; the spending limits (and the balance floor) are checked as for
any new task, and a node's takes (`count`) are claimed together, all or none, as the node does; a node with
more takes than N is left to its turn. A prompt removed from the queue after its task started cannot take the task back: the
video is paid, downloaded to output/pixverse and listed by the ledger.

Off the server's loop: loading the inputs (ComfyUI's Load Image decodes the file) runs in a worker thread,
and the early jobs themselves (encoding and hashing their inputs, uploads, the wait) on one event loop of
their own in the thread `pixverse-ahead`, so ComfyUI's HTTP server keeps answering while a 100-megapixel
image is prepared. Each early task is remembered in this process (`EARLY`): the jobs tab marks it "started
early", and a node whose inputs no longer match its early task at its turn (a loaded file overwritten after
the prompt was queued) says so in its info, naming the early task, its cost and its file.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import folder_paths

from ..money.pricing import usd
from ..job.claims import ClaimGroup
from ..spec.kinds import BY_KIND
from ..workflows import WORKFLOWS
from . import jobs, posted, runtime

log = logging.getLogger("pixverse")

QUEUE_WAIT_S = 10.0  # how long to look for a just-posted prompt in the queue (it may fail validation)


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
    kinds = {BY_KIND[k].node_id: k for k, workflow in WORKFLOWS.items() if workflow.start_ahead}
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


@dataclass
class EarlyTask:
    """A task a queued prompt's node started early, as this process saw it."""

    prompt_id: str
    node_id: str
    task_uuid: str = ""
    worked_in: str = ""  # the thread its inputs were encoded and hashed in


EARLY: dict[str, EarlyTask] = {}  # taskUUID → its early start (this process; the jobs tab and the node read it)
_EARLY_LOCK = threading.Lock()


def started_early(task_uuid: str) -> Optional[EarlyTask]:
    with _EARLY_LOCK:
        return EARLY.get(task_uuid)


def mismatch_notices(prompt_id: Optional[str], node_id: Optional[str], results: Sequence[Any], ledger) -> list[str]:
    """What a node says when a task started early for it is not among its results: its inputs changed after the
    prompt was queued (a loaded file overwritten), so that early task was paid and this run sent another."""
    used = {getattr(r, "task_uuid", None) for r in results}
    with _EARLY_LOCK:
        early = [e for e in EARLY.values() if e.prompt_id == prompt_id and e.node_id == str(node_id)
                 and e.task_uuid and e.task_uuid not in used]
    notes = []
    for e in early:
        entry = ledger.get(e.task_uuid) if ledger is not None else None
        cost = usd(entry.cost) if entry is not None and entry.cost is not None else "cost not known yet"
        where = entry.local_file if entry is not None and entry.local_file else \
            f"output/{runtime.OUTPUT_SUBFOLDER}/pixverse_{e.task_uuid}.mp4 once it is done"
        notes.append(f"started early: task {e.task_uuid} ({cost}, {where}) was sent when this prompt was queued, "
                     f"but this node's inputs no longer match it at its turn (a loaded file changed since?), so "
                     f"this run sent a new task; the early one is paid and its video kept")
    return notes


class _WorkerLoop:
    """One event loop in a daemon thread for the early jobs: their CPU work never holds up the server's loop."""

    def __init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="pixverse-ahead", daemon=True).start()
            return self._loop

    async def run(self, coro):
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop()))


WORKER = _WorkerLoop()


class _Permits:
    """N places for tasks started early; a node takes one per take, all at once (the server's event loop)."""

    def __init__(self, n: int) -> None:
        self.n, self.free = n, n
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, k: int):
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= k)
            self.free -= k
        try:
            yield
        finally:
            async with self._changed:
                self.free += k
                self._changed.notify_all()


class Starter:
    """Starts the PixVerse nodes of queued prompts on the server's event loop, N tasks at a time. A node's takes
    (`count`) are claimed together, all or none, as the node claims them (nodes/job/claims.py `ClaimGroup`); a
    node with more takes than N is not started early (it runs in its turn)."""

    def __init__(self) -> None:
        self._permits: Optional[_Permits] = None
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
        if self._permits is None or self._permits.n != n:
            self._permits = _Permits(n)
        started = []
        for node_id, kind, values in await asyncio.to_thread(startable, prompt):  # Load Image decodes: off the loop
            try:
                node_jobs = jobs.jobs(kind, values)
            except Exception as exc:  # noqa: BLE001 - a refused choice is the node's to report in its turn
                log.info("PixVerse: node %s not started early: %s", node_id, exc)
                continue
            if len(node_jobs) > n:
                log.info("PixVerse: node %s not started early: its %d takes are claimed all or none, and at most %d "
                         "tasks are started early at once; it runs in its turn", node_id, len(node_jobs), n)
                continue
            started.append(self._run_node(self._permits, prompt_id, node_id, node_jobs))
        if started:
            log.info("PixVerse: starting %d node(s) of queued prompt %s early", len(started), prompt_id)
            await asyncio.gather(*started)

    async def _run_node(self, permits: _Permits, prompt_id: str, node_id: str, node_jobs: list) -> None:
        """All takes of one node at once, claimed together (all or none, as in the node's own turn)."""
        async with permits.hold(len(node_jobs)):
            if await _pending_prompt(prompt_id, wait=0) is None:
                return  # running now (the node does it) or removed from the queue: nothing sent
            try:
                results = await WORKER.run(_early_node(prompt_id, node_id, node_jobs))
            except Exception as exc:  # noqa: BLE001 - the node reports it in its turn (and resumes from the ledger)
                log.warning("PixVerse: early start of node %s in prompt %s stopped: %s", node_id, prompt_id, exc)
                return
            for result in results:
                if isinstance(result, BaseException):
                    log.warning("PixVerse: early start of node %s in prompt %s stopped: %s", node_id, prompt_id,
                                result)
                else:
                    log.info("PixVerse: early task %s of prompt %s (node %s) is ready: %s", result.task_uuid,
                             prompt_id, node_id, result.video_path)


async def _early_node(prompt_id: str, node_id: str, node_jobs: list) -> list:
    """A node's early takes, on the worker loop (thread `pixverse-ahead`): claimed together (one `ClaimGroup`
    on this loop), each remembered by its taskUUID once it is sent. Results or exceptions, one per take."""
    def seen(event) -> None:
        if event.task_uuid and event.phase == "submitting":
            with _EARLY_LOCK:
                if event.task_uuid in EARLY:
                    return
                early = EARLY[event.task_uuid] = EarlyTask(prompt_id, node_id, event.task_uuid,
                                                           threading.current_thread().name)
            log.info("PixVerse: early task %s of prompt %s (node %s): inputs encoded and hashed in thread %s",
                     event.task_uuid, prompt_id, node_id, early.worked_in)
    opts = dataclasses.replace(runtime.early_job_options(prompt_id), on_progress=seen)
    if len(node_jobs) > 1:
        opts = dataclasses.replace(opts, claim_group=ClaimGroup(len(node_jobs)))
    async with runtime.new_client() as client:
        return await asyncio.gather(*(job(client, opts) for job in node_jobs), return_exceptions=True)


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
