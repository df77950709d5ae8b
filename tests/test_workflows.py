"""The example workflows (example_workflows/*.json, UI format) and their API-format twins (api/*.json).

Without ComfyUI: every example is valid against the nodes' inputs (nodes/requests/widgets.py) and the spec (node
types, widget values in the frontend's order incl. the seed's control_after_generate, links, choices the
nodes would refuse), the API twins are exactly the converter's output, and the files are what the
builder makes. With COMFYUI_PATH: the node table agrees with a real ComfyUI's /object_info, and each
API twin runs through /prompt against the local Runware emulator.
"""
from __future__ import annotations

import copy
import json
import time

import pytest

import workflow_tools as T
from input_order import input_order, not_appended, snapshot
from support.wire import read_task
from support import keysafety
from support.comfy import comfyui_path
from nodes.requests import widgets as W
from nodes.spec.kinds import NODE_IDS
from nodes.spec import load_spec

SPEC = load_spec()
EXAMPLES = T.load_examples()
USES = {"text_to_video", "text_to_video_effect", "text_to_video_camera", "image_to_video",
        "image_to_video_first_last_frame", "lipsync_audio", "lipsync_speech", "text_to_video_v6_multishot",
        "image_to_video_v6_first_last_frame", "modify"}
GENERATORS = {NODE_IDS[k] for k in ("text_to_video", "image_to_video", "lipsync", "modify")}
needs_comfy = pytest.mark.skipif(comfyui_path() is None,
                                 reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the examples in")


def canon(data):
    return json.loads(json.dumps(data))


# -- without ComfyUI ---------------------------------------------------------------------------

def test_one_example_per_use():
    assert set(EXAMPLES) == USES
    assert set(T.load_api_twins()) == USES


@pytest.mark.parametrize("name", sorted(USES))
def test_example_is_valid_against_the_nodes_and_the_spec(name):
    assert T.check_ui_workflow(EXAMPLES[name]) == []


@pytest.mark.parametrize("name", sorted(USES))
def test_api_twin_is_the_converted_ui_workflow(name):
    assert T.load_api_twins()[name] == canon(T.ui_to_api(EXAMPLES[name]))


def test_examples_are_what_the_builder_makes():
    """Edit tests/workflow_tools.py and run `python tests/workflow_tools.py --write`, not the JSON."""
    assert canon(T.build_examples()) == EXAMPLES


@pytest.mark.parametrize("name", sorted(USES))
def test_example_shows_video_frames_and_info_in_core_nodes(name):
    wf = EXAMPLES[name]
    nodes = {n["id"]: n for n in wf["nodes"]}
    gens = [n for n in wf["nodes"] if n["type"] in GENERATORS]
    assert len(gens) == 1
    shown = {(nodes[target]["type"], slot) for _, origin, slot, target, _, _ in wf["links"]
             if origin == gens[0]["id"]}
    assert ("SaveVideo", W.GENERATOR_OUTPUTS.index("video")) in shown
    assert ("PreviewImage", W.GENERATOR_OUTPUTS.index("frames")) in shown
    assert ("PreviewAny", W.GENERATOR_OUTPUTS.index("info")) in shown
    assert any(n["type"] == "Note" for n in wf["nodes"])  # each says what it does and where the key goes


def test_widget_order_is_the_frontends():
    """The checker lays out our nodes as the frontend does, and that order only ever grows at the end
    (tests/input_order.py); a seed's control_after_generate follows it."""
    order = input_order()
    for node_id, node in T.pack_nodes().items():
        assert [w.name for w in node.widgets] == order[node_id]["widgets"]
        assert [s[0] for s in node.sockets] == order[node_id]["sockets"]
    names = order[NODE_IDS["text_to_video"]]["widgets"]
    assert names[names.index("seed") + 1] == "control_after_generate"
    assert not_appended(order, snapshot()) == []


def _gen(wf):
    return next(n for n in wf["nodes"] if n["type"] in GENERATORS)


def test_checker_catches_broken_workflows():
    wf = EXAMPLES["text_to_video_camera"]
    cases = {}
    w = copy.deepcopy(wf)
    _gen(w)["widgets_values"].pop(8)  # drop control_after_generate: everything after it shifts
    cases["shifted widgets"] = (w, "is not valid")
    w = copy.deepcopy(wf)
    _gen(w)["widgets_values"][0] = "PixVerse v6 (pixverse:1@9)"
    cases["unknown model"] = (w, "model")
    w = copy.deepcopy(wf)
    _gen(w)["widgets_values"][0] = SPEC.model("pixverse:1@5").label  # v5 takes no camera movement
    cases["camera on v5"] = (w, "camera_movement")
    w = copy.deepcopy(wf)
    w["nodes"][1]["type"] = "PixVerseCameraX"
    cases["unknown node"] = (w, "unknown node type")
    w = copy.deepcopy(wf)
    w["links"][0][4] = 3
    cases["link into the wrong slot"] = (w, "link 1")
    w = copy.deepcopy(EXAMPLES["image_to_video"])
    _gen(w)["inputs"][0]["link"] = None
    w["links"] = [link for link in w["links"] if link[3] != _gen(w)["id"]]
    for n in w["nodes"]:
        for o in n.get("outputs") or []:
            o["links"] = [lid for lid in (o["links"] or []) if any(link[0] == lid for link in w["links"])] or None
    cases["first frame unconnected"] = (w, "first_frame")
    w = copy.deepcopy(EXAMPLES["lipsync_speech"])
    _gen(w)["widgets_values"][2] = "x" * (SPEC.text_limits["speech_text"].max + 1)
    cases["speech too long"] = (w, "speech_text")
    for what, (broken, needle) in cases.items():
        problems = T.check_ui_workflow(broken)
        assert problems and any(needle in p for p in problems), (what, problems)


def test_examples_load_only_the_samples_the_pack_writes():
    """A template that loads a file a fresh user lacks fails at once: every file an example loads is one of
    the samples the pack writes into ComfyUI's input folder (nodes/comfy/samples.py)."""
    from nodes.comfy.samples import SAMPLE_FILES

    loaded = {n["widgets_values"][0] for wf in EXAMPLES.values() for n in wf["nodes"]
              if n["type"] in ("LoadImage", "LoadVideo", "LoadAudio")}
    assert loaded and loaded <= set(SAMPLE_FILES.values()), loaded


def test_samples_are_written_where_missing_and_never_replace_a_file(tmp_path):
    from nodes.media import probe_video
    from nodes.comfy.samples import IMAGE_SIZE, SAMPLE_FILES, TALK_SIZE, write_samples
    from PIL import Image

    mine = tmp_path / SAMPLE_FILES["talk"]
    mine.write_bytes(b"the user's own video")
    written = write_samples(tmp_path)
    assert sorted(p.name for p in written) == sorted([SAMPLE_FILES["image"], SAMPLE_FILES["speech"]])
    assert mine.read_bytes() == b"the user's own video"
    with Image.open(tmp_path / SAMPLE_FILES["image"]) as im:
        assert im.size == IMAGE_SIZE
    assert probe_video(tmp_path / SAMPLE_FILES["speech"]).has_audio
    mine.unlink()
    assert [p.name for p in write_samples(tmp_path)] == [SAMPLE_FILES["talk"]]
    assert (probe_video(mine).width, probe_video(mine).height) == TALK_SIZE
    assert write_samples(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SAMPLE_FILES.values())  # no temp files left


def test_examples_carry_no_secret():
    for name, wf in EXAMPLES.items():
        text = json.dumps(wf).lower()
        assert "api_key" not in text and "apikey" not in text and "bearer" not in text, name


# -- with ComfyUI ------------------------------------------------------------------------------

SENTINEL_KEY = keysafety.SENTINEL_KEY  # the shared ComfyUI's key


# `comfy`: conftest's shared ComfyUI, started with an empty input folder as on a fresh install


def _object_info_inputs(info: dict) -> list[str]:
    order = info.get("input_order") or {}
    return list(order.get("required", [])) + list(order.get("optional", []))


@needs_comfy
def test_pack_wrote_the_sample_inputs_into_an_empty_input_folder(comfy):
    from nodes.comfy.samples import SAMPLE_FILES

    # the shared server's input folder also holds what other tests put there; none of it is named like ours
    deadline = time.monotonic() + 60
    while not all((comfy.input_dir / name).is_file() for name in SAMPLE_FILES.values()):
        assert time.monotonic() < deadline, sorted(p.name for p in comfy.input_dir.iterdir())
        time.sleep(0.2)
    assert sorted(p.name for p in comfy.input_dir.iterdir() if p.name.startswith("pixverse_")) == \
        sorted(SAMPLE_FILES.values())
    assert "wrote the sample input" in comfy.log()


@needs_comfy
def test_node_table_matches_object_info(comfy):
    info = comfy.object_info()
    for node_type, d in T.node_defs().items():
        if d.virtual:
            continue
        assert node_type in info, node_type
        oi = info[node_type]
        declared = _object_info_inputs(oi)
        ours = [name for name, _, _ in d.sockets] + [w.name for w in d.widgets if w.in_prompt]
        assert sorted(declared) == sorted(ours), node_type
        sections = {**oi["input"].get("required", {}), **oi["input"].get("optional", {})}
        # widget order as the frontend builds it: required inputs first, in input_order
        assert [n for n in declared if n in {w.name for w in d.widgets}] == \
            [w.name for w in d.widgets if w.in_prompt], node_type
        for name, type_, optional in d.sockets:
            assert sections[name][0] == type_, (node_type, name)
            assert (name in oi["input"].get("optional", {})) == optional, (node_type, name)
        for w in d.widgets:
            if not w.in_prompt:
                continue
            entry = sections[w.name]
            opts = entry[1] if len(entry) > 1 else {}
            if w.options is not None:
                listed = opts.get("options", entry[0] if isinstance(entry[0], list) else None)
                assert list(listed) == list(w.options), (node_type, w.name)
            else:
                assert entry[0] == w.type or (w.type == "COMBO" and isinstance(entry[0], list)), (node_type, w.name)
            has_control = any(x.type == "CONTROL" for x in d.widgets[d.widgets.index(w) + 1:][:1])
            assert bool(opts.get("control_after_generate")) == has_control, (node_type, w.name)
        assert list(zip(oi["output_name"], oi["output"])) == list(d.outputs), node_type


def expected_size(name: str, prompt: dict) -> tuple[int, int]:
    gen = next(n for n in prompt.values() if n["class_type"] in GENERATORS)
    inputs = gen["inputs"]
    if gen["class_type"] == NODE_IDS["lipsync"]:
        return 320, 240  # the reference video's size (nodes/comfy/samples.py)
    model = SPEC.model(inputs["model"])
    if gen["class_type"] == NODE_IDS["modify"]:  # the source video's shape at the chosen tier
        return model.size(inputs["resolution"], model.nearest_aspect_ratio(inputs["resolution"], 320, 240))
    aspect = inputs["aspect_ratio"]
    if aspect == "auto":
        aspect = model.nearest_aspect_ratio(inputs["resolution"], 768, 768)  # the sample picture is square
    return model.size(inputs["resolution"], aspect)


@needs_comfy
@pytest.mark.parametrize("name", sorted(USES))
def test_example_runs_through_prompt_against_the_emulator(name, comfy, emulator):
    from nodes.media import probe_video

    prompt = T.load_api_twins()[name]
    before = emulator.stats()["video_submissions"]
    entry = comfy.wait(comfy.queue(prompt), timeout=300)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:3000]
    assert emulator.stats()["video_submissions"] == before + 1
    by_type = {n["class_type"]: nid for nid, n in prompt.items()}
    outputs = entry["outputs"]
    video = probe_video(comfy.output_file(outputs[by_type["SaveVideo"]]["images"][0]))
    assert (video.width, video.height) == expected_size(name, prompt)
    frames = outputs[by_type["PreviewImage"]]["images"]
    assert len(frames) == video.frame_count
    info = json.loads(outputs[by_type["PreviewAny"]]["text"][0])
    gen_id = next(nid for nid, n in prompt.items() if n["class_type"] in GENERATORS)
    shown = outputs[gen_id]["pixverse_info"][0]  # what the node shows in the UI after the run
    assert shown["taskUUID"] == info["taskUUID"] and shown["cost"] == info["cost"] is not None
    tasks = [t for r in emulator.requests if isinstance(r.get("body"), list) for t in r["body"]
             if isinstance(t, dict) and t.get("taskType") == "videoInference"]
    task = tasks[-1]
    assert task["taskUUID"] == info["taskUUID"]
    pixverse = (task.get("providerSettings") or {}).get("pixverse") or {}
    if name == "text_to_video_effect":
        assert pixverse["effect"] == "skeleton dance" and pixverse["soundEffectSwitch"] is True and video.has_audio
    if name == "text_to_video_camera":
        assert pixverse["cameraMovement"] == "crane_up"
    if name.startswith("image_to_video"):
        assert read_task(task)["frames"] == (["first", "last"] if "last" in name else ["first"])
    if name == "lipsync_audio":
        assert read_task(task)["audio"] and "speech" not in task
    if name == "lipsync_speech":
        assert task["speech"]["voice"] == "Emily" and read_task(task)["audio"] is None
    assert SENTINEL_KEY not in json.dumps(entry)
