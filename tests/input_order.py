"""The rule that keeps saved workflows loading: a node's inputs are only ever appended.

A UI-format workflow stores a node's widget values by position and its links by input slot, so an
input may be added at the end of its list, never inserted, removed or moved. The snapshot
(fixtures/input_order.json) is the order of every node's widgets and sockets when it was taken; the
current order, for any spec, must start with it. A new setting in the spec's data therefore needs no
edit to any test; a new node adds its entry to the snapshot (`python tests/input_order.py`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import workflow_tools as T
from nodes.requests import widgets
from nodes.spec import CapabilitySpec
from nodes.spec.kinds import KINDS
from nodes.workflows import widgets_for

SNAPSHOT = Path(__file__).with_name("fixtures") / "input_order.json"


def input_order(spec: Optional[CapabilitySpec] = None) -> dict[str, dict[str, list[str]]]:
    """Per node id, as the frontend lays the node out: widgets in widgets_values order (a seed's
    control_after_generate after it) and sockets in slot order."""
    order = {}
    for k in KINDS:
        node = T._pack_def(k.node_id, widgets_for(k.kind, spec), [])
        order[k.node_id] = {"widgets": [w.name for w in node.widgets], "sockets": [s[0] for s in node.sockets]}
    return order


def snapshot() -> dict[str, dict[str, list[str]]]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def not_appended(current: dict, before: dict) -> list[str]:
    """What breaks the rule: a node of the snapshot that is gone, or whose list does not start with
    the snapshot's. Empty when inputs were only appended."""
    problems = []
    for node_id, lists in before.items():
        if node_id not in current:
            problems.append(f"{node_id}: gone")
            continue
        for part, names in lists.items():
            now = current[node_id][part]
            if now[:len(names)] != names:
                problems.append(f"{node_id} {part}: {now} does not start with {names}")
    return problems


if __name__ == "__main__":  # take the snapshot again (only ever to add a new node's entry)
    SNAPSHOT.write_text(json.dumps({**input_order(), **snapshot()} if SNAPSHOT.exists() else input_order(),
                                   indent=1) + "\n", encoding="utf-8")
