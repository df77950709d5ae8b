"""A node's widget values → the task it would send: the one draft request.

Whatever must know before a run what a node would send asks here: queue-time validation
(nodes/comfy/nodes.py), the cost estimate route, and anything later. Inputs that arrive by link
(images, video, audio, a linked prompt) are not known from widget values: stand-ins take their place
and the draft is not exact. The task is built through the layout choice as a run builds it: in the
forced layout when one is set (and the model speaks it), else in the first of the model's layouts
that can express the request (nodes/requests/tasks.build_in_any_layout). Runware's schema for the model, where
it can be read, judges the drafted task last (schema.py): it decides over the spec's rules, and a task it
refuses raises here, before anything is uploaded; where it cannot be read the draft's notices say so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from . import schema, widgets
from ..errors import PixVerseInputError
from ..spec import CapabilitySpec, ModelSpec, load_spec
from ..spec.kinds import NODE_WORKFLOWS
from .tasks import (BuiltTask, GenerationChoices, build_image_to_video, build_in_any_layout, build_lipsync,
                    build_modify, build_text_to_video, resolve_model)

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


def draft(kind: str, values: Mapping[str, Any], *, motion: Optional[Mapping[str, Any]] = None,
          spec: Optional[CapabilitySpec] = None, layout: Optional[str] = None,
          stand_in_bad_text: bool = False, judged: bool = True) -> Draft:
    """The task a node of `kind` (a generator kind of nodes/spec/kinds.py) would send for its widget
    `values` and its motion link ({"effect": …} / {"camera_movement": …}).

    `layout`: the forced request layout (the configuration's `layout`, nodes/config.py), if any.
    A choice the node would refuse raises its PixVerseInputError. With `stand_in_bad_text`, a prompt
    too short or too long to send is replaced by a stand-in instead (it does not change the kind of
    run, so a cost can still be told) and the draft is not exact. `judged` (the default): Runware's schema
    for the model judges the task too (RUNWARE_SCHEMAS_URL; a refusal raises its PixVerseInputError)."""
    if kind not in NODE_WORKFLOWS:
        raise PixVerseInputError("node", kind, list(NODE_WORKFLOWS), "not a node that sends a task")
    spec = spec or load_spec()
    values = dict(values)
    if motion:
        values["motion"] = dict(motion)
    exact = kind == "text_to_video" and bool(values.get("prompt"))
    found = _schema_of(kind, values, spec) if judged else None
    spec = schema.spec_for(spec, found)
    try:
        built = _build(kind, values, spec, layout)
    except PixVerseInputError as exc:
        free_text = {name: PLACEHOLDER_PROMPT for name in spec.prompt_fields if values.get(name)}
        if not (stand_in_bad_text and exc.parameter in spec.prompt_fields and free_text):
            raise
        built, exact = _build(kind, {**values, **free_text}, spec, layout), False
    if found is None:
        return Draft(built, exact)
    verdict = schema.check(built.task, built.model.air, spec=spec, found=found)
    verdict.raise_refusal()
    if verdict.note:
        built.notices.append(verdict.note)
    return Draft(built, exact, verdict)


def _schema_of(kind: str, values: Mapping[str, Any], spec: CapabilitySpec) -> Optional[schema.Found]:
    """Runware's schema for the model the values choose (None: no such model; the build refuses it)."""
    workflow = NODE_WORKFLOWS[kind]
    try:
        model = resolve_model(spec, values.get("model") or spec.default_model(workflow).air, workflow)
    except PixVerseInputError:
        return None
    return schema.lookup(model.air)


def _build(kind: str, values: Mapping[str, Any], spec: CapabilitySpec, layout: Optional[str]) -> BuiltTask:
    values = dict(values)
    if kind == "lipsync":
        model = resolve_model(spec, values.get("model") or spec.default_model("video-to-video").air,
                              "video-to-video")
        speech = values.get("speech_text") or None
        return _in_layout(model, layout, lambda name: build_lipsync(
            video=PLACEHOLDER_REF, audio=None if speech else PLACEHOLDER_REF, speech_text=speech,
            voice=values.get("voice"), model=model.air, spec=spec, layout=name))
    values["prompt"] = values.get("prompt") or PLACEHOLDER_PROMPT
    if kind == "modify":
        choices = widgets.modify_choices(values, spec)
        model = resolve_model(spec, choices.model, "modify")
        return _in_layout(model, layout, lambda name: build_modify(
            choices, PLACEHOLDER_REF, _last_ref(values, "reference_image"), spec=spec, layout=name))
    choices: GenerationChoices = widgets.generation_choices(values, spec)
    model = resolve_model(spec, choices.model, NODE_WORKFLOWS[kind])
    if kind == "image_to_video":
        return _in_layout(model, layout, lambda name: build_image_to_video(
            choices, PLACEHOLDER_REF, _last_ref(values, "last_frame"), first_frame_size=PLACEHOLDER_FRAME_SIZE,
            spec=spec, layout=name))
    return _in_layout(model, layout, lambda name: build_text_to_video(choices, spec=spec, layout=name))


def _last_ref(values: Mapping[str, Any], name: str) -> Optional[str]:
    """A stand-in for an optional image input that is connected (the web extension sends True for a
    connected input; at queue time a linked input is absent)."""
    value = values.get(name)
    return None if value is None or value is False else PLACEHOLDER_REF


def _in_layout(model: ModelSpec, layout: Optional[str], build: Callable[[str], BuiltTask]) -> BuiltTask:
    forced = [layout] if layout and layout in model.layouts else None
    return build_in_any_layout(model, build, forced)
