"""Send a video task, and send it again only when Runware provably never created it.

A submit whose reply is lost or an error (5xx, reset, malformed) is ambiguous: Runware may have the
task (then it is billed, and sending it again would pay twice) or not. So the task is polled by its
taskUUID over a grace period (the client's `PollPolicy.lost_after_*`). Only when every poll says
"not found" (however Runware words it) is the *same request, with the same taskUUID*, sent again,
at most `RetryPolicy.submit_lost_resends` times, after a backoff. The same taskUUID makes a late
arrival of the first request harmless: Runware refuses a second task with a known taskUUID, which
is then followed by polling. A task Runware acknowledged is never sent again, and an answer that is
not understood is "unknown" (the client keeps the row resumable), never "lost".

A submit Runware refuses because the account is busy (HTTP 429, "too many concurrent generations") was not
accepted either: the job waits for a free slot in its endpoint's window (nodes/client/window.py) and sends the
same taskUUID again, until the job's deadline. The slot is held from the submit until the task has ended
(`Sender.close`).

Each resend is recorded in the job ledger (the row's `error` while it runs, and a notice kept with
the result) and shown as progress.

A small loop API, so the pipeline keeps the path of the job in one place::

    sender = Sender(client, job, opts, task, deadline_at)
    try:
        while True:
            sent = await sender.send()           # raises errors.SubmitRefused when no task was created
            try:
                return await wait_and_download(acknowledged=sent.acknowledged, resend_on_lost=sent.may_resend)
            except RunwareSubmissionLost as lost:
                await sender.before_resend(lost)  # re-raises when no resend is left
    finally:
        sender.close()                           # the slot in the endpoint's window is free again
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
from ..client.window import is_busy, wait_text, window_for
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
        self.slot = window_for(endpoint or str(getattr(client, "base_url", ""))).slot()  # held until `close`

    async def send(self) -> Sent:
        """One submit (the same request again while Runware refuses it as busy). Raises `errors.SubmitRefused`
        when Runware refused it (no task created).

        Busy (nodes/client/window.py `is_busy`: HTTP 429, too many concurrent generations…): not accepted, not
        billed. The job gives its slot in the endpoint's window back, waits (Retry-After, else a backoff) and for
        a free slot, with the progress text "waiting for a free slot at Runware (n running)", and sends the same
        taskUUID again, for as long as the job's deadline allows (then SubmitRefused of a RunwareRateLimitError
        that says nothing was charged). A cancel while waiting: SubmitRefused of a RunwareInterrupted.

        Stopped (cancel, CancelledError, KeyboardInterrupt, ComfyUI's interrupt) before the POST went out:
        the row is settled `abandoned` and the stop re-raised. Stopped while it was on the wire: the row stays
        `submitting` with `UNSETTLED` as its error (to be polled, see nodes/job/followup.py), and a
        RunwareInterrupted naming the taskUUID and Recover is raised."""
        task_uuid = self.job.task_uuid
        busy = 0
        while True:
            await self._take_slot()
            watch = SubmitWatch(on_unavailable=self._unavailable, raise_busy=True,
                                unavailable_window=self.window)
            try:
                submitted = await self.client.submit_video(self.task, cancel_check=self.opts.cancel_check,
                                                           watch=watch)
            except E.RunwareError as exc:
                if isinstance(exc, E.RunwareInterrupted) and watch.maybe_received:
                    self.job.note(UNSETTLED)
                    raise
                if is_busy(exc) and not watch.maybe_received:
                    busy += 1
                    await self._wait_busy(exc, busy)  # SubmitRefused at the deadline or a cancel
                    continue
                if not ((self.sent_again or busy) and is_duplicate(exc)):  # sent before: Runware may have it
                    raise E.SubmitRefused(exc) from None
                log.warning("PixVerse: task %s turned out to exist after all; following it", task_uuid)
                submitted = SubmitResult(task_uuid, acknowledged=True)
            except BaseException as exc:
                if watch.maybe_received:
                    self.job.note(UNSETTLED)
                else:
                    self.job.abandoned(f"stopped before the submit went out: {type(exc).__name__}: {exc}")
                raise
            break
        if submitted.acknowledged:
            self.slot.accepted()
            self.job.submitted()
        if self.uploads:
            self.job.used_uploads(self.endpoint, [(u.kind, u.sha256) for u in self.uploads])
        self.last = Sent(submitted.acknowledged,
                         not submitted.acknowledged and self.sent_again < self.resends and not submitted.unavailable_s,
                         submitted.unavailable_s)
        return self.last

    def close(self) -> None:
        """The job's task has ended (or was never accepted): its slot in the endpoint's window is free."""
        self.slot.release()

    def _waiter(self) -> Waiter:
        remaining = self.deadline_at - time.monotonic() if self.deadline_at is not None else math.inf
        return Waiter(self.job.task_uuid, max(0.0, remaining), self.opts.cancel_check, 0.2, submitted=False)

    def _cancelled_waiting(self) -> E.SubmitRefused:
        return E.SubmitRefused(E.RunwareInterrupted(
            "Cancelled while waiting for a free slot at Runware (the account was busy): the task was never "
            "accepted and nothing was charged", task_uuid=self.job.task_uuid))

    async def _take_slot(self) -> None:
        task_uuid = self.job.task_uuid

        def waiting(running: int) -> None:
            self.opts.report("queued", wait_text(running), task_uuid=task_uuid)

        try:
            await self.slot.take(self._waiter(), waiting)
        except E.RunwareInterrupted:
            raise self._cancelled_waiting() from None
        except E.RunwareTimeoutError:
            raise E.SubmitRefused(self._busy_until_deadline(None)) from None
        except BaseException as exc:  # CancelledError, KeyboardInterrupt: nothing was accepted
            self._stopped_waiting(exc)
            raise

    def _busy_until_deadline(self, last: Optional[E.RunwareError], refusals: int = 0) -> E.RunwareRateLimitError:
        said = f" (last answer: {last.detail})" if last is not None else ""
        return E.RunwareRateLimitError(
            f"Runware stayed busy until the job's deadline: the account renders a limited number of videos at once "
            f"and this task waited for a free slot{f', refused as busy {refusals} time(s)' if refusals else ''}"
            f"{said}. It was never accepted, so nothing was charged. Run it again later, or run fewer videos at "
            f"once (count, start-ahead, batch --jobs)", task_uuid=self.job.task_uuid,
            code=getattr(last, "code", None), status=getattr(last, "status", None))

    async def _wait_busy(self, exc: E.RunwareError, refusals: int) -> None:
        """Runware refused the submit as busy: give the slot back (the window shrinks), wait, then return to
        take a slot and send the same task again."""
        task_uuid = self.job.task_uuid
        running = self.slot.refused()
        delay = getattr(self.client, "backoff", _default_backoff)(refusals, getattr(exc, "retry_after", None))
        if refusals == 1:
            note = (f"Runware was busy ({exc.code or f'HTTP {exc.status}'}: {exc.detail}); the submit was not "
                    f"accepted and nothing was charged; waiting for a free slot to send the same task (same "
                    f"taskUUID) again")
            log.info("PixVerse: task %s: %s", task_uuid, note)
            self.job.note(note)
        self.opts.report("queued", wait_text(running), task_uuid=task_uuid)
        try:
            await self._waiter().sleep(delay)
        except E.RunwareInterrupted:
            raise self._cancelled_waiting() from None
        except E.RunwareTimeoutError:
            raise E.SubmitRefused(self._busy_until_deadline(exc, refusals)) from None
        except BaseException as stop:  # CancelledError, KeyboardInterrupt: nothing was accepted
            self._stopped_waiting(stop)
            raise

    def _stopped_waiting(self, exc: BaseException) -> None:
        self.job.abandoned(f"stopped while waiting for a free slot at Runware (the task was never accepted; "
                           f"nothing was charged): {type(exc).__name__}")

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
