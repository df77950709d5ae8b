"""Small sample inputs of the pack's own making, so that every example workflow runs as shipped.

The templates load these names from ComfyUI's input folder. The pack writes each one there when
ComfyUI loads it and the file is missing; an existing file (the user's, or one written before) is
never replaced. They are drawn here (Pillow) and encoded here (PyAV): nothing is copied from
elsewhere.

- a 768×768 picture (a sunrise over hills) for the image-to-video templates;
- a 2 s 320×240 clip with sound as the LipSync reference video (a stand-in: use a video of a face);
- a 3 s clip whose sound is the LipSync templates' audio source.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

SAMPLE_FILES = {"image": "pixverse_sample_image.png", "talk": "pixverse_sample_talk.mp4",
                "speech": "pixverse_sample_speech.mp4"}
IMAGE_SIZE = (768, 768)
TALK_SIZE = (320, 240)


def _draw_image(path: Path) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = IMAGE_SIZE
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    top, bottom = np.array([40, 60, 140]), np.array([250, 180, 120])  # dawn sky, blue to orange
    sky = (top + (bottom - top) * y).repeat(w, axis=1).astype(np.uint8)
    im = Image.fromarray(sky, "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse((w * 0.58, h * 0.38, w * 0.78, h * 0.58), fill=(255, 226, 150))  # the sun
    d.polygon([(0, h * 0.70), (w * 0.30, h * 0.52), (w * 0.62, h * 0.72), (w, h * 0.58), (w, h), (0, h)],
              fill=(60, 95, 70))  # far hills
    d.polygon([(0, h * 0.85), (w * 0.45, h * 0.70), (w, h * 0.88), (w, h), (0, h)], fill=(35, 65, 45))
    im.save(path, format="PNG")


def _render(kind: str, path: Path) -> None:
    from ..media import render_test_video  # PyAV and torch: only when a sample video is missing

    if kind == "image":
        _draw_image(path)
    elif kind == "talk":
        render_test_video(path, width=TALK_SIZE[0], height=TALK_SIZE[1], fps=16, duration=2.0, with_audio=True)
    else:
        render_test_video(path, width=160, height=120, fps=16, duration=3.0, with_audio=True, seed=3)


def write_samples(input_dir: Union[str, Path]) -> list[Path]:
    """Write the sample files that are missing from `input_dir`; return the ones written.
    A file of that name that exists (even one written meanwhile by another process) is kept."""
    input_dir = Path(input_dir)
    input_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, name in SAMPLE_FILES.items():
        final = input_dir / name
        if final.exists():
            continue
        fd, tmp_name = tempfile.mkstemp(prefix=".pixverse-sample-", suffix=final.suffix, dir=input_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _render(kind, tmp)
            try:
                os.link(tmp, final)  # fails if the name appeared meanwhile: never overwrites
            except FileExistsError:
                continue
            except OSError:  # no hard links on this file system
                if final.exists():
                    continue
                try:
                    tmp.rename(final)  # POSIX replaces a name that appeared meanwhile; Windows refuses
                except FileExistsError:
                    continue
            written.append(final)
        finally:
            tmp.unlink(missing_ok=True)
    return written
