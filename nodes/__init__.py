"""PixVerse on Runware: everything under the ComfyUI nodes, layered; each layer imports only those below.

    spec (data: models, settings, kinds, paths)      errors      config (every variable and setting)
      → requests (task builders, the one draft, layouts, widgets)
      → client (Runware over httpx) · media (PyAV, PIL) · money (ledger, pricing, limits, balance)
      → job (one job end to end: claims, inputs, submit, delivery, follow-up)
      → cli (python -m nodes, batch) · comfy (the ComfyUI nodes, routes, start-ahead)
    emulator: a local Runware stand-in beside the product; it reads the spec.

Each sub-package's docstring says what it owns and what it may import; tests/structure.py reads its
layer table from these packages. Kept import-light: heavy modules (torch, PyAV) load on first use.
"""

__version__ = "0.1.0"
