"""The PixVerse nodes (ComfyUI V3). Thin: read inputs, call the pipeline, report progress.

Each node's id, title and description come from the table of node kinds (nodes/spec/kinds.py); there is
one node per workflow of the workflow table (nodes/workflows/), its inputs from `widgets_for`; queue-time
validation builds the one draft request (nodes/workflows/draft.py)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from comfy_api.latest import io

from ..requests import widgets
from ..job import pipeline
from ..workflows.draft import draft
from ..errors import PixVerseError, PixVerseInputError, RunwareInterrupted
from ..spec import load_spec
from ..spec.kinds import BY_KIND, KINDS, MOTION_NODES
from ..workflows import WORKFLOWS, widgets_for
from . import ahead, jobs, posted, runtime
from .runtime import NodeRuntime, job_config, new_client, wiring_fingerprint
from .schema import Motion, generator_outputs, to_input

log = logging.getLogger("pixverse")


def validate_draft(kind: str, node_id: Any) -> bool | str:
    """Queue-time check of a node that sends a task: True, or why it refuses its values (said once).

    The values come from the prompt being posted (posted.py), so ComfyUI's own checks (ranges, options)
    still run for every input; when there is none (not a /prompt request), the run checks before any upload."""
    values = posted.node_values(node_id)
    if values is None:
        return True
    values.update(posted.linked_stand_ins(node_id))
    try:
        layout = job_config().layout  # a variable or setting that is not allowed refuses the prompt, naming it
        for one in jobs.variations(values):
            draft(kind, one, layout=layout, fetch=False)  # on the server's loop: kept schemas only
    except PixVerseError as exc:  # a refused choice, or a variable or setting refused by name (nodes/config.py)
        return str(exc)
    return True


async def _run(cls, kind: str, inputs: dict, *, local=None) -> io.NodeOutput:
    """Run a node's jobs (one per video, `count` of them) with ComfyUI's progress, interrupt and output
    folder; map errors. `local(opts)`, when given, may answer without Runware (and without a key)."""
    node_jobs = jobs.jobs(kind, inputs)
    rt = NodeRuntime(cls.hidden.unique_id, len(node_jobs), sends_tasks=kind in WORKFLOWS)
    wanted = widgets.wired_outputs(cls.hidden.prompt, cls.hidden.unique_id)
    try:
        group = pipeline.ClaimGroup(len(node_jobs)) if len(node_jobs) > 1 else None  # all of them claimed, or none
        options = [rt.job_options(wanted, i, group) for i in range(len(node_jobs))]
        result = await local(options[0]) if local is not None else None
        if result is not None:
            return rt.outputs([result], BY_KIND[kind].counted)
        async with new_client() as client:
            results = await asyncio.gather(*(job(client, opts) for job, opts in zip(node_jobs, options)),
                                           return_exceptions=True)
    except asyncio.CancelledError:  # ComfyUI cancels the other nodes of a prompt when one fails
        rt.text(rt.stopped("Stopped because another node of this prompt failed"))
        raise
    except PixVerseError as exc:
        rt.text(f"error: {exc}")
        raise
    except Exception as exc:  # noqa: BLE001 - shown as a PixVerse error naming the task, not a bare internal one
        raise rt.unexpected(exc) from exc
    settled = _settled(rt, results)
    rt.notices.extend(ahead.mismatch_notices(runtime.prompt_id(), cls.hidden.unique_id, settled, rt.ledger))
    return rt.outputs(settled, BY_KIND[kind].counted)


def _settled(rt: NodeRuntime, results: list) -> list[pipeline.JobResult]:
    """The results of every job, or the first failure (a cancel first), naming the videos that did come."""
    failures = [r for r in results if isinstance(r, BaseException)]
    if not failures:
        return results
    if rt.cancelled or any(isinstance(f, RunwareInterrupted) for f in failures):
        raise rt.interrupt()
    first = next((f for f in failures if isinstance(f, PixVerseError)), failures[0])
    if not isinstance(first, PixVerseError):
        raise rt.unexpected(first) from first
    done = [r for r in results if not isinstance(r, BaseException)]
    if done:  # paid and on disk: said, so nobody pays for them again
        first.args = (f"{first} ({len(done)} of the {len(results)} videos finished and are kept: "
                      + ", ".join(str(r.video_path) for r in done) + "; queue the prompt again to get them "
                      "without a new charge)",)
    rt.text(f"error: {first}")
    raise first


class _VideoResultNode(io.ComfyNode):
    """A node with the generators' outputs (video, frames, audio, fps, info): lists, one item per video,
    on a node with `count`. Only connected frames and audio are decoded, so their wiring is part of the
    node's cache fingerprint."""

    KIND = ""  # its row in nodes/spec/kinds.py

    @classmethod
    def fingerprint_inputs(cls, **kw):
        return wiring_fingerprint()

    @classmethod
    def define_schema(cls) -> io.Schema:
        kind = BY_KIND[cls.KIND]
        inputs = widgets_for(cls.KIND)
        return io.Schema(
            node_id=kind.node_id, display_name=kind.display_name, category=widgets.CATEGORY,
            description=kind.description, inputs=[to_input(w) for w in inputs],
            outputs=generator_outputs({w.name for w in inputs}, as_lists=kind.counted),
            hidden=[io.Hidden.unique_id, io.Hidden.prompt])

    @classmethod
    def validate_inputs(cls, model=None) -> bool | str:
        # One input named: ComfyUI checks the others itself and says a refusal once (posted.py).
        return validate_draft(cls.KIND, cls.hidden.unique_id)

    @classmethod
    async def execute(cls, **kw) -> io.NodeOutput:
        return await _run(cls, cls.KIND, kw)


