"""PixVerse on Runware: the layers under the ComfyUI nodes.

spec (data) → requests (validation, task JSON) → client (Runware HTTP) → media (codecs) →
pipeline (one job end to end) → comfy (the ComfyUI node classes; the only ComfyUI importer).
Kept import-light: ComfyUI imports this package at start-up; heavy modules load on first use.
"""

__version__ = "0.1.0"
