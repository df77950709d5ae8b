"""A reproducible stand-in for a camera photo (no photo is shipped with the tests): smooth shading
over several scales, objects with hard edges, fine texture and sensor noise, so that PNG and JPEG
sizes behave as on a real photo (a 4000×3000 one is several MB as PNG)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def photo(width: int = 4000, height: int = 3000, seed: int = 17) -> torch.Tensor:
    """IMAGE [1, height, width, 3] float32 0..1."""
    g = torch.Generator().manual_seed(seed)
    full_w, full_h = width, height
    width, height = max(8, width // 4), max(8, height // 4)  # drawn at 1/4, then enlarged (fast)
    img = torch.zeros(1, 3, height, width)
    for cells, weight in ((4, 0.45), (16, 0.25), (64, 0.12), (256, 0.06)):
        ch, cw = max(2, cells * height // width), cells
        base = torch.rand(1, 1, ch, cw, generator=g)  # shared: luminance
        tint = torch.rand(1, 3, ch, cw, generator=g) * 0.4
        layer = F.interpolate(base + tint, size=(height, width), mode="bicubic", align_corners=False)
        img += weight * layer
    rng = np.random.default_rng(seed)
    for _ in range(40):  # objects: discs and boxes with hard edges, drawn in their bounding box
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.02, 0.15) * width
        colour = torch.tensor(rng.uniform(0, 1, 3), dtype=torch.float32).view(1, 3, 1, 1)
        disc = rng.random() < 0.5
        ry = r if disc else r * 0.6
        x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
        y0, y1 = max(0, int(cy - ry)), min(height, int(cy + ry) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) if disc else np.ones_like(xx, dtype=bool)
        m = torch.from_numpy(mask).view(1, 1, y1 - y0, x1 - x0)
        box = img[:, :, y0:y1, x0:x1]
        img[:, :, y0:y1, x0:x1] = torch.where(m, 0.6 * box + 0.4 * colour, box)
    img = img / img.amax().clamp(min=1e-6)
    img = F.interpolate(img, size=(full_h, full_w), mode="bilinear", align_corners=False)
    img += F.interpolate(torch.randn(1, 3, full_h // 2, full_w // 2, generator=g) * (1.0 / 255),
                         size=(full_h, full_w), mode="nearest")  # texture finer than the drawing
    img += torch.randn(img.shape, generator=g) * (0.6 / 255)  # sensor noise
    return img.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def mad_at(a: np.ndarray, b: np.ndarray, width: int = 640) -> float:
    """Mean absolute difference (0..255) of two uint8 RGB images, both resized to `width` px wide."""
    from PIL import Image

    def small(x):
        h = round(x.shape[0] * width / x.shape[1])
        return np.asarray(Image.fromarray(x).resize((width, h), Image.Resampling.LANCZOS), dtype=np.float32)
    return float(np.abs(small(a) - small(b)).mean())
