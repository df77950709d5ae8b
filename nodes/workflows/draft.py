"""A workflow's inputs → the task it would send: the one draft request.

Whatever must know what a run would send, before the uploads are made, asks here: queue-time validation
(nodes/comfy/nodes.py), the cost estimate route, the CLI and batch (nodes/cli/), and the pipeline, which
checks every choice with this draft before it encodes or uploads anything (nodes/job/pipeline.py). Each
upload is a stand-in reference (`PLACEHOLDER_REF`); from a node's widget values, inputs that arrive by
link (a first frame, a video, a linked prompt) are not known either: stand-ins take their place and the
draft is not exact. What is particular to a workflow — its uploads, its builder call — is its slice's
(nodes/workflows/); this module names none. The task is built through the layout choice as a run builds
it: in the forced layout when one is set (and the model speaks it), else in the first of the model's
layouts that can express the request (nodes/requests/tasks.build_in_any_layout). Runware's schema for the
model, where it can be read, judges the drafted task last (nodes/requests/schema.py): it decides over the
spec's rules, and a task it refuses raises here, before anything is uploaded; where it cannot be read the
draft's notices say so. It lives with the workflow table it iterates (nodes/workflows/).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from ..errors import PixVerseInputError
from ..spec import CapabilitySpec, ModelSpec, load_spec
from ..requests import schema
from ..requests.tasks import BuiltTask, build_in_any_layout
from . import WORKFLOWS, BuildCall

PLACEHOLDER_REF = "00000000-0000-4000-8000-000000000000"  # stands in for an upload not made yet
PLACEHOLDER_PROMPT = "placeholder prompt"                  # stands in for free text not known or not sendable
PLACEHOLDER_FRAME_SIZE = (1000, 1000)  # a first frame not seen yet: aspect_ratio "auto" measures a square


@dataclass(frozen=True)
class Draft:
    """The task a node would send, and whether it is exactly that task (every input known)."""

    built: BuiltTask
    exact: bool
    verdict: Optional[schema.Verdict] = None  # what Runware's schema said (None: not asked)

    @property
    def task(self) -> dict[str, Any]:
        return self.built.task


@dataclass(frozen=True)
class Drafting:
    """A workflow's request with stand-ins for its uploads, before a layout is chosen: the model it runs
    and `build(layout)`. `exact`: no stand-in but for the uploads' references was needed, and none of those."""

    model: ModelSpec
    build: Callable[[str], BuiltTask]
    exact: bool


def _given(value: Any) -> bool:
    # a tensor, a path, an AUDIO dict, or True (the web extension marks a connected input so)
    return value is not None and value is not False


def prepare(kind: str, values: Mapping[str, Any], *, spec: Optional[CapabilitySpec] = None,
            sizes: Optional[Mapping[str, tuple[int, int]]] = None, known: bool = False) -> Drafting:
    """The draft of workflow `kind` (nodes/workflows/) for these input `values`, before a layout is chosen.

    `known`: every input is in `values` (the CLI, a run): an upload stands in only for an input that is
    there, and no text is stood in. Otherwise (a node's widget values) an input not in `values` is assumed
    as its slice says, and empty free text gets a stand-in. `sizes`: the (width, height) of the images
    whose size shapes the request; unknown, a square. A refused choice raises its PixVerseInputError."""
    if kind not in WORKFLOWS:
        raise PixVerseInputError("node", kind, list(WORKFLOWS), "not a node that sends a task")
    workflow, spec = WORKFLOWS[kind], spec or load_spec()
    values = dict(values)
    exact = True
    if not known:
        for name in workflow.stand_in_text:
            exact = exact and bool(values.get(name))
            values[name] = values.get(name) or PLACEHOLDER_PROMPT
    refs: dict[str, Optional[str]] = {}
    for media in workflow.media:
        if media.name in values or known:
            there = _given(values.get(media.name)) or (media.frames and _given(values.get("frames")))
        else:
            there = media.assumed and not (media.unless and values.get(media.unless))
        refs[media.name] = PLACEHOLDER_REF if there else None
    exact = exact and not any(refs.values())
    sized = {m.name: (sizes or {}).get(m.name, PLACEHOLDER_FRAME_SIZE) for m in workflow.media if m.sized}
    model = workflow.model(values, spec)
    call = BuildCall(values, refs, sized, spec)
    return Drafting(model, lambda layout: workflow.build(call, layout), exact)


def draft(kind: str, values: Mapping[str, Any], *, motion: Optional[Mapping[str, Any]] = None,
          spec: Optional[CapabilitySpec] = None, layout: Optional[str] = None,
          stand_in_bad_text: bool = False, sizes: Optional[Mapping[str, tuple[int, int]]] = None,
          known: bool = False, judged: bool = True, fetch: bool = True) -> Draft:
    """The task a node of `kind` (a workflow of nodes/workflows/) would send for its input `values` and
    its motion link ({"effect": …} / {"camera_movement": …}); `sizes` and `known` as `prepare` says.

    `layout`: the forced request layout (the configuration's `layout`, nodes/config.py), if any.
    A choice the node would refuse raises its PixVerseInputError. With `stand_in_bad_text`, a prompt
    too short or too long to send is replaced by a stand-in instead (it does not change the kind of
    run, so a cost can still be told) and the draft is not exact. `judged` (the default): Runware's schema
    for the model judges the task too (RUNWARE_SCHEMAS_URL; a refusal raises its PixVerseInputError). `fetch`
    False: only a copy already kept on disk is read, nothing is fetched (a caller on ComfyUI's event loop,
    whose copies a background thread keeps fresh: nodes/comfy/entry.py)."""
    if kind not in WORKFLOWS:
        raise PixVerseInputError("node", kind, list(WORKFLOWS), "not a node that sends a task")
    spec = spec or load_spec()
    values = dict(values)
    if motion:
        values["motion"] = dict(motion)
    found = _schema_of(kind, values, spec, fetch) if judged else None
    spec = schema.spec_for(spec, found)
    try:
        drafting = prepare(kind, values, spec=spec, sizes=sizes, known=known)
        built, exact = _in_layout(drafting, layout), drafting.exact
    except PixVerseInputError as exc:
        free_text = {name: PLACEHOLDER_PROMPT for name in spec.prompt_fields if values.get(name)}
        if not (stand_in_bad_text and exc.parameter in spec.prompt_fields and free_text):
            raise
        drafting = prepare(kind, {**values, **free_text}, spec=spec, sizes=sizes, known=known)
        built, exact = _in_layout(drafting, layout), False
    if found is None:
        return Draft(built, exact)
    verdict = schema.check(built.task, built.model.air, spec=spec, found=found, overruled=built.overruled)
    verdict.raise_refusal()
    if verdict.note:
        built.notices.append(verdict.note)
    return Draft(built, exact, verdict)


def _schema_of(kind: str, values: Mapping[str, Any], spec: CapabilitySpec, fetch: bool) -> Optional[schema.Found]:
    """Runware's schema for the model the values choose (None: no such model; the build refuses it)."""
    try:
        model = WORKFLOWS[kind].model(values, spec)
    except PixVerseInputError:
        return None
    return schema.lookup(model.air, kept_only=not fetch)


def _in_layout(drafting: Drafting, layout: Optional[str]) -> BuiltTask:
    forced = [layout] if layout and layout in drafting.model.layouts else None
    return build_in_any_layout(drafting.model, drafting.build, forced)
