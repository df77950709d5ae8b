"""A made-up workflow, added the way a new one is: one module in nodes/workflows/ plus its spec rows (its
row in the table of node kinds; its models are the spec's image-to-video models, so pixverse.json needs no
edit). "Sketch to video": a sketch image and a prompt → a video. Plain Python (no pytest): the ComfyUI
subprocess of tests/test_new_workflow.py installs it the same way.

`install(folder)` writes the module into `folder`, adds `folder` to the package's search path and the row
to the kinds table, and rereads the workflow table; `remove(folder)` undoes it."""
from __future__ import annotations

import sys
from pathlib import Path

KIND = "sketch_to_video"
NODE_ID = "RunwarePixVerseSketchToVideoTest"
COMMAND = "sketch-to-video"

MODULE = '''"""Sketch to video (made up by tests/made_up_workflow.py): a sketch and a prompt → a video."""
from ..requests import widgets
from ..requests.tasks import build_image_to_video, resolve_model
from ..requests.widgets import Widget
from ..spec.kinds import workflow_of
from . import generation
from .protocol import Media, Workflow

KIND = "sketch_to_video"


def _choices(values, spec):
    return widgets.generation_choices({k: v for k, v in values.items() if k != "sketch"}, spec)


WORKFLOW = Workflow(
    kind=KIND, command="sketch-to-video",
    media=(Media("sketch", "image", help="the sketch to animate", required=True, assumed=True, sized=True),),
    widgets=lambda spec: [Widget("sketch", "IMAGE", "The sketch to animate."),
                          *generation.core_widgets(spec, KIND, auto_aspect=True)],
    model=lambda values, spec: resolve_model(spec, _choices(values, spec).model, workflow_of(KIND)),
    build=lambda call, layout: build_image_to_video(_choices(call.values, call.spec), call.refs["sketch"], None,
                                                    first_frame_size=call.sizes["sketch"], spec=call.spec,
                                                    layout=layout),
    add_flags=lambda p, spec: generation.add_flags(p, spec, workflow_of(KIND)),
    values=lambda args: generation.values_from_flags(args, aspect_default="auto"),
    stand_in_text=("prompt",),
)
'''


def install(folder: Path) -> None:
    import nodes.workflows as workflows
    from nodes.spec import kinds

    folder = Path(folder)
    (folder / f"{KIND}.py").write_text(MODULE, encoding="utf-8")
    row = kinds.NodeKind(KIND, NODE_ID, "PixVerse Sketch to Video (test)", "A made-up workflow of the tests.",
                         workflow="image-to-video", counted=True)
    kinds.KINDS = kinds.KINDS + (row,)
    kinds.BY_KIND[KIND] = row
    kinds.BY_NODE_ID[NODE_ID] = row
    kinds.NODE_IDS[KIND] = NODE_ID
    kinds.NODE_WORKFLOWS[KIND] = row.workflow
    workflows.__path__.append(str(folder))
    workflows.discover()


def remove(folder: Path) -> None:
    import nodes.workflows as workflows
    from nodes.spec import kinds

    workflows.__path__.remove(str(folder))
    kinds.KINDS = tuple(k for k in kinds.KINDS if k.kind != KIND)
    for table in (kinds.BY_KIND, kinds.NODE_IDS, kinds.NODE_WORKFLOWS):
        table.pop(KIND, None)
    kinds.BY_NODE_ID.pop(NODE_ID, None)
    sys.modules.pop(f"nodes.workflows.{KIND}", None)
    workflows.discover()
