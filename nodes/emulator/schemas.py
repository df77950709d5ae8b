"""The emulator's stand-in for Runware's schema service: `/registry.json` and `/resolve/<AIR>`.

By default it serves every model of the capability spec, each with a request schema built from the spec
(Draft 2019-09: the fixed fields, the model's durations, sizes, fps and settings, and the spec's binding
rules between settings as `allOf` if/then branches). It can be told (Python or `/_emulator/schemas`) to
serve a model the spec does not describe (`extra`), another schema for a model (`schemas`: stricter or
looser), or an error (`errors`: an HTTP status per AIR, or for "registry.json"). The emulator validates
each videoInference task against the schema it serves for the task's model.
"""
from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Optional

from ..requests.schema import derive_model
from ..spec import SET, CapabilitySpec, ModelSpec
from ..spec.paths import setting_wire

REGISTRY_VERSION = "emulator"
DOCS = "https://runware.ai/docs/models/{slug}"


def _slug(model: ModelSpec) -> str:
    return model.air.replace(":", "-").replace("@", "-")


def _nest(path: str, leaf: dict) -> dict:
    """{"properties": {a: {"properties": {b: leaf}}}} for "a.b" (objects between)."""
    *parents, name = path.split(".")
    node: dict = {"type": "object", "properties": {name: leaf}}
    for parent in reversed(parents):
        node = {"type": "object", "properties": {parent: node}}
    return node


def _setting_schema(setting) -> dict:
    if setting.kind == "enum":
        return {"enum": list(setting.values)}
    if setting.kind == "boolean":
        return {"type": "boolean"}
    if setting.kind == "text":
        return {"type": "string", "minLength": setting.min, "maxLength": setting.max}
    return {"type": "integer", "minimum": setting.min, "maximum": setting.max}


def _rule_branch(spec: CapabilitySpec, model: ModelSpec, rule) -> Optional[dict]:
    """A binding rule between settings (and duration) as an if/then branch; None when it needs more
    (sizes, frames) than a plain schema says."""
    def where(name: str) -> Optional[str]:
        if name == "duration":
            return "duration"
        try:
            setting = spec.setting(name)
        except KeyError:
            return None
        return setting_wire(model, setting) if model.supports(name) else None

    def test(name: str, listed) -> Optional[dict]:
        path = where(name)
        if path is None or any(v is False for v in listed):
            return None
        leaf: dict = {} if SET in listed else {"enum": list(listed)}
        node = _nest(path, leaf)
        node["required"] = [path.split(".")[0]]
        return _required_along(node, path)

    conditions = [test(n, v) for n, v in rule.when.items()]
    if not conditions or any(c is None for c in conditions):
        return None
    outcomes = []
    for name, listed in rule.allow.items():
        path = where(name)
        if path is None or SET in listed:
            return None
        outcomes.append(_nest(path, {"enum": list(listed)}))
    for name, listed in rule.forbid.items():
        path = where(name)
        if path is None:
            return None
        refused = test(name, listed)
        if refused is None:
            return None
        outcomes.append({"not": refused})
    if not outcomes:
        return None
    return {"if": {"allOf": conditions}, "then": {"allOf": outcomes}}


def _required_along(node: dict, path: str) -> dict:
    """Mark each level of `path` required in the nested `node` (a condition holds only when it is sent)."""
    cursor = node
    for part in path.split("."):
        cursor["required"] = [part]
        cursor = cursor["properties"][part]
    return node


def request_schema(spec: CapabilitySpec, model: ModelSpec) -> dict:
    """The request schema the emulator serves for `model`, built from the spec."""
    props: dict[str, Any] = {
        "taskType": {"const": "videoInference"}, "taskUUID": {"type": "string"},
        "model": {"const": model.air},
        "seed": {"type": "integer", "minimum": spec.seed.min, "maximum": spec.seed.max},
    }
    for name, wire in spec.prompt_fields.items():
        if name in spec.text_limits and "." not in wire:
            limit = spec.text_limits[name]
            props[wire] = {"type": "string", "minLength": limit.min, "maxLength": limit.max}
    if model.durations is not None:
        d = model.durations
        props["duration"] = ({"enum": list(d.values)} if d.values is not None
                             else {"type": "integer", "minimum": d.min, "maximum": d.max})
    if model.sizes:
        props["resolution"] = {"enum": list(model.resolutions)}
        props["width"] = {"enum": sorted({w for w, _ in model.all_sizes()})}
        props["height"] = {"enum": sorted({h for _, h in model.all_sizes()})}
    if model.fps is not None:
        props["fps"] = {"enum": list(model.fps.all)}
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object",
                              "properties": props, "required": ["taskType", "model"]}
    if model.settings_at:
        settings = {s.wire: _setting_schema(s) for s in spec.settings_of(model)}
        leaf = {"type": "object", "properties": settings, "additionalProperties": False}
        head, _, rest = model.settings_at.partition(".")
        props[head] = _nest(rest, leaf) if rest else leaf
    branches = [b for r in spec.rules_for(model) if r.refuses and r.binding
                for b in [_rule_branch(spec, model, r)] if b is not None]
    if branches:
        schema["allOf"] = branches
    return schema


