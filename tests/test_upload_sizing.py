"""Issue 17 item 12: uploads sized to what Runware keeps and the models use.

A 4000×3000 photo goes to image-to-video at ≤ 2048 px on the long side (Runware stores no more),
≤ 4 MB, PNG or JPEG chosen by size, and still looks like itself (mean absolute difference ≤ 6/255
at 640 px). Frames for LipSync / Modify become a video no larger than the largest size the models
make. The limits are the capability spec's data; the figures here go through the pipeline's own
encoding functions with the shipped spec."""
from __future__ import annotations

import functools
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nodes.job import inputs, pipeline
from nodes.media import encode_frames_mp4, probe_video
from nodes.media.images import encode_image_for_upload, image_to_uint8
from nodes.spec import load_spec
from synthetic_photo import mad_at, photo

MB4 = 4 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def big_photo() -> torch.Tensor:
    return photo(4000, 3000)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_the_spec_holds_the_upload_limits_with_their_source():
    spec = load_spec()
    lim = spec.input_image
    assert (lim.min_side, lim.max_side, lim.upload_max_side, lim.upload_max_bytes) == (300, 4000, 2048, MB4)
    assert "runware.ai/docs/platform/image-upload" in lim.source
    largest = max(max(wh) for m in spec.models for tier in m.sizes.values() for wh in tier.values())
    assert spec.lipsync_limits.frames_max_side == largest == 1920


def test_a_4000x3000_photo_goes_up_at_2048_px_under_4_mb_and_looks_like_itself():
    notes: list[str] = []
    up = pipeline.encode_image_input(big_photo(), load_spec(), "first_frame", notes)
    img = decoded(up.data)
    assert img.shape[:2] == (1536, 2048)  # aspect kept
    assert len(up.data) <= MB4
    assert up.mime in ("image/png", "image/jpeg")
    mad = mad_at(image_to_uint8(big_photo()), img)
    assert mad <= 6.0, mad
    assert any("4000x3000 → 2048x1536" in n for n in notes), notes


def test_before_the_fix_the_same_photo_was_sent_whole():
    """The bound above is not met by accident: sent at the accepted limits only (the old call),
    the same photo is 4000×3000 and several MB."""
    lim = load_spec().input_image
    old = encode_image_for_upload(big_photo(), min_side=lim.min_side, max_side=lim.max_side,
                                  max_bytes=lim.max_bytes)
    assert (old.width, old.height) == (4000, 3000) and len(old.data) > MB4


def test_png_over_the_target_becomes_a_jpeg_that_still_looks_like_itself():
    g = torch.Generator().manual_seed(3)
    noisy = torch.rand(1, 1536, 2048, 3, generator=g) * 0.3 + 0.35  # grain: PNG ≫ 4 MB
    up = pipeline.encode_image_input(noisy, load_spec(), "first_frame", [])
    assert up.mime == "image/jpeg" and len(up.data) <= MB4
    assert mad_at(image_to_uint8(noisy), decoded(up.data)) <= 6.0


def test_a_small_graphic_stays_png_at_its_size():
    img = torch.zeros(1, 800, 1000, 3)
    img[:, 100:400, 200:700, 0] = 1.0
    img[:, 500:, :, 2] = 0.5
    up = pipeline.encode_image_input(img, load_spec(), "first_frame", [])
    assert up.mime == "image/png" and decoded(up.data).shape[:2] == (800, 1000)
    assert np.array_equal(decoded(up.data), image_to_uint8(img))  # lossless


@pytest.mark.parametrize("w,h,expect", [
    (4000, 400, (3000, 300)),     # 10:1: 2048 long would make the short side 205 < 300 px; 300 is kept
    (400, 4000, (300, 3000)),
    (2048, 1000, (2048, 1000)),   # at the limit: untouched
    (3000, 2000, (2048, 1365))])
def test_send_size_keeps_the_aspect_and_the_minimum_side(w, h, expect):
    img = torch.full((1, h, w, 3), 0.5)
    up = encode_image_for_upload(img, min_side=300, max_side=4000, max_bytes=20 << 20,
                                 send_max_side=2048, target_bytes=MB4)
    assert (up.width, up.height) == expect
    assert decoded(up.data).shape[:2] == (expect[1], expect[0])


@pytest.mark.parametrize("w,h,expect", [
    (2560, 1440, (1920, 1080)), (1440, 2560, (1080, 1920)),  # over 1080p: down to it
    (1280, 720, (1280, 720)), (1921, 1081, (1920, 1080))])
def test_frames_become_a_video_no_larger_than_the_models_make(w, h, expect):
    frames = torch.linspace(0, 1, w).view(1, 1, w, 1).expand(3, h, w, 3).contiguous()
    with tempfile.TemporaryDirectory() as tmp:
        info = encode_frames_mp4(frames, 3.0, Path(tmp) / "f.mp4",
                                 max_side=load_spec().lipsync_limits.frames_max_side)
    assert (info.width, info.height) == expect
    assert info.frame_count == 3


def test_pipeline_frames_input_is_scaled_down():
    frames = torch.zeros(4, 1440, 2560, 3)
    frames[:, :, :1280, 1] = 1.0  # left half green: still there after scaling
    up = inputs.encode_frames_input(frames, 4.0, load_spec(), [])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        path.write_bytes(up.data)
        info = probe_video(path)
        from nodes.media import decode_video
        video = decode_video(path)
    assert (info.width, info.height) == (1920, 1080)
    first = video.frames[0]
    assert float(first[540, 400, 1]) > 0.8 and float(first[540, 1500, 1]) < 0.2
