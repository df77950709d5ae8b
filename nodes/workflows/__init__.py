"""Workflows: one module per workflow (text to video, image to video, LipSync, Modify), each a `Workflow`
(protocol.py) named `WORKFLOW`: its node inputs beyond the spec's settings, how its inputs become uploads
and a request (the builder call), its CLI flags and batch-row fields, whether it starts ahead; its
preflight checks follow from its media. `WORKFLOWS` is the one table, keyed by kind, in the order of the
table of node kinds (nodes/spec/kinds.py); every module of this package with a `WORKFLOW` is in it, so a
new workflow is one module here plus its rows in the spec. Recover fetches a task and builds none: it is
not a workflow here (its node and command are nodes/comfy/nodes.py and nodes/cli/main.py).

Beside the slices: the one draft request (`draft`: a workflow's inputs → the task it would send, with
stand-ins for uploads, judged by Runware's schema), which iterates this table. Above `requests` (tasks,
widgets, schema); below the job and the front ends, which iterate this table; never `job`, `client`,
`media` or a front end.

May import: requests, spec, config, errors.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Optional

from ..requests import widgets
from ..requests.widgets import Widget
from ..spec import CapabilitySpec, load_spec
from ..spec.kinds import BY_KIND, MOTION_NODES
from .protocol import BuildCall, Media, Workflow

__all__ = ["WORKFLOWS", "BuildCall", "Media", "Workflow", "by_command", "discover", "widgets_for"]

_SHARED = ("protocol", "generation", "draft")  # modules of this package that are not a workflow
WORKFLOWS: dict[str, Workflow] = {}


def discover() -> dict[str, Workflow]:
    """(Re)read the table: the `WORKFLOW` of every module in this package's folders, in the order of the
    table of node kinds. A workflow whose kind has no row there is an error naming it."""
    found: dict[str, Workflow] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _SHARED or info.name.startswith("_"):
            continue
        workflow = getattr(importlib.import_module(f"{__name__}.{info.name}"), "WORKFLOW", None)
        if isinstance(workflow, Workflow):
            if workflow.kind not in BY_KIND:
                raise LookupError(f"workflow module {info.name}: kind {workflow.kind!r} has no row in "
                                  "nodes/spec/kinds.py (its node id, title and description)")
            found[workflow.kind] = workflow
    order = list(BY_KIND)
    WORKFLOWS.clear()
    WORKFLOWS.update(sorted(found.items(), key=lambda item: order.index(item[0])))
    return WORKFLOWS


def by_command(command: str) -> Optional[Workflow]:
    """The workflow of generate's subcommand (a batch row's `workflow`), or None."""
    return next((w for w in WORKFLOWS.values() if w.command == command), None)


def widgets_for(kind: str, spec: Optional[CapabilitySpec] = None) -> list[Widget]:
    """The inputs of a node of `kind` (nodes/spec/kinds.py), in their public order (widgets.PUBLIC_ORDER)."""
    spec = spec or load_spec()
    if kind in WORKFLOWS:
        found = WORKFLOWS[kind].widgets(spec)
    elif kind in MOTION_NODES:
        found = widgets.motion_node_widgets(kind, spec)
    elif kind in BY_KIND:  # Recover
        found = widgets.recover_widgets()
    else:
        raise KeyError(f"unknown node kind {kind!r}")
    return widgets.in_public_order(kind, found + ([widgets.count_widget()] if BY_KIND[kind].counted else []))


discover()
