"""IMAGE tensors → upload-ready PNG/JPEG bytes, and image files → IMAGE tensors.

The size limits (min/max side, max bytes) are arguments: callers take them from
`load_spec().input_image`, so no PixVerse number is written here.
"""
from __future__ import annotations

import base64
import io
import math
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..errors import MediaError

# JPEG qualities tried, in order, when the PNG is over the byte limit.
_JPEG_QUALITIES = (95, 90, 85, 75, 60, 45, 30)


@dataclass
class EncodedImage:
    data: bytes
    mime: str
    width: int
    height: int
    notes: list[str] = field(default_factory=list)


def image_to_uint8(image, *, parameter: str = "image", notes: list[str] | None = None) -> np.ndarray:
    """IMAGE tensor ([B,H,W,C] or [H,W,C], float 0..1) → uint8 RGB array [H,W,3] of the first image.

    NaN/inf become 0, values are clamped, alpha is composited on black, grey is expanded to RGB.
    """
    if not isinstance(image, torch.Tensor):
        try:
            image = torch.as_tensor(np.asarray(image))
        except Exception as exc:  # noqa: BLE001 - anything unconvertible is bad input
            raise MediaError(f"{parameter}: expected an IMAGE tensor, got {type(image).__name__}") from exc
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise MediaError(f"{parameter}: expected an IMAGE tensor [batch, height, width, channels], "
                         f"got shape {list(image.shape)}")
    b, h, w, c = image.shape
    if b == 0 or h == 0 or w == 0:
        raise MediaError(f"{parameter}: the image is empty (shape {list(image.shape)})")
    if c not in (1, 3, 4):
        raise MediaError(f"{parameter}: expected 1, 3 or 4 channels, got {c} (shape {list(image.shape)})")
    if b > 1 and notes is not None:
        notes.append(f"batch of {b}: used the first image")

    img = image[0].detach().cpu()
    out = np.empty((h, w, 3), dtype=np.uint8)
    dst = torch.from_numpy(out)
    # Row blocks of ~4 MB float32 through one reused scratch buffer: the same steps per element as
    # a whole-image float copy, without its 192 MB (4000x4000) allocation and cache misses.
    rows = max(1, _BLOCK_BYTES // (w * c * 4))
    scratch = torch.empty((min(rows, h), w, c), dtype=torch.float32)
    for top in range(0, h, rows):
        block = img[top:top + rows]
        f = scratch[: block.shape[0]]
        f.copy_(block)  # exact for float16/bfloat16/float64 → float32, uint8 and bool
        if img.dtype == torch.uint8:
            f.div_(255)
        torch.nan_to_num_(f, nan=0.0, posinf=0.0, neginf=0.0)
        f.clamp_(0.0, 1.0)
        if c == 4:
            rgb = f[..., :3]
            rgb.mul_(f[..., 3:4])  # composite on black: rgb * alpha
            f = rgb
        f = f.mul_(255.0).round_()
        dst[top:top + block.shape[0]].copy_(f.expand(-1, -1, 3) if c == 1 else f)
    return out


_BLOCK_BYTES = 4 << 20


def _fit_size(width: int, height: int, min_side: int, max_side: int, parameter: str) -> tuple[int, int]:
    """The size closest to (width, height), same aspect, with both sides in [min_side, max_side]."""
    if min_side > max_side:
        raise ValueError(f"min_side {min_side} > max_side {max_side}")
    long_side, short_side = max(width, height), min(width, height)
    # Exact integer test: long/short > max/min means no scale satisfies both limits.
    if long_side * min_side > short_side * max_side:
        raise MediaError(
            f"{parameter}: the image is {width}x{height}; each side must be between {min_side} and "
            f"{max_side} px, and its aspect ratio ({long_side / short_side:.2f}:1) is more extreme than "
            f"{max_side}:{min_side} ({max_side / min_side:.2f}:1), so no resize can fit it. "
            f"Crop or pad it to a less elongated shape.")
    if long_side > max_side:
        scale = max_side / long_side
    elif short_side < min_side:
        scale = min_side / short_side
    else:
        return width, height

    def side(v: int) -> int:
        return min(max_side, max(min_side, round(v * scale)))

    return side(width), side(height)


def _send_size(width: int, height: int, send_max_side: Optional[int], min_side: int) -> tuple[int, int]:
    """(width, height) brought down to `send_max_side` on the long side, same aspect, without
    taking the short side under `min_side` (an elongated image then keeps a longer long side,
    which the accepted limits already allowed)."""
    long_side, short_side = max(width, height), min(width, height)
    if not send_max_side or long_side <= send_max_side:
        return width, height
    scale = max(send_max_side / long_side, min(1.0, min_side / short_side))
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_image_size(width: int, height: int, *, min_side: int, max_side: int,
                   parameter: str = "image") -> tuple[int, int]:
    """Public wrapper of the fitting rule, for callers that only need the target size."""
    return _fit_size(width, height, min_side, max_side, parameter)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _deflate_part(data: memoryview, last: bool) -> bytes:
    c = zlib.compressobj(1, zlib.DEFLATED, -15)  # raw deflate, fastest level (as PIL's compress_level=1)
    return c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _png_bytes(arr: np.ndarray, max_bytes: Optional[int] = None) -> Optional[bytes]:
    """uint8 RGB [H,W,3] → PNG bytes, or None as soon as the PNG is certain to exceed `max_bytes`.

    The same pixels as PIL's PNG, 2-3x faster on big images: every row uses the PNG "Up" filter
    (one numpy subtraction instead of PIL's per-row adaptive choice, within 1 % of its size on
    photos), and the rows are deflated in parts on all cores (zlib releases the GIL). Each part
    but the last ends on a sync flush, so the parts concatenate into one valid zlib stream
    (the pigz layout)."""
    h, w = arr.shape[:2]
    stride = 1 + 3 * w
    raw = np.empty((h, stride), dtype=np.uint8)
    raw[:, 0] = 2  # filter type Up: each byte minus the byte above it (mod 256); row 0 minus zeros
    pixels = raw[:, 1:].reshape(h, w, 3)
    np.subtract(arr[1:], arr[:-1], out=pixels[1:])
    pixels[0] = arr[0]
    flat = memoryview(raw).cast("B")
    rows = max(1, _PNG_PART_BYTES // stride)
    parts = [(top * stride, min(h, top + rows) * stride) for top in range(0, h, rows)]
    adler = zlib.adler32(flat)
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        futures = [pool.submit(_deflate_part, flat[a:b], i == len(parts) - 1) for i, (a, b) in enumerate(parts)]
        done = 0
        for fut in futures:
            done += len(fut.result())
            if max_bytes is not None and done > max_bytes:
                for f in futures:
                    f.cancel()
                return None
        body = b"".join(f.result() for f in futures)
    idat = b"\x78\x01" + body + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, adaptive filters, no interlace
    data = _PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    if max_bytes is not None and len(data) > max_bytes:
        return None
    return data


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PART_BYTES = 2 << 20


def _workers() -> int:
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except (AttributeError, OSError):
        return max(1, min(8, os.cpu_count() or 1))


def _encode_jpeg(pil, quality: int) -> bytes:
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2, optimize=False)
    return buf.getvalue()


# An estimate this far over the limit skips the full encode (samples are within a few % on noise and photos).
_ESTIMATE_MARGIN = 1.1
_SAMPLE_STRIPS = 8


def _estimate_size(pil, encode) -> int:
    """Encoded size predicted from 8 full-width strips spread over the image (~1/8 of its rows).

    Small images are simply encoded: sampling only pays off on big ones."""
    w, h = pil.size
    if w * h <= 1_000_000:
        return 0  # "certainly fits": the caller then does the real encode
    strip = max(8, h // (_SAMPLE_STRIPS * 8))
    step = h // _SAMPLE_STRIPS
    total = 0
    rows = 0
    for k in range(_SAMPLE_STRIPS):
        top = k * step
        total += len(encode(pil.crop((0, top, w, min(h, top + strip)))))
        rows += min(h, top + strip) - top
    return int(total * h / rows)


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB"


def encode_image_for_upload(image, *, min_side: int, max_side: int, max_bytes: int,
                            parameter: str = "image", send_max_side: Optional[int] = None,
                            target_bytes: Optional[int] = None) -> EncodedImage:
    """Fit an IMAGE into the provider's limits and encode it (PNG, else JPEG if too large).

    `min_side`/`max_side`/`max_bytes` are what the provider accepts: an image no resize can fit is
    refused. `send_max_side` (Runware keeps uploads at most 2048 px long) sizes what is sent: a
    bigger image goes up at that long side, as Runware would store it anyway. `target_bytes`: PNG
    when the PNG is at most that, else the best JPEG quality that is (both default to `max_bytes`)."""
    from PIL import Image

    notes: list[str] = []
    arr = image_to_uint8(image, parameter=parameter, notes=notes)
    h, w = arr.shape[:2]
    new_w, new_h = _fit_size(w, h, min_side, max_side, parameter)
    new_w, new_h = _send_size(new_w, new_h, send_max_side, min_side)
    accepted = max_bytes
    if target_bytes:
        max_bytes = min(max_bytes, target_bytes)
    if (new_w, new_h) != (w, h):
        # reducing_gap: for big downscales PIL first shrinks by an integer factor (fast box
        # filter) and then applies Lanczos; visually identical, much faster on 5000+ px inputs.
        arr = np.asarray(Image.fromarray(arr).resize((new_w, new_h), Image.Resampling.LANCZOS,
                                                     reducing_gap=3.0 if new_w < w else None))
        why = f" (Runware keeps at most {send_max_side} px)" if send_max_side and max(w, h) > max(new_w, new_h) \
            and max(new_w, new_h) <= send_max_side else ""
        notes.append(f"resized {w}x{h} → {new_w}x{new_h}{why}")

    # Lossless first. A hopeless PNG (noise, grain) is given up as soon as its parts pass the limit.
    data = _png_bytes(arr, max_bytes)
    if data is not None:
        return EncodedImage(data, "image/png", new_w, new_h, notes)
    pil = Image.fromarray(arr)
    del arr

    for quality in _JPEG_QUALITIES:
        if quality != _JPEG_QUALITIES[-1] and \
                _estimate_size(pil, lambda im: _encode_jpeg(im, quality)) > max_bytes * _ESTIMATE_MARGIN:
            continue
        data = _encode_jpeg(pil, quality)
        if len(data) <= max_bytes:
            notes.append(f"PNG over {_mb(max_bytes)}: sent as JPEG quality {quality} "
                         f"({_mb(len(data))})")
            return EncodedImage(data, "image/jpeg", new_w, new_h, notes)
    if len(data) <= accepted:  # over the target, within what the provider accepts: still sent
        notes.append(f"sent as JPEG quality {_JPEG_QUALITIES[-1]} ({_mb(len(data))}, over the "
                     f"{_mb(max_bytes)} aimed at)")
        return EncodedImage(data, "image/jpeg", new_w, new_h, notes)
    max_bytes = accepted
    raise MediaError(
        f"{parameter}: a {new_w}x{new_h} image is still {_mb(len(data))} as JPEG quality "
        f"{_JPEG_QUALITIES[-1]}; the limit is {_mb(max_bytes)} ({max_bytes} bytes)")


def data_uri(encoded: EncodedImage) -> str:
    """`data:<mime>;base64,<...>`, the form Runware's imageUpload and inputImage accept."""
    return f"data:{encoded.mime};base64,{base64.b64encode(encoded.data).decode('ascii')}"


# Refused before decoding: no photo a video frame comes from is this big, and a decompression bomb
# (a few KB of PNG declaring 20000x20000) is. Under it, big files are reduced while they decode.
MAX_DECODE_PIXELS = 120_000_000
_EXIF_ORIENTATION = 0x0112


def _transpose_for(orientation) -> Optional[int]:
    from PIL import Image

    T = Image.Transpose
    return {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
            6: T.ROTATE_270, 7: T.TRANSVERSE, 8: T.ROTATE_90}.get(orientation)


_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _high_bit_to_8bit(im):
    """A greyscale image of more than 8 bits → mode L as a viewer shows it (PIL's own convert clips every
    value over 255, so a mid-grey 16-bit PNG would turn white).

    I;16 (16-bit PNG/TIFF): value / 257. I (32-bit int; older Pillow opens 16-bit PNGs as I): 8-bit when
    its largest value is at most 255, 16-bit when at most 65535, else the full 32-bit range. F (float):
    0..1 when its largest value is at most 1, else 0..255 as PIL shows it. Other modes are returned as they are."""
    from PIL import Image

    if im.mode not in _HIGH_BIT_MODES:
        return im
    values = np.asarray(im)
    if im.mode == "F":
        values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(values.max()) if values.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0
    else:
        values = values.astype(np.float64)
        top = float(values.max()) if values.size else 0.0
        if im.mode.startswith("I;16"):
            scale = 1 / 257
        elif top <= 255:
            scale = 1.0
        elif top <= 65535:
            scale = 1 / 257
        else:
            scale = 255 / (2 ** 31 - 1)
    out = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(out)  # uint8, 2-D: mode L


def load_image_file(path: Union[str, Path], *, max_side: Optional[int] = None,
                    max_pixels: int = MAX_DECODE_PIXELS, min_side: Optional[int] = None) -> torch.Tensor:
    """An image file → IMAGE tensor [1,H,W,3] float32 0..1 (EXIF rotation applied).

    The size is read from the header first: over `max_pixels` the file is refused before any pixel
    is decoded (decompression bombs). With `max_side`, a larger image is brought down to about that
    long side while it is loaded: JPEGs decode at 1/2, 1/4 or 1/8 scale directly (`draft`), others
    are box-reduced by an integer factor in 8-bit before anything else (`reduce`), so the float32
    tensor and the alpha/EXIF steps only ever see the small image. Peak memory for a 100 MP PNG is
    its 8-bit decode (~300 MB), not 8-bit + float32 copies of the full size (~2.4 GB).

    `min_side` (the smallest side the provider accepts): the reduction never takes the short side under
    it, as `encode_image_for_upload` sizes what is sent; an image that elongated keeps its size, so every
    later check and message speaks of the file's real size (a 1x10000 strip, not "1x4000")."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below
            with Image.open(path) as source:
                im = source
                width, height = im.size
                if width * height > max_pixels:
                    raise MediaError(
                        f"image file {path}: {width}x{height} is {width * height / 1e6:.0f} megapixels; "
                        f"images over {max_pixels / 1e6:.0f} megapixels are refused before decoding (a "
                        f"decompression bomb, or far more than a video frame uses). Downscale it first.")
                if width < 1 or height < 1:
                    raise MediaError(f"image file {path}: it declares a size of {width}x{height}")
                orientation = im.getexif().get(_EXIF_ORIENTATION)
                long_side = max(width, height)
                if max_side and min_side:  # the long side that keeps the short one at min_side or more
                    max_side = max(max_side, math.ceil(long_side * min(1.0, min_side / min(width, height))))
                if max_side and long_side > max_side:
                    scale = max_side / long_side
                    im.draft("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
                im.load()
                im = _high_bit_to_8bit(im)  # 16-bit grey, 32-bit int, float: scaled as they look
                if im.mode not in ("L", "LA", "RGB", "RGBA", "RGBX"):
                    has_alpha = im.mode in ("PA", "La") or (im.mode == "P" and "transparency" in im.info)
                    im = im.convert("RGBA" if has_alpha else "RGB")
                if max_side and max(im.size) > max_side:
                    factor = max(im.size) // max_side
                    if factor >= 2:
                        im = im.reduce(factor)  # 8-bit box filter: the big buffer is freed right after
                    if max(im.size) > max_side:
                        scale = max_side / max(im.size)
                        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                                       Image.Resampling.LANCZOS)
                    source.close()  # the full-size decode is freed now, before any further copy
                transpose = _transpose_for(orientation)
                if transpose is not None:
                    im = im.transpose(transpose)
                if im.mode in ("RGBA", "LA"):
                    # Same rule as encode_image_for_upload: alpha composited on black.
                    im = im.convert("RGBA")
                    black = Image.new("RGBA", im.size, (0, 0, 0, 255))
                    im = Image.alpha_composite(black, im)
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as exc:  # Pillow's own check at open, above 2x its limit
        import re

        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
        raise MediaError(f"image file {path}: it declares {size}; images over {max_pixels / 1e6:.0f} megapixels "
                         f"are refused before decoding (a decompression bomb, or far more than a video frame "
                         f"uses). Downscale it first.") from None
    except MediaError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, MemoryError) as exc:
        raise MediaError(f"cannot read image file {path}: {exc}") from exc
    h, w = arr.shape[:2]
    out = torch.empty((1, h, w, 3), dtype=torch.float32)
    np.divide(arr, np.float32(255.0), out=out[0].numpy(), dtype=np.float32)
    return out
