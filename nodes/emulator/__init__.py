"""A local Runware emulator for tests and offline dry runs (no ComfyUI, no network).

    from nodes.emulator import EmulatorServer
    with EmulatorServer(job_seconds=0.5) as emu:
        ...  # point the client at emu.base_url

Command line: ``python -m nodes.emulator --port 8765``.

May import: spec, requests, media, config (it stands beside the product; only the CLI's offline mode imports it).
"""
from .faults import FAULT_KINDS, FaultBook
from .server import EmulatorServer
from .validate import FAKE_COST_PER_SECOND_USD, JobPlan, TaskError, validate_video_task

__all__ = ["EmulatorServer", "FaultBook", "FAULT_KINDS", "TaskError", "JobPlan",
           "validate_video_task", "FAKE_COST_PER_SECOND_USD"]
