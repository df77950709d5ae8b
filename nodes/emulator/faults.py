"""Fault injection for the local Runware emulator.

A fault is queued with `FaultBook.add(kind, **params)` (what `EmulatorServer.inject` and
`POST /_emulator/faults` call) and fires on the next matching request(s), `times` times (default 1).

Kinds and their parameters (defaults in brackets):

- ``http_status``: status [503] (429/500/502/503/…), retry_after [None] seconds → Retry-After
  header, on ["any"], times [1], code [rateLimitExceeded for 429, else serverError], message.
  The request is answered with ``{"errors":[…]}`` and not processed (with after_accept [False]: it is
  processed first, so a submit IS accepted though its reply is an error).
- ``hide_task``: the next `times` [1] getResponse polls answer taskNotFound even for a known task
  (a Runware that has the task but cannot find it yet).
- ``drop_connection``: on ["submit"], after_accept [True], times [1]. With after_accept the
  request is processed (a submit IS accepted and its job runs) and then the connection is closed
  without a reply; without it the connection is closed before anything is processed.
- ``slow``: delay [5.0] seconds before the request is handled, on ["any"], times [1].
- ``malformed_json``: on ["any"], after_accept [True], times [1]: the request is processed, then
  answered 200 with a body that is not valid JSON.
- ``task_error``: the next accepted video job fails. code ["taskFailed"], message,
  provider_message (→ ``responseContent``), form ["data_status"] or "errors_item",
  http_status [400] (the HTTP status of an errors_item poll reply), times [1].
- ``never_finish``: the next accepted video job stays "processing" forever; times [1].
- ``download_status``: the next `times` [1] GETs of a result video answer `status` [422].
- ``download_truncate``: the next GET of a result video announces the full Content-Length, sends
  half the bytes and closes the connection; times [1].
- ``corrupt_mp4``: the next finished job's file is garbage bytes served as video/mp4; times [1].
- ``result_url``: the next finished job reports `url` as its videoURL instead of its own; `url` may
  hold ``{origin}`` (this emulator) and ``{video}`` (the videoUUID); times [1]. For hostile-server
  tests: a ``file://`` URL, a private address, a query with a signature, a key in the path.
- ``download_redirect``: the next `times` [1] GETs of a result video answer `status` [302] with
  ``Location: location`` (``{origin}`` and ``{video}`` filled in as above).
- ``download_drip``: the next GET of a result video announces the full Content-Length and then
  sends `chunk` [1] byte(s) every `interval` [5.0] seconds; times [1].

``on`` (where it applies) is one of "submit" (a request holding a videoInference task), "poll"
(getResponse), "details" (getTaskDetails), "upload" (imageUpload / mediaStorage), "auth" (authentication), "download"
(GET of a result video) or "any" (any POST to /v1).
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

ON_VALUES = ("submit", "poll", "details", "upload", "auth", "download", "any")

# kind -> (defaults, whether `on` applies)
FAULT_KINDS: dict[str, dict[str, Any]] = {
    "http_status": {"status": 503, "retry_after": None, "on": "any", "times": 1,
                    "code": None, "message": None, "after_accept": False,
                    "parameter": None},  # the error item's parameter (a moderation refusal's input)
    "hide_task": {"times": 1},
    "drop_connection": {"on": "submit", "after_accept": True, "times": 1},
    "slow": {"delay": 5.0, "on": "any", "times": 1},
    "malformed_json": {"on": "any", "after_accept": True, "times": 1},
    "task_error": {"code": "taskFailed", "message": "The task failed at the provider (emulated).",
                   "provider_message": "PixVerse: generation failed (emulated fault)",
                   "form": "data_status", "http_status": 400, "times": 1},
    "never_finish": {"times": 1},
    "download_status": {"status": 422, "times": 1},
    "download_truncate": {"times": 1},
    "corrupt_mp4": {"times": 1},
    "result_url": {"url": "file:///etc/passwd", "times": 1},
    "download_redirect": {"location": "{origin}/media/{video}.mp4", "status": 302, "times": 1},
    "download_drip": {"chunk": 1, "interval": 5.0, "times": 1},
}

TASK_ERROR_FORMS = ("data_status", "errors_item")

_ids = itertools.count(1)


@dataclass
class Fault:
    kind: str
    params: dict[str, Any]
    remaining: int
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0

    def get(self, name: str) -> Any:
        return self.params.get(name)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "remaining": self.remaining, "fired": self.fired,
                **self.params}


def make_fault(kind: str, **params: Any) -> Fault:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    defaults = FAULT_KINDS[kind]
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"fault {kind!r}: unknown parameters {sorted(unknown)}; "
                         f"known: {sorted(defaults)}")
    merged = {**defaults, **params}
    times = merged.pop("times")
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise ValueError(f"fault {kind!r}: times must be an integer ≥ 1, got {times!r}")
    if "on" in merged and merged["on"] not in ON_VALUES:
        raise ValueError(f"fault {kind!r}: on must be one of {ON_VALUES}, got {merged['on']!r}")
    if kind == "http_status":
        status = merged["status"]
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"http_status: status must be 4xx/5xx, got {status!r}")
        if merged["retry_after"] is not None and not isinstance(merged["retry_after"], (int, float)):
            raise ValueError("http_status: retry_after must be a number of seconds")
    if kind == "download_status":
        if not isinstance(merged["status"], int) or not 400 <= merged["status"] <= 599:
            raise ValueError(f"download_status: status must be 4xx/5xx, got {merged['status']!r}")
    if kind == "slow" and (not isinstance(merged["delay"], (int, float)) or merged["delay"] < 0):
        raise ValueError("slow: delay must be a non-negative number of seconds")
    if kind == "task_error" and merged["form"] not in TASK_ERROR_FORMS:
        raise ValueError(f"task_error: form must be one of {TASK_ERROR_FORMS}, got {merged['form']!r}")
    return Fault(kind=kind, params=merged, remaining=times)


class FaultBook:
    """Pending faults, FIFO per kind. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.fired: dict[str, int] = {k: 0 for k in FAULT_KINDS}

    def add(self, kind: str, **params: Any) -> Fault:
        fault = make_fault(kind, **params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, kind: str, targets: Iterable[str] = ()) -> Optional[Fault]:
        """Consume one use of the oldest pending fault of `kind` whose `on` is in `targets`.

        `targets` describes the request: for a POST to /v1, "any" plus the task families it holds
        ("submit", "poll", "upload", "auth"); for a result download, just "download". Faults
        without an `on` parameter match any request they are asked about."""
        targets = set(targets)
        with self._lock:
            for fault in self._faults:
                if fault.kind != kind:
                    continue
                if "on" in fault.params and fault.params["on"] not in targets:
                    continue
                fault.remaining -= 1
                fault.fired += 1
                self.fired[kind] += 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.fired = {k: 0 for k in FAULT_KINDS}
