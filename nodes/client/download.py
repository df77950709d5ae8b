"""Result downloads: streamed to `<dest>.<random>.part`, renamed onto `dest` only when complete."""
from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path
from typing import Callable, Optional

import httpx

from .. import errors as E
from .http import AMBIGUOUS_TRANSPORT, DOWNLOAD_TIMEOUT, describe, parse_retry_after, safe_url
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
    return (f"The video is still on Runware: fetch it again with the PixVerse Recover node or "
            f"`python -m nodes recover {task_uuid}`.")


async def _fetch_once(http: httpx.AsyncClient, url: str, part: Path, max_bytes: int,
                      task_uuid: Optional[str]) -> int:
    shown = safe_url(url)
    # No Authorization header here: result URLs live on other hosts.
    async with http.stream("GET", url, headers={"Accept": "*/*"}, follow_redirects=True,
                           timeout=DOWNLOAD_TIMEOUT) as resp:
        status = resp.status_code
        log.info("GET %s -> %s", shown, status)
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
        with open(part, "wb") as fh:
            async for chunk in resp.aiter_bytes(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise E.RunwareDownloadError(
                        f"The result at {shown} is over the {max_bytes:,}-byte limit",
                        task_uuid=task_uuid)
                fh.write(chunk)
        if expected is not None and written != expected:
            raise _Retry(f"truncated: {written} of {expected} bytes")
        if written == 0:
            raise _Retry("empty body")
        return written


async def download_to(http: httpx.AsyncClient, url: str, dest: Path, *, max_bytes: int,
                      attempts: int, backoff: Callable[[int, Optional[float]], float],
                      task_uuid: Optional[str] = None) -> Path:
    dest = Path(dest)
    # A name of its own per download: two runs fetching the same task never write one file.
    part = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempts = max(1, attempts)
    last, last_status = "", None
    try:
        for attempt in range(1, attempts + 1):
            retry_after = None
            try:
                written = await _fetch_once(http, url, part, max_bytes, task_uuid)
            except _Retry as why:
                last, retry_after, last_status = str(why), why.retry_after, why.status
            except AMBIGUOUS_TRANSPORT as exc:
                last, last_status = describe(exc), None
            else:
                os.replace(part, dest)
                log.info("downloaded %s bytes to %s", f"{written:,}", dest.name)
                return dest
            if attempt < attempts:
                delay = backoff(attempt, retry_after)
                log.info("download %s: %s; retry %d/%d in %.1fs", safe_url(url), last, attempt,
                         attempts - 1, delay)
                await asyncio.sleep(delay)
        raise E.RunwareDownloadError(
            f"Could not download {safe_url(url)} after {attempts} attempts (last: {last}). "
            + _hint(task_uuid), status=last_status, task_uuid=task_uuid)
    finally:
        try:
            part.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not remove partial download %s", part.name)