class SchemaService:
    """What the emulator's schema routes serve; safe to change from any thread."""

    def __init__(self, spec: CapabilitySpec):
        self._described = spec
        self._lock = threading.Lock()
        self.extra: dict[str, Optional[dict]] = {}    # AIR → its schema (None: derived from its family)
        self.schemas: dict[str, dict] = {}             # AIR → the schema served instead of the spec's
        self.errors: dict[str, int] = {}               # AIR or "registry.json" → HTTP status served
        self.requests: list[dict[str, Any]] = []       # {"path", "headers"} of every schema request

    # -- being told ------------------------------------------------------------------------------

    def configure(self, *, extra: Optional[dict] = None, schemas: Optional[dict] = None,
                  errors: Optional[dict] = None) -> None:
        """Add to what is served (see the module's docstring)."""
        with self._lock:
            self.extra.update(extra or {})
            self.schemas.update(schemas or {})
            self.errors.update({k: int(v) for k, v in (errors or {}).items()})

    def reset(self) -> None:
        with self._lock:
            self.extra.clear()
            self.schemas.clear()
            self.errors.clear()
            self.requests.clear()

    def described(self) -> dict:
        with self._lock:
            return {"extra": dict(self.extra), "schemas": dict(self.schemas), "errors": dict(self.errors)}

    # -- what is served --------------------------------------------------------------------------

    def spec(self) -> CapabilitySpec:
        """The spec with the extra models (so the emulator can validate and render their tasks)."""
        with self._lock:
            extra = dict(self.extra)
        models = [derive_model(self._described, air, schema or None) for air, schema in extra.items()]
        return self._described.with_models(tuple(m for m in models if m is not None))

    def registry(self) -> tuple[int, Optional[dict], str]:
        """(status, body, etag)."""
        with self._lock:
            status = self.errors.get("registry.json")
            extra = list(self.extra)
        if status:
            return status, None, ""
        models = {m.air: {"taskType": "videoInference", "id": _slug(m)} for m in self._described.models}
        models.update({air: {"taskType": "videoInference", "id": air.replace(":", "-").replace("@", "-")}
                       for air in extra})
        body = {"version": REGISTRY_VERSION, "models": models, "architectureTaskTypes": {},
                "modalityTaskTypes": {}}
        etag = '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16] + '"'
        return 200, body, etag

    def served_schema(self, air: str) -> tuple[int, Optional[dict]]:
        """(status, requestSchema) for `air`: 404 for a model not served."""
        with self._lock:
            status = self.errors.get(air)
            override = self.schemas.get(air)
            extra = air in self.extra
            extra_schema = self.extra.get(air)
        if status:
            return status, None
        if override is not None:
            return 200, override
        if extra and extra_schema:
            return 200, extra_schema
        spec = self.spec()
        try:
            model = spec.model(air)
        except KeyError:
            return 404, None
        return 200, request_schema(spec, model)

    def judged_by_override(self, air: str) -> bool:
        """Whether `air`'s schema was set by hand (then it alone decides over the spec's rules)."""
        with self._lock:
            return air in self.schemas or bool(self.extra.get(air))

    def resolve(self, air: str) -> tuple[int, Optional[dict], str]:
        status, schema = self.served_schema(air)
        if schema is None:
            return status, None, ""
        body = {"requestSchema": schema, "responseSchema": {}, "documentation": DOCS.format(slug=air)}
        etag = '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16] + '"'
        return status, body, etag

    def record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append({"path": path, "headers": dict(headers)})
