"""Example workflows: what each node offers (from nodes/requests/widgets.py, /object_info-like), a UI-format →
API-format converter, a checker, and the builder that writes example_workflows/.

    python tests/workflow_tools.py --write     # rewrite example_workflows/*.json and their api/ twins

No ComfyUI needed. The few core nodes the examples use are described in CORE_NODES; with COMFYUI_PATH,
tests/test_workflows.py checks that table against a real ComfyUI's /object_info.
"""
from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nodes.requests import widgets as W
from nodes.spec.kinds import NODE_IDS
from nodes.spec.kinds import KINDS  # noqa: E402
from nodes.comfy.samples import SAMPLE_FILES, write_samples  # noqa: E402
from nodes.spec import load_spec  # noqa: E402

EXAMPLES_DIR = ROOT / "example_workflows"
API_DIR = EXAMPLES_DIR / "api"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
SOCKET_TYPES = {"IMAGE": "IMAGE", "AUDIO": "AUDIO", "VIDEO": "VIDEO", "motion": W.MOTION_TYPE}
WIDGET_TYPES = {"combo": "COMBO", "string": "STRING", "text": "STRING", "int": "INT", "float": "FLOAT",
                "boolean": "BOOLEAN"}
# Files the examples load from ComfyUI's input folder: samples of the pack's own making, which it writes
# there on load where missing (nodes/comfy/samples.py), so every example runs on a fresh ComfyUI.
INPUT_FILES = SAMPLE_FILES
SAMPLE_NOTE = ("The {what} is a sample the pack placed in ComfyUI's input folder ({name}); pick your own in "
               "the Load {node} node.")


@dataclass
class WidgetSlot:
    """One entry of a node's widgets_values."""

    name: str
    type: str  # COMBO, STRING, INT, FLOAT, BOOLEAN, or a frontend-only kind (IMAGEUPLOAD, CONTROL)
    in_prompt: bool = True  # sent to /prompt (False for upload buttons and control_after_generate)
    options: Optional[tuple] = None  # allowed values; None = any of the type
    min: Optional[float] = None
    max: Optional[float] = None
    default: Any = None


@dataclass
class NodeDef:
    type: str
    sockets: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, type, optional)
    widgets: list[WidgetSlot] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    virtual: bool = False  # frontend-only (Note): not in the API prompt


def _control(w: WidgetSlot) -> WidgetSlot:
    return WidgetSlot("control_after_generate", "CONTROL", in_prompt=False, options=CONTROL_VALUES,
                      default="randomize")


def _pack_def(node_type: str, ws: list[W.Widget], outputs: list[tuple[str, str]]) -> NodeDef:
    """The frontend's view of one of our nodes: sockets first (required, then optional), then widgets
    (required, then optional), a seed's control_after_generate right after it."""
    d = NodeDef(node_type, outputs=outputs)
    ordered = [w for w in ws if not w.optional] + [w for w in ws if w.optional]
    for w in ordered:
        if w.kind in SOCKET_TYPES:
            d.sockets.append((w.name, SOCKET_TYPES[w.kind], w.optional))
    for w in ordered:
        if w.kind in WIDGET_TYPES:
            slot = WidgetSlot(w.name, WIDGET_TYPES[w.kind], options=tuple(w.options) if w.kind == "combo" else None,
                              min=w.min, max=w.max, default=w.default)
            d.widgets.append(slot)
            if w.control_after_generate:
                d.widgets.append(_control(slot))
    return d


def pack_nodes() -> dict[str, NodeDef]:
    """Our nodes as the frontend lays them out (every kind but Recover, which no example uses)."""
    gen_out = [(name, t) for name, t in zip(W.GENERATOR_OUTPUTS, ("VIDEO", "IMAGE", "AUDIO", "FLOAT", "STRING"))]
    motion_out = [("motion", W.MOTION_TYPE)]
    return {k.node_id: _pack_def(k.node_id, W.widgets_for(k.kind), motion_out if k.motion_setting else gen_out)
            for k in KINDS if k.kind != "recover"}


