"""Small transport helpers shared by the API calls and the downloader."""
from __future__ import annotations

import asyncio
import email.utils
import math
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable, Optional, TypeVar
from urllib.parse import urlsplit

import httpx

from .. import errors as E
from .models import recovery_hint

T = TypeVar("T")

# Transport failures after which a request may or may not have reached the server.
AMBIGUOUS_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# Transport failures that happen before a single byte of the request is sent.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

API_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)


def parse_retry_after(headers: httpx.Headers) -> Optional[float]:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value.strip())
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def safe_url(url: str) -> str:
    """scheme://host/path, without the query (signed URLs carry tokens) or any userinfo."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    except ValueError:
        return "<unparseable URL>"


def describe(exc: BaseException, scrub: Callable[[str], str] = lambda s: s) -> str:
    text = str(exc).strip()
    text = scrub(text)[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def with_hint(exc: E.RunwareError, hint: str) -> E.RunwareError:
    """Append a sentence to a RunwareError's message in place."""
    if hint and hint not in exc.detail:
        exc.detail = exc.detail.rstrip() + ("" if exc.detail.rstrip().endswith(".") else ".") + " " + hint
        exc.args = (exc._compose(),)
    return exc


class Waiter:
    """Deadline + cancel check for one wait. Sleeps in slices so a cancel is seen quickly."""

    def __init__(self, task_uuid: Optional[str], seconds: float,
                 cancel_check: Optional[Callable[[], bool]], slice_: float = 0.25,
                 *, submitted: bool = True):
        self.task_uuid = task_uuid
        self.start = time.monotonic()
        self.end = self.start + (seconds if seconds is not None else math.inf)
        self.cancel_check = cancel_check
        self.slice = max(0.01, min(slice_, 0.25))
        self.submitted = submitted
        self.polls = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def _interrupted(self) -> E.RunwareInterrupted:
        if not self.submitted:
            return E.RunwareInterrupted(
                "Cancelled before Runware accepted the task; nothing was sent or charged",
                task_uuid=self.task_uuid)
        return E.RunwareInterrupted(
            f"Cancelled after {self.elapsed():.1f} s of waiting ({self.polls} polls). "
            + recovery_hint(self.task_uuid), task_uuid=self.task_uuid)

    def _timeout(self) -> E.RunwareTimeoutError:
        return E.RunwareTimeoutError(
            f"The task was not finished when the deadline passed ({self.elapsed():.1f} s, "
            f"{self.polls} polls). " + recovery_hint(self.task_uuid), task_uuid=self.task_uuid)

    def check(self) -> None:
        if self.cancel_check is not None and self.cancel_check():
            raise self._interrupted()
        if time.monotonic() >= self.end:
            raise self._timeout()

    async def sleep(self, seconds: float) -> None:
        target = time.monotonic() + max(0.0, seconds)
        while True:
            self.check()
            left = min(target, self.end) - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(self.slice, left))
        self.check()

    async def guard(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run an (idempotent) request while checking cancel/deadline every slice; on a cancel
        or the deadline the request is abandoned."""
        self.check()
        task = asyncio.ensure_future(make())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.slice)
                if done:
                    return task.result()
                self.check()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
            if task.done() and not task.cancelled():
                task.exception()  # mark retrieved
