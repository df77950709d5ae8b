"""What the emulator fixtures (conftest) share with the modules that use them."""
from __future__ import annotations

COMFY_JOB_SECONDS = 1.0  # the job length the pooled ComfyUI servers' emulators start each test with
EMU_JOB_SECONDS = 0.3  # the job length of the pipeline and ledger tests' emulator (conftest `emu`)
BROWSER_KEY = "rw-sentinel-key-browser-5c0ffee1d"  # what the browser tests enter in the settings dialog


def reset_emulator(emu, job_seconds: float) -> None:
    """Forget jobs, uploads, counters and faults; the job length, the layouts it speaks (all) and the account
    balance (the default, not enforced) back to their defaults."""
    emu.reset()
    emu.job_seconds = job_seconds
    emu.layouts = None
    emu.balance_start = None  # nodes/emulator/account.py: read again from its default
    emu.balance_enforced = False