# The core nodes the examples use, as ComfyUI 0.3.64's /object_info and frontend show them.
CORE_NODES: dict[str, NodeDef] = {
    "LoadImage": NodeDef("LoadImage", widgets=[WidgetSlot("image", "COMBO"),
                                               WidgetSlot("upload", "IMAGEUPLOAD", in_prompt=False, options=("image",))],
                         outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")]),
    "LoadVideo": NodeDef("LoadVideo", widgets=[WidgetSlot("file", "COMBO"),
                                               WidgetSlot("upload", "IMAGEUPLOAD", in_prompt=False, options=("image",))],
                         outputs=[("VIDEO", "VIDEO")]),
    "GetVideoComponents": NodeDef("GetVideoComponents", sockets=[("video", "VIDEO", False)],
                                  outputs=[("images", "IMAGE"), ("audio", "AUDIO"), ("fps", "FLOAT")]),
    "SaveVideo": NodeDef("SaveVideo", sockets=[("video", "VIDEO", False)],
                         widgets=[WidgetSlot("filename_prefix", "STRING"),
                                  WidgetSlot("format", "COMBO", options=("auto", "mp4")),
                                  WidgetSlot("codec", "COMBO", options=("auto", "h264"))]),
    "PreviewImage": NodeDef("PreviewImage", sockets=[("images", "IMAGE", False)]),
    "PreviewAny": NodeDef("PreviewAny", sockets=[("source", "*", False)]),
    "Note": NodeDef("Note", widgets=[WidgetSlot("text", "STRING")], virtual=True),
}


def node_defs() -> dict[str, NodeDef]:
    return {**CORE_NODES, **pack_nodes()}


# -- UI format → API format -------------------------------------------------------------------

def ui_to_api(workflow: dict, defs: Optional[dict[str, NodeDef]] = None) -> dict:
    """A UI-format workflow (what ComfyUI saves) → the API prompt its frontend would queue."""
    defs = defs or node_defs()
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in sorted(workflow["nodes"], key=lambda n: n["id"]):
        d = defs[node["type"]]
        if d.virtual or node.get("mode", 0) in (2, 4):  # muted or bypassed nodes are not queued
            continue
        inputs: dict[str, Any] = {}
        for name, value in zip([w.name for w in d.widgets], node.get("widgets_values") or []):
            slot = next(w for w in d.widgets if w.name == name)
            if slot.in_prompt:
                inputs[name] = value
        for inp in node.get("inputs") or []:
            if inp.get("link") is not None:
                _, origin, origin_slot, *_ = links[inp["link"]]
                inputs[inp["name"]] = [str(origin), origin_slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


# -- checks -----------------------------------------------------------------------------------

def _value_ok(slot: WidgetSlot, value: Any) -> bool:
    if slot.options is not None:
        return value in slot.options
    if slot.type == "STRING":
        return isinstance(value, str)
    if slot.type == "INT":
        return isinstance(value, int) and not isinstance(value, bool) and \
            (slot.min is None or value >= slot.min) and (slot.max is None or value <= slot.max)
    if slot.type == "FLOAT":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            (slot.min is None or value >= slot.min) and (slot.max is None or value <= slot.max)
    if slot.type == "BOOLEAN":
        return isinstance(value, bool)
    return slot.type == "COMBO" and isinstance(value, str)  # file pickers: any file name


def check_ui_workflow(workflow: dict, defs: Optional[dict[str, NodeDef]] = None) -> list[str]:
    """Problems that would stop the workflow from loading or running as saved; [] when there are none."""
    defs = defs or node_defs()
    problems: list[str] = []
    nodes = {n["id"]: n for n in workflow.get("nodes", [])}
    if len(nodes) != len(workflow.get("nodes", [])):
        problems.append("duplicate node ids")
    for key in ("last_node_id", "last_link_id", "links", "nodes", "version"):
        if key not in workflow:
            problems.append(f"missing top-level {key!r}")
    if nodes and workflow.get("last_node_id", 0) < max(nodes):
        problems.append("last_node_id is below the highest node id")
    links = workflow.get("links", [])
    if links and workflow.get("last_link_id", 0) < max(link[0] for link in links):
        problems.append("last_link_id is below the highest link id")
    for n in nodes.values():
        where = f"node {n['id']} ({n.get('type')})"
        d = defs.get(n.get("type"))
        if d is None:
            problems.append(f"{where}: unknown node type")
            continue
        values = n.get("widgets_values") or []
        # fewer values than widgets: saved before inputs were appended; the frontend keeps the defaults
        if len(values) > len(d.widgets):
            problems.append(f"{where}: {len(values)} widget values, the node has {len(d.widgets)} "
                            f"({', '.join(w.name for w in d.widgets)})")
        for slot, value in zip(d.widgets, values):
            if not _value_ok(slot, value):
                problems.append(f"{where}: widget {slot.name}={value!r} is not valid"
                                + (f" (allowed: {list(slot.options)})" if slot.options else ""))
        sockets = [name for name, _, _ in d.sockets]
        inputs = n.get("inputs") or []
        names = [i["name"] for i in inputs]
        if names[:len(sockets)] != sockets:
            problems.append(f"{where}: inputs start {names[:len(sockets)]}, expected sockets {sockets}")
        for name, _type, optional in d.sockets:
            entry = next((i for i in inputs if i["name"] == name), None)
            if not optional and (entry is None or entry.get("link") is None):
                problems.append(f"{where}: required input {name} is not connected")
        outputs = n.get("outputs") or []
        if [(o["name"], o["type"]) for o in outputs] != list(d.outputs):
            problems.append(f"{where}: outputs {[(o['name'], o['type']) for o in outputs]}, expected {d.outputs}")
    for link in links:
        if len(link) != 6:
            problems.append(f"link {link}: expected [id, origin, origin_slot, target, target_slot, type]")
            continue
        lid, origin, oslot, target, tslot, ltype = link
        o, t = nodes.get(origin), nodes.get(target)
        if o is None or t is None:
            problems.append(f"link {lid}: missing node")
            continue
        outs, ins = o.get("outputs") or [], t.get("inputs") or []
        if oslot >= len(outs) or tslot >= len(ins):
            problems.append(f"link {lid}: slot out of range")
            continue
        if lid not in (outs[oslot].get("links") or []):
            problems.append(f"link {lid}: not listed on node {origin} output {oslot}")
        if ins[tslot].get("link") != lid:
            problems.append(f"link {lid}: node {target} input {tslot} does not point back at it")
        if outs[oslot]["type"] != ltype:
            problems.append(f"link {lid}: type {ltype} but output is {outs[oslot]['type']}")
        if ins[tslot]["type"] not in (ltype, "*"):
            problems.append(f"link {lid}: {ltype} into {ins[tslot]['type']} input {ins[tslot]['name']}")
    for n in nodes.values():
        for i in n.get("inputs") or []:
            if i.get("link") is not None and not any(link[0] == i["link"] for link in links):
                problems.append(f"node {n['id']} input {i['name']}: link {i['link']} does not exist")
    if not problems:
        problems += check_choices(workflow, defs)
    return problems


def check_choices(workflow: dict, defs: Optional[dict[str, NodeDef]] = None) -> list[str]:
    """Run each PixVerse node's own queue-time validation on the saved values (nothing picked in an
    example may be refused later)."""
    from nodes.job import pipeline
    from nodes.errors import PixVerseInputError
    from nodes.spec import load_spec
    from nodes.requests.tasks import (build_image_to_video, build_in_any_layout, build_lipsync, build_modify,
                             build_text_to_video)

    spec = load_spec()

    def any_layout(choices, workflow, build):
        model = spec.model(choices.model) if choices.model in {m.label for m in spec.models} else None
        return build(None) if model is None else build_in_any_layout(model, build)
    prompt = ui_to_api(workflow, defs)
    problems = []
    ids = NODE_IDS
    for nid, node in prompt.items():
        kw = dict(node["inputs"])
        motion = kw.get("motion")
        if isinstance(motion, list):
            src = prompt[motion[0]]
            kw["motion"] = W.motion_value(**src["inputs"])
        try:
            if node["class_type"] == ids["text_to_video"]:
                c = W.generation_choices(kw)
                any_layout(c, "text-to-video", lambda layout: build_text_to_video(c, layout=layout))
            elif node["class_type"] == ids["image_to_video"]:
                c = W.generation_choices(kw)
                any_layout(c, "image-to-video", lambda layout: build_image_to_video(
                    c, pipeline.PLACEHOLDER_REF, first_frame_size=(1000, 1000), layout=layout,
                    last_frame=pipeline.PLACEHOLDER_REF if "last_frame" in kw else None))
            elif node["class_type"] == ids["modify"]:
                if "video" not in kw and "frames" not in kw:
                    problems.append(f"node {nid}: Modify needs video or frames connected")
                c = W.modify_choices(kw)
                any_layout(c, "modify", lambda layout: build_modify(
                    c, pipeline.PLACEHOLDER_REF, pipeline.PLACEHOLDER_REF if "reference_image" in kw else None,
                    layout=layout))
            elif node["class_type"] == ids["lipsync"]:
                speech = kw.get("speech_text") or None
                if "video" not in kw and "frames" not in kw:
                    problems.append(f"node {nid}: LipSync needs video or frames connected")
                if speech is None and "audio" not in kw:
                    problems.append(f"node {nid}: LipSync needs audio connected or a speech_text")
                build_lipsync(video=pipeline.PLACEHOLDER_REF, speech_text=speech,
                              audio=None if speech else pipeline.PLACEHOLDER_REF, voice=kw.get("voice"),
                              model=kw.get("model"))
        except PixVerseInputError as exc:
            problems.append(f"node {nid} ({node['class_type']}): {exc}")
    return problems


# -- the examples -----------------------------------------------------------------------------

NOTE_COMMON = ("Set your Runware API key first: Settings (gear) → Runware. Each run is a billed Runware "
               "task; the node shows its taskUUID and cost when it finishes. seed is 'fixed', so queueing "
               "the same settings again re-uses ComfyUI's cached result instead of paying twice.")


class Builder:
    """Lays out one UI-format workflow the way ComfyUI's frontend saves it."""

    def __init__(self, defs: dict[str, NodeDef]):
        self.defs = defs
        self.nodes: list[dict] = []
        self.links: list[list] = []

    def add(self, node_type: str, pos: tuple[float, float], size: tuple[float, float],
            values: Optional[dict[str, Any]] = None, title: Optional[str] = None) -> dict:
        d = self.defs[node_type]
        values = dict(values or {})
        wv = []
        for slot in d.widgets:
            if slot.name in values:
                wv.append(values.pop(slot.name))
            elif slot.type == "CONTROL":
                wv.append("fixed")
            else:
                wv.append(slot.default if slot.default is not None else (slot.options or [""])[0])
        if values:
            raise KeyError(f"{node_type} has no widgets {sorted(values)}")
        inputs = [{"name": n, "type": t, "link": None} for n, t, _ in d.sockets]
        inputs += [{"name": s.name, "type": s.type, "widget": {"name": s.name}, "link": None}
                   for s in d.widgets if s.type not in ("CONTROL",) and not d.virtual]
        node = {"id": len(self.nodes) + 1, "type": node_type, "pos": list(pos), "size": list(size), "flags": {},
                "order": len(self.nodes), "mode": 0, "inputs": inputs,
                "outputs": [{"name": n, "type": t, "links": []} for n, t in d.outputs],
                "properties": {} if d.virtual else {"Node name for S&R": node_type},
                "widgets_values": wv}
        if title:
            node["title"] = title
        if d.virtual:
            node["color"], node["bgcolor"] = "#432", "#653"
        self.nodes.append(node)
        return node

    def link(self, origin: dict, output: str, target: dict, input_name: str) -> None:
        oslot = next(i for i, o in enumerate(origin["outputs"]) if o["name"] == output)
        tslot = next(i for i, x in enumerate(target["inputs"]) if x["name"] == input_name)
        lid = len(self.links) + 1
        ltype = origin["outputs"][oslot]["type"]
        self.links.append([lid, origin["id"], oslot, target["id"], tslot, ltype])
        origin["outputs"][oslot]["links"].append(lid)
        target["inputs"][tslot]["link"] = lid

    def show_results(self, gen: dict, name: str, x: float) -> None:
        save = self.add("SaveVideo", (x, 0), (320, 420), {"filename_prefix": f"pixverse/{name}"})
        frames = self.add("PreviewImage", (x + 340, 0), (320, 420), title="Preview frames")
        info = self.add("PreviewAny", (x, 460), (660, 220), title="PixVerse info")
        self.link(gen, "video", save, "video")
        self.link(gen, "frames", frames, "images")
        self.link(gen, "info", info, "source")

    def workflow(self) -> dict:
        for node in self.nodes:
            for output in node["outputs"]:
                if not output["links"]:
                    output["links"] = None
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(self.nodes, sort_keys=True))),
                "revision": 0, "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                "nodes": self.nodes, "links": self.links, "groups": [], "config": {},
                "extra": {"ds": self.view()}, "version": 0.4}

    def view(self, width: float = 1400, height: float = 860) -> dict:
        """A canvas offset and scale that show every node in a 1600x1000 window (beside ComfyUI's
        side bar, below its tab bar)."""
        x0 = min(n["pos"][0] for n in self.nodes)
        y0 = min(n["pos"][1] for n in self.nodes)
        x1 = max(n["pos"][0] + n["size"][0] for n in self.nodes)
        y1 = max(n["pos"][1] + n["size"][1] for n in self.nodes)
        scale = round(min(1.0, width / (x1 - x0 + 60), height / (y1 - y0 + 100)), 3)
        return {"scale": scale, "offset": [round(-x0 + 110 / scale), round(-y0 + 100 / scale)]}


