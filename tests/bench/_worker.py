"""One measurement in a fresh process (clean peak RSS): `python _worker.py <mode> <clip.mp4>`.

Prints one line `RESULT {json}`. Runs in this pack's venv (modes raw, touch, ours, ours-*, serial,
plain-loop) or in ComfyUI's venv with COMFYUI_PATH on sys.path (mode core). Only stdlib, numpy,
torch and PyAV here; the pack is imported only by the modes that measure it.

Peak memory: after the imports the process's RSS high-water mark is reset (/proc/self/clear_refs,
"5"), so `peak_extra` = VmHWM after the run − VmRSS before it: what the decode itself added.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _digest(frames) -> str:
    """sha1 of the first, middle and last frame's float32 bytes: equal digests = identical frames."""
    if frames is None or frames.shape[0] == 0:
        return ""
    n = frames.shape[0]
    h = hashlib.sha1()
    for i in sorted({0, n // 2, n - 1}):
        h.update(frames[i].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# -- the measured operations -----------------------------------------------------------------------

def run_raw(path: str):
    """PyAV decode of every video and audio frame, no conversion at all: the decoder's own speed."""
    import av

    n = 0
    with av.open(path) as c:
        streams = [c.streams.video[0]] + list(c.streams.audio[:1])
        for s in streams:
            s.thread_type = "AUTO"
        for packet in c.demux(*streams):
            for frame in packet.decode():
                if packet.stream.type == "video":
                    n += 1
    return None, {"frames": n}


def _shape(path: str):
    import av

    with av.open(path) as c:
        v = c.streams.video[0]
        n = sum(1 for p in c.demux(v) if p.size)
        return n, v.codec_context.height, v.codec_context.width


def run_touch(path: str, shape):
    """Write the output tensor's bytes once into fresh memory (torch.empty + fill_, torch's default
    threads): the unavoidable cost of first-touch page faults."""
    import torch

    t = torch.empty((shape[0], shape[1], shape[2], 3), dtype=torch.float32)
    t.fill_(0.5)
    return t, {}


def run_ours(path: str):
    sys.path.insert(0, str(PACK_ROOT))
    from nodes.media import decode_video

    d = decode_video(path)
    return d.frames, {"audio_samples": int(d.audio["waveform"].shape[-1]) if d.audio else 0}


def run_core(path: str):
    from comfy_api.latest._input_impl.video_types import VideoFromFile

    comp = VideoFromFile(path).get_components()
    audio = comp.audio
    return comp.images, {"audio_samples": int(audio["waveform"].shape[-1]) if audio else 0}


def run_serial(path: str):
    """The previous decode (before the pipeline): one thread, to_ndarray(rgb24) → copy_ → div_
    into the preallocated tensor, audio in the same pass."""
    import av
    import torch

    n, h, w = _shape(path)
    out = torch.empty((n + 1, h, w, 3), dtype=torch.float32)
    i = 0
    with av.open(path) as c:
        streams = [c.streams.video[0]] + list(c.streams.audio[:1])
        for s in streams:
            s.thread_type = "AUTO"
        for packet in c.demux(*streams):
            for frame in packet.decode():
                if packet.stream.type == "video":
                    slot = out[i]
                    slot.copy_(torch.from_numpy(frame.to_ndarray(format="rgb24")))
                    slot.div_(255.0)
                    i += 1
                else:
                    frame.to_ndarray()
    return out[:i], {}


def run_plain_loop(path: str):
    """The brief's plain loop: to_ndarray("rgb24") then torch.div(..., out=out[i])."""
    import av
    import torch

    n, h, w = _shape(path)
    out = torch.empty((n + 1, h, w, 3), dtype=torch.float32)
    i = 0
    with av.open(path) as c:
        c.streams.video[0].thread_type = "AUTO"
        for frame in c.decode(video=0):
            torch.div(torch.from_numpy(frame.to_ndarray(format="rgb24")), 255.0, out=out[i])
            i += 1
    return out[:i], {}


def run_ours_variant(path: str, variant: str):
    sys.path.insert(0, str(PACK_ROOT))
    from nodes.media import video as V

    if variant == "ours-1conv":
        V._converter_threads = lambda: 1
    elif variant == "ours-3conv":
        V._converter_threads = lambda: 3
    elif variant == "ours-torchstore":
        import torch

        def store(self, index, rgb):  # torch copy_ + div_ (OpenMP pool) instead of numpy
            slot = self.data[index]
            slot.copy_(torch.from_numpy(rgb))
            slot.div_(255.0)
        V._FrameBuffer.store = store
    else:
        raise SystemExit(f"unknown variant {variant}")
    d = V.decode_video(path)
    return d.frames, {}


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    # Imports first, outside the measurement (ComfyUI has them loaded long before a node runs).
    import av  # noqa: F401
    import numpy  # noqa: F401
    import torch

    shape = None
    if mode == "touch":
        shape = _shape(path)
    if mode == "core":
        sys.path.insert(0, os.environ["COMFYUI_PATH"])
        from comfy_api.latest._input_impl.video_types import VideoFromFile  # noqa: F401
    elif mode.startswith("ours"):
        sys.path.insert(0, str(PACK_ROOT))
        import nodes.media.video  # noqa: F401
    base = _status("VmRSS")
    peak_reset = _reset_peak()
    c0, t0 = os.times(), time.perf_counter()
    if mode == "raw":
        frames, extra = run_raw(path)
    elif mode == "touch":
        frames, extra = run_touch(path, shape)
    elif mode == "ours":
        frames, extra = run_ours(path)
    elif mode == "core":
        frames, extra = run_core(path)
    elif mode == "serial":
        frames, extra = run_serial(path)
    elif mode == "plain-loop":
        frames, extra = run_plain_loop(path)
    else:
        frames, extra = run_ours_variant(path, mode)
    wall = time.perf_counter() - t0
    c1 = os.times()
    peak = _status("VmHWM")
    result = {
        "mode": mode, "wall": wall, "user": c1.user - c0.user, "sys": c1.system - c0.system,
        "peak_extra": peak - base if peak_reset else None, "base_rss": base,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        **extra,
    }
    if frames is not None and mode != "touch":
        result.update(frames=int(frames.shape[0]), shape=list(frames.shape), dtype=str(frames.dtype),
                      tensor_bytes=frames.numel() * frames.element_size(), digest=_digest(frames))
    elif frames is not None:
        result.update(tensor_bytes=frames.numel() * frames.element_size())
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
