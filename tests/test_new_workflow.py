"""A new workflow is one module plus its spec rows, and nothing else (issue 23).

tests/made_up_workflow.py adds "Sketch to video" the way a new workflow is added: a module in
nodes/workflows/ (its node inputs, its upload, its builder call, its CLI flags) and its row in the table of
node kinds. With no other edit it is a node (its inputs, its ComfyUI schema), a `generate` subcommand, a batch
row kind that runs through the pipeline against the emulator, and an estimate (the node's estimate route and
the batch's).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import made_up_workflow as made
from support.comfy import comfyui_path
from web_expect import load_routes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sketch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workflows")
    made.install(folder)
    yield folder
    made.remove(folder)


def _sketch_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((480, 640, 3), np.uint8)
    pixels[100:380, 200:440] = (200, 40, 40)
    Image.fromarray(pixels).save(path)
    return path


def test_it_joins_the_table_with_its_node_inputs(sketch):
    from nodes.workflows import WORKFLOWS, by_command, widgets_for

    assert list(WORKFLOWS)[-1] == made.KIND and by_command(made.COMMAND) is WORKFLOWS[made.KIND]
    names = [w.name for w in widgets_for(made.KIND)]
    assert names[0] == "sketch" and "prompt" in names and names[-1] == "count"  # counted: `count` comes last
    made.remove(sketch)
    try:
        assert made.KIND not in WORKFLOWS  # gone with its module: the table is what the package holds
    finally:
        made.install(sketch)


def test_its_node_gets_an_estimate_and_a_queue_time_check(sketch, monkeypatch, tmp_path):
    from nodes.workflows.draft import PLACEHOLDER_REF, draft
    from nodes.workflows import widgets_for

    from nodes.spec import load_spec

    values = {w.name: w.default for w in widgets_for(made.KIND) if w.kind not in ("IMAGE", "motion")}
    values.update(model=load_spec().model("pixverse:1@5").label, resolution="540p")
    drafted = draft(made.KIND, {**values, "prompt": "an ink cat stretches"})
    assert PLACEHOLDER_REF in json.dumps(drafted.task) and not drafted.exact  # the sketch stands in for its upload
    routes = load_routes()
    monkeypatch.setattr(routes, "ledger_if_present", lambda: None)  # ComfyUI's ledger path needs ComfyUI
    body = {"node": made.NODE_ID, "values": {**values, "prompt": "an ink cat stretches", "count": 2}}
    status, reply = routes.estimate_for(body, str(tmp_path))
    # priced as its kind of run (no run yet, no listed price here: "unknown", said as such), for both videos
    assert status == 200 and reply["source"] != "invalid" and reply["count"] == 2, reply
    assert json.loads(reply["cost_class"])["inputs_given"] == {"frames": ["first"]}, reply  # the sketch's stand-in
    status, reply = routes.estimate_for({**body, "values": {**body["values"], "duration": 999}}, str(tmp_path))
    assert reply["source"] == "invalid" and "duration" in reply["text"], reply


def test_it_is_a_cli_subcommand_and_a_batch_row_kind(sketch, tmp_path, capsys):
    from nodes.cli.main import build_parser, main

    args = build_parser().parse_args(["generate", made.COMMAND, "--sketch", "s.png", "--prompt", "ink"])
    assert (args.workflow, args.sketch, args.prompt) == (made.COMMAND, Path("s.png"), "ink")
    _sketch_png(tmp_path / "in" / "s.png")
    rows = tmp_path / "in" / "jobs.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in (
        {"workflow": made.COMMAND, "sketch": "s.png", "prompt": "an ink cat stretches", "seed": 3},
        {"workflow": made.COMMAND, "prompt": "no sketch given"},
        {"workflow": made.COMMAND, "sketch": "s.png", "prompt": "ink", "duration": 999},
    )) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["batch", str(rows), "--offline", "--job-seconds", "0.2", "--out", str(out), "--jobs", "2"])
    err = capsys.readouterr().err
    results = [json.loads(line) for line in (out / "batch-results.jsonl").read_text().splitlines()]
    assert code == 1 and [r["status"] for r in results] == ["done", "refused", "refused"], (err, results)
    assert Path(results[0]["file"]).is_file() and results[0]["taskUUID"]
    assert "--sketch" in results[1]["error"] and "duration" in results[2]["error"], results
    assert "estimate: $" in err  # the batch priced the made-up row before running it


NODE_SCRIPT = """
import json, sys
checkout, root, tests, folder = sys.argv[1:5]
sys.argv = [sys.argv[0], "--cpu"]
sys.path[:0] = [root, tests, checkout]  # this pack's `nodes` before ComfyUI's nodes.py
import comfy.options; comfy.options.enable_args_parsing()
import comfy.cli_args  # noqa: F401 - ComfyUI's arguments (--cpu) before its modules load
import made_up_workflow as made
made.install(folder)
from nodes.comfy.nodes import NODE_CLASSES
node = next(c for c in NODE_CLASSES if c.define_schema().node_id == made.NODE_ID)
schema = node.define_schema()
print(json.dumps({"display_name": schema.display_name, "inputs": [i.id for i in schema.inputs],
                  "outputs": [o.display_name for o in schema.outputs], "nodes": len(NODE_CLASSES)}))
"""


def test_it_is_a_comfyui_node(tmp_path):
    checkout = comfyui_path()
    if checkout is None:
        pytest.skip("COMFYUI_PATH is not set: no ComfyUI checkout to define the made-up node in")
    python = checkout / "venv" / "bin" / "python"
    proc = subprocess.run([str(python if python.exists() else sys.executable), "-c", NODE_SCRIPT, str(checkout),
                           str(ROOT), str(ROOT / "tests"), str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=str(checkout))
    assert proc.returncode == 0, proc.stderr[-3000:]
    node = json.loads(proc.stdout.strip().splitlines()[-1])
    assert node["display_name"] == "PixVerse Sketch to Video (test)" and node["nodes"] == 8
    assert node["inputs"][0] == "sketch" and "prompt" in node["inputs"] and node["inputs"][-1] == "count"
    assert node["outputs"] == ["video", "frames", "audio", "fps", "info"]
