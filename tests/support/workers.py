"""The test session spread over pytest-xdist workers (`pytest -n 3 --dist loadgroup`), and the same
session in one process (no `-n`).

Every worker inherits the controller's sentinel key and artifacts folder (tests/support/keysafety.py reads
both from the environment the controller set before it started them), so what any worker writes lands in
the one folder the key search reads. What the session's end needs from all of them goes through that
folder too, under `workers/`:

- `<worker>.done`: the node id of every test whose teardown ended there, and `<worker>.passed` the test
  modules with a passed test. The key search (test_zz_key_safety, collected last) waits until every
  other test of the session has ended on every worker (`wait_for_the_others`), then reads the lot.
- `<worker>.summary.json`: the fault matrix's and bad-input table's rows, the measured figures and the
  ComfyUI starts, which the controller prints at the end (`merged_summary`).

Real-ComfyUI tests are held together by `xdist_group` (conftest): all tests of one ComfyUI group run
in one worker, so each pooled server is still started once per session, as without workers.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Any, Optional

from . import keysafety

FOLDER = keysafety.ARTIFACTS / "workers"
MAIN = "main"  # the worker name of a session without -n
OTHERS: set[str] = set()  # node ids of the session's tests but the key check's own (conftest fills it)


def worker_id(config: Any) -> Optional[str]:
    """This process's xdist worker ("gw0", …), or None for the controller or a session without workers."""
    return getattr(config, "workerinput", {}).get("workerid")


def is_controller(config: Any) -> bool:
    """Whether this process runs no tests itself: the xdist controller of a `-n` session."""
    return worker_id(config) is None and bool(getattr(config.option, "numprocesses", None))


def _append(name: str, line: str) -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    with open(FOLDER / name, "a", encoding="utf-8") as fh:  # one short line per write: appends do not interleave
        fh.write(line + "\n")


def test_ended(worker: Optional[str], nodeid: str) -> None:
    _append(f"{worker or MAIN}.done", nodeid)


def module_passed(worker: Optional[str], module: str) -> None:
    _append(f"{worker or MAIN}.passed", module)


def _lines(suffix: str) -> set[str]:
    out: set[str] = set()
    for path in FOLDER.glob(f"*{suffix}") if FOLDER.is_dir() else ():
        out.update(line for line in path.read_text(encoding="utf-8").splitlines() if line)
    return out


def passed_modules() -> set[str]:
    """The test modules with a passed test on any worker."""
    return _lines(".passed")


def wait_for_the_others(expected: set[str], timeout_s: float = 45 * 60, idle_s: float = 5 * 60) -> list[str]:
    """Wait until every test of `expected` (node ids) has ended on some worker; the ones that had not are
    returned, sorted, for the caller to fail on, once `timeout_s` has passed or no test has ended for `idle_s`
    (a worker that died, or a session stopped early by -x: no test of the suite takes that long)."""
    deadline = time.monotonic() + timeout_s
    seen, last_progress = -1, time.monotonic()
    while True:
        done = _lines(".done")
        missing = expected - done
        now = time.monotonic()
        if len(done) != seen:
            seen, last_progress = len(done), now
        if not missing or now > deadline or now - last_progress > idle_s:
            return sorted(missing)
        time.sleep(0.5)  # polling a folder other processes write: there is no event to wait on across them


# -- the session's summary ------------------------------------------------------------------------

def save_summary(worker: Optional[str], fault_matrix: Any, comfy_starts: list[str]) -> None:
    """A worker's rows for the controller's summary."""
    data = {"rows": [asdict(r) for r in fault_matrix.ROWS], "bad": [asdict(b) for b in fault_matrix.BAD_INPUTS],
            "figures": list(fault_matrix.FIGURES), "comfy_starts": list(comfy_starts)}
    FOLDER.mkdir(parents=True, exist_ok=True)
    tmp = FOLDER / f".{worker}.summary.tmp"
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, FOLDER / f"{worker}.summary.json")


def merged_summary(fault_matrix: Any, comfy_starts: list[str]) -> None:
    """The workers' rows, put into the controller's own (empty) fault_matrix lists and `comfy_starts`."""
    for path in sorted(FOLDER.glob("*.summary.json")) if FOLDER.is_dir() else ():
        data = json.loads(path.read_text(encoding="utf-8"))
        fault_matrix.ROWS.extend(fault_matrix.Row(**r) for r in data["rows"])
        fault_matrix.BAD_INPUTS.extend(fault_matrix.BadInput(**b) for b in data["bad"])
        fault_matrix.FIGURES.extend(data["figures"])
        comfy_starts.extend(data["comfy_starts"])
