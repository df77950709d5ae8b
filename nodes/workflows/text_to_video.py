"""Text to video: a prompt (and the spec's settings, a motion link) → a video. No uploads."""
from __future__ import annotations

from typing import Optional

from ..requests import widgets
from ..requests.tasks import BuiltTask, build_text_to_video, resolve_model
from ..spec.kinds import workflow_of
from . import generation
from .protocol import BuildCall, Workflow

KIND = "text_to_video"


def _model(values, spec):
    return resolve_model(spec, widgets.generation_choices(values, spec).model, workflow_of(KIND))


def _build(call: BuildCall, layout: Optional[str]) -> BuiltTask:
    return build_text_to_video(widgets.generation_choices(call.values, call.spec), spec=call.spec, layout=layout)


WORKFLOW = Workflow(
    kind=KIND, command="text-to-video", media=(),
    widgets=lambda spec: generation.core_widgets(spec, KIND),
    model=_model, build=_build,
    add_flags=lambda p, spec: generation.add_flags(p, spec, workflow_of(KIND)),
    values=generation.values_from_flags,
    stand_in_text=("prompt",),
)
