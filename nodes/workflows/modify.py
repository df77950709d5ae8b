"""Modify: a source video (or frames) changed as a prompt says, optionally following a reference image.
The result keeps the source's shape and length at the chosen resolution tier."""
from __future__ import annotations

from typing import Any, Optional

from ..requests import widgets
from ..requests.tasks import BuiltTask, GenerationChoices, build_modify, resolve_model
from ..requests.widgets import Widget, model_options, setting_widget, union
from ..spec import CapabilitySpec, load_spec
from ..spec.kinds import workflow_of
from ..spec.options import node_settings
from . import generation
from .protocol import BuildCall, Media, Workflow

KIND = "modify"


def _widgets(spec) -> list[Widget]:
    workflow = workflow_of(KIND)
    models = spec.models_for(workflow)
    default = spec.default_model(workflow)
    lim = spec.lipsync_limits
    return [
        Widget("model", "combo", "PixVerse Modify model.", model_options(spec, workflow), default.label),
        Widget("video", "VIDEO", f"The video to change (at most {lim.video_max_seconds:g} s). Connect this or frames.",
               optional=True),
        Widget("frames", "IMAGE", "Frames to change instead of a video; encoded to MP4 at frames_fps.", optional=True),
        Widget("frames_fps", "float", "Frame rate of the frames input.", default=24.0, min=1.0, max=120.0, step=1.0),
        Widget("reference_image", "IMAGE", "Optional: an image the change should follow (a look, an object, "
               "a character).", optional=True),
        Widget("prompt", "text", "What to change in the video ("
               f"{spec.text_limits['prompt'].min}-{spec.text_limits['prompt'].max} characters).", default=""),
        Widget("resolution", "combo", "Resolution tier of the result; it keeps the source video's shape and length.",
               union(m.resolutions for m in models), default.resolution_default),
        generation.seed_widget(spec),
        *[setting_widget(s, spec, workflow) for s in node_settings(spec, KIND)],
    ]


def choices(values: dict[str, Any], spec: Optional[CapabilitySpec] = None) -> GenerationChoices:
    """The node's widget values → the builder's choices (the source video gives shape, length and rate)."""
    spec = spec or load_spec()
    return widgets.generation_choices({k: v for k, v in values.items()
                                       if k in {"model", "prompt", "resolution", "seed"} | {s.input for s in spec.settings}},
                                      spec)


def _model(values, spec):
    return resolve_model(spec, choices(dict(values), spec).model, workflow_of(KIND))


def _build(call: BuildCall, layout: Optional[str]) -> BuiltTask:
    return build_modify(choices(dict(call.values), call.spec), call.refs["video"], call.refs["reference_image"],
                        spec=call.spec, layout=layout)


WORKFLOW = Workflow(
    kind=KIND, command="modify",
    media=(Media("video", "video", help="the video to change (≤ 30 s)", required=True, assumed=True, frames=True,
                 purpose="the video to modify"),
           Media("reference_image", "image",
                 help="optional: an image the change should follow (a look, an object, a character)")),
    widgets=_widgets, model=_model, build=_build,
    add_flags=lambda p, spec: generation.add_flags(p, spec, workflow_of(KIND), shaped=False),
    values=generation.values_from_flags,
    stand_in_text=("prompt",),
)