class _MotionNode(io.ComfyNode):
    """A node that picks one motion setting (its kind's `motion_setting`) for a generator's motion input."""

    KIND = ""  # its row in nodes/spec/kinds.py

    @classmethod
    def define_schema(cls):
        kind = BY_KIND[cls.KIND]
        return io.Schema(
            node_id=kind.node_id,
            display_name=kind.display_name,
            category=widgets.CATEGORY,
            description=kind.description,
            inputs=[to_input(w) for w in widgets_for(cls.KIND)],
            outputs=[Motion.Output("motion", display_name="motion",
                                   tooltip="Connect to a PixVerse generator's motion input.")],
        )

    @classmethod
    def validate_inputs(cls, **kw) -> bool | str:
        name = MOTION_NODES[cls.KIND]
        value, values = kw.get(name), load_spec().setting(name).values
        return True if value in values else str(PixVerseInputError(name, value, list(values)))

    @classmethod
    def execute(cls, **kw) -> io.NodeOutput:
        name = MOTION_NODES[cls.KIND]
        return io.NodeOutput(widgets.motion_value(**{name: kw[name]}))


class PixVerseEffect(_MotionNode):
    KIND = "effect"


class PixVerseCamera(_MotionNode):
    KIND = "camera"


class PixVerseRecover(_VideoResultNode):
    """A task submitted earlier (cancelled, timed out, ComfyUI restarted) → the generators' outputs."""

    KIND = "recover"

    @classmethod
    def validate_inputs(cls, task_uuid) -> bool | str:
        try:
            widgets.parse_task_uuid(task_uuid)
        except PixVerseInputError as exc:
            return str(exc)
        return True

    @classmethod
    async def execute(cls, task_uuid) -> io.NodeOutput:
        uuid = widgets.parse_task_uuid(task_uuid)
        return await _run(cls, cls.KIND, {"task_uuid": uuid}, local=lambda opts: pipeline.recover_local(uuid, opts))


def _workflow_node(kind: str) -> type:
    """The node of a workflow (nodes/workflows/): a `_VideoResultNode` of its kind, named after its node id."""
    return type(BY_KIND[kind].node_id.removeprefix("Runware"), (_VideoResultNode,),
                {"KIND": kind, "__module__": __name__, "__doc__": BY_KIND[kind].description})


_FIXED = {cls.KIND: cls for cls in (PixVerseEffect, PixVerseCamera, PixVerseRecover)}
# Every node, in the order of the table of node kinds: one per workflow, the motion nodes and Recover.
NODE_CLASSES = [_FIXED[k.kind] if k.kind in _FIXED else _workflow_node(k.kind) for k in KINDS
                if k.kind in _FIXED or k.kind in WORKFLOWS]