def _label(air: str) -> str:
    return load_spec().model(air).label


def build_examples() -> dict[str, dict]:
    """name → UI-format workflow, one per use."""
    defs = node_defs()
    ids = NODE_IDS
    base = {"resolution": "540p", "duration": 5, "fps": 16, "seed": 42}
    gen_size = (400, 600)
    out: dict[str, dict] = {}

    def note(b: Builder, text: str, pos=(-380, 0), size=(360, 260)) -> None:
        b.add("Note", pos, size, {"text": text + "\n\n" + NOTE_COMMON})

    b = Builder(defs)
    note(b, "Text to video: write a prompt, pick a model, resolution, aspect ratio, length and fps. The "
            "line under the widgets shows the exact size the model makes.")
    gen = b.add(ids["text_to_video"], (0, 0), gen_size, {
        **base, "model": _label("pixverse:1@5"),
        "prompt": "A red fox trots through fresh snow at dawn, soft golden light, its breath steaming in the "
                  "cold air, cinematic tracking shot"})
    b.show_results(gen, "text_to_video", 440)
    out["text_to_video"] = b.workflow()

    b = Builder(defs)
    note(b, "Text to video with an effect: a PixVerse Effect node feeds the generator's motion input "
            "(one motion per video). Sound effects are on here.", pos=(-380, 260))
    effect = b.add(ids["effect"], (-380, 0), (340, 110), {"effect": "skeleton dance"})
    gen = b.add(ids["text_to_video"], (0, 0), gen_size, {
        **base, "model": _label("pixverse:1@3"), "sound_effects": True,
        "sound_effect_content": "upbeat funky bass line and hand claps",
        "prompt": "A cheerful cartoon skeleton in a top hat dancing on a stage under colourful disco lights"})
    b.link(effect, "motion", gen, "motion")
    b.show_results(gen, "text_to_video_effect", 440)
    out["text_to_video_effect"] = b.workflow()

    b = Builder(defs)
    note(b, "Text to video with a camera movement: a PixVerse Camera node feeds the motion input. Camera "
            "movements work with PixVerse v4 and v4.5 only; wired into another model the node is flagged "
            "red and queueing is refused.", pos=(-380, 260))
    camera = b.add(ids["camera"], (-380, 0), (340, 110), {"camera_movement": "crane_up"})
    gen = b.add(ids["text_to_video"], (0, 0), gen_size, {
        **base, "model": _label("pixverse:1@3"),
        "prompt": "An old stone lighthouse on a cliff at sunset, waves crashing on the rocks below, seagulls"})
    b.link(camera, "motion", gen, "motion")
    b.show_results(gen, "text_to_video_camera", 440)
    out["text_to_video_camera"] = b.workflow()

    b = Builder(defs)
    note(b, "Image to video: Load Image gives the first frame. aspect_ratio 'auto' picks the model's listed "
            "size nearest to the image's shape; the image is fitted automatically. "
         + SAMPLE_NOTE.format(what="picture", name=INPUT_FILES["image"], node="Image"), pos=(-380, 380))
    img = b.add("LoadImage", (-380, 0), (340, 340), {"image": INPUT_FILES["image"]})
    gen = b.add(ids["image_to_video"], (0, 0), gen_size, {
        **base, "model": _label("pixverse:1@5"),
        "prompt": "The scene slowly comes alive: a gentle breeze, drifting light, a slow camera push-in"})
    b.link(img, "IMAGE", gen, "first_frame")
    b.show_results(gen, "image_to_video", 440)
    out["image_to_video"] = b.workflow()

    b = Builder(defs)
    note(b, "First + last frame: the video moves from the first image to the last one. Using the same "
            "image for both makes a seamless loop. "
         + SAMPLE_NOTE.format(what="picture", name=INPUT_FILES["image"], node="Image"), pos=(-380, 760))
    first = b.add("LoadImage", (-380, 0), (340, 340), {"image": INPUT_FILES["image"]}, title="First frame")
    last = b.add("LoadImage", (-380, 380), (340, 340), {"image": INPUT_FILES["image"]}, title="Last frame")
    gen = b.add(ids["image_to_video"], (0, 0), gen_size, {
        **base, "model": _label("pixverse:1@5"),
        "prompt": "A seamless loop: the scene breathes gently, light shifts, and everything returns to where it began"})
    b.link(first, "IMAGE", gen, "first_frame")
    b.link(last, "IMAGE", gen, "last_frame")
    b.show_results(gen, "image_to_video_first_last_frame", 440)
    out["image_to_video_first_last_frame"] = b.workflow()

    b = Builder(defs)
    lim = load_spec().lipsync_limits
    note(b, f"LipSync with audio: a video of a face talking (at most {lim.video_max_seconds:g} s) and the speech "
            f"to lip-sync (at most {lim.audio_max_seconds:g} s). Here the speech comes from a second video "
            "through Get Video Components; ComfyUI's Load Audio node plugs into audio the same way. The two "
            f"videos are samples the pack placed in ComfyUI's input folder ({INPUT_FILES['talk']}, "
            f"{INPUT_FILES['speech']}: a test pattern and a tone, not a face and speech); pick your own in the "
            "Load Video nodes.",
         pos=(-760, 420))
    talk = b.add("LoadVideo", (-380, 0), (340, 360), {"file": INPUT_FILES["talk"]}, title="Reference video")
    speech = b.add("LoadVideo", (-760, 0), (340, 360), {"file": INPUT_FILES["speech"]}, title="Speech (audio source)")
    parts = b.add("GetVideoComponents", (-380, 420), (340, 100))
    gen = b.add(ids["lipsync"], (0, 0), (400, 340), {"model": _label("pixverse:lipsync@1")})
    b.link(talk, "VIDEO", gen, "video")
    b.link(speech, "VIDEO", parts, "video")
    b.link(parts, "audio", gen, "audio")
    b.show_results(gen, "lipsync_audio", 440)
    out["lipsync_audio"] = b.workflow()

    b = Builder(defs)
    note(b, f"LipSync with speech: PixVerse speaks the text (at most "
            f"{load_spec().text_limits['speech_text'].max} characters) in the chosen voice and lip-syncs the "
            "video to it. Leave audio unconnected. The reference video is a sample the pack placed in ComfyUI's "
            f"input folder ({INPUT_FILES['talk']}, a test pattern, not a face); pick a video of a face talking in "
            "the Load Video node.", pos=(-380, 400))
    talk = b.add("LoadVideo", (-380, 0), (340, 360), {"file": INPUT_FILES["talk"]}, title="Reference video")
    gen = b.add(ids["lipsync"], (0, 0), (400, 340), {
        "model": _label("pixverse:lipsync@1"), "voice": "Emily",
        "speech_text": "Hello! This is my first lip-synced video, made with PixVerse through Runware."})
    b.link(talk, "VIDEO", gen, "video")
    b.show_results(gen, "lipsync_speech", 440)
    out["lipsync_speech"] = b.workflow()

    v6 = {"resolution": "540p", "seed": 42, "model": _label("pixverse:1@8")}
    b = Builder(defs)
    note(b, "PixVerse v6, multi-shot with sound: multi_clip on makes the model cut between shots; write the "
            "prompt as beats, one per shot. audio on gives the video its own sound (speech, effects, music). "
            "v6 takes any whole length from 1 to 15 s.", pos=(-380, 0))
    gen = b.add(ids["text_to_video"], (0, 0), gen_size, {
        **v6, "duration": 10, "audio": True, "multi_clip": True, "thinking": "auto",
        "prompt": "Shot 1: a lighthouse keeper lights the lamp at dusk, wind howling. Shot 2: the beam sweeps "
                  "over a stormy sea. Shot 3: a small boat turns towards the light and the keeper smiles."})
    b.show_results(gen, "text_to_video_v6_multishot", 440)
    out["text_to_video_v6_multishot"] = b.workflow()

    b = Builder(defs)
    note(b, "PixVerse v6 from a first and a last frame: the video travels from one image to the other. With "
            "two frames v6 needs thinking enabled or disabled (not auto). "
         + SAMPLE_NOTE.format(what="picture", name=INPUT_FILES["image"], node="Image"), pos=(-380, 760))
    first = b.add("LoadImage", (-380, 0), (340, 340), {"image": INPUT_FILES["image"]}, title="First frame")
    last = b.add("LoadImage", (-380, 380), (340, 340), {"image": INPUT_FILES["image"]}, title="Last frame")
    gen = b.add(ids["image_to_video"], (0, 0), gen_size, {
        **v6, "duration": 5, "thinking": "enabled", "audio": True,
        "prompt": "The scene wakes up and settles back: light sweeps across, then returns to where it began"})
    b.link(first, "IMAGE", gen, "first_frame")
    b.link(last, "IMAGE", gen, "last_frame")
    b.show_results(gen, "image_to_video_v6_first_last_frame", 440)
    out["image_to_video_v6_first_last_frame"] = b.workflow()

    b = Builder(defs)
    note(b, "PixVerse Modify: change a video as the prompt says, keeping its shape and length; an optional "
            "reference image shows the look to follow. The video and picture are samples the pack placed in "
            f"ComfyUI's input folder ({INPUT_FILES['talk']}, {INPUT_FILES['image']}); pick your own.",
         pos=(-760, 420))
    src = b.add("LoadVideo", (-380, 0), (340, 360), {"file": INPUT_FILES["talk"]}, title="Source video")
    ref = b.add("LoadImage", (-760, 0), (340, 340), {"image": INPUT_FILES["image"]}, title="Reference image")
    gen = b.add(ids["modify"], (0, 0), (400, 420), {
        "model": _label("pixverse:modify@0"), "resolution": "540p", "seed": 42,
        "prompt": "Turn the scene into a hand-painted watercolour, soft paper texture, gentle colour bleeding"})
    b.link(src, "VIDEO", gen, "video")
    b.link(ref, "IMAGE", gen, "reference_image")
    b.show_results(gen, "modify", 440)
    out["modify"] = b.workflow()
    return out


def make_inputs(input_dir: Path) -> dict[str, Path]:
    """The files the examples load, written into a ComfyUI input folder as the pack itself writes them
    (nodes/comfy/samples.py): a 768x768 picture, a 2 s 320x240 reference clip and a 3 s speech clip (with sound)."""
    write_samples(input_dir)
    return {kind: Path(input_dir) / name for kind, name in INPUT_FILES.items()}


def load_examples() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES_DIR.glob("*.json"))}


def load_api_twins() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(API_DIR.glob("*.json"))}


def dump(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_examples() -> list[Path]:
    API_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name, workflow in build_examples().items():
        problems = check_ui_workflow(workflow)
        if problems:
            raise SystemExit(f"{name}: " + "; ".join(problems))
        for path, data in ((EXAMPLES_DIR / f"{name}.json", workflow), (API_DIR / f"{name}.json", ui_to_api(workflow))):
            path.write_text(dump(data), encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        for p in write_examples():
            print(p.relative_to(ROOT))
    else:
        print(__doc__)
