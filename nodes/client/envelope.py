"""Runware reply envelopes, parsed defensively, and error items mapped onto typed exceptions.

Accepted shapes: `{"data": [...]}` or `{"data": {...}}`, `{"errors": [...]}` or `{"error": {...}}`
(or a bare string), both at once, or a bare top-level list of items. Anything else is malformed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .. import errors as E

_PROVIDER_TEXT_LIMIT = 2000


class MalformedReply(Exception):
    """The body is not a Runware envelope (not JSON, or JSON of the wrong shape)."""


@dataclass
class Envelope:
    data: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def data_for(self, task_uuid: Optional[str]) -> list:
        return [d for d in self.data if _belongs(d, task_uuid)]

    def errors_for(self, task_uuid: Optional[str]) -> list:
        return [e for e in self.errors if _belongs(e, task_uuid)]


def _belongs(item: dict, task_uuid: Optional[str]) -> bool:
    """An item without a taskUUID is taken to be about the one task that was asked about."""
    other = item.get("taskUUID")
    return task_uuid is None or not other or other == task_uuid


def _as_items(value: Any, *, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, str):
        if what == "errors":
            return [{"message": value}]
        raise MalformedReply(f"{what} is a string")
    if isinstance(value, list):
        out = []
        for v in value:
            if isinstance(v, dict):
                out.append(v)
            elif isinstance(v, str) and what == "errors":
                out.append({"message": v})
        return out
    raise MalformedReply(f"{what} has type {type(value).__name__}")


def parse_envelope(body: Any) -> Envelope:
    """Parse bytes/str (JSON text) or an already decoded object. Raises MalformedReply."""
    if isinstance(body, (bytes, bytearray, str)):
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedReply(f"not JSON ({exc.__class__.__name__})") from None
    else:
        obj = body
    if isinstance(obj, list):
        return Envelope(data=_as_items(obj, what="data"))
    if not isinstance(obj, dict):
        raise MalformedReply(f"top level is {type(obj).__name__}")
    if not any(k in obj for k in ("data", "errors", "error")):
        raise MalformedReply("no data, errors or error key")
    errs = _as_items(obj.get("errors"), what="errors") + _as_items(obj.get("error"), what="errors")
    return Envelope(data=_as_items(obj.get("data"), what="data"), errors=errs)


def error_of_data_item(item: dict) -> Optional[dict]:
    """A data item reporting failure (`"status": "error"` and/or an `error` object), flattened into
    an error-item dict; None when the item is not a failure."""
    status = str(item.get("status") or "").lower()
    err = item.get("error")
    if status not in ("error", "failed", "failure") and not err:
        return None
    if isinstance(err, dict):
        merged = {**{k: v for k, v in item.items() if k != "error"}, **err}
    elif isinstance(err, str):
        merged = {**{k: v for k, v in item.items() if k != "error"}, "message": err}
    else:
        merged = dict(item)
    if item.get("taskUUID"):
        merged["taskUUID"] = item["taskUUID"]
    return merged


def _text(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _PROVIDER_TEXT_LIMIT:
        text = text[:_PROVIDER_TEXT_LIMIT] + "…"
    return text


def exception_for(item: dict, *, status: Optional[int] = None, task_uuid: Optional[str] = None,
                  scrub: Callable[[str], str] = lambda s: s, retry_after: Optional[float] = None,
                  suffix: str = "") -> E.RunwareError:
    """Build the typed exception for one error item (from `errors[]` or a failed data item)."""
    code = item.get("code")
    code = str(code) if code not in (None, "") else None
    cls = E.error_class_for(code, status)
    message = _text(item.get("message")) or _text(item.get("detail"))
    if not message:
        message = f"Runware reported an error ({code})" if code else (
            f"Runware answered HTTP {status}" if status else "Runware reported an error")
    message = scrub(message)
    if suffix:
        message = f"{message}. {suffix}" if not message.endswith(".") else f"{message} {suffix}"
    provider = _text(item.get("responseContent"))
    allowed = item.get("allowedValues")
    if allowed is not None and not isinstance(allowed, (list, tuple)):
        allowed = [allowed]
    kw = dict(task_uuid=item.get("taskUUID") or task_uuid, code=code, status=status,
              parameter=_text(item.get("parameter")), allowed_values=allowed,
              provider_message=scrub(provider) if provider else None)
    if issubclass(cls, E.RunwareRateLimitError):
        return cls(message, retry_after=retry_after, **kw)
    return cls(message, **kw)


def exception_for_status(status: int, *, task_uuid: Optional[str] = None,
                         retry_after: Optional[float] = None, what: str = "request") -> E.RunwareError:
    """For a reply whose body carried no usable error item."""
    reasons = {400: "Runware refused the request", 401: "Runware refused the API key",
               402: "Not enough Runware credit", 403: "This API key may not do that",
               408: "Runware timed out reading the request", 429: "Runware rate limit reached"}
    msg = reasons.get(status) or (f"Runware server error on {what}" if status >= 500
                                  else f"Unexpected HTTP {status} from Runware on {what}")
    if status == 408:
        return E.RunwareServerError(msg, task_uuid=task_uuid, status=status)
    return exception_for({"message": msg}, status=status, task_uuid=task_uuid,
                         retry_after=retry_after)
