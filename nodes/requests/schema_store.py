"""Runware's schema service, read and kept on disk: `registry.json` and `/resolve/<AIR>`.

What Runware's own SDKs read (docs/runware-sources.md, "Runware's schema service"): the registry of models
(`{"version", "models": {AIR: {"taskType", "id"}}, …}`) and, per model, `{"requestSchema", …}`. Both are
public: this module's HTTP client is its own and carries no API key (nor any other credential), only a
User-Agent. Each answer is kept on disk with its ETag (the directory beside the job ledger) and used
without asking again for 5 minutes; after that it is asked for with `If-None-Match`. No request waits
more than `FETCH_TIMEOUT_S`; a failed read is not tried again for that document for `RETRY_AFTER_S`,
and meanwhile the copy on disk (however old) is used when there is one. A copy names the service it came
from: one kept from another `RUNWARE_SCHEMAS_URL` (a local emulator, say) is never used for this one.

It sits with the request layer (not nodes/client/) because the one draft request (draft.py) asks it.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional
from urllib.parse import quote

import httpx

from .. import config
from ..errors import PixVerseError

log = logging.getLogger("pixverse")

FRESH_S = 5 * 60          # Runware's SDKs refresh the registry every 5 minutes
RETRY_AFTER_S = 5 * 60    # a failed read is not tried again sooner (for that document)
FETCH_TIMEOUT_S = 3.0     # the SDKs' bound on the first registry read
CACHE_DIRNAME = "runware-schemas"
USER_AGENT = "comfyui-pixverse-runware (schema reader; no key is sent)"


@dataclass(frozen=True)
class Document:
    """A JSON document of the schema service, or why there is none.

    `body` None: not had (`why` says why: "404", "unreachable: …", "off"). `origin`: "fetched",
    "fresh copy" (on disk, under 5 minutes old), "kept copy" (older, used because the service failed)."""

    body: Optional[dict]
    why: str = ""
    origin: str = ""


@dataclass
class _Failure:
    at: float
    why: str
    absent: bool  # Runware answered that there is none (404): no kept copy is used


class SchemaStore:
    """Reads the schema service at `base_url` (None: read nothing) with a cache in `cache_dir` (None: memory)."""

    def __init__(self, base_url: Optional[str], cache_dir: Optional[Path] = None, *,
                 clock: Callable[[], float] = time.time, timeout_s: float = FETCH_TIMEOUT_S,
                 transport: Optional[httpx.BaseTransport] = None):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._clock = clock
        self._timeout_s = timeout_s
        self._transport = transport
        self._memory: dict[str, dict] = {}  # name → {"etag", "at", "body"} when there is no cache_dir
        self._parsed: dict[str, tuple[int, Any]] = {}  # name → (mtime_ns, entry) of the kept file last read
        self._failures: dict[str, _Failure] = {}
        self._lock = threading.Lock()

    # -- what callers ask -------------------------------------------------------------------------

    def registry(self, *, refresh: bool = False) -> Document:
        """The registry (`refresh`: ask even when the kept copy is fresh and a failure is recent)."""
        return self._document("registry.json", "registry.json", refresh)

    def resolve(self, air: str, *, refresh: bool = False, kept_only: bool = False) -> Document:
        """What the service says about the model `air` (its `requestSchema`, …); `kept_only`: the copy
        kept on disk, nothing fetched."""
        name = f"resolve-{quote(air, safe='')}.json"
        if kept_only:
            return self._kept(name)
        return self._document(f"resolve/{quote(air, safe='')}", name, refresh)

    def kept_registry(self) -> Document:
        """The registry as kept on disk, without asking the service."""
        return self._kept("registry.json")

    def _kept(self, name: str) -> Document:
        with self._lock:
            entry = self._read_kept(name)
        return Document(entry["body"], origin="kept copy") if entry else Document(None, "no copy kept")

    # -- the reading ------------------------------------------------------------------------------

    def _document(self, route: str, name: str, refresh: bool) -> Document:
        if self.base_url is None:
            return Document(None, f"{config.SCHEMAS_URL.env} is {config.SCHEMAS_OFF!r}")
        with self._lock:
            kept = self._read_kept(name)
            now = self._clock()
            if kept and not refresh and now - kept.get("at", 0) < FRESH_S:
                return Document(kept["body"], origin="fresh copy")
            failed = self._failures.get(name)
            if failed and not refresh and now - failed.at < RETRY_AFTER_S:
                return self._after_failure(failed, kept)
        outcome = self._fetch(route, kept.get("etag") if kept else None)
        with self._lock:
            status, body, etag, why = outcome
            if status == 304 and kept:
                kept["at"] = self._clock()
                self._write_kept(name, kept)
                self._failures.pop(name, None)
                return Document(kept["body"], origin="fetched")
            if status == 200 and isinstance(body, dict):
                self._write_kept(name, {"etag": etag, "at": self._clock(), "body": body})
                self._failures.pop(name, None)
                return Document(body, origin="fetched")
            failure = _Failure(self._clock(), why, absent=status == 404)
            self._failures[name] = failure
            if failure.absent:
                self._forget_kept(name)
            return self._after_failure(failure, kept)

    @staticmethod
    def _after_failure(failure: _Failure, kept: Optional[dict]) -> Document:
        if kept and not failure.absent:
            return Document(kept["body"], why=failure.why, origin="kept copy")
        return Document(None, failure.why)

    def _fetch(self, route: str, etag: Optional[str]) -> tuple[int, Any, Optional[str], str]:
        """(status, body, etag, why-not) of one GET; status 0 when nothing came back."""
        url = f"{self.base_url}/{route}"
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = etag
        try:
            # A client of its own: no Authorization header, no auth object, no cookies kept.
            with httpx.Client(timeout=httpx.Timeout(self._timeout_s), trust_env=True, follow_redirects=True,
                              transport=self._transport) as client:
                response = client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}" + (f": {exc}" if str(exc) else "")
            log.info("PixVerse: Runware's schema service could not be read (%s): %s", url, why)
            return 0, None, None, f"unreachable ({why})"
        if response.status_code == 304:
            return 304, None, etag, ""
        if response.status_code != 200:
            return response.status_code, None, None, f"HTTP {response.status_code}"
        try:
            body = response.json()
        except ValueError:
            return 0, None, None, "not JSON"
        if not isinstance(body, dict):
            return 0, None, None, "not a JSON object"
        return 200, body, response.headers.get("ETag"), ""

    # -- the kept copies --------------------------------------------------------------------------

    def _read_kept(self, name: str) -> Optional[dict]:
        if self.cache_dir is None:
            entry = self._memory.get(name)
            return dict(entry) if entry else None
        path = self.cache_dir / name
        try:
            stamp = path.stat().st_mtime_ns
            parsed = self._parsed.get(name)
            if parsed is None or parsed[0] != stamp:  # read once per change: the body stays the same object
                parsed = (stamp, json.loads(path.read_text(encoding="utf-8")))
                self._parsed[name] = parsed
        except (OSError, ValueError):
            return None
        entry = parsed[1]
        if not isinstance(entry, dict) or not isinstance(entry.get("body"), dict):
            return None
        return dict(entry) if entry.get("source") == self.base_url else None  # another service's copy is not ours

    def _write_kept(self, name: str, entry: dict) -> None:
        entry = {**entry, "source": self.base_url}
        if self.cache_dir is None:
            self._memory[name] = dict(entry)
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_dir / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(entry), encoding="utf-8")
            os.replace(tmp, self.cache_dir / name)
        except OSError as exc:  # a cache that cannot be written costs a read next time, nothing more
            log.info("PixVerse: could not keep Runware's schema copy %s: %s", name, exc)
            self._memory[name] = dict(entry)

    def _forget_kept(self, name: str) -> None:
        self._memory.pop(name, None)
        if self.cache_dir is not None:
            try:
                (self.cache_dir / name).unlink()
            except OSError:
                pass


# -- the process's store ----------------------------------------------------------------------------

_store: Optional[SchemaStore] = None
_store_lock = threading.Lock()
_served_by: Optional[str] = None  # `served_by`'s service while it lasts (this process only)


@contextmanager
def served_by(base_url: str) -> Iterator[None]:
    """Read schemas from `base_url` while the block runs, unless RUNWARE_SCHEMAS_URL names a service (the
    CLI's `--offline` emulator serves them; nothing of it outlives the command or reaches another process)."""
    global _served_by
    before, _served_by = _served_by, base_url.rstrip("/")
    try:
        yield
    finally:
        _served_by = before


def default_store() -> SchemaStore:
    """The store this process reads through: RUNWARE_SCHEMAS_URL (else `served_by`'s service, else
    Runware's), kept in memory until `keep_beside` names a directory (ComfyUI's user directory, the CLI's
    ledger)."""
    global _store
    try:
        base_url = config.schemas_url(unset=_served_by)
    except ValueError as exc:
        raise PixVerseError(str(exc)) from None
    with _store_lock:
        if _store is None or _store.base_url != base_url:
            _store = SchemaStore(base_url, _store.cache_dir if _store else None)
        return _store


def keep_beside(ledger_path: os.PathLike | str | None) -> SchemaStore:
    """Keep the process's copies in a directory beside the job ledger at `ledger_path` (once set, it stays)."""
    store = default_store()
    if ledger_path and store.cache_dir is None:
        store.cache_dir = Path(ledger_path).with_name(CACHE_DIRNAME)
    return store
