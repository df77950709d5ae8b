"""Result downloads: streamed to `<dest>.<random>.part`, renamed onto `dest` only when complete.

Each URL (the first and every redirect) passes `urls.URLPolicy`; the whole download, retries
included, ends by its deadline or within a quarter second of a cancel."""
from __future__ import annotations

import logging
import math
import os
import uuid
from pathlib import Path
from typing import Callable, Optional

import httpx

from .. import errors as E
from .http import AMBIGUOUS_TRANSPORT, DOWNLOAD_TIMEOUT, Waiter, describe, parse_retry_after
from .urls import URLPolicy, URLRefused, proxied, public_url
from .models import LOGGER_NAME

log = logging.getLogger(LOGGER_NAME)

# Runware's videoURL can answer 422/502 (or 404 while the CDN catches up) just after success.
RETRY_STATUSES = frozenset({404, 408, 409, 422, 425, 429})
CHUNK = 1 << 16


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: Optional[float] = None, status: Optional[int] = None):
        super().__init__(reason)
        self.retry_after = retry_after
        self.status = status


def _hint(task_uuid: Optional[str]) -> str:
    if not task_uuid:
        return "Try again later; the result stays on Runware for a while."
    return E.recover_hint(task_uuid, finished=True)


class _DownloadWaiter(Waiter):
    """The download's share of the job deadline, and the user's cancel, checked every slice."""

    def _interrupted(self) -> E.RunwareInterrupted:
        return E.RunwareInterrupted(
            f"Cancelled while downloading the result ({self.elapsed():.1f} s). " + _hint(self.task_uuid),
            task_uuid=self.task_uuid)

    def _timeout(self) -> E.RunwareTimeoutError:
        return E.RunwareTimeoutError(
            f"The download of the result did not finish before the job's deadline ({self.elapsed():.1f} s). "
            + _hint(self.task_uuid), task_uuid=self.task_uuid)


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


def _save_error(exc: OSError, part: Path, task_uuid: Optional[str]) -> E.RunwareResultError:
    return E.RunwareResultError(
        f"The result was found but could not be saved: {E.os_error_text(exc, part.parent)}. "
        f"Free some space or choose a writable output folder. " + _hint(task_uuid), task_uuid=task_uuid)


async def _fetch_once(http: httpx.AsyncClient, url: str, part: Path, max_bytes: int,
                      task_uuid: Optional[str], policy: Optional[URLPolicy],
                      show: Callable[[str], str]) -> int:
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        shown = show(current)
        if policy is not None:
            try:
                await policy.check(current, via_proxy=proxied(http, current))
            except URLRefused as why:
                raise E.RunwareDownloadError(f"The result URL {shown} was not fetched: {why}. "
                                             + _hint(task_uuid), task_uuid=task_uuid) from None
        # No Authorization header here: result URLs live on other hosts. Redirects are followed
        # here, one by one, so each target passes the same checks.
        try:
            async with http.stream("GET", current, headers={"Accept": "*/*"}, follow_redirects=False,
                                   timeout=DOWNLOAD_TIMEOUT) as resp:
                status = resp.status_code
                log.info("GET %s -> %s", shown, status)
                if status in REDIRECT_STATUSES and resp.headers.get("location"):
                    try:
                        current = str(resp.url.join(resp.headers["location"]))
                    except (httpx.InvalidURL, ValueError):
                        raise E.RunwareDownloadError(f"{shown} redirected to an unreadable URL. "
                                                     + _hint(task_uuid), task_uuid=task_uuid) from None
                    continue
                return await _read_body(resp, part, max_bytes, task_uuid, shown)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise E.RunwareDownloadError(f"The result URL {shown} cannot be fetched ({type(exc).__name__}). "
                                         + _hint(task_uuid), task_uuid=task_uuid) from None
    raise E.RunwareDownloadError(f"The result URL {show(url)} redirected more than {MAX_REDIRECTS} times. "
                                 + _hint(task_uuid), task_uuid=task_uuid)


async def _read_body(resp: httpx.Response, part: Path, max_bytes: int, task_uuid: Optional[str],
                     shown: str) -> int:
    status = resp.status_code
    if status != 200:
        if status in RETRY_STATUSES or status >= 500:
            raise _Retry(f"HTTP {status}", parse_retry_after(resp.headers), status)
        raise E.RunwareDownloadError(f"Downloading {shown} failed with HTTP {status}. "
                                     + _hint(task_uuid), status=status, task_uuid=task_uuid)
    expected: Optional[int] = None
    length = resp.headers.get("content-length")
    if length and length.strip().isdigit() and "content-encoding" not in resp.headers:
        expected = int(length)
    if expected is not None and expected > max_bytes:
        raise E.RunwareDownloadError(
            f"The result at {shown} is {expected:,} bytes, over the {max_bytes:,}-byte limit",
            task_uuid=task_uuid)
    written = 0
    try:
        with open(part, "wb") as fh:
            async for chunk in resp.aiter_bytes(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise E.RunwareDownloadError(
                        f"The result at {shown} is over the {max_bytes:,}-byte limit",
                        task_uuid=task_uuid)
                fh.write(chunk)
    except OSError as exc:
        raise _save_error(exc, part, task_uuid) from None
    if expected is not None and written != expected:
        raise _Retry(f"truncated: {written} of {expected} bytes")
    if written == 0:
        raise _Retry("empty body")
    return written


async def download_to(http: httpx.AsyncClient, url: str, dest: Path, *, max_bytes: int,
                      attempts: int, backoff: Callable[[int, Optional[float]], float],
                      task_uuid: Optional[str] = None, deadline: Optional[float] = None,
                      cancel_check: Optional[Callable[[], bool]] = None,
                      policy: Optional[URLPolicy] = None,
                      scrub: Callable[[str], str] = lambda s: s) -> Path:
    """Stream `url` to `dest`. `deadline` (seconds from now) bounds the whole download, retries
    included; `cancel_check` is asked every quarter second, also while bytes trickle in."""
    dest = Path(dest)
    show = lambda u: public_url(u, scrub)  # noqa: E731
    # A name of its own per download: two runs fetching the same task never write one file.
    part = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.part")
    waiter = _DownloadWaiter(task_uuid, math.inf if deadline is None else max(0.0, deadline), cancel_check)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _save_error(exc, part, task_uuid) from None
    attempts = max(1, attempts)
    last, last_status = "", None
    try:
        for attempt in range(1, attempts + 1):
            retry_after = None
            try:
                written = await waiter.guard(
                    lambda: _fetch_once(http, url, part, max_bytes, task_uuid, policy, show))
            except _Retry as why:
                last, retry_after, last_status = str(why), why.retry_after, why.status
            except AMBIGUOUS_TRANSPORT as exc:
                last, last_status = describe(exc, scrub), None
            else:
                try:
                    os.replace(part, dest)
                except OSError as exc:
                    raise _save_error(exc, part, task_uuid) from None
                log.info("downloaded %s bytes to %s", f"{written:,}", dest.name)
                return dest
            if attempt < attempts:
                delay = backoff(attempt, retry_after)
                log.info("download %s: %s; retry %d/%d in %.1fs", show(url), last, attempt,
                         attempts - 1, delay)
                await waiter.sleep(delay)
        raise E.RunwareDownloadError(
            f"Could not download {show(url)} after {attempts} attempts (last: {last}). "
            + _hint(task_uuid), status=last_status, task_uuid=task_uuid)
    finally:
        try:
            part.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            if part.exists():  # (a read-only file system answers EROFS even for a missing file)
                log.warning("could not remove partial download %s", part.name)
