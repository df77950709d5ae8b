"""Typed errors. Every message is meant to be shown to a ComfyUI user as is.

Messages carry the taskUUID when there is one (so a paid result can be recovered) and never the
API key. `PixVerseInputError` is raised before any network call; the `Runware*` errors come
from the service or the transport.

May import: spec.
"""
from __future__ import annotations

import errno
from typing import Any, Iterable, Optional

from .spec import load_spec
from .spec.paths import input_of_parameter


def _fmt_allowed(allowed: Iterable[Any], limit: int = 40) -> str:
    items = [str(a) for a in allowed]
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


class PixVerseError(Exception):
    """Base of every error this pack raises on purpose."""


class PixVerseInputError(PixVerseError, ValueError):
    """A user choice that Runware would refuse. Raised before any upload or charge."""

    def __init__(self, parameter: str, value: Any, allowed: Any = None, reason: str = "",
                 wire_name: Optional[str] = None):
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        self.reason = reason
        self.wire_name = wire_name
        super().__init__(self._message())

    def _message(self) -> str:
        shown = repr(self.value)
        if len(shown) > 80:
            shown = shown[:60] + f"… ({len(str(self.value))} characters)"
        name = self.parameter + (f" ({self.wire_name})" if self.wire_name and self.wire_name != self.parameter else "")
        msg = f"{name} = {shown}: {self.reason or 'not allowed'}"
        if self.allowed is not None:
            allowed = self.allowed if isinstance(self.allowed, str) else _fmt_allowed(self.allowed)
            msg += f". Allowed: {allowed}"
        return msg


class RunwareError(PixVerseError):
    """An error from Runware or on the way to it."""

    retryable = False

    def __init__(self, message: str, *, task_uuid: Optional[str] = None, code: Optional[str] = None,
                 status: Optional[int] = None, parameter: Optional[str] = None,
                 allowed_values: Any = None, provider_message: Optional[str] = None):
        self.task_uuid = task_uuid
        self.code = code
        self.status = status
        self.parameter = parameter
        self.allowed_values = allowed_values
        self.provider_message = provider_message
        self.detail = message
        super().__init__(self._compose())

    def advice(self) -> str:
        """What the person should do about it (errors that need a person say so; others say nothing)."""
        return ""

    def _compose(self) -> str:
        parts = [self.detail]
        todo = self.advice()
        if todo and todo not in self.detail:
            parts.append(todo)
        if self.parameter:
            parts.append(f"parameter: {self.parameter}")
        if self.allowed_values:
            parts.append(f"allowed: {_fmt_allowed(self.allowed_values)}")
        if self.provider_message and self.provider_message not in self.detail:
            parts.append(f"provider said: {self.provider_message}")
        if self.code:
            parts.append(f"code: {self.code}")
        if self.status:
            parts.append(f"HTTP {self.status}")
        if self.task_uuid:
            parts.append(f"taskUUID: {self.task_uuid}")
        return " | ".join(parts)


TOP_UP_URL = "https://my.runware.ai/wallet"  # Runware's wallet page, where the balance is topped up
KEY_SETTINGS = "ComfyUI Settings → Runware → Runware API key"


class RunwareAuthError(RunwareError):
    """401: missing or wrong API key."""

    def advice(self) -> str:
        return (f"What to do: Runware does not accept this API key (wrong, revoked or deleted). Enter a valid key "
                f"in {KEY_SETTINGS} (Check and save) or set RUNWARE_API_KEY; keys are made at my.runware.ai. "
                f"Nothing was billed for a refused request.")


class RunwarePermissionError(RunwareError):
    """403: the key may not use this model or feature."""

    def advice(self) -> str:
        return ("What to do: this API key may not run this task (a key restricted to other models or features, "
                "or an account on hold). Check the key and the account at my.runware.ai, or use another key in "
                f"{KEY_SETTINGS}. Nothing was billed for a refused request.")


class RunwareBalanceError(RunwareError):
    """402: not enough credit."""

    def advice(self) -> str:
        return (f"What to do: your Runware balance does not cover this task, so Runware refused it (a refused task "
                f"is not billed). Top up at {TOP_UP_URL}, then run it again; `python -m nodes balance`, "
                f"Settings → Runware and the PixVerse sidebar tab show the balance.")


class RunwareRateLimitError(RunwareError):
    retryable = True

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kw):
        self.retry_after = retry_after
        super().__init__(message, **kw)

    def advice(self) -> str:
        return ("What to do: Runware or PixVerse was busy (too many requests, or too many videos rendering at "
                "once on this account) and refused this request without processing it: nothing was charged for "
                "it. Wait a minute and run it again; a task Runware had already accepted is resumed, not paid again.")


class RunwareValidationError(RunwareError):
    """Runware refused a parameter (400, invalid*/missing*/unsupported*/unknownParameter…)."""


class RunwareContentPolicyError(RunwareError):
    """The prompt or an input was refused by Runware's or the provider's content policy."""

    def advice(self) -> str:
        who = "PixVerse's" if self.code == "providerContentPolicyViolation" else "Runware's"
        named = input_of_parameter(load_spec(), self.parameter)  # the wire name → the node input
        what = (f"the input `{named}` (Runware's parameter {self.parameter})" if named else
                f"Runware's parameter {self.parameter}" if self.parameter else
                "the prompt or an input (Runware did not say which: look at the prompt first, then the images, "
                "video or audio)")
        return (f"What to do: {who} moderation refused {what}. Change it and run again; running it unchanged "
                f"will be refused again.")


class RunwareProviderError(RunwareError):
    """The task failed at Runware or PixVerse (taskFailed, timeoutProvider, …)."""


