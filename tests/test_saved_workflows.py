"""Workflows users saved with an earlier release keep their values after inputs were added.

ComfyUI stores widget values by position, so a new input must only ever be appended: every node's
widgets start with the widgets it had before, and a workflow saved then gives, queued now, exactly the
values that were saved (the frontend fills widgets in order; `ui_to_api` does the same). The fixtures
are the example workflows as release 0.1 shipped them, with their API twins.
"""
import json
from pathlib import Path

import pytest

import workflow_tools as T

SAVED = Path(__file__).parent / "fixtures" / "saved_v0.1"
OLD_ORDER = json.loads((SAVED.parent / "widget_order_v0.1.json").read_text())


def test_new_inputs_are_only_appended():
    now = {t: [w.name for w in d.widgets] for t, d in T.pack_nodes().items()}
    for node_type, before in OLD_ORDER.items():
        assert now[node_type][:len(before)] == before, node_type


@pytest.mark.parametrize("path", sorted(SAVED.glob("*.json")), ids=lambda p: p.stem)
def test_a_workflow_saved_before_queues_the_values_it_saved(path):
    old_ui = json.loads(path.read_text())
    old_api = json.loads((SAVED / "api" / path.name).read_text())
    assert T.ui_to_api(old_ui) == old_api
    # and the values are still valid choices for today's nodes
    assert T.check_ui_workflow(old_ui) == []
