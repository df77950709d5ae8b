"""`RunwareClient`: Runware's REST API for async video tasks, uploads and result downloads.

Knows nothing about PixVerse: it takes task dicts. Never logs or shows the API key.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import random
import time
import uuid
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

import httpx

from .. import errors as E
from ..config import API_KEY, BASE_URL
from .download import download_to
from .urls import URLPolicy, install_log_redaction, public_url, register_secret
from .envelope import (Envelope, MalformedReply, error_of_data_item, exception_for,
                       exception_for_status, parse_envelope)
from .http import (AMBIGUOUS_TRANSPORT, API_TIMEOUT, NEVER_SENT, Waiter, describe,
                   parse_retry_after, with_hint)
from .models import (DEFAULT_BASE_URL, LOGGER_NAME, QUEUED_STATUSES, SDK_NAME, is_definite_failure,
                     looks_not_found,
                     PollPolicy, ProgressEvent, RetryPolicy, SubmitResult, SubmitWatch, UploadedMedia,
                     looks_duplicate,
                     VideoResult, as_float, as_int, recovery_hint)

log = logging.getLogger(LOGGER_NAME)

_AUTH_HINT = "Check RUNWARE_API_KEY or the key in this pack's settings."


def public_base_url(base_url: Optional[str] = None) -> str:
    """The endpoint a client made now would use (`base_url`, else RUNWARE_BASE_URL, else Runware's API),
    as shown and as job ledger rows are scoped by: no userinfo, no query. "" when it is not an http(s)
    URL. Makes no client and registers no secret (for the cost estimate, which has no key)."""
    url = (base_url or os.environ.get(BASE_URL.env) or DEFAULT_BASE_URL).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    bare = public_url(url) + (f"?{parts.query}" if parts.query else "")
    return public_url(bare.rstrip("/") if parts.path not in ("", "/") else bare)


def _report(on_progress: Optional[Callable[[ProgressEvent], None]], waiter: Waiter, task_uuid: str,
            status: str) -> None:
    """Tell `on_progress` a poll's status; a failing progress display must not lose a paid result."""
    if on_progress is None:
        return
    phase = "queued" if status in QUEUED_STATUSES else "processing"
    try:
        on_progress(ProgressEvent(task_uuid=task_uuid, phase=phase, elapsed=waiter.elapsed(),
                                  polls=waiter.polls, status=status))
    except Exception:
        log.warning("on_progress callback failed", exc_info=True)


class RunwareClient:
    """Async Runware client. Use as `async with RunwareClient() as rw: ...` or call `aclose()`.

    The underlying `httpx.AsyncClient` (pooled, `trust_env=True`) is made lazily in the event
    loop that first uses it, and remade if a later call runs in another loop."""

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, *,
                 sdk_version: str = "0.1.0", transport: Optional[httpx.AsyncBaseTransport] = None,
                 poll_policy: PollPolicy = PollPolicy(), retry_policy: RetryPolicy = RetryPolicy(),
                 timeout: httpx.Timeout = API_TIMEOUT):
        key = api_key if api_key is not None else os.environ.get(API_KEY.env)
        key = (key or "").strip()
        if not key:
            raise E.RunwareAuthError(E.no_key_message())
        self.__key = key
        register_secret(key)
        install_log_redaction()
        url = (base_url or os.environ.get(BASE_URL.env) or DEFAULT_BASE_URL).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise E.RunwareConnectionError(
                f"The Runware base URL must be an http(s) URL such as {DEFAULT_BASE_URL}; got "
                f"{public_url(url, self.scrub)!r} (from RUNWARE_BASE_URL or the pack's settings)")
        # Userinfo is dropped: Runware authenticates by the Bearer header (httpx would turn userinfo
        # into a Basic header replacing it), and a key written there must not be shown anywhere.
        bare = public_url(url) + (f"?{parts.query}" if parts.query else "")
        self._post_url = bare.rstrip("/") if parts.path not in ("", "/") else bare
        # Shown (errors, logs) and used as the job ledger's endpoint: never with userinfo or a query.
        self._secrets = [s for s in (parts.password, parts.username) if s and len(s) >= 4]
        for secret in self._secrets:
            register_secret(secret)
        self.base_url = public_url(self._post_url, self.scrub)
        self._log_path = parts.path or "/"
        self.url_policy = URLPolicy.for_base_url(url)
        self.sdk_version = sdk_version
        self.poll_policy = poll_policy
        self.retry_policy = retry_policy
        self.timeout = timeout  # API calls; downloads have their own (http.DOWNLOAD_TIMEOUT)
        self._transport = transport
        self._http: Optional[httpx.AsyncClient] = None
        self._http_loop: Optional[asyncio.AbstractEventLoop] = None
        self._rng = random.Random()

    # -- plumbing -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (f"RunwareClient(base_url={self.base_url!r}, api_key=<hidden>, "
                f"sdk_version={self.sdk_version!r})")

    __str__ = __repr__

    async def __aenter__(self) -> "RunwareClient":
        self._client()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        http, self._http, self._http_loop = self._http, None, None
        if http is not None:
            try:
                await http.aclose()
            except RuntimeError:  # made in a loop that is gone; its sockets are dropped with it
                pass

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http.is_closed or self._http_loop is not loop:
            if self._http is not None and self._http_loop is not loop:
                log.debug("new event loop: opening a new connection pool")
            self._http = httpx.AsyncClient(
                transport=self._transport, trust_env=True, timeout=self.timeout,
                limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
                headers={"X-SDK-Name": SDK_NAME, "X-SDK-Version": self.sdk_version,
                         "User-Agent": f"{SDK_NAME}/{self.sdk_version}"})
            self._http_loop = loop
        return self._http

    def scrub(self, text: str) -> str:
        """`text` with the API key and every other registered secret replaced by ***."""
        if not text:
            return text
        for secret in [getattr(self, "_RunwareClient__key", "")] + list(getattr(self, "_secrets", ())):
            if secret:
                text = text.replace(secret, "***")
        return text

    def public_url(self, url: str) -> str:
        """A URL as it may be shown or stored: no userinfo, no query (signed URLs carry tokens
        there), no API key anywhere in it."""
        return public_url(url, self.scrub)

    def backoff(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Seconds to wait before attempt `attempt` (1, 2, …): Retry-After when given, else exponential with jitter."""
        p = self.retry_policy
        if retry_after is not None:
            wait = min(retry_after, p.retry_after_cap)
            return wait + self._rng.uniform(0, min(0.25, 0.1 * wait + 0.02))
        d = min(p.max_delay, p.base_delay * (2 ** max(0, attempt - 1)))
        return d / 2 + self._rng.uniform(0, d / 2)

    async def _post(self, tasks: list, *, op: str, task_uuid: Optional[str]) -> httpx.Response:
        """One POST, no retries. Transport exceptions propagate."""
        http = self._client()
        body = json.dumps(tasks, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Authorization": f"Bearer {self.__key}", "Content-Type": "application/json",
                   "Accept": "application/json"}
        t0 = time.monotonic()
        try:
            resp = await http.post(self._post_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.info("POST %s %s taskUUID=%s failed after %.2fs: %s", self._log_path, op, task_uuid,
                     time.monotonic() - t0, type(exc).__name__)
            raise
        level = logging.DEBUG if op == "poll" and resp.status_code < 400 else logging.INFO
        log.log(level, "POST %s %s taskUUID=%s -> %s (%.2fs)", self._log_path, op, task_uuid,
                resp.status_code, time.monotonic() - t0)
        return resp

    def reply_error(self, status: int, env: Optional[Envelope], *, task_uuid: Optional[str],
                     op: str, retry_after: Optional[float] = None) -> E.RunwareError:
        """The typed error a reply of `status` with envelope `env` says (its error item for `task_uuid`, else the
        HTTP status), scrubbed of secrets; an authentication error says where the key comes from."""
        items = env.errors_for(task_uuid) or env.errors if env is not None else []
        if not items and env is not None:
            items = [e for e in map(error_of_data_item, env.data_for(task_uuid)) if e]
        if items:
            exc = exception_for(items[0], status=status, task_uuid=task_uuid, scrub=self.scrub,
                                retry_after=retry_after)
        else:
            exc = exception_for_status(status, task_uuid=task_uuid, retry_after=retry_after,
                                       what=f"{op} ({self.base_url})")
        if isinstance(exc, E.RunwareAuthError):
            with_hint(exc, _AUTH_HINT)
        return exc

    async def request(self, tasks: list, *, op: str, task_uuid: str) -> tuple:
        """(HTTP status, envelope, taskUUID) of one idempotent request with the client's retries (an account
        query, say): for tasks that create nothing billable. A video task goes through `submit_video`."""
        return await self._call(tasks, op=op, task_uuid=task_uuid)

    async def _call(self, tasks: list, *, op: str, task_uuid: str, waiter: Optional[Waiter] = None,
                    renew_uuid: bool = False) -> tuple[int, Optional[Envelope], str]:
        """An idempotent call with retries (408, 429, 5xx, malformed 2xx, transport errors).

        Returns (status, envelope or None when unparseable, taskUUID used) for every other
        reply, including 4xx ones: the caller decides. `renew_uuid` gives each retry a fresh
        taskUUID (for uploads, where a repeat is harmless but a reused UUID might be refused)."""
        attempts = max(1, self.retry_policy.attempts)
        last: Optional[E.RunwareError] = None
        for attempt in range(1, attempts + 1):
            if renew_uuid and attempt > 1:
                task_uuid = str(uuid.uuid4())
                tasks = [{**t, "taskUUID": task_uuid} for t in tasks]
            retry_after = None
            try:
                if waiter is not None:
                    resp = await waiter.guard(lambda: self._post(tasks, op=op, task_uuid=task_uuid))
                else:
                    resp = await self._post(tasks, op=op, task_uuid=task_uuid)
            except AMBIGUOUS_TRANSPORT as exc:
                last = E.RunwareConnectionError(
                    f"Could not reach Runware at {self.base_url} on {op} ({describe(exc, self.scrub)})",
                    task_uuid=task_uuid)
            else:
                status = resp.status_code
                env: Optional[Envelope]
                try:
                    env = parse_envelope(resp.content)
                except MalformedReply as bad:
                    env = None
                    why = str(bad)
                if status in (408, 429) or status >= 500:
                    retry_after = parse_retry_after(resp.headers)
                    last = self.reply_error(status, env, task_uuid=task_uuid, op=op,
                                             retry_after=retry_after)
                    if status == 408:
                        last = E.RunwareServerError(last.detail, task_uuid=task_uuid, status=408)
                elif env is None and 200 <= status < 300:
                    last = E.RunwareServerError(f"Malformed reply from Runware on {op} ({why})",
                                                task_uuid=task_uuid, status=status)
                else:
                    return status, env, task_uuid
            if attempt == attempts:
                break
            delay = self.backoff(attempt, retry_after)
            log.info("%s taskUUID=%s: %s; retry %d/%d in %.1fs", op, task_uuid,
                     type(last).__name__, attempt, attempts - 1, delay)
            if waiter is not None:
                await waiter.sleep(delay)
            else:
                await asyncio.sleep(delay)
        assert last is not None
        raise last

    def _expect(self, status: int, env: Optional[Envelope], task_uuid: str, field: str,
                op: str) -> dict:
        """The data item carrying `field`, or the typed error the reply stands for."""
        if env is None or status >= 300:
            raise self.reply_error(status, env, task_uuid=task_uuid, op=op)
        for item in env.data_for(task_uuid):
            if item.get(field):
                return item
        if env.errors or any(map(error_of_data_item, env.data)):
            raise self.reply_error(status, env, task_uuid=task_uuid, op=op)
        raise E.RunwareServerError(f"Runware's reply to {op} had no {field}",
                                   task_uuid=task_uuid, status=status)

    # -- video ----------------------------------------------------------------------------------

    async def submit_video(self, task: dict, *, cancel_check: Optional[Callable[[], bool]] = None,
                           watch: Optional[SubmitWatch] = None) -> SubmitResult:
        """Send one video task (async delivery, cost included). The task is sent again only when
        it provably was not accepted (HTTP 429, or a connection that never opened), and, with the same
        taskUUID, while Runware answers 503 within the unavailable window (`watch.unavailable_window`, else
        `RetryPolicy.unavailable_window`). On an ambiguous
        outcome it returns `acknowledged=False`: poll, never resubmit. A cancel (`cancel_check`) while the
        POST is on the wire ends the call at once with RunwareInterrupted and `watch.maybe_received` True:
        Runware may have the task, so it must be polled (nodes/job/followup.py)."""
        if not isinstance(task, dict):
            raise TypeError("task must be a dict")
        task_uuid = str(task.get("taskUUID") or uuid.uuid4())
        body = [{**task, "taskUUID": task_uuid, "deliveryMethod": "async", "includeCost": True}]
        watch = watch if watch is not None else SubmitWatch()
        policy = self.retry_policy
        rate_left, connect_left, attempt, refusals, since = (policy.submit_rate_limit_retries,
                                                             policy.submit_connect_retries, 0, 0, None)
        waiter = Waiter(task_uuid, math.inf, cancel_check, min(0.2, self.poll_policy.cancel_slice), submitted=False)
        while True:
            attempt += 1
            try:
                resp = await self._post_submit(body, task_uuid, waiter, watch)
            except NEVER_SENT as exc:
                if connect_left <= 0:
                    raise E.RunwareConnectionError(
                        f"Could not connect to Runware at {self.base_url} ({describe(exc, self.scrub)}); "
                        "the task was not sent and nothing was charged", task_uuid=task_uuid) from None
                connect_left -= 1
                await waiter.sleep(self.backoff(attempt))
                continue
            except AMBIGUOUS_TRANSPORT as exc:
                log.warning("submit taskUUID=%s: outcome unknown (%s); polling, not resending",
                            task_uuid, type(exc).__name__)
                return SubmitResult(task_uuid, acknowledged=False)
            status = resp.status_code
            try:
                env: Optional[Envelope] = parse_envelope(resp.content)
            except MalformedReply:
                env = None
            if status == 429 and rate_left > 0 and not watch.raise_busy:
                rate_left -= 1
                delay = self.backoff(attempt, parse_retry_after(resp.headers))
                log.info("submit taskUUID=%s: rate limited; same task again in %.1fs", task_uuid, delay)
                await waiter.sleep(delay)
                continue
            if status == 503:
                since, refusals = since if since is not None else time.monotonic(), refusals + 1
                if await self._unavailable_pause(resp, refusals, since, waiter, watch):
                    continue
                return SubmitResult(task_uuid, acknowledged=False, unavailable_s=max(time.monotonic() - since, 1e-3))
            if status == 408 or status >= 500 or (env is None and 200 <= status < 300):
                watch.maybe_received = True
                log.warning("submit taskUUID=%s: HTTP %s%s; outcome unknown, polling, not resending",
                            task_uuid, status, "" if env is not None else " with a malformed body")
                return SubmitResult(task_uuid, acknowledged=False)
            return self._submit_reply(status, env, task_uuid, parse_retry_after(resp.headers) if status == 429
                                      else None, resent=refusals > 0)

    async def _unavailable_pause(self, resp: httpx.Response, refusals: int, since: float, waiter: Waiter,
                                 watch: SubmitWatch) -> bool:
        """Runware answered 503: wait a backoff (Retry-After honoured) and return True to send the same task
        again, while within the unavailable window (the watch's, else the retry policy's); False once the
        window is spent (then poll)."""
        watch.maybe_received = True  # a 503 is a refusal, but nothing proves it was not processed
        window = watch.unavailable_window if watch.unavailable_window is not None else \
            self.retry_policy.unavailable_window
        left = window - (time.monotonic() - since)
        if left <= 0:
            log.warning("submit taskUUID=%s: Runware unavailable (HTTP 503) for %.0fs; polling", waiter.task_uuid,
                        time.monotonic() - since)
            return False
        delay = min(self.backoff(refusals, parse_retry_after(resp.headers)), max(0.05, left))
        log.info("submit taskUUID=%s: Runware unavailable (HTTP 503); same task again in %.1fs (%d)",
                 waiter.task_uuid, delay, refusals)
        if watch.on_unavailable is not None:
            try:
                watch.on_unavailable(refusals, delay)
            except Exception:
                log.warning("on_unavailable callback failed", exc_info=True)
        await waiter.sleep(delay)
        return True

    async def _post_submit(self, body: list, task_uuid: str, waiter: Waiter, watch: SubmitWatch) -> httpx.Response:
        """The submit POST, raced with the cancel check: a cancel seen while it is on the wire abandons it at
        once (RunwareInterrupted naming the task; `watch.maybe_received` stays True: it must be polled)."""
        waiter.check()  # cancelled before sending: nothing went out
        prior, watch.maybe_received = watch.maybe_received, True
        post = asyncio.ensure_future(self._post(body, op="submit", task_uuid=task_uuid))
        try:
            while True:
                done, _ = await asyncio.wait({post}, timeout=waiter.slice)
                if done:
                    break
                if waiter.cancel_check is not None and waiter.cancel_check():
                    raise E.RunwareInterrupted(
                        f"Cancelled while the submit of task {task_uuid} was on its way to Runware: Runware may "
                        f"have it (then it is billed), so it is being checked, not left unknown. "
                        + recovery_hint(task_uuid), task_uuid=task_uuid)
        finally:
            if not post.done():
                post.cancel()
                await asyncio.wait({post}, timeout=1.0)
        try:
            resp = post.result()
        except NEVER_SENT:
            watch.maybe_received = prior
            raise
        watch.maybe_received = prior
        return resp

    def _submit_reply(self, status: int, env: Optional[Envelope], task_uuid: str,
                      retry_after: Optional[float] = None, *, resent: bool = False) -> SubmitResult:
        """The submit's definite answer. `resent`: this was the same task sent again after a 503, so a
        refusal saying the taskUUID is already known means an earlier send arrived: follow it."""
        if status >= 300 or env is None or env.errors_for(task_uuid):
            exc = self.reply_error(status, env, task_uuid=task_uuid, op="submit", retry_after=retry_after)
            if resent and looks_duplicate(exc):
                log.warning("submit taskUUID=%s: Runware already has it; following it", task_uuid)
                return SubmitResult(task_uuid, acknowledged=True)
            raise exc
        items = env.data_for(task_uuid)
        for item in items:
            err = error_of_data_item(item)
            if err:
                raise exception_for(err, status=status, task_uuid=task_uuid, scrub=self.scrub)
        echoed = [i for i in items if i.get("taskUUID") == task_uuid]
        if echoed:
            return SubmitResult(task_uuid, acknowledged=True, item=echoed[0])
        log.warning("submit taskUUID=%s: reply did not echo the task; polling", task_uuid)
        return SubmitResult(task_uuid, acknowledged=False)

    def _result(self, item: dict, task_uuid: str, polls: int, elapsed: float) -> VideoResult:
        url = item.get("videoURL") or item.get("mediaURL") or item.get("url")
        if not url:
            raise E.RunwareProviderError(
                "Runware reported success but sent no videoURL. " + recovery_hint(task_uuid),
                task_uuid=task_uuid)
        notices = item.get("notices") or []
        if not isinstance(notices, list):
            notices = [notices]
        return VideoResult(task_uuid=task_uuid, video_uuid=item.get("videoUUID"), video_url=str(url),
                           shown_url=self.public_url(str(url)),
                           seed=as_int(item.get("seed")), cost=as_float(item.get("cost")),
                           raw=item, notices=notices, polls=polls, elapsed=elapsed)

    @staticmethod
    def _is_success(item: dict) -> bool:
        status = str(item.get("status") or "").lower()
        return status in ("success", "succeeded", "completed", "done") or (
            not status and bool(item.get("videoURL")))

    def _read_poll(self, status: int, env: Optional[Envelope], task_uuid: str):
        """('success', item) | ('pending', status) | ('notfound', None) | ('unknown', error);
        raises task errors."""
        if env is None:
            if status == 404:
                return "notfound", None
            raise with_hint(self.reply_error(status, env, task_uuid=task_uuid, op="poll"),
                            recovery_hint(task_uuid))
        items = env.data_for(task_uuid)
        for item in items:
            if self._is_success(item):
                return "success", item
        stated = [e for e in map(error_of_data_item, items) if e]
        failures = stated + env.errors_for(task_uuid)
        if failures:
            if any(looks_not_found(f.get("code"), f.get("message")) for f in failures):
                return "notfound", None
            first = failures[0]
            exc = exception_for(first, status=status, task_uuid=task_uuid, scrub=self.scrub)
            if isinstance(exc, E.RunwareAuthError):
                raise with_hint(exc, _AUTH_HINT)
            if not is_definite_failure(first, explicit_status=bool(stated)) and \
                    not isinstance(exc, (E.RunwarePermissionError, E.RunwareBalanceError)):
                # An error we cannot place: the task may still be running (and billed). Unknown,
                # not failed: retried like a failed poll, and the ledger keeps the task resumable.
                return "unknown", E.RunwareServerError(
                    f"Runware's answer about the task was not understood ({exc.detail})",
                    task_uuid=task_uuid, code=exc.code, status=status)
            raise exc
        if status >= 300:
            if status == 404:
                return "notfound", None
            raise with_hint(self.reply_error(status, env, task_uuid=task_uuid, op="poll"),
                            recovery_hint(task_uuid))
        states = [str(i.get("status") or "").lower() for i in items if i.get("status")]
        return "pending", (states[0] if states else None)

    async def wait_for_video(self, task_uuid: str, *, deadline: float,
                             cancel_check: Optional[Callable[[], bool]] = None,
                             on_progress: Optional[Callable[[ProgressEvent], None]] = None,
                             acknowledged: bool = True) -> VideoResult:
        """Poll `getResponse` until success, failure, `deadline` seconds from now, or a cancel.

        `acknowledged=False` (a submit whose reply was lost) turns a persistent `taskNotFound`
        into `RunwareSubmissionLost` (nothing charged, safe to run again)."""
        pp = self.poll_policy
        waiter = Waiter(task_uuid, deadline, cancel_check, pp.cancel_slice)
        body = [{"taskType": "getResponse", "taskUUID": task_uuid}]
        delay, failures, nf_count, nf_since = pp.first_delay, 0, 0, None
        try:
            while True:
                await waiter.sleep(delay)
                delay = min(delay * pp.factor, pp.max_delay)
                waiter.polls += 1
                try:
                    status, env, _ = await self._call(body, op="poll", task_uuid=task_uuid, waiter=waiter)
                except E.RunwareError as exc:
                    if not exc.retryable:
                        raise
                    failures += 1
                    if failures >= pp.max_poll_failures:
                        raise with_hint(exc, recovery_hint(task_uuid))
                    log.warning("poll taskUUID=%s failed (%s); still waiting", task_uuid,
                                type(exc).__name__)
                    continue
                kind, value = self._read_poll(status, env, task_uuid)
                if kind == "unknown":
                    failures += 1
                    if failures >= pp.max_poll_failures:
                        raise with_hint(value, recovery_hint(task_uuid))
                    log.warning("poll taskUUID=%s: unclear answer (%s); still waiting", task_uuid, value.detail)
                    continue
                failures = 0
                if kind == "success":
                    log.info("taskUUID=%s finished after %.1fs, %d polls", task_uuid,
                             waiter.elapsed(), waiter.polls)
                    return self._result(value, task_uuid, waiter.polls, waiter.elapsed())
                if kind == "notfound":
                    nf_count += 1
                    nf_since = nf_since if nf_since is not None else time.monotonic()
                    grace = pp.lost_after_seconds * (1 if not acknowledged else 3)
                    if nf_count >= pp.lost_after_polls and time.monotonic() - nf_since >= grace:
                        if not acknowledged:
                            raise E.RunwareSubmissionLost(
                                "Runware never received the task; nothing was charged; safe to run "
                                "again", task_uuid=task_uuid, code="taskNotFound")
                        raise E.RunwareProviderError(
                            "Runware does not know this task (mistyped taskUUID, or a result older "
                            "than Runware keeps)", task_uuid=task_uuid, code="taskNotFound")
                    continue
                nf_count, nf_since = 0, None
                _report(on_progress, waiter, task_uuid, value)
        except asyncio.CancelledError:
            log.info("wait for taskUUID=%s cancelled; the remote job may still finish", task_uuid)
            raise

    async def get_task_details(self, task_uuid: str) -> dict:
        """Runware's `getTaskDetails`: the original request and the response of a past task
        (``{"request": …, "response": …}``), also when `getResponse` no longer knows it."""
        body = [{"taskType": "getTaskDetails", "taskUUID": task_uuid}]
        status, env, _ = await self._call(body, op="getTaskDetails", task_uuid=task_uuid)
        if env is None or status >= 300:
            raise self.reply_error(status, env, task_uuid=task_uuid, op="getTaskDetails")
        for item in env.data_for(task_uuid):
            if "response" in item or "request" in item:
                return item
        raise self.reply_error(status, env, task_uuid=task_uuid, op="getTaskDetails") if env.errors else \
            E.RunwareServerError("Runware's reply to getTaskDetails had no request or response",
                                 task_uuid=task_uuid, status=status)

    def video_from_details(self, details: dict, task_uuid: str) -> Optional[VideoResult]:
        """The finished video a `getTaskDetails` answer describes, or None (not finished, failed,
        or a shape not understood). The response may be one item, a list, or an envelope."""
        response = details.get("response")
        if isinstance(response, dict) and not any(k in response for k in ("data", "errors", "error")):
            items = [response]
        else:
            try:
                items = parse_envelope(response).data if response is not None else []
            except MalformedReply:
                items = []
        for item in items:
            if isinstance(item, dict) and (not item.get("taskUUID") or item.get("taskUUID") == task_uuid) \
                    and self._is_success(item) and (item.get("videoURL") or item.get("mediaURL")):
                return self._result(item, task_uuid, 0, 0.0)
        return None

    async def generate_video(self, task: dict, *, deadline: float,
                             cancel_check: Optional[Callable[[], bool]] = None,
                             on_progress: Optional[Callable[[ProgressEvent], None]] = None
                             ) -> VideoResult:
        """submit_video + wait_for_video; `deadline` (seconds from now) covers both."""
        t0 = time.monotonic()
        sub = await self.submit_video(task, cancel_check=cancel_check)
        if sub.item and self._is_success(sub.item):
            return self._result(sub.item, sub.task_uuid, 0, time.monotonic() - t0)
        return await self.wait_for_video(
            sub.task_uuid, deadline=max(0.0, deadline - (time.monotonic() - t0)),
            cancel_check=cancel_check, on_progress=on_progress, acknowledged=sub.acknowledged)

    # -- uploads, key check, download -------------------------------------------------------------

    def _upload_waiter(self, task_uuid: str, cancel_check: Optional[Callable[[], bool]]) -> Optional[Waiter]:
        return None if cancel_check is None else Waiter(task_uuid, math.inf, cancel_check, 0.2, submitted=False)

    async def upload_image(self, data: bytes, mime: str, *,
                           cancel_check: Optional[Callable[[], bool]] = None) -> UploadedMedia:
        """imageUpload → imageUUID. `cancel_check` is raced with the request (seen within 0.2 s)."""
        if not data:
            raise E.MediaError("The image to upload is empty")
        task_uuid = str(uuid.uuid4())
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        task = {"taskType": "imageUpload", "taskUUID": task_uuid, "image": uri}
        status, env, task_uuid = await self._call([task], op="imageUpload", task_uuid=task_uuid,
                                                  renew_uuid=True, waiter=self._upload_waiter(task_uuid, cancel_check))
        item = self._expect(status, env, task_uuid, "imageUUID", "imageUpload")
        return UploadedMedia(str(item["imageUUID"]), item.get("imageURL"))

    async def upload_media(self, data: bytes, *,
                           cancel_check: Optional[Callable[[], bool]] = None) -> UploadedMedia:
        """mediaStorage upload → mediaUUID. `cancel_check` is raced with the request (seen within 0.2 s)."""
        if not data:
            raise E.MediaError("The media to upload is empty")
        task_uuid = str(uuid.uuid4())
        task = {"taskType": "mediaStorage", "taskUUID": task_uuid, "operation": "upload",
                "media": base64.b64encode(data).decode("ascii")}
        status, env, task_uuid = await self._call([task], op="mediaStorage", task_uuid=task_uuid,
                                                  renew_uuid=True, waiter=self._upload_waiter(task_uuid, cancel_check))
        item = self._expect(status, env, task_uuid, "mediaUUID", "mediaStorage")
        return UploadedMedia(str(item["mediaUUID"]), item.get("mediaURL"))

    async def check_key(self) -> bool:
        """True when Runware accepts the key; RunwareAuthError when it does not."""
        task_uuid = str(uuid.uuid4())
        task = {"taskType": "authentication", "taskUUID": task_uuid}
        status, env, task_uuid = await self._call([task], op="authentication",
                                                  task_uuid=task_uuid, renew_uuid=True)
        if env is None or status >= 300 or env.errors_for(task_uuid) or any(
                map(error_of_data_item, env.data_for(task_uuid))):
            raise self.reply_error(status, env, task_uuid=task_uuid, op="authentication")
        return True

    async def download(self, url: str, dest: Path, *, max_bytes: int = 2_000_000_000,
                       attempts: int = 6, task_uuid: Optional[str] = None,
                       deadline: Optional[float] = None,
                       cancel_check: Optional[Callable[[], bool]] = None) -> Path:
        """Stream `url` to `dest` (via a `.part` file, renamed when complete). Never sends the key.

        Only http(s), only public addresses unless the base URL is local (see `urls`); `deadline`
        (seconds from now) bounds the whole download; `cancel_check` is honoured within 0.25 s."""
        return await download_to(self._client(), url, Path(dest), max_bytes=max_bytes,
                                 attempts=attempts, backoff=self.backoff, task_uuid=task_uuid,
                                 deadline=deadline, cancel_check=cancel_check,
                                 policy=self.url_policy, scrub=self.scrub)