class RunwareServerError(RunwareError):
    """5xx or a malformed reply; retried where it is safe."""

    retryable = True


class RunwareConnectionError(RunwareError):
    """Could not reach Runware, or the connection broke."""

    retryable = True


class RunwareTimeoutError(RunwareError):
    """Our own deadline passed while the task was still running; it may still finish."""


class RunwareInterrupted(RunwareError):
    """The user cancelled while waiting; the remote task may still finish."""


class RunwareSubmissionLost(RunwareError):
    """A submit whose fate was unclear, and polling shows Runware never received it.

    Nothing was charged; running again is safe."""


class RunwareDownloadError(RunwareError):
    """The result exists but could not be downloaded (recoverable by taskUUID)."""


class RunwareResultError(RunwareError):
    """A task Runware accepted (and bills) ended here without its video: not downloaded, not
    saved, or not readable. The message says what happened; the task is recoverable by taskUUID."""


class SubmitRefused(PixVerseError):
    """Runware refused a video task's submit, so no task was created and nothing is charged.

    `error` is Runware's answer (a RunwareError). The pipeline settles the ledger row, may rebuild
    the request in the other layout (nodes/requests/layouts.py) or upload again, and otherwise raises `error`."""

    def __init__(self, error: RunwareError):
        super().__init__(str(error))
        self.error = error


class MediaError(PixVerseError, ValueError):
    """A media input that cannot be sent (too long, too large, undecodable)."""


class PreflightError(PixVerseError):
    """A check made before anything is uploaded or paid failed: the output folder, its free
    space, or the job ledger. Nothing was sent."""


# Runware error codes → exception class, for codes whose class the HTTP status alone would not give.
CODE_CLASSES: dict[str, type[RunwareError]] = {
    "invalidApiKey": RunwareAuthError,
    "missingApiKey": RunwareAuthError,
    "insufficientCredits": RunwareBalanceError,
    "insufficientBalance": RunwareBalanceError,
    "rateLimitExceeded": RunwareRateLimitError,
    "contentPolicyViolation": RunwareContentPolicyError,
    "providerContentPolicyViolation": RunwareContentPolicyError,
    "taskFailed": RunwareProviderError,
    "timeoutProvider": RunwareProviderError,
    "providerError": RunwareProviderError,
    "unknownParameter": RunwareValidationError,
    "incompatibleParameters": RunwareValidationError,
}

STATUS_CLASSES: dict[int, type[RunwareError]] = {
    400: RunwareValidationError,
    401: RunwareAuthError,
    402: RunwareBalanceError,
    403: RunwarePermissionError,
    429: RunwareRateLimitError,
}


def error_class_for(code: Optional[str], status: Optional[int]) -> type[RunwareError]:
    if code in CODE_CLASSES:
        return CODE_CLASSES[code]
    if code and code.startswith(("invalid", "missing", "unsupported")):
        return RunwareValidationError
    if status in STATUS_CLASSES:
        return STATUS_CLASSES[status]
    if status is not None and status >= 500:
        return RunwareServerError
    return RunwareProviderError


class PixVerseBudgetError(PixVerseError):
    """A run the pack's spending limit refused (nodes/money/limits.py), before anything was uploaded or submitted.

    The message says what was spent, the limit, and how to raise it."""

    def __init__(self, message: str, *, spent: Optional[float], limit: Optional[float],
                 expected: Optional[float], scope: str):
        self.spent = spent
        self.limit = limit
        self.expected = expected
        self.scope = scope  # daily | prompt | unknown | ledger
        super().__init__(message)


def os_error_text(exc: OSError, path: object = None) -> str:
    """An OSError in words a user can act on: what is wrong with which folder or file."""
    where = f" {path}" if path is not None else ""
    reasons = {
        errno.ENOSPC: f"the disk holding{where} is full" if where else "the disk is full",
        errno.EDQUOT: f"the disk quota for{where} is used up" if where else "the disk quota is used up",
        errno.EROFS: f"{where.strip() or 'the folder'} is on a read-only file system",
        errno.EACCES: f"no permission to write{where or ' there'}",
        errno.EPERM: f"no permission to write{where or ' there'}",
        errno.ENOENT: f"{where.strip() or 'the folder'} does not exist",
        errno.ENOTDIR: f"{where.strip() or 'a part of the path'} is not a folder",
        errno.EISDIR: f"{where.strip() or 'the path'} is a folder",
    }
    reason = reasons.get(exc.errno)
    detail = exc.strerror or type(exc).__name__
    return f"{reason} ({detail})" if reason else f"{detail}{where}"


# -- texts shown in many places, written once -------------------------------------------------

EMULATOR_BASE_URL = "http://127.0.0.1:8765/v1"  # `python -m nodes.emulator` listens here by default


def recover_hint(task_uuid: Optional[str], finished: bool = False) -> str:
    """How to get a task's video without paying again (the Recover node, the CLI, the same job again)."""
    if not task_uuid:
        return ""
    where = "The video is still on Runware" if finished else "The job may still finish on Runware (and be billed)"
    return (f"{where}: get it with the PixVerse Recover node (taskUUID {task_uuid}) or "
            f"`python -m nodes recover {task_uuid}`; running the same job again also picks this task up "
            f"instead of paying for a new one.")


def no_key_message() -> str:
    return ("No Runware API key. Set the RUNWARE_API_KEY environment variable before starting ComfyUI (or "
            "the CLI), or enter the key under ComfyUI's Settings → Runware (stored in its user directory, "
            "never in workflows). For an offline dry run without a key or charges, start the local emulator "
            f"(`python -m nodes.emulator` in this pack's folder) and set RUNWARE_BASE_URL={EMULATOR_BASE_URL} "
            "with any RUNWARE_API_KEY.")
