"""Plain data the client takes and returns: policies, results, progress events."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .. import errors as E
from ..config import BASE_URL, UNAVAILABLE_WINDOW

DEFAULT_BASE_URL = BASE_URL.default
SDK_NAME = "comfyui-pixverse-runware"
LOGGER_NAME = "pixverse.runware"

# Statuses that mean "not finished yet". Runware says `processing`; older docs say `pending`.
QUEUED_STATUSES = frozenset({"pending", "queued", "scheduled", "waiting", "submitted", "accepted"})
# Error codes that mean "Runware does not know this taskUUID". Other wordings are recognised by
# `looks_not_found` (a code or message saying "not found", "does not exist", "unknown task", …).
NOT_FOUND_CODES = frozenset({"taskNotFound", "taskUUIDNotFound", "notFound"})
_NOT_FOUND_CODE = re.compile(r"not[\s_-]*found|no[\s_-]*such[\s_-]*task|unknown[\s_-]*task(uuid)?$|"
                             r"task[\s_-]*(uuid[\s_-]*)?(does[\s_-]*not|doesn'?t)[\s_-]*exist", re.I)
_NOT_FOUND_TEXT = re.compile(r"\b(not\s+(be\s+)?found|does\s+not\s+exist|doesn'?t\s+exist|no\s+such\s+task|"
                             r"unknown\s+task(\s*uuid)?|no\s+task\s+(with|for|found))\b", re.I)


def looks_not_found(code: Any = None, message: Any = None) -> bool:
    """Whether an error item says that the task is unknown, however it is worded."""
    code_text = str(code or "")
    if code_text in NOT_FOUND_CODES or (code_text and _NOT_FOUND_CODE.search(code_text)):
        return True
    if code_text in E.CODE_CLASSES or code_text.startswith(("invalid", "missing", "unsupported")):
        return False  # a known failure code: its message ("model not found") is about something else
    return bool(message) and bool(_NOT_FOUND_TEXT.search(str(message)))


def is_definite_failure(item: dict, explicit_status: bool) -> bool:
    """Whether a poll's error item says the task failed (as opposed to an answer we do not
    understand, which is "unknown": the task may still be running and billed)."""
    if explicit_status:  # a data item of this task with "status": "error"
        return True
    code = str(item.get("code") or "")
    return code in E.CODE_CLASSES or code.startswith(("invalid", "missing", "unsupported"))


@dataclass(frozen=True)
class PollPolicy:
    """How `wait_for_video` polls `getResponse`.

    First poll after `first_delay`, each later gap ×`factor` up to `max_delay`. `cancel_slice` is
    the longest time between two cancel checks. A submit whose reply was lost is declared lost
    (nothing charged) after `lost_after_polls` consecutive `taskNotFound` answers spanning at
    least `lost_after_seconds`. `max_poll_failures` rounds of poll retries may fail in a row
    (network/5xx) before the wait gives up."""

    first_delay: float = 1.0
    factor: float = 1.2  # 10 s cap at 48 s; a done job waits ≈20 % of its run for a poll (×1.5: ≈50 %)
    max_delay: float = 10.0
    cancel_slice: float = 0.25
    lost_after_polls: int = 3
    lost_after_seconds: float = 10.0
    max_poll_failures: int = 3


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent calls (polls, uploads, authentication, downloads).

    Backoff: `base_delay`·2^n capped at `max_delay`, with jitter. `Retry-After` is honoured up
    to `retry_after_cap`. A video submit is retried only when it provably was not accepted:
    HTTP 429 (at most `submit_rate_limit_retries` times, unless the caller waits for a slot itself:
    `SubmitWatch.raise_busy`, as the pipeline does) or a connection that was never opened (at most
    `submit_connect_retries` times)."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    retry_after_cap: float = 60.0
    submit_rate_limit_retries: int = 3
    submit_connect_retries: int = 2
    # After an unclear submit (reply lost, 5xx) and polling over the grace period shows Runware never
    # created the task, the same request (same taskUUID) is sent again at most this many times.
    submit_lost_resends: int = 2
    # Runware unavailable (HTTP 503 to the submit): the same task (same taskUUID, so never billed twice) is
    # sent again with backoff (Retry-After honoured) for this many seconds of refusals; then the submit's
    # outcome is checked by polling. A job's own window (its configuration, nodes/config.py) comes in the
    # SubmitWatch and wins.
    unavailable_window: float = UNAVAILABLE_WINDOW.default


def looks_duplicate(exc: BaseException) -> bool:
    """A refusal that says this taskUUID is already known: an earlier send of it did arrive."""
    code = str(getattr(exc, "code", "") or "").lower()
    text = str(getattr(exc, "detail", "") or exc).lower()
    return "duplicate" in code or "already" in code or "already submitted" in text or "already exists" in text


@dataclass
class SubmitWatch:
    """What the caller of `submit_video` learns as it goes: `maybe_received` turns True once a POST went out
    without a clear refusal (Runware may have the task: never settle it as unsent); `on_unavailable(n, delay)`
    is told each time Runware answered 503 and the task is sent again after `delay` seconds;
    `unavailable_window`, when set, is how long that goes on (the job's configuration)."""

    maybe_received: bool = False
    on_unavailable: Optional[Callable[[int, float], None]] = None
    unavailable_window: Optional[float] = None  # seconds of 503s to send again through; None: the RetryPolicy's
    # True: a busy refusal (HTTP 429) is raised at once, not retried here: the caller waits for a free slot
    # in its endpoint's window and sends the same task again (nodes/client/window.py, nodes/job/resubmit.py).
    raise_busy: bool = False


@dataclass(frozen=True)
class SubmitResult:
    """`acknowledged` is False when the submit's outcome is unknown (the reply was lost):
    the caller must poll, never resubmit. `item` is the acknowledging data item, if any."""

    task_uuid: str
    acknowledged: bool
    item: Optional[dict] = None
    unavailable_s: float = 0.0  # > 0: Runware answered 503 over the whole window (this many seconds)


@dataclass(frozen=True)
class ProgressEvent:
    task_uuid: str
    phase: str  # "queued" | "processing"
    elapsed: float
    polls: int
    status: Optional[str] = None


@dataclass(frozen=True)
class VideoResult:
    task_uuid: str
    video_uuid: Optional[str]
    video_url: str
    seed: Optional[int]
    cost: Optional[float]
    raw: dict
    notices: list = field(default_factory=list)
    polls: int = 0
    elapsed: float = 0.0
    shown_url: str = ""  # video_url as it may be shown or stored (no query, userinfo or key)


@dataclass(frozen=True)
class UploadedMedia:
    uuid: str
    url: Optional[str] = None


def recovery_hint(task_uuid: Optional[str]) -> str:
    return E.recover_hint(task_uuid, finished=False)


def as_float(value: Any) -> Optional[float]:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def as_int(value: Any) -> Optional[int]:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None
