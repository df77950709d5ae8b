"""Send a video task, and send it again only when Runware provably never created it.

A submit whose reply is lost or an error (5xx, reset, malformed) is ambiguous: Runware may have the
task (then it is billed, and sending it again would pay twice) or not. So the task is polled by its
taskUUID over a grace period (the client's `PollPolicy.lost_after_*`). Only when every poll says
"not found" (however Runware words it) is the *same request, with the same taskUUID*, sent again,
at most `RetryPolicy.submit_lost_resends` times, after a backoff. The same taskUUID makes a late
arrival of the first request harmless: Runware refuses a second task with a known taskUUID, which
is then followed by polling. A task Runware acknowledged is never sent again, and an answer that is
not understood is "unknown" (the client keeps the row resumable), never "lost".

Each resend is recorded in the job ledger (the row's `error` while it runs, and a notice kept with
the result) and shown as progress.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Awaitable, Callable, Optional, Sequence

from . import aftercare
from . import errors as E

log = logging.getLogger("pixverse")


class Refused(Exception):
    """Runware refused the submit (nothing charged); `error` says why."""

    def __init__(self, error: E.RunwareError):
        super().__init__(str(error))
        self.error = error


def is_duplicate(exc: BaseException) -> bool:
    """A refusal that says this taskUUID is already known: the earlier send did arrive."""
    code = str(getattr(exc, "code", "") or "").lower()
    text = str(getattr(exc, "detail", "") or exc).lower()
    return "duplicate" in code or "already" in code or "already submitted" in text or "already exists" in text


async def send_and_finish(client, task: dict, task_uuid: str, model: str, opts: Any, notices: list[str],
                          deadline_at: float, finish: Callable[..., Awaitable[Any]], *, ledger: Any = None,
                          endpoint: Optional[str] = None, uploads: Sequence[Any] = ()) -> Any:
    """Submit `task`, then `finish(...)` it (wait, download). With a ledger a refusal is raised as
    `Refused` (the caller settles the row); without one, as the RunwareError itself."""
    from .client.http import Waiter
    from .client.models import SubmitResult
    from .ledger import LOST, SUBMITTED

    policy = getattr(client, "retry_policy", None)
    resends = max(0, int(getattr(policy, "submit_lost_resends", 0) or 0))
    sent_again = 0
    while True:
        try:
            submitted = await client.submit_video(task, cancel_check=opts.cancel_check)
        except E.RunwareError as exc:
            exc.refused_at_submit = True  # no task was created: a rebuilt request may be sent (nodes/layouts.py)
            if sent_again and is_duplicate(exc):
                log.warning("PixVerse: task %s turned out to exist after all; following it", task_uuid)
                submitted = SubmitResult(task_uuid, acknowledged=True)
            elif ledger is None:
                raise
            else:
                raise Refused(exc) from None
        if submitted.acknowledged:
            aftercare.ledger_write(ledger, "advance", task_uuid, SUBMITTED, submitted_at=time.time(),
                                   task_uuid=task_uuid, tell=notices)
        if ledger is not None and uploads:
            aftercare.ledger_write(ledger, "touch_uploads", endpoint, [(u.kind, u.sha256) for u in uploads],
                                   task_uuid=task_uuid)
        may_resend = not submitted.acknowledged and sent_again < resends
        try:
            return await finish(client, task_uuid, model, opts, notices, acknowledged=submitted.acknowledged,
                                deadline_at=deadline_at, resend_on_lost=may_resend)
        except E.RunwareSubmissionLost as lost:
            if not may_resend:
                raise
            sent_again += 1
            backoff = getattr(client, "_backoff", lambda n, _r=None: min(10.0, 2.0 ** n))
            delay = backoff(sent_again, None)
            note = (f"the submit's reply was lost or an error, and Runware had not created task {task_uuid} "
                    f"after polling it; the same request was sent again (resend {sent_again} of at most "
                    f"{resends}, same taskUUID, so it cannot be billed twice)")
            log.warning("PixVerse: %s", note)
            notices.append(note)
            aftercare.ledger_write(ledger, "note_error", task_uuid, note, task_uuid=task_uuid)
            opts.report("submitting", f"Runware never got task {task_uuid}; sending it again in {delay:.1f} s",
                        task_uuid=task_uuid)
            remaining = deadline_at - time.monotonic() if deadline_at is not None else math.inf
            waiter = Waiter(task_uuid, remaining, opts.cancel_check, submitted=False)
            try:
                await waiter.sleep(delay)
            except (E.RunwareInterrupted, E.RunwareTimeoutError) as stop:
                aftercare.ledger_write(ledger, "settle", task_uuid, LOST,
                                       f"Runware never created it; stopped before sending it again: {stop}",
                                       task_uuid=task_uuid)
                if isinstance(stop, E.RunwareTimeoutError):
                    raise E.RunwareSubmissionLost(
                        f"Runware never created task {task_uuid} and the job's deadline passed before it "
                        f"could be sent again; nothing was charged; run the job again",
                        task_uuid=task_uuid) from lost
                raise
