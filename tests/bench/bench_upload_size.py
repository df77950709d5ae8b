"""Benchmark (issue 17 item 12): a 4000×3000 photo into image-to-video, before and after uploads
were sized to use. Prints bytes, pixel size, format, encode seconds (median of --reps), the
base64 payload and the transfer time it implies at a few uplink speeds, and the mean absolute
difference from the original at 640 px. Plus LipSync frames: 2 s of 1440p frames → MP4 bytes and
seconds, before (full size) and after (≤ the spec's frames_max_side).

    python tests/bench/bench_upload_size.py [--reps 3]

"before" is the old call (the spec's accepted limits only: max_side 4000, 20 MB); "after" is what
the pipeline sends now (pipeline.encode_image_input with the shipped spec). Not a test: timings
mean something only on a quiet machine (the load average is printed)."""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACK_ROOT = HERE.parents[1]
sys.path.insert(0, str(PACK_ROOT))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from nodes.job import pipeline  # noqa: E402
from nodes.media import encode_frames_mp4  # noqa: E402
from nodes.media.images import encode_image_for_upload, image_to_uint8  # noqa: E402
from nodes.spec import load_spec  # noqa: E402
from synthetic_photo import mad_at, photo  # noqa: E402


def timed(fn, reps):
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; median of {args.reps}")
    spec = load_spec()
    lim = spec.input_image
    img = photo(4000, 3000)
    original = image_to_uint8(img)

    def before():
        e = encode_image_for_upload(img, min_side=lim.min_side, max_side=lim.max_side, max_bytes=lim.max_bytes)
        return e.data, e.mime

    def after():
        up = pipeline.encode_image_input(img, spec, "first_frame", [])
        return up.data, up.mime

    print("\n4000x3000 photo -> image upload")
    print(f"{'':8} {'size':>11} {'format':>11} {'bytes':>12} {'base64':>12} {'encode s':>9} "
          f"{'@10 Mbit/s':>11} {'@50 Mbit/s':>11} {'MAD@640':>8}")
    for name, fn in (("before", before), ("after", after)):
        (data, mime), secs = timed(fn, args.reps)
        dec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        b64 = (len(data) + 2) // 3 * 4
        print(f"{name:8} {dec.shape[1]:>5}x{dec.shape[0]:<5} {mime:>11} {len(data):>12,} {b64:>12,} {secs:>9.2f} "
              f"{b64 * 8 / 10e6:>10.1f}s {b64 * 8 / 50e6:>10.1f}s {mad_at(original, dec):>8.2f}")

    print("\n2 s of 2560x1440 frames at 24 fps (panning texture + grain) -> LipSync reference MP4")
    import av
    import _clips
    content = _clips._Content(2560, 1440)
    frames = torch.empty((48, 1440, 2560, 3), dtype=torch.uint8)
    for i in range(48):
        yuv = av.VideoFrame.from_ndarray(content.frame(i), format="yuv420p")
        frames[i] = torch.from_numpy(yuv.to_ndarray(format="rgb24"))
    for name, side in (("before", None), ("after", spec.lipsync_limits.frames_max_side)):
        with tempfile.TemporaryDirectory() as tmp:
            info, secs = timed(lambda: encode_frames_mp4(frames, 24.0, Path(tmp) / "f.mp4", max_side=side), args.reps)
        print(f"{name:8} {info.width:>5}x{info.height:<5} {info.size_bytes:>12,} bytes {secs:>7.2f} s")


if __name__ == "__main__":
    main()
