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

A small loop API, so the pipeline keeps the path of the job in one place::

    sender = Sender(client, job, opts, task, deadline_at)
    while True:
        sent = await sender.send()           # raises errors.SubmitRefused when no task was created
        try:
            return await wait_and_download(acknowledged=sent.acknowledged, resend_on_lost=sent.may_resend)
        except RunwareSubmissionLost as lost:
            await sender.before_resend(lost)  # re-raises when no resend is left
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .. import errors as E
from ..config import UNAVAILABLE_WINDOW
from ..client.http import Waiter
from ..client.models import SubmitResult, SubmitWatch, looks_duplicate
from ..money.ledger import Job

log = logging.getLogger("pixverse")


is_duplicate = looks_duplicate  # a refusal that says this taskUUID is already known: an earlier send arrived

# The ledger row's error while a submit whose POST was on the wire when the run stopped is being checked.
UNSETTLED = ("the run stopped while the submit POST was on its way to Runware: Runware may have the task, so it "
             "must be checked by polling its taskUUID (nodes/job/followup.py: pipeline.recover), never sent again")


def _default_backoff(attempt: int, _retry_after: Optional[float] = None) -> float:
    return min(10.0, 2.0 ** attempt)


@dataclass(frozen=True)
class Sent:
    """The outcome of one submit: Runware acknowledged it, or its fate is unclear (poll to learn it)."""

    acknowledged: bool
    may_resend: bool  # unclear, and a resend is left if polling shows Runware never got it
    unavailable_s: float = 0.0  # Runware answered 503 for this long (the whole window): no resend after it


class Sender:
    """Sends `task` (whose taskUUID is `job.task_uuid`) and, when Runware provably never got it, again."""

    def __init__(self, client, job: Job, opts: Any, task: dict, deadline_at: Optional[float], *,
                 endpoint: Optional[str] = None, uploads: Sequence[Any] = ()):
        self.client, self.job, self.opts, self.task = client, job, opts, task
        self.deadline_at, self.endpoint, self.uploads = deadline_at, endpoint, list(uploads)
        policy = getattr(client, "retry_policy", None)
        self.resends = max(0, int(getattr(policy, "submit_lost_resends", 0) or 0))
        self.sent_again = 0
        self.window: float = opts.config.unavailable_window  # the job's configuration (nodes/config.py)
        self.last = Sent(acknowledged=True, may_resend=False)

    async def send(self) -> Sent:
        """One submit POST. Raises `errors.SubmitRefused` when Runware refused it (no task created).

        Stopped (cancel, CancelledError, KeyboardInterrupt, ComfyUI's interrupt) before the POST went out:
        the row is settled `abandoned` and the stop re-raised. Stopped while it was on the wire: the row stays
        `submitting` with `UNSETTLED` as its error (to be polled, see nodes/job/followup.py), and a
        RunwareInterrupted naming the taskUUID and Recover is raised."""
        task_uuid = self.job.task_uuid
        watch = SubmitWatch(on_unavailable=self._unavailable, unavailable_window=self.window)
        try:
            submitted = await self.client.submit_video(self.task, cancel_check=self.opts.cancel_check, watch=watch)
        except E.RunwareError as exc:
            if isinstance(exc, E.RunwareInterrupted) and watch.maybe_received:
                self.job.note(UNSETTLED)
                raise
            if not (self.sent_again and is_duplicate(exc)):
                raise E.SubmitRefused(exc) from None
            log.warning("PixVerse: task %s turned out to exist after all; following it", task_uuid)
            submitted = SubmitResult(task_uuid, acknowledged=True)
        except BaseException as exc:
            if watch.maybe_received:
                self.job.note(UNSETTLED)
            else:
                self.job.abandoned(f"stopped before the submit went out: {type(exc).__name__}: {exc}")
            raise
        if submitted.acknowledged:
            self.job.submitted()
        if self.uploads:
            self.job.used_uploads(self.endpoint, [(u.kind, u.sha256) for u in self.uploads])
        self.last = Sent(submitted.acknowledged,
                         not submitted.acknowledged and self.sent_again < self.resends and not submitted.unavailable_s,
                         submitted.unavailable_s)
        return self.last

    def _unavailable(self, n: int, delay: float) -> None:
        self.opts.report("submitting", f"Runware unavailable, retrying ({n})", task_uuid=self.job.task_uuid)

    def unavailable_error(self, lost: E.RunwareSubmissionLost) -> E.RunwareSubmissionLost:
        """The error of a task Runware never received because it was unavailable over the whole window."""
        window = self.window
        return E.RunwareSubmissionLost(
            f"Runware was unavailable (HTTP 503 to every submit for {self.last.unavailable_s:.0f} s) and never "
            f"received the task; nothing was charged. Run the job again when Runware is back (the pack kept "
            f"trying for {window:g} s: {UNAVAILABLE_WINDOW.env})", task_uuid=self.job.task_uuid)

    async def before_resend(self, lost: E.RunwareSubmissionLost) -> None:
        """Runware never created the task: note it, wait a backoff, and return to send it again.
        Re-raises `lost` when no resend is left; a deadline or cancel during the wait ends the job."""
        if self.last.unavailable_s:
            error = self.unavailable_error(lost)
            self.job.lost(str(error))
            raise error from None
        if not self.last.may_resend:
            raise lost
        task_uuid = self.job.task_uuid
        self.sent_again += 1
        delay = getattr(self.client, "backoff", _default_backoff)(self.sent_again, None)
        note = (f"the submit's reply was lost or an error, and Runware had not created task {task_uuid} "
                f"after polling it; the same request was sent again (resend {self.sent_again} of at most "
                f"{self.resends}, same taskUUID, so it cannot be billed twice)")
        log.warning("PixVerse: %s", note)
        self.job.notices.append(note)
        self.job.note(note)
        self.opts.report("submitting", f"Runware never got task {task_uuid}; sending it again in {delay:.1f} s",
                         task_uuid=task_uuid)
        remaining = self.deadline_at - time.monotonic() if self.deadline_at is not None else math.inf
        waiter = Waiter(task_uuid, remaining, self.opts.cancel_check, submitted=False)
        try:
            await waiter.sleep(delay)
        except (E.RunwareInterrupted, E.RunwareTimeoutError) as stop:
            self.job.lost(f"Runware never created it; stopped before sending it again: {stop}")
            if isinstance(stop, E.RunwareTimeoutError):
                raise E.RunwareSubmissionLost(
                    f"Runware never created task {task_uuid} and the job's deadline passed before it "
                    f"could be sent again; nothing was charged; run the job again",
                    task_uuid=task_uuid) from lost
            raise
