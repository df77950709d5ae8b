"""Every image mode uploads as it looks (issue 25 item 6): a table over PIL's modes and the EXIF
orientations, on the CLI/batch path (an image file → load_image_file → the upload bytes) and on the
ComfyUI path (an IMAGE tensor, in the dtypes and channel counts ComfyUI hands a node → the upload bytes).
Each case decodes the bytes that would be uploaded and compares their mean with the mean of the image as
a viewer shows it (alpha composited on black, the pack's rule)."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import fault_matrix
from nodes.job.inputs import encode_image_input
from nodes.media.images import load_image_file
from nodes.spec import load_spec

W, H = 320, 400  # inside the accepted sizes: nothing is resized, so the means compare directly
TOLERANCE = 2.0  # of 255


def _uploaded(image) -> np.ndarray:
    up = encode_image_input(image, load_spec(), "first_frame", [])
    with Image.open(io.BytesIO(up.data)) as im:
        assert im.mode == "RGB"
        return np.asarray(im, dtype=np.float64)


def _png16(path, values: np.ndarray, colour: bool) -> None:
    """A 16-bit PNG written by hand (PIL writes no 48-bit RGB)."""
    h, w = values.shape[:2]
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2 if colour else 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def _half(a, b, shape=(H, W)):
    """An array whose left half is `a` and right half `b`."""
    out = np.empty(shape + np.shape(a), dtype=np.result_type(np.asarray(a), np.asarray(b)))
    out[:, : shape[1] // 2] = a
    out[:, shape[1] // 2:] = b
    return out


def _p_with_transparency():
    im = Image.new("P", (W, H), 0)
    im.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    im.paste(1, (W // 2, 0, W, H))
    im.paste(0, (0, 0, W // 2, H))
    im.info["transparency"] = 0  # left half transparent: black once composited
    return im, (200 + 100 + 50) / 3 / 2


# (mode name, writer(path) → expected mean as it looks, file suffix)
def _cases():
    def one(p):
        Image.fromarray(_half(False, True)).convert("1").save(p)
        return 127.5

    def grey(p):
        Image.fromarray(np.full((H, W), 128, np.uint8)).save(p)
        return 128

    def la(p):
        a = np.zeros((H, W, 2), np.uint8)
        a[..., 0], a[..., 1] = 200, 128
        Image.fromarray(a, "LA").save(p)
        return 200 * 128 / 255

    def pal(p):
        im, mean = _p_with_transparency()
        im.save(p, transparency=0)
        return mean

    def i16(p):
        Image.fromarray(np.full((H, W), 32896, np.uint16)).save(p)  # 32896 = 128 × 257
        return 128

    def i16b(p):
        Image.fromarray(np.full((H, W), 0x6000, ">u2")).save(p)  # TIFF keeps big-endian 16-bit
        return 0x6000 / 257

    def i32(p):
        Image.fromarray(np.full((H, W), 40000, np.int32)).save(p)  # a 16-bit range in mode I
        return 40000 / 257

    def i32_8(p):
        Image.fromarray(np.full((H, W), 100, np.int32)).save(p)  # 8-bit values in mode I
        return 100

    def flt(p):
        Image.fromarray(np.full((H, W), 0.25, np.float32)).save(p)
        return 0.25 * 255

    def flt255(p):
        Image.fromarray(np.full((H, W), 180.0, np.float32)).save(p)
        return 180

    def rgb(p):
        Image.fromarray(_half(np.array([255, 0, 0], np.uint8), np.array([0, 0, 255], np.uint8))).save(p)
        return 255 / 3

    def rgba(p):
        a = np.zeros((H, W, 4), np.uint8)
        a[...] = (90, 180, 30, 255)
        a[:, W // 2:, 3] = 0  # right half transparent
        Image.fromarray(a, "RGBA").save(p)
        return (90 + 180 + 30) / 3 / 2

    def cmyk(p):
        Image.new("CMYK", (W, H), (0, 0, 0, 128)).save(p)  # 50 % black
        return float(np.asarray(Image.new("CMYK", (1, 1), (0, 0, 0, 128)).convert("RGB")).mean())

    def ycbcr(p):
        Image.new("YCbCr", (W, H), (128, 128, 128)).save(p)
        return float(np.asarray(Image.new("YCbCr", (1, 1), (128, 128, 128)).convert("RGB")).mean())

    def rgb16(p):
        v = np.zeros((H, W, 3), np.uint16)
        v[...] = (0xFFFF, 0x8080, 0x0000)
        _png16(p, v, colour=True)
        return (255 + 128 + 0) / 3

    def grey16_hand(p):
        _png16(p, np.full((H, W), 0x8080, np.uint16), colour=False)
        return 128

    return [("1", one, "png"), ("L", grey, "png"), ("LA", la, "png"), ("P + transparency", pal, "png"),
            ("I;16 (16-bit grey PNG)", i16, "png"), ("I;16 (hand-written 16-bit PNG)", grey16_hand, "png"),
            ("I;16B (TIFF)", i16b, "tiff"), ("I (16-bit values)", i32, "tiff"), ("I (8-bit values)", i32_8, "tiff"),
            ("F (0..1)", flt, "tiff"), ("F (0..255)", flt255, "tiff"), ("RGB", rgb, "png"), ("RGBA", rgba, "png"),
            ("CMYK", cmyk, "jpg"), ("YCbCr", ycbcr, "tiff"), ("RGB 16-bit", rgb16, "png")]


@pytest.mark.parametrize("name,write,suffix", _cases(), ids=[c[0] for c in _cases()])
def test_cli_path_every_mode_uploads_as_it_looks(tmp_path, name, write, suffix):
    path = tmp_path / f"in.{suffix}"
    expected = write(path)
    with Image.open(path) as im:
        opened = im.mode
    tensor = load_image_file(path)
    got = _uploaded(tensor)
    assert got.shape[:2] == (H, W)
    assert abs(got.mean() - expected) <= TOLERANCE, (name, opened, got.mean(), expected)
    fault_matrix.record(f"image file in mode {opened} ({name}), CLI/batch path",
                        f"uploaded mean {got.mean():.1f}, looks {expected:.1f}", 0, 0.0)


def _marked() -> Image.Image:
    """A non-square image with a white top-left corner: each orientation moves it somewhere else."""
    a = np.zeros((H, W, 3), np.uint8)
    a[: H // 4, : W // 3] = 255
    return Image.fromarray(a)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_cli_path_exif_orientation(tmp_path, orientation):
    im = _marked()
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    im.save(path, exif=exif, quality=98)
    with Image.open(path) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"), dtype=np.float64)
    got = _uploaded(load_image_file(path))
    assert got.shape == expected.shape, (orientation, got.shape, expected.shape)
    # the white corner is where a viewer shows it: compare the four quadrants' means
    h, w = got.shape[:2]
    for ys in (slice(0, h // 2), slice(h // 2, h)):
        for xs in (slice(0, w // 2), slice(w // 2, w)):
            assert abs(got[ys, xs].mean() - expected[ys, xs].mean()) <= 3 * TOLERANCE, (orientation, ys, xs)
    if orientation == 8:
        fault_matrix.record("image file with EXIF orientation 1..8, CLI/batch path",
                            "uploaded turned as a viewer shows it (quadrant means within 6/255)", 0, 0.0)


def _comfy_tensors():
    """IMAGE tensors as ComfyUI hands them to a node: [B,H,W,C], 0..1, in the dtypes and channel counts seen."""
    grey = torch.full((1, H, W, 3), 0.5)
    rgba = torch.zeros((1, H, W, 4))
    rgba[..., 0], rgba[..., 3] = 1.0, 0.5
    return [("float32 RGB", grey, 127.5), ("float16 RGB", grey.half(), 127.5),
            ("bfloat16 RGB", grey.bfloat16(), 127.5), ("float64 RGB", grey.double(), 127.5),
            ("uint8 RGB", torch.full((1, H, W, 3), 128, dtype=torch.uint8), 128),
            ("1 channel (mask-like)", torch.full((1, H, W, 1), 0.25), 63.75),
            ("RGBA (alpha 0.5)", rgba, 255 * 0.5 / 3),
            ("batch of 2 (first used)", torch.cat([torch.full((1, H, W, 3), 0.2), torch.ones((1, H, W, 3))]), 51),
            ("[H,W,C] without batch", torch.full((H, W, 3), 0.75), 191.25)]


@pytest.mark.parametrize("name,tensor,expected", _comfy_tensors(), ids=[c[0] for c in _comfy_tensors()])
def test_comfyui_path_tensor_uploads_as_it_looks(name, tensor, expected):
    got = _uploaded(tensor)
    assert got.shape[:2] == (H, W)
    assert abs(got.mean() - expected) <= TOLERANCE, (name, got.mean(), expected)
    fault_matrix.record(f"IMAGE tensor {name}, ComfyUI path", f"uploaded mean {got.mean():.1f}, looks {expected:.1f}",
                        0, 0.0)


@pytest.mark.parametrize("name,write,suffix", [c for c in _cases() if c[0].startswith(("I", "F"))],
                         ids=[c[0] for c in _cases() if c[0].startswith(("I", "F"))])
def test_comfyui_path_from_a_high_bit_file(tmp_path, name, write, suffix):
    """The tensor a high-bit file becomes (load_image_file, as the CLI makes it) goes up as it looks through
    the node's encoder too."""
    path = tmp_path / f"in.{suffix}"
    expected = write(path)
    tensor = load_image_file(path)
    assert tensor.dtype == torch.float32 and tensor.shape == (1, H, W, 3)
    assert abs(float(tensor.mean()) * 255 - expected) <= TOLERANCE
