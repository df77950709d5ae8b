"""One submit window per Runware endpoint: how many video tasks this process's jobs may have running there at
once, learnt from Runware's busy refusals.

An account (or its provider) renders a limited number of videos at once. PixVerse answers "too many
simultaneous generations" and Runware passes such a refusal on (HTTP 429 `rateLimitExceeded`, or an error item
that says so): `is_busy`. That submit was not accepted and is not billed, so the job keeps its taskUUID, waits,
and sends the same request again (nodes/job/resubmit.py).

The jobs that run together in this process (a node's `count`, start-ahead, `batch --jobs`, several nodes of one
prompt) share ONE window per endpoint (`window_for`):

- a job takes a slot before its submit POST and holds it until its task has ended (`Slot.release`);
- a busy refusal shrinks the window to what the others are running (at least 1), and the refused job gives its
  slot back and waits (Retry-After, else a backoff) before it takes a slot again;
- each accepted submit grows the window by one (the account may render more now: the next refusal says so);
- until the first busy refusal the window has no limit.

Thread-safe (ComfyUI runs a prompt in its own thread, start-ahead on the server's loop): waiting for a slot
polls in short slices, which also lets a cancel or the job's deadline end the wait (`client.http.Waiter`).
"""
from __future__ import annotations

import re
import threading
from typing import Callable, Optional

from .. import errors as E
from .http import Waiter

WAIT_PREFIX = "waiting for a free slot at Runware"
_POLL_S = 0.1

# Words with which Runware or the provider say the account is busy (PixVerse: 500044 "too many simultaneous
# generations"; Runware: 429 rateLimitExceeded "Too many concurrent generations…").
_BUSY = re.compile(r"too many (concurrent|simultaneous|parallel|running)|concurren(t|cy) (limit|generation|task|job)"
                   r"|simultaneous generation|rate[ _-]?limit|\bbusy\b|\b500044\b", re.IGNORECASE)
_NEVER_BUSY = (E.RunwareAuthError, E.RunwarePermissionError, E.RunwareBalanceError, E.RunwareContentPolicyError,
               E.RunwareInterrupted, E.RunwareTimeoutError)


def is_busy(exc: BaseException) -> bool:
    """True when a submit's refusal says the account or the provider is busy (HTTP 429, or a code or message of
    too many concurrent/simultaneous generations, rate limited, busy): not accepted, not billed, worth waiting."""
    if not isinstance(exc, E.RunwareError) or isinstance(exc, _NEVER_BUSY):
        return False
    if isinstance(exc, E.RunwareRateLimitError) or exc.status == 429:
        return True
    text = " ".join(str(part) for part in (exc.code, exc.detail, exc.provider_message) if part)
    return bool(_BUSY.search(text))


def wait_text(running: int) -> str:
    """The progress text of a job waiting for a slot (the node's progress, the batch's progress line)."""
    return f"{WAIT_PREFIX} ({running} running)"


class SubmitWindow:
    """The window of one endpoint (see the module docstring). Use `slot()`; the counters are for display."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._running = 0  # slots held: submits on the wire and tasks under way
        self._limit: Optional[int] = None  # None: no busy refusal seen yet

    def __repr__(self) -> str:
        return f"SubmitWindow({self.endpoint!r}, running={self._running}, limit={self._limit})"

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    @property
    def limit(self) -> Optional[int]:
        with self._lock:
            return self._limit

    def slot(self) -> "Slot":
        return Slot(self)

    def _try_take(self) -> bool:
        with self._lock:
            if self._limit is not None and self._running >= self._limit:
                return False
            self._running += 1
            return True

    def _give_back(self, busy: bool) -> int:
        with self._lock:
            self._running = max(0, self._running - 1)
            if busy:
                self._limit = max(1, self._running)
            return self._running

    def _grow(self) -> None:
        with self._lock:
            if self._limit is not None:
                self._limit += 1


class Slot:
    """One job's place in a window: `take` (waits), then `accepted` or `refused`, and `release` at the end."""

    def __init__(self, window: SubmitWindow):
        self.window = window
        self.held = False

    async def take(self, waiter: Waiter, on_wait: Optional[Callable[[int], None]] = None) -> None:
        """Wait until the window has room (`on_wait(running)` each time the number running changes while waiting).
        RunwareInterrupted on a cancel, RunwareTimeoutError at the waiter's deadline (nothing held then)."""
        if self.held:
            return
        shown: Optional[int] = None
        while not self.window._try_take():
            running = self.window.running
            if on_wait is not None and running != shown:
                shown = running
                on_wait(running)
            await waiter.sleep(_POLL_S)
        self.held = True

    def accepted(self) -> None:
        """Runware accepted the submit: the window grows by one."""
        self.window._grow()

    def refused(self) -> int:
        """Runware refused the submit as busy: the slot is given back and the window shrinks to what is running
        (returned)."""
        if not self.held:
            return self.window.running
        self.held = False
        return self.window._give_back(busy=True)

    def release(self) -> None:
        """The task ended (or never went out): the slot is free for another job. Idempotent."""
        if self.held:
            self.held = False
            self.window._give_back(busy=False)


_WINDOWS: dict[str, SubmitWindow] = {}
_WINDOWS_LOCK = threading.Lock()


def window_for(endpoint: str) -> SubmitWindow:
    """The process-wide window of `endpoint` (the public base URL jobs are scoped by)."""
    with _WINDOWS_LOCK:
        found = _WINDOWS.get(endpoint)
        if found is None:
            found = _WINDOWS[endpoint] = SubmitWindow(endpoint)
        return found
