"""A local Runware emulator: a real aiohttp server speaking Runware's REST protocol.

It validates tasks against the capability spec (see `validate.py`), runs video jobs that finish
after `job_seconds`, serves real MP4 files rendered by `nodes.media.render.render_test_video`,
and can inject faults (see `faults.py`). Used by the tests and as an offline "dry run" target.
With `state_dir` it remembers its tasks across restarts, as Runware does (see `memory.py`).

Routes:
    POST /v1                      Runware tasks (JSON array)
    GET  /media/{videoUUID}.mp4   finished videos
    GET  /images/{imageUUID}.ext  uploaded images;  GET /uploads/{mediaUUID}  uploaded media
    GET  /                        a short JSON description
    GET  /_emulator/stats   GET /_emulator/requests   GET|POST|DELETE /_emulator/faults
    POST /_emulator/reset   GET|POST /_emulator/config {job_seconds, forget_finished, max_concurrent, busy_retry_after}
    GET  /registry.json   GET /resolve/{AIR}   Runware's schema service, built from the spec (schemas.py)
    GET|POST|DELETE /_emulator/schemas {extra, schemas, errors}: what the schema routes serve
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from aiohttp import ClientSession, ClientTimeout, web

from ..spec import CapabilitySpec, load_spec
from .faults import FAULT_KINDS, Fault, FaultBook
from .schemas import SchemaService
from ..requests.schema import first_failure
from .memory import TaskMemory, job_fields
from .account import account_task, check_funds
from .validate import (DOCS_ROOT, ImageInfo, JobPlan, MediaInfo, TaskError, check_task_uuid,
                       decode_payload, invalid, is_url, is_uuid, missing, new_uuid, probe_image,
                       probe_media, validate_video_task)

log = logging.getLogger("runware_emulator")

TASK_TYPES = ("authentication", "imageUpload", "mediaStorage", "videoInference", "getResponse",
              "getTaskDetails", "accountManagement")
TASK_FAMILY = {"videoInference": "submit", "getResponse": "poll", "imageUpload": "upload",
               "mediaStorage": "upload", "authentication": "auth", "getTaskDetails": "details"}
MAX_BODY_BYTES = 128 * 1024 * 1024
RECORD_STRING_MAX = 200
COUNTERS = ("requests", "video_submissions", "video_submit_attempts", "duplicate_submits",
            "rejected_submits", "busy_refusals", "peak_running", "polls", "task_details", "uploads", "image_uploads",
            "media_uploads", "downloads",
            "auth_checks", "auth_failures")
IMAGE_EXT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


@dataclass
class Job:
    task_uuid: str
    plan: JobPlan
    submitted_at: float
    state: str = "processing"            # processing | success | error
    video_uuid: Optional[str] = None
    error: Optional[dict[str, Any]] = None  # code, message, provider_message, form, http_status
    never_finish: bool = False
    runner: Optional[asyncio.Task] = None
    url_override: Optional[str] = None     # result_url fault: the videoURL reported instead
    request: Optional[dict[str, Any]] = None  # the task as submitted (for getTaskDetails)
    finished_at: Optional[float] = None
    hurry: asyncio.Event = field(default_factory=asyncio.Event)  # set by `finish_running`: its wait ends now


@dataclass
class VideoFile:
    path: Optional[Path] = None
    data: Optional[bytes] = None          # set instead of path for corrupt_mp4

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


def _redact(value: Any) -> Any:
    """A copy of a request body fit for the record: long strings (base64…) shortened."""
    if isinstance(value, str) and len(value) > RECORD_STRING_MAX:
        return f"{value[:48]}…<{len(value)} chars>"
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    return value


class EmulatorServer:
    """A Runware emulator on its own event loop in a daemon thread.

    `start()` returns once it listens; `base_url` is then "http://HOST:PORT/v1".
    `inject()`, `stats()`, `requests`, `job_seconds`, `finish_running()` and `reset()` may be used from any thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, job_seconds: float = 2.0,
                 api_key: Optional[str] = None, media_dir: Optional[str] = None,
                 spec: Optional[CapabilitySpec] = None, seed: Optional[int] = None,
                 layouts: Optional[tuple[str, ...]] = None, state_dir: Optional[str] = None):
        self.host = host
        self.layouts = tuple(layouts) if layouts else None  # None: every layout in the spec
        self.port = port
        self.api_key = api_key
        self.spec = spec or load_spec(described_only=True)
        # Runware's schema service (/registry.json, /resolve/<AIR>): what it serves, and what tasks must pass
        self.schemas = SchemaService(self.spec)
        self.faults = FaultBook()
        self._job_seconds = float(job_seconds)
        # True: getResponse answers taskNotFound for finished tasks (as Runware does once it no longer
        # keeps a result there); getTaskDetails still knows them.
        self.forget_finished = False
        # An account's concurrency: at most this many video tasks processing at once; a submit past it is refused
        # with HTTP 429 rateLimitExceeded "Too many concurrent generations…" (nothing billed), with a Retry-After
        # header of `busy_retry_after` seconds when set. None: no limit (`--max-concurrent`).
        self.max_concurrent: Optional[int] = None
        self.busy_retry_after: Optional[float] = None
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._media_dir_arg = media_dir
        self._media_dir: Optional[Path] = Path(media_dir) if media_dir else None
        self._owns_media_dir = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._renders: dict[tuple, asyncio.Future] = {}
        self._render_sem: Optional[asyncio.Semaphore] = None
        self._startup_error: Optional[BaseException] = None
        self._reset_state()
        # state_dir: remember tasks across runs in that folder (nodes/emulator/memory.py)
        self._memory = TaskMemory(state_dir) if state_dir else None
        self._saved_port: Optional[int] = None
        if self._memory is not None:
            self._recall()

    def _recall(self) -> None:
        """The tasks, results and port of an earlier emulator on the same state folder."""
        assert self._memory is not None
        if self._media_dir is None:
            self._media_dir = self._memory.media_dir
        saved = self._memory.load()
        if not self.port and saved["port"]:
            self.port = self._saved_port = int(saved["port"])
        with self._lock:
            for record in saved["jobs"]:
                try:
                    job = Job(**job_fields(record))
                except (KeyError, TypeError, ValueError):
                    log.warning("emulator: a remembered task could not be read; skipped")
                    continue
                self._jobs[job.task_uuid] = job
            self._videos.update({uuid: VideoFile(path=Path(path)) for uuid, path in saved["videos"].items()})

    def _persist(self) -> None:
        if self._memory is None:
            return
        with self._lock:
            jobs = list(self._jobs.values())
            videos = {uuid: v.path for uuid, v in self._videos.items()}
        self._memory.save(self.port, jobs, videos)

    def _resume_remembered(self) -> None:
        """Finish remembered tasks that were still running (or whose video file is gone)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            video = self._videos.get(job.video_uuid or "")
            gone = job.state == "success" and (video is None or video.path is None or not video.path.exists())
            if job.runner is None and (job.state == "processing" or gone):
                job.state = "processing"
                left = max(0.0, self._job_seconds - (time.time() - job.submitted_at))
                job.runner = asyncio.ensure_future(self._run_job(job, left))

    # -- state ------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        with self._lock:
            self._images: dict[str, ImageInfo] = {}
            self._media: dict[str, MediaInfo] = {}
            self._jobs: dict[str, Job] = {}
            self._videos: dict[str, VideoFile] = {}
            self._requests: list[dict[str, Any]] = []
            self._counters: dict[str, int] = {name: 0 for name in COUNTERS}

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    @property
    def job_seconds(self) -> float:
        with self._lock:
            return self._job_seconds

    @job_seconds.setter
    def job_seconds(self, value: float) -> None:
        value = float(value)
        if value < 0:
            raise ValueError("job_seconds must be ≥ 0")
        with self._lock:
            self._job_seconds = value

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def origin(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", None) else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def media_dir(self) -> Optional[Path]:
        return self._media_dir

    def inject(self, kind: str, **params: Any) -> dict[str, Any]:
        """Queue a fault (see `faults.py` for kinds and parameters). Returns its description."""
        return self.faults.add(kind, **params).to_json()

    def clear_faults(self) -> None:
        self.faults.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = dict(self._counters)
            states = [job.state for job in self._jobs.values()]
            out["jobs"] = {s: states.count(s) for s in ("processing", "success", "error")}
            out["job_seconds"] = self._job_seconds
            out["images_stored"] = len(self._images)
            out["media_stored"] = len(self._media)
        out["pending_faults"] = self.faults.pending()
        out["faults_fired"] = dict(self.faults.fired)
        return out

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._requests)

    def video_tasks(self) -> list[dict[str, Any]]:
        """Every videoInference task sent to it (refused ones too), oldest first."""
        return [task for r in self.requests if isinstance(r.get("body"), list) for task in r["body"]
                if isinstance(task, dict) and task.get("taskType") == "videoInference"]

    def job_spans(self) -> list[tuple[float, float]]:
        """(accepted, finished) wall times of every accepted task (a running one: now), for overlap checks."""
        now = time.time()
        with self._lock:
            return [(job.submitted_at, job.finished_at or now) for job in self._jobs.values()]

    def job(self, task_uuid: str) -> Optional[dict[str, Any]]:
        """A snapshot of one job (for tests): state, plan, videoUUID."""
        with self._lock:
            job = self._jobs.get(task_uuid)
            if job is None:
                return None
            return {"taskUUID": job.task_uuid, "state": job.state, "videoUUID": job.video_uuid,
                    "plan": dict(vars(job.plan)), "error": copy.deepcopy(job.error)}

    def finish_running(self) -> int:
        """End the wait of every job still running (their videos come as soon as they are rendered), as if
        their `job_seconds` were up; returns how many. For tests that hold a blocker only until something else
        happened."""
        with self._lock:
            events = [job.hurry for job in self._jobs.values() if job.state == "processing"]
        loop = self._loop
        if loop is not None and loop.is_running():
            for event in events:
                loop.call_soon_threadsafe(event.set)
        return len(events)

    def reset(self) -> None:
        """Forget uploads, jobs, videos, requests, counters, faults and the account's concurrency limit
        (job_seconds, api_key and the render cache stay)."""
        with self._lock:
            runners = [job.runner for job in self._jobs.values() if job.runner is not None]
            self._reset_state()
            self.forget_finished = False
            self.max_concurrent = self.busy_retry_after = None
        self.faults.reset()
        self.schemas.reset()
        loop = self._loop
        if loop is not None and loop.is_running():
            for task in runners:
                loop.call_soon_threadsafe(task.cancel)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "EmulatorServer":
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._startup_error = None

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:  # report to start()
                self._startup_error = exc
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                try:
                    loop.run_until_complete(self._astop())
                finally:
                    loop.close()

        self._thread = threading.Thread(target=run, name="runware-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("emulator did not start within 30 s")
        if self._startup_error is not None:
            self._thread = None
            if self._saved_port and self.port == self._saved_port:  # the remembered port is taken
                log.warning("emulator: port %s is in use; listening elsewhere (a new endpoint)", self.port)
                self.port = self._saved_port = 0
                return self.start()
            raise RuntimeError(f"emulator failed to start: {self._startup_error}") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._thread = None
        self._loop = None
        if self._owns_media_dir and self._media_dir is not None:
            shutil.rmtree(self._media_dir, ignore_errors=True)
            self._media_dir = None
            self._owns_media_dir = False
            self._renders.clear()

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def _astart(self) -> None:
        if self._media_dir is None:
            self._media_dir = Path(tempfile.mkdtemp(prefix="runware-emulator-"))
            self._owns_media_dir = True
        else:
            self._media_dir.mkdir(parents=True, exist_ok=True)
        self._render_sem = asyncio.Semaphore(1)  # one render at a time: the machine is shared
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/v1", self._handle_v1)
        app.router.add_post("/v1/", self._handle_v1)
        app.router.add_get("/media/{name}", self._handle_video)
        app.router.add_get("/images/{name}", self._handle_image)
        app.router.add_get("/uploads/{name}", self._handle_upload_get)
        app.router.add_get("/", self._handle_root)
        app.router.add_get("/_emulator/stats", self._ctl_stats)
        app.router.add_get("/_emulator/requests", self._ctl_requests)
        app.router.add_get("/_emulator/faults", self._ctl_faults_get)
        app.router.add_post("/_emulator/faults", self._ctl_faults_post)
        app.router.add_delete("/_emulator/faults", self._ctl_faults_delete)
        app.router.add_post("/_emulator/reset", self._ctl_reset)
        app.router.add_get("/_emulator/config", self._ctl_config)
        app.router.add_get("/registry.json", self._handle_registry)
        app.router.add_get("/resolve/{air:.+}", self._handle_resolve)
        app.router.add_get("/_emulator/schemas", self._ctl_schemas)
        app.router.add_post("/_emulator/schemas", self._ctl_schemas)
        app.router.add_delete("/_emulator/schemas", self._ctl_schemas)
        app.router.add_post("/_emulator/config", self._ctl_config)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = addresses[0][1]
        self._resume_remembered()
        self._persist()

    async def _astop(self) -> None:
        with self._lock:
            runners = [job.runner for job in self._jobs.values() if job.runner is not None]
        for task in runners:
            task.cancel()
        for fut in self._renders.values():
            if not fut.done():
                fut.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- helpers ------------------------------------------------------------------------------

    def _record(self, request: web.Request, body: Any, raw_len: int) -> None:
        auth = request.headers.get("Authorization")
        key = auth[7:].strip() if auth and auth[:7].lower() == "bearer " else None
        entry = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            "had_auth": auth is not None,
            "auth_key_sha256": hashlib.sha256(key.encode()).hexdigest() if key else None,
            "body": _redact(body),
            "body_bytes": raw_len,
        }
        with self._lock:
            self._requests.append(entry)
            self._counters["requests"] += 1

    def _check_auth(self, request: web.Request) -> Optional[TaskError]:
        auth = request.headers.get("Authorization")
        if not auth:
            return TaskError("missingApiKey", "Missing API key: send the header "
                             "'Authorization: Bearer <key>'.", None, status=401,
                             documentation=f"{DOCS_ROOT}/getting-started/how-to-connect")
        if auth[:7].lower() != "bearer " or not auth[7:].strip():
            return TaskError("invalidApiKey", "Malformed Authorization header; expected "
                             "'Bearer <key>'.", None, status=401,
                             documentation=f"{DOCS_ROOT}/getting-started/how-to-connect")
        key = auth[7:].strip()
        if self.api_key is not None and key != self.api_key:
            return TaskError("invalidApiKey", "Invalid API key.", None, status=401,
                             documentation=f"{DOCS_ROOT}/getting-started/how-to-connect")
        return None

    @staticmethod
    def _errors_response(errors: list[dict[str, Any]], status: int,
                         headers: Optional[dict[str, str]] = None) -> web.Response:
        return web.json_response({"errors": errors}, status=status, headers=headers)

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without a reply (the client sees a disconnect)."""
        transport = request.transport
        if transport is not None:
            transport.close()
        # aiohttp will find the transport closed and write nothing.
        return web.Response(status=204)

    def _origin(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}" if request.host else self.origin

    # -- POST /v1 -------------------------------------------------------------------------------

    async def _handle_v1(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        parse_error: Optional[str] = None
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError) as exc:
            parse_error = str(exc)
        self._record(request, body if parse_error is None else f"<unparseable {len(raw)} bytes>",
                     len(raw))

        auth_error = self._check_auth(request)
        if auth_error is not None:
            self._count("auth_failures")
            return self._errors_response([auth_error.item(None, None)], 401)

        if parse_error is not None or not isinstance(body, list):
            reason = (f"Body is not valid JSON ({parse_error})." if parse_error is not None else
                      "Body must be a JSON array of task objects.")
            err = TaskError("invalidJSON" if parse_error else "invalidRequestBody", reason, None,
                            documentation=f"{DOCS_ROOT}/getting-started/introduction")
            return self._errors_response([err.item(None, None)], 400)

        tasks = [t for t in body if isinstance(t, dict)]
        families = {TASK_FAMILY.get(t.get("taskType")) for t in tasks} - {None}
        targets = {"any"} | families
        for t in tasks:
            tt = t.get("taskType")
            if tt == "videoInference":
                self._count("video_submit_attempts")
            elif tt == "getResponse":
                self._count("polls")
            elif tt == "getTaskDetails":
                self._count("task_details")
            elif tt in ("imageUpload", "mediaStorage"):
                self._count("uploads")
                self._count("image_uploads" if tt == "imageUpload" else "media_uploads")
            elif tt == "authentication":
                self._count("auth_checks")

        slow = self.faults.take("slow", targets)
        if slow is not None:
            await asyncio.sleep(float(slow.get("delay")))
        drop = self.faults.take("drop_connection", targets)
        if drop is not None and not drop.get("after_accept"):
            return self._drop(request)
        http = self.faults.take("http_status", targets)
        if http is not None and not http.get("after_accept"):
            return self._http_fault(http, body)
        malformed = self.faults.take("malformed_json", targets)
        if malformed is not None and not malformed.get("after_accept"):
            return self._malformed()

        data, errors, status = await self._process(request, body)

        if drop is not None:
            return self._drop(request)
        if http is not None:
            return self._http_fault(http, body)
        if malformed is not None:
            return self._malformed()
        payload: dict[str, Any] = {}
        if data:
            payload["data"] = data
        if errors:
            payload["errors"] = errors
        if not payload:
            payload["data"] = []
        headers = {}
        if status == 429 and self.busy_retry_after is not None:
            ra = float(self.busy_retry_after)
            headers["Retry-After"] = str(int(ra)) if ra.is_integer() else str(ra)
        return web.json_response(payload, status=status, headers=headers)

    def _http_fault(self, fault: Fault, body: list) -> web.Response:
        status = int(fault.get("status"))
        code = fault.get("code") or ("rateLimitExceeded" if status == 429 else
                                     "serverError" if status >= 500 else "requestRefused")
        message = fault.get("message") or (
            "Too many requests (emulated rate limit)." if status == 429 else
            f"Emulated HTTP {status}; the request was not processed.")
        first = next((t for t in body if isinstance(t, dict)), {})
        err = TaskError(code, message, fault.get("parameter"), status=status,  # parameter
                        documentation=f"{DOCS_ROOT}/getting-started/introduction")
        headers = {}
        if fault.get("retry_after") is not None:
            ra = fault.get("retry_after")
            headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
        return self._errors_response([err.item(first.get("taskType"), first.get("taskUUID"))],
                                     status, headers)

    @staticmethod
    def _malformed() -> web.Response:
        return web.Response(status=200, content_type="application/json",
                            text='{"data": [{"taskType": "videoInference", "taskUUID": "')

    async def _process(self, request: web.Request, body: list) -> tuple[list, list, int]:
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        statuses: list[int] = []
        seen_submits: set[str] = set()
        for index, task in enumerate(body):
            if not isinstance(task, dict):
                err = invalid(f"[{index}]", task, "Each task must be an object.",
                              code="invalidTask")
                errors.append(err.item(None, None))
                statuses.append(err.status)
                continue
            tt = task.get("taskType")
            try:
                if tt == "authentication":
                    data.append(self._task_auth(task))
                elif tt == "imageUpload":
                    data.append(await self._task_image_upload(request, task))
                elif tt == "mediaStorage":
                    data.append(await self._task_media_storage(request, task))
                elif tt == "videoInference":
                    data.append(self._task_video(task, seen_submits))
                elif tt == "getResponse":
                    item = self._task_get_response(request, task)
                    data.append(item)
                elif tt == "getTaskDetails":
                    data.append(self._task_details(request, task))
                elif tt == "accountManagement":  # the balance, nodes/emulator/account.py
                    data.append(account_task(self, task))
                elif tt is None:
                    raise missing("taskType")
                else:
                    raise invalid("taskType", tt, "Unknown or unsupported task type.",
                                  list(TASK_TYPES), code="invalidTaskType")
            except TaskError as err:
                errors.append(err.item(tt if isinstance(tt, str) else None, task.get("taskUUID")))
                statuses.append(err.status)
        if data or not statuses:
            status = 200
        else:
            status = max(statuses, key=lambda s: (s != 400, s))  # a 401/5xx outranks a 400
        return data, errors, status

    # -- tasks ------------------------------------------------------------------------------

    def _task_auth(self, task: dict) -> dict[str, Any]:
        key = task.get("apiKey")
        if key is not None and self.api_key is not None and key != self.api_key:
            raise TaskError("invalidApiKey", "Invalid API key.", "apiKey", status=401)
        out = {"taskType": "authentication", "connectionSessionUUID": new_uuid()}
        if "taskUUID" in task:
            out["taskUUID"] = task["taskUUID"]
        return out

    async def _fetch_payload(self, value: str, parameter: str) -> bytes:
        """Bytes behind an upload value: data URI, base64, or a URL (own or outside)."""
        if is_url(value):
            own = self._own_bytes(value)
            if own is not None:
                return own
            try:
                async with ClientSession(timeout=ClientTimeout(total=15)) as session:
                    async with session.get(value) as resp:
                        if resp.status != 200:
                            raise invalid(parameter, value, f"Fetching it answered HTTP {resp.status}.")
                        return await resp.read()
            except TaskError:
                raise
            except Exception as exc:
                raise invalid(parameter, value, f"Could not fetch it ({type(exc).__name__}: {exc}).") from None
        try:
            return decode_payload(value)
        except ValueError as exc:
            raise invalid(parameter, value, f"Must be a data URI, base64 or a URL: {exc}.") from None

    def _own_bytes(self, url: str) -> Optional[bytes]:
        for prefix, store in (("/images/", self._images), ("/uploads/", self._media)):
            if prefix in url:
                ident = url.rsplit("/", 1)[-1].split(".")[0]
                with self._lock:
                    info = store.get(ident)
                if info is not None:
                    return info.data
        return None

    async def _task_image_upload(self, request: web.Request, task: dict) -> dict[str, Any]:
        task_uuid = check_task_uuid(task)
        if "image" not in task:
            raise missing("image", "Send a data URI, base64 data or a URL.")
        value = task["image"]
        if not isinstance(value, str) or not value:
            raise invalid("image", value, "Must be a data URI, base64 data or a URL.")
        data = await self._fetch_payload(value, "image")
        try:
            info = await asyncio.to_thread(probe_image, data)
        except ValueError as exc:
            raise invalid("image", value, f"Not a readable image: {exc}.", code="invalidImage") from None
        info.uuid = new_uuid()
        with self._lock:
            self._images[info.uuid] = info
        ext = IMAGE_EXT.get(info.format.upper(), "img")
        return {"taskType": "imageUpload", "taskUUID": task_uuid, "imageUUID": info.uuid,
                "imageURL": f"{self._origin(request)}/images/{info.uuid}.{ext}"}

    async def _task_media_storage(self, request: web.Request, task: dict) -> dict[str, Any]:
        task_uuid = check_task_uuid(task)
        if "operation" not in task:
            raise missing("operation")
        if task["operation"] != "upload":
            raise invalid("operation", task["operation"], "Unsupported operation.", ["upload"])
        if "media" not in task:
            raise missing("media", "Send base64 data, a data URI or a URL.")
        value = task["media"]
        if not isinstance(value, str) or not value:
            raise invalid("media", value, "Must be base64 data, a data URI or a URL.")
        data = await self._fetch_payload(value, "media")
        info = await asyncio.to_thread(probe_media, data)
        info.uuid = new_uuid()
        with self._lock:
            self._media[info.uuid] = info
        return {"taskType": "mediaStorage", "taskUUID": task_uuid, "mediaUUID": info.uuid,
                "mediaURL": f"{self._origin(request)}/uploads/{info.uuid}"}

    def _task_video(self, task: dict, seen: set[str]) -> dict[str, Any]:
        task_uuid = task.get("taskUUID")
        with self._lock:
            known = is_uuid(task_uuid) and (task_uuid in self._jobs or task_uuid in seen)
        if known:
            self._count("duplicate_submits")
            raise TaskError("duplicateTaskUUID",
                            f"A task with taskUUID {task_uuid} was already submitted; poll it with "
                            f"getResponse, or send a new taskUUID for a new (billed) task.",
                            "taskUUID")
        with self._lock:
            images, media = dict(self._images), dict(self._media)
        try:
            plan = validate_video_task(task, self._spec_for(task), images, media, self._rng, layouts=self.layouts)
            self._judge_by_schema(task)
            check_funds(self, plan)  # HTTP 402 insufficientCredits when the balance cannot pay
        except TaskError:
            self._count("rejected_submits")
            raise
        self._refuse_when_busy()
        seen.add(task_uuid)
        job = Job(task_uuid=task_uuid, plan=plan, submitted_at=time.time(), request=_redact(copy.deepcopy(task)))
        fail = self.faults.take("task_error")
        if fail is not None:
            job.error = {"code": fail.get("code"), "message": fail.get("message"),
                         "provider_message": fail.get("provider_message"),
                         "form": fail.get("form"), "http_status": fail.get("http_status")}
        if self.faults.take("never_finish") is not None:
            job.never_finish = True
        with self._lock:
            self._jobs[task_uuid] = job
            self._counters["video_submissions"] += 1
            self._counters["peak_running"] = max(self._counters["peak_running"], self._running())
            seconds = self._job_seconds
        job.runner = asyncio.ensure_future(self._run_job(job, seconds))
        self._persist()
        return {"taskType": "videoInference", "taskUUID": task_uuid}

    def _spec_for(self, task: dict) -> CapabilitySpec:
        """The spec a task is checked with: the extra models' too; where a schema was set by hand for its
        model, that schema decides and the spec's rules between choices only tell."""
        spec = self.schemas.spec()
        air = task.get("model")
        return spec.judged_by_schema() if isinstance(air, str) and self.schemas.judged_by_override(air) else spec

    def _judge_by_schema(self, task: dict) -> None:
        """Refuse `task` (TaskError) where the schema served for its model refuses it."""
        air = task.get("model")
        _, served = self.schemas.served_schema(air) if isinstance(air, str) else (404, None)
        failure = first_failure(served, task) if served is not None else None
        if failure is not None:
            allowed = failure.allowed if isinstance(failure.allowed, list) else None
            raise invalid(failure.wire or "request", failure.value,
                          f"Refused by the request schema of {air}: {failure.words}.", allowed)

    def _running(self) -> int:
        with self._lock:
            return sum(1 for job in self._jobs.values() if job.state == "processing")

    def _refuse_when_busy(self) -> None:
        """The account's concurrency (`max_concurrent`): a submit past it is refused, as Runware passes on a
        provider's "too many simultaneous generations" (HTTP 429; not accepted, not billed)."""
        limit = self.max_concurrent
        if limit is None:
            return
        running = self._running()
        if running >= limit:
            self._count("busy_refusals")
            raise TaskError("rateLimitExceeded",
                            f"Too many concurrent generations: this account renders at most {limit} video(s) at "
                            f"once and {running} are processing. The task was not accepted and nothing was "
                            f"charged; send it again when one has finished.", None, status=429)

    def _task_get_response(self, request: web.Request, task: dict) -> dict[str, Any]:
        if "taskUUID" not in task:
            raise missing("taskUUID")
        task_uuid = task["taskUUID"]
        if not is_uuid(task_uuid):
            raise invalid("taskUUID", task_uuid, "Must be a UUID.")
        with self._lock:
            job = self._jobs.get(task_uuid)
        if job is not None and self.faults.take("hide_task") is not None:
            job = None
        with self._lock:
            if job is None:
                raise TaskError("taskNotFound",
                                f"No task with taskUUID {task_uuid} was found.", "taskUUID")
            state, error = job.state, job.error
        if state == "success" and self.forget_finished:
            raise TaskError("taskNotFound", f"No task with taskUUID {task_uuid} was found.", "taskUUID")
        if state == "processing":
            return {"taskType": "videoInference", "taskUUID": task_uuid, "status": "processing"}
        if state == "error":
            assert error is not None
            if error.get("form") == "errors_item":
                err = TaskError(error["code"], error["message"], None,
                                status=int(error.get("http_status") or 400),
                                response_content=error.get("provider_message"),
                                task_type="videoInference")
                raise err
            return {"taskType": "videoInference", "taskUUID": task_uuid, "status": "error",
                    "error": {"code": error["code"], "message": error["message"],
                              "responseContent": error.get("provider_message")}}
        return self._success_item(request, job)

    def _task_details(self, request: web.Request, task: dict) -> dict[str, Any]:
        """getTaskDetails: the original request and the response it produced (or its state now)."""
        task_uuid = task.get("taskUUID")
        if not is_uuid(task_uuid):
            raise invalid("taskUUID", task_uuid, "Must be a UUID.")
        with self._lock:
            job = self._jobs.get(task_uuid)
            if job is None:
                raise TaskError("taskNotFound", f"No task with taskUUID {task_uuid} was found.", "taskUUID")
            state, original = job.state, copy.deepcopy(job.request)
        if state == "success":
            response: dict[str, Any] = self._success_item(request, job)
        elif state == "error":
            response = {"taskType": "videoInference", "taskUUID": task_uuid, "status": "error",
                        "error": {"code": job.error["code"], "message": job.error["message"]}}
        else:
            response = {"taskType": "videoInference", "taskUUID": task_uuid, "status": "processing"}
        return {"taskType": "getTaskDetails", "taskUUID": task_uuid, "request": original, "response": response}

    def _success_item(self, request: web.Request, job: Job) -> dict[str, Any]:
        task_uuid, video_uuid, plan = job.task_uuid, job.video_uuid, job.plan
        url = f"{self._origin(request)}/media/{video_uuid}.mp4"
        if job.url_override:
            url = job.url_override.replace("{origin}", self._origin(request)).replace("{video}", str(video_uuid))
        item: dict[str, Any] = {
            "taskType": "videoInference", "taskUUID": task_uuid, "status": "success",
            "videoUUID": video_uuid,
            "videoURL": url,
            "seed": plan.seed,
        }
        if plan.include_cost:
            item["cost"] = plan.cost  # emulator-only fake price, see FAKE_COST_PER_SECOND_USD
        if plan.notices:
            item["notices"] = list(plan.notices)
        if getattr(self, "dry_run", False):  # a user's dry run bills nothing, and says so
            item["dryRun"] = True
        return item

    # -- jobs and rendering -----------------------------------------------------------------

    async def _run_job(self, job: Job, seconds: float) -> None:
        await self._finish_job(job, seconds)
        if job.state != "processing":
            self._persist()

    async def _finish_job(self, job: Job, seconds: float) -> None:
        if job.never_finish:
            return
        render: Optional[asyncio.Future] = None
        if job.error is None:
            render = asyncio.ensure_future(self._render(job.plan))
        try:
            try:
                await asyncio.wait_for(job.hurry.wait(), timeout=seconds)
            except asyncio.TimeoutError:
                pass  # its time is up
            if job.error is not None:
                with self._lock:
                    job.state = "error"
                return
            assert render is not None
            try:
                path = await render
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("emulator render failed")
                with self._lock:
                    job.error = {"code": "taskFailed",
                                 "message": f"The emulator could not render the video: {exc}",
                                 "provider_message": None, "form": "data_status"}
                    job.state = "error"
                return
            corrupt = self.faults.take("corrupt_mp4")
            video = VideoFile(data=self._garbage(job.task_uuid)) if corrupt else VideoFile(path=path)
            video_uuid = new_uuid()
            override = self.faults.take("result_url")
            with self._lock:
                self._videos[video_uuid] = video
                job.video_uuid = video_uuid
                job.url_override = override.get("url") if override is not None else None
                job.state = "success"
                job.finished_at = time.time()
        except asyncio.CancelledError:
            if render is not None and not render.done():
                render.cancel()
            raise

    @staticmethod
    def _garbage(salt: str) -> bytes:
        block = hashlib.sha256(salt.encode()).digest()
        return b"\x00\x00\x00\x18notanmp4" + block * 512

    async def _render(self, plan: JobPlan) -> Path:
        fps: Any = int(plan.fps) if float(plan.fps).is_integer() else plan.fps
        key = (plan.width, plan.height, fps, plan.duration, plan.with_audio, plan.audio_seconds,
               plan.seed % (2 ** 32))
        fut = self._renders.get(key)
        if fut is None or (fut.done() and (fut.cancelled() or fut.exception() is not None)):
            fut = asyncio.ensure_future(self._render_file(key))
            self._renders[key] = fut
        return await asyncio.shield(fut)

    async def _render_file(self, key: tuple) -> Path:
        width, height, fps, duration, with_audio, audio_seconds, seed = key
        assert self._media_dir is not None and self._render_sem is not None
        name = (f"{width}x{height}_{fps}fps_{duration:g}s_{'a' if with_audio else 'n'}"
                f"{'' if audio_seconds is None else f'{audio_seconds:g}'}_{seed}.mp4")
        path = self._media_dir / name
        if path.exists() and path.stat().st_size > 0:
            return path
        from ..media.render import render_test_video  # written elsewhere in the pack

        tmp = path.with_name(f".{os.getpid()}.{new_uuid()}.{name}")
        async with self._render_sem:
            try:
                await asyncio.to_thread(render_test_video, str(tmp), width=width, height=height,
                                        fps=fps, duration=duration, with_audio=with_audio,
                                        audio_seconds=audio_seconds, seed=seed)
                os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
        return path

    # -- GET routes ---------------------------------------------------------------------------

    async def _handle_video(self, request: web.Request) -> web.StreamResponse:
        self._record(request, None, 0)
        is_get = request.method == "GET"
        if is_get:
            self._count("downloads")
        name = request.match_info["name"]
        ident = name[:-4] if name.endswith(".mp4") else name
        targets = {"download"} if is_get else set()   # a HEAD consumes no fault
        slow = self.faults.take("slow", targets)
        if slow is not None:
            await asyncio.sleep(float(slow.get("delay")))
        if self.faults.take("drop_connection", targets) is not None:
            return self._drop(request)
        http = self.faults.take("http_status", targets)
        if http is not None:
            return self._http_fault(http, [])
        with self._lock:
            video = self._videos.get(ident)
        if video is None:
            return web.json_response({"errors": [{"code": "notFound",
                                                  "message": f"No video {name}."}]}, status=404)
        status_fault = self.faults.take("download_status") if is_get else None
        if status_fault is not None:
            status = int(status_fault.get("status"))
            return web.Response(status=status, content_type="text/plain",
                                text=f"HTTP {status}: result not available yet (emulated)")
        data = await asyncio.to_thread(video.read)
        headers = {"Accept-Ranges": "bytes"}
        status = 200
        span = self._byte_range(request.headers.get("Range"), len(data))
        if span == "unsatisfiable":
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        if isinstance(span, tuple):
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        redirect = self.faults.take("download_redirect") if is_get else None
        if redirect is not None:
            location = str(redirect.get("location")).replace("{origin}", self._origin(request)).replace(
                "{video}", ident)
            return web.Response(status=int(redirect.get("status")), headers={"Location": location})
        drip = self.faults.take("download_drip") if is_get else None
        if drip is not None:
            resp = web.StreamResponse(status=status, headers={
                **headers, "Content-Type": "video/mp4", "Content-Length": str(len(data))})
            await resp.prepare(request)
            step, interval = max(1, int(drip.get("chunk"))), float(drip.get("interval"))
            for start in range(0, len(data), step):
                await resp.write(data[start:start + step])
                await asyncio.sleep(interval)
            await resp.write_eof()
            return resp
        if is_get and self.faults.take("download_truncate") is not None:
            resp = web.StreamResponse(status=status, headers={
                **headers, "Content-Type": "video/mp4", "Content-Length": str(len(data))})
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            self._drop(request)
            return resp
        return web.Response(body=data, status=status, content_type="video/mp4", headers=headers)

    @staticmethod
    def _byte_range(header: Optional[str], size: int) -> Any:
        """(start, end) for a single 'bytes=' range, "unsatisfiable", or None (whole file)."""
        if not header or not header.startswith("bytes=") or "," in header:
            return None
        first, _, last = header[6:].strip().partition("-")
        try:
            if first == "":
                n = int(last)
                if n <= 0:
                    return "unsatisfiable"
                return max(0, size - n), size - 1
            start = int(first)
            end = int(last) if last else size - 1
        except ValueError:
            return None
        if start >= size or end < start:
            return "unsatisfiable"
        return start, min(end, size - 1)

    async def _handle_image(self, request: web.Request) -> web.StreamResponse:
        ident = request.match_info["name"].split(".")[0]
        with self._lock:
            info = self._images.get(ident)
        if info is None:
            raise web.HTTPNotFound(text="no such image")
        ext = IMAGE_EXT.get(info.format.upper(), "octet-stream")
        ctype = "image/jpeg" if ext == "jpg" else (f"image/{ext}" if ext != "octet-stream"
                                                   else "application/octet-stream")
        return web.Response(body=info.data, content_type=ctype)

    async def _handle_upload_get(self, request: web.Request) -> web.StreamResponse:
        ident = request.match_info["name"].split(".")[0]
        with self._lock:
            info = self._media.get(ident)
        if info is None:
            raise web.HTTPNotFound(text="no such media")
        return web.Response(body=info.data, content_type="application/octet-stream")

    async def _handle_root(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({
            "emulator": "runware (local, for tests and dry runs; nothing is billed)",
            "base_url": f"{self._origin(request)}/v1",
            "task_types": list(TASK_TYPES),
            "models": [m.air for m in self.spec.models],
            "control": ["/_emulator/stats", "/_emulator/requests", "/_emulator/faults",
                        "/_emulator/reset", "/_emulator/config", "/_emulator/schemas"],
            "schemas": ["/registry.json", "/resolve/{AIR}"],
        })

    # -- Runware's schema service ---------------------------------------------------------------

    def _schema_answer(self, request: web.Request, status: int, body: Optional[dict], etag: str) -> web.Response:
        self.schemas.record(request.path, dict(request.headers))
        if body is None:
            return web.json_response({"error": f"HTTP {status}"}, status=status)
        if etag and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.json_response(body, headers={"ETag": etag} if etag else None)

    async def _handle_registry(self, request: web.Request) -> web.StreamResponse:
        return self._schema_answer(request, *self.schemas.registry())

    async def _handle_resolve(self, request: web.Request) -> web.StreamResponse:
        return self._schema_answer(request, *self.schemas.resolve(request.match_info["air"]))

    async def _ctl_schemas(self, request: web.Request) -> web.StreamResponse:
        if request.method == "DELETE":
            self.schemas.reset()
        elif request.method == "POST":
            try:
                body = await request.json()
                if not isinstance(body, dict) or set(body) - {"extra", "schemas", "errors"}:
                    raise ValueError("give an object with extra, schemas and/or errors")
                self.schemas.configure(**body)
            except (ValueError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.schemas.described())

    # -- control routes -----------------------------------------------------------------------

    async def _ctl_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats())

    async def _ctl_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.requests)

    async def _ctl_faults_get(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"faults": self.faults.pending(), "kinds": {
            k: v for k, v in FAULT_KINDS.items()}})

    async def _ctl_faults_post(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError as exc:
            return web.json_response({"error": f"body is not JSON: {exc}"}, status=400)
        items = body if isinstance(body, list) else [body]
        added = []
        try:
            for item in items:
                if not isinstance(item, dict) or "kind" not in item:
                    raise ValueError('each fault is an object with a "kind"')
                params = {k: v for k, v in item.items() if k != "kind"}
                added.append(self.inject(item["kind"], **params))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc), "added": added}, status=400)
        return web.json_response({"added": added, "faults": self.faults.pending()})

    async def _ctl_faults_delete(self, request: web.Request) -> web.StreamResponse:
        self.faults.clear()
        return web.json_response({"faults": []})

    async def _ctl_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"ok": True})

    async def _ctl_config(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("body must be an object")
                known = {"job_seconds", "forget_finished", "max_concurrent", "busy_retry_after"}
                unknown = set(body) - known
                if unknown:
                    raise ValueError(f"unknown config keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
                for name in ("max_concurrent", "busy_retry_after"):
                    if name in body:
                        value = body[name]
                        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                                  or value < (1 if name == "max_concurrent" else 0)):
                            raise ValueError(f"{name}: a number ({'at least 1' if name == 'max_concurrent' else '0 or more'}) or null")
                        setattr(self, name, int(value) if name == "max_concurrent" and value is not None else value)
                if "job_seconds" in body:
                    self.job_seconds = body["job_seconds"]
                if "forget_finished" in body:
                    self.forget_finished = bool(body["forget_finished"])
            except (ValueError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"job_seconds": self.job_seconds, "forget_finished": self.forget_finished,
                                  "max_concurrent": self.max_concurrent, "busy_retry_after": self.busy_retry_after,
                                  "api_key_required": self.api_key is not None})
