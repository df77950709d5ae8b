"""What the web extension should offer, computed from the capability spec in Python; a cut-down spec to
prove the extension follows whatever spec it is served; and the pack's routes module without ComfyUI."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from nodes.spec import SPEC_PATH, CapabilitySpec
from nodes.spec.options import evaluate

ROOT = Path(__file__).resolve().parents[1]


def load_routes():
    """nodes/comfy/routes.py without importing ComfyUI (its package __init__ does; the module does not)."""
    spec = importlib.util.spec_from_file_location("nodes.comfy.routes", ROOT / "nodes" / "comfy" / "routes.py")
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "nodes.comfy"
    spec.loader.exec_module(module)
    return module


def expected_options(spec: CapabilitySpec, kind: str, model, values: dict) -> dict:
    """What a node set to `model` should offer in each input for these values: the Python home of
    that answer (nodes/spec/options.py), which the route serves and the extension must reproduce."""
    return evaluate(spec, kind, model, values).allowed


def synthetic_spec() -> CapabilitySpec:
    """The real spec with v3.5 cut down (no 1080p, no 9:16 at 360p, fps 24 only, no style, no motion
    mode) and LipSync without text-to-speech."""
    raw = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    table = {res: dict(row) for res, row in raw["size_tables"]["v3.5"].items() if res != "1080p"}
    del table["360p"]["9:16"]
    raw["size_tables"]["v3.5-cut"] = table
    for m in raw["models"]:
        if m["key"] == "v3.5":
            m.update(sizes="v3.5-cut", fps={"values": [24], "default": 24},
                     settings=["effect", "sound_effects", "sound_effect_content"])
        if m["key"] == "lipsync":
            m["inputs"] = ["video", "audio"]
    return CapabilitySpec.from_raw(raw)
