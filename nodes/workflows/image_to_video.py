"""Image to video: a first frame (optionally a last frame) and a prompt → a video. The first frame's size
shapes the request (aspect ratio `auto` takes the listed size nearest to it)."""
from __future__ import annotations

from typing import Optional

from ..requests import widgets
from ..requests.tasks import BuiltTask, build_image_to_video, resolve_model
from ..requests.widgets import Widget
from ..spec import AUTO
from ..spec.kinds import workflow_of
from . import generation
from .protocol import BuildCall, Media, Workflow

KIND = "image_to_video"


def _widgets(spec) -> list[Widget]:
    return [
        Widget("first_frame", "IMAGE", "The video's first frame. A batch uses its first image. Fitted into "
               f"{spec.input_image.min_side}-{spec.input_image.max_side} px per side, keeping the aspect."),
        Widget("last_frame", "IMAGE", "Optional last frame: the video moves from the first frame to this one.",
               optional=True),
        *generation.core_widgets(spec, KIND, auto_aspect=True),
    ]


def _choices(values, spec):
    return widgets.generation_choices({k: v for k, v in values.items() if k not in ("first_frame", "last_frame")},
                                      spec)


def _model(values, spec):
    return resolve_model(spec, _choices(values, spec).model, workflow_of(KIND))


def _build(call: BuildCall, layout: Optional[str]) -> BuiltTask:
    return build_image_to_video(_choices(call.values, call.spec), call.refs["first_frame"], call.refs["last_frame"],
                                first_frame_size=call.sizes["first_frame"], spec=call.spec, layout=layout)


WORKFLOW = Workflow(
    kind=KIND, command="image-to-video",
    media=(Media("first_frame", "image", required=True, assumed=True, sized=True),
           Media("last_frame", "image")),
    widgets=_widgets, model=_model, build=_build,
    add_flags=lambda p, spec: generation.add_flags(p, spec, workflow_of(KIND)),
    values=lambda args: generation.values_from_flags(args, aspect_default=AUTO),
    stand_in_text=("prompt",),
)
