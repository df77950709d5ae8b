"""Which skips a CI run accepts: one short list, each entry with its reason.

Outside CI a test may skip for want of something (ComfyUI, Node.js, root, the seed page), with the reason
printed by `-ra`. In CI a skip guards nothing, so every skip fails the run unless its reason matches an
entry below. CI is:
- `.ci/run` (this project's CI on Linux as root, with ../shared, ComfyUI, Chromium, Node.js): it sets
  PIXVERSE_CI=1 (and PIXVERSE_REQUIRE_COMFYUI=1 when it built ComfyUI); only ALLOWED applies.
- the hosted quick tier (.github/workflows/tests.yml on Linux, Windows and macOS): it sets
  PIXVERSE_CI=hosted; ALLOWED and ALLOWED_HOSTED apply (what a hosted runner cannot have).
"""
from __future__ import annotations

import os

# (a piece of the skip reason, why CI may skip it)
ALLOWED: tuple[tuple[str, str], ...] = (
    ("could not download comfyui-frontend-package from PyPI",
     "the newest frontend comes from PyPI at CI time; when PyPI cannot be reached the pinned frontend "
     "is still tested, and .ci/run prints why"),
)

CTRL_C_ON_WINDOWS = ("Ctrl-C cannot be sent to one child process on Windows (send_signal takes only "
                     "CTRL_BREAK_EVENT, for a process group)")

ALLOWED_HOSTED: tuple[tuple[str, str], ...] = (
    ("seed page not found",
     "the seed page sits in ../shared beside this project's CI clone, never in the published repository"),
    ("tmpfs",
     "the full-disk and read-only money cases mount a tmpfs: Linux as root only (hosted runners are not "
     "root; Windows and macOS have no tmpfs); .ci/run runs them"),
    ("Ctrl-C cannot be sent to one child process on Windows",
     "Windows delivers Ctrl-C to a whole console, and a child in its own process group only gets "
     "Ctrl-Break; the Ctrl-C tests run on Linux and macOS"),
    ("needs Linux's /proc",
     "the memory figures of the decode tests are read from Linux's /proc; .ci/run runs them"),
)


def mode() -> str | None:
    """'ci' (.ci/run), 'hosted' (GitHub's runners) or None (a contributor's run)."""
    value = os.environ.get("PIXVERSE_CI", "")
    if value == "hosted":
        return "hosted"
    if value == "1" or os.environ.get("PIXVERSE_REQUIRE_COMFYUI") == "1":
        return "ci"
    return None


def refusal(reason: str) -> str | None:
    """None when this skip is acceptable here, else the failure text that replaces it."""
    where = mode()
    if where is None:
        return None
    allowed = ALLOWED + (ALLOWED_HOSTED if where == "hosted" else ())
    if any(piece.lower() in reason.lower() for piece, _why in allowed):
        return None
    variable = "PIXVERSE_CI=hosted" if where == "hosted" else (
        "PIXVERSE_CI=1" if os.environ.get("PIXVERSE_CI") == "1" else "PIXVERSE_REQUIRE_COMFYUI=1")
    return (f"{variable}: in CI every skip fails unless tests/skips.py allows it, and this one is not "
            f"allowed: {reason}")
