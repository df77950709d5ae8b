"""What a workflow slice declares: the shape every module of nodes/workflows/ fills in.

A `Workflow` is data plus three small functions; the front ends (ComfyUI nodes, the CLI, batch, start-ahead,
the estimate), the one draft request (nodes/workflows/draft.py) and the pipeline (nodes/job/pipeline.py) read it
and never name a workflow:

- `kind`: its row in the table of node kinds (nodes/spec/kinds.py: node id, title, description, the spec
  workflow whose models it lists, whether it takes `count`).
- `command`: generate's subcommand (`python -m nodes generate COMMAND`) and a batch row's `workflow`.
- `media`: the inputs that become uploads (`Media`), in upload order: node input, CLI flag and batch-row key
  at once; the pipeline checks, encodes and uploads each by its `kind`, the draft puts a stand-in in its place.
- `widgets(spec)`: the node's inputs beyond the media (in definition order; their public order is
  nodes/requests/input_order.json), `count` excepted (added for counted kinds).
- `build(call, layout)`: the builder call: widget values, upload references and image sizes → the task
  (nodes/requests/tasks.py), in a request layout. `model(values, spec)`: the model it will run.
- `add_flags(parser, spec)`: generate's flags beyond the media ones; `values(args)`: parsed flags → the
  same widget values a node has.
- `stand_in_text`: free-text inputs a draft may replace by a stand-in when not known (a linked prompt).
- `start_ahead`: whether queued prompts may start it early (nodes/comfy/ahead.py).

May import `spec`, `requests` (tasks, widgets), `errors` and the standard library only.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Optional

from ..requests.tasks import BuiltTask
from ..spec import CapabilitySpec, ModelSpec

MediaKind = Literal["image", "video", "audio"]


@dataclass(frozen=True)
class Media:
    """An input that becomes an upload. Its `name` is the node input, the CLI flag (`--first-frame`) and
    the batch-row key (a path relative to the job file)."""

    name: str
    kind: MediaKind
    help: str = ""                 # the CLI flag's help
    required: bool = False         # the CLI flag is required
    assumed: bool = False          # a draft that cannot see it (a linked input at queue time) assumes it is there
    unless: Optional[str] = None   # … unless this text input is filled in (LipSync: audio, or speech_text)
    sized: bool = False            # image: its (width, height) shapes the request
    frames: bool = False           # video: IMAGE `frames` at `frames_fps` may be connected instead (nodes)
    purpose: str = ""              # video: what it is for, said when a picture is given instead


@dataclass(frozen=True)
class BuildCall:
    """What a builder call gets: the widget values, each upload's reference (a stand-in in a draft, None
    when the input is not given) and the (width, height) of the `sized` images."""

    values: Mapping[str, Any]
    refs: Mapping[str, Optional[str]]
    sizes: Mapping[str, tuple[int, int]]
    spec: CapabilitySpec


@dataclass(frozen=True)
class Workflow:
    """One workflow: everything particular to it (see the module docstring)."""

    kind: str
    command: str
    media: tuple[Media, ...]
    widgets: Callable[[CapabilitySpec], list]
    model: Callable[[Mapping[str, Any], CapabilitySpec], ModelSpec]
    build: Callable[[BuildCall, Optional[str]], BuiltTask]
    add_flags: Callable[[argparse.ArgumentParser, CapabilitySpec], None]
    values: Callable[[argparse.Namespace], dict[str, Any]]
    stand_in_text: tuple[str, ...] = ()
    start_ahead: bool = True

    def media_named(self, name: str) -> Optional[Media]:
        return next((m for m in self.media if m.name == name), None)
