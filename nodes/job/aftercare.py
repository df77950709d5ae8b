"""After Runware accepted a task (it is billed from then on): every failure becomes a clear error.

Whatever breaks between "Runware has the task" and "the MP4 is on disk and decoded" (a full disk,
a read-only output folder, a ledger another program holds locked, a result URL that may not be
fetched, an out-of-memory decode) ends as a typed error from `nodes.errors` that names the
taskUUID, says what happened and how to get the paid video (the PixVerse Recover node,
`python -m nodes recover <uuid>`), and the job ledger row is left saying what is true: the task is
still `submitted`/`succeeded` (never `finished` without a file), with the failure in its `error`.

A ledger write that fails after acceptance (locked, read-only, disk full) does not lose the video:
the job record (`ledger.Job`) keeps the taskUUID, the download goes on, the user is told in a
notice, and the next run resumes the task by taskUUID.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable, Optional

from .. import errors as E
from ..client.http import with_hint
from ..money.ledger import Job



def recover_hint(task_uuid: str) -> str:
    return E.recover_hint(task_uuid, finished=True)


def _what_failed(exc: BaseException, dest: Optional[Path]) -> str:
    if isinstance(exc, OSError):
        folder = dest.parent if dest is not None else None
        return f"the video could not be saved: {E.os_error_text(exc, folder)}"
    if isinstance(exc, sqlite3.Error):
        return f"the job ledger could not be used ({type(exc).__name__}: {exc})"
    if isinstance(exc, MemoryError):
        return "there was not enough memory to decode the video (connect fewer outputs or use a smaller size)"
    if isinstance(exc, E.MediaError):
        return f"the downloaded video could not be read ({exc})"
    return f"an unexpected error stopped the run ({type(exc).__name__}: {exc})"


def failure(exc: BaseException, job: Job, *, dest: Optional[Path] = None,
            scrub: Callable[[str], str] = lambda s: s) -> BaseException:
    """The error to raise for `exc`, which happened after task `task_uuid` was accepted.

    Our typed errors that already name the task are passed on (with the recovery hint added when
    missing); anything else becomes a RunwareResultError. The ledger row keeps its status (the
    task is not lost) and records what went wrong."""
    task_uuid = job.task_uuid
    if not isinstance(exc, Exception):  # CancelledError, KeyboardInterrupt, SystemExit: as they are
        return exc
    if isinstance(exc, E.RunwareError) and exc.task_uuid == task_uuid:
        if "nodes recover" not in str(exc):
            with_hint(exc, recover_hint(task_uuid))
        out: E.PixVerseError = exc
    else:
        what = scrub(_what_failed(exc, dest))
        out = E.RunwareResultError(f"Runware accepted task {task_uuid} (it is billed) but {what}. "
                                   + recover_hint(task_uuid), task_uuid=task_uuid)
        if dest is not None and isinstance(exc, OSError):
            out.detail += " Free some space or choose another output folder first."
            out.args = (out._compose(),)
    saved = dest is not None and dest.is_file()
    state = f"video saved to {dest}, but" if saved else "video not downloaded:"
    job.note(f"{state} {str(out)[:500]}")
    return out
