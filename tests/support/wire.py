"""Reading a recorded videoInference task whatever request layout it was sent in (for assertions)."""
from __future__ import annotations

from nodes.emulator.validate import detect_layout
from nodes.spec.paths import get as _get
from nodes.spec import load_spec


def read_task(task: dict, spec=None) -> dict:
    """{layout, frames: [positions], video, audio} of a task in either layout."""
    spec = spec or load_spec()
    name = detect_layout(task, spec, tuple(spec.layouts)) or "any"
    layout = spec.layout(name if name != "any" else next(iter(spec.layouts)))

    def one(path):
        present, value = _get(task, path)
        if not present:
            return None
        return value[0] if path.endswith("[]") and isinstance(value, list) else value
    frames = _get(task, layout.frame_images)[1] or []
    return {"layout": name, "frames": [f["frame"] for f in frames], "video": one(layout.video),
            "audio": one(layout.audio)}
