"""PixVerse on Runware: everything under the ComfyUI nodes, layered; each layer imports only those below.

    spec (data: models, settings, kinds, paths)      errors      config (every variable and setting)
      → requests (task builders, layouts, widgets, Runware's schema check)
      → workflows (one slice per workflow, one table by kind; the one draft request iterates it)
      → client (Runware over httpx) · media (PyAV, PIL) · money (ledger, pricing, limits, balance)
      → job (one job end to end: claims, inputs, submit, delivery, follow-up)
      → cli (python -m nodes, batch) · comfy (the ComfyUI nodes, routes, start-ahead)
    emulator: a local Runware stand-in beside the product; it reads the spec and the schema check.

Each unit's docstring says what it owns and ends with its `May import: …` line; tests/structure.py
reads its layer table from those lines. Kept import-light: heavy modules (torch, PyAV) load on first use.
"""

__version__ = "0.1.0"
