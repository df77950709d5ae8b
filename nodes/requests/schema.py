"""Runware's own schema judges each request, and PixVerse models Runware adds appear (issue 24).

- `check(task, model_air)` → `Verdict`: the task (uploads still stand-ins) validated against the model's
  `requestSchema` from Runware's schema service (schema_store.py), with a Draft 2019-09 validator. A
  refusal is a PixVerseInputError naming the node input (nodes/spec/paths.py maps the request field back),
  the value and what the schema allows. When no schema can be had the verdict says so once (`note`) and
  the run goes ahead on the pack's spec, except for a model only the registry describes: that one refuses.
- `spec_for(spec, found)`: where the schema was read it decides, so the request is built with the spec's
  rules between choices told as notices (CapabilitySpec.judged_by_schema).
- `discover()`: `pixverse:*` models in Runware's registry that pixverse.json does not describe, each
  with the choices of the newest described model of its family narrowed by its schema's enum/const
  values, made part of `load_spec()` (nodes/spec `set_discovered`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from jsonschema import Draft201909Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from ..errors import PixVerseInputError
from ..spec import CapabilitySpec, IntChoice, ModelSpec, load_spec, set_discovered
from ..spec.paths import input_of_parameter
from .schema_store import Document, SchemaStore, default_store

SPEC_ONLY = "checked by the pack's spec only"
# Request fields the spec's paths do not name (fixed fields of a videoInference task) → the node input.
CORE_INPUTS = {"duration": "duration", "resolution": "resolution", "width": "resolution / aspect_ratio",
               "height": "resolution / aspect_ratio", "fps": "fps", "seed": "seed", "model": "model"}
# AIR family (the part before "@") → what its models do; a family's new models take its newest model's inputs.
FAMILY_PATTERN = re.compile(r"^(pixverse:[a-z0-9]+)@(\d+)(.*)$")


@dataclass(frozen=True)
class Found:
    """Runware's request schema for one model, or why there is none."""

    air: str
    schema: Optional[dict]
    why: str = ""
    origin: str = ""  # SchemaStore's Document.origin

    @property
    def readable(self) -> bool:
        return self.schema is not None


@dataclass(frozen=True)
class Verdict:
    """What Runware's schema says about one task. `checked`: the schema was read and applied.
    `refusal`: raise it (before any upload). `note`: tell it once (no schema: only the spec checked)."""

    air: str
    checked: bool
    refusal: Optional[PixVerseInputError] = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.refusal is None

    def raise_refusal(self) -> None:
        if self.refusal is not None:
            raise self.refusal


def lookup(air: str, store: Optional[SchemaStore] = None, *, kept_only: bool = False) -> Found:
    """The model's requestSchema from the schema service (or its kept copy), checked to compile."""
    store = store or default_store()
    doc: Document = store.resolve(air, kept_only=kept_only)
    if doc.body is None:
        return Found(air, None, doc.why or "no answer")
    schema = doc.body.get("requestSchema")
    if not isinstance(schema, dict):
        return Found(air, None, "its answer has no requestSchema")
    why = _compile_problem(air, schema)
    return Found(air, None, why) if why else Found(air, schema, origin=doc.origin)


_checked: dict[str, tuple[dict, str]] = {}  # AIR → (the schema last checked, why it does not compile or "")


def _compile_problem(air: str, schema: dict) -> str:
    """Why `schema` is not a Draft 2019-09 schema ("" when it is); remembered while the store hands out the
    same schema object (it does until the kept copy changes)."""
    seen = _checked.get(air)
    if seen is not None and seen[0] is schema:
        return seen[1]
    try:
        Draft201909Validator.check_schema(schema)
        why = ""
    except SchemaError as exc:
        why = f"it does not compile: {exc.message}"
    _checked[air] = (schema, why)
    return why


def spec_for(spec: CapabilitySpec, found: Optional[Found]) -> CapabilitySpec:
    """The spec a request is built with: where Runware's schema was read, its rules only tell."""
    return spec.judged_by_schema() if found is not None and found.readable else spec


def spec_only_note(air: str, why: str) -> str:
    return f"{SPEC_ONLY}: Runware's schema for {air} could not be read ({why})"


def check(task: Mapping[str, Any], model_air: str, *, spec: Optional[CapabilitySpec] = None,
          store: Optional[SchemaStore] = None, found: Optional[Found] = None,
          overruled: Optional[Mapping[str, str]] = None) -> Verdict:
    """Validate `task` (a videoInference task, uploads as stand-ins) against Runware's schema for
    `model_air`. `found`: the lookup already made (else it is made here). `overruled`: the spec's rules
    told instead of refusing (BuiltTask.overruled), whose reason a refusal of the same input repeats."""
    spec = spec or load_spec()
    found = found or lookup(model_air, store)
    if not found.readable:
        note = spec_only_note(model_air, found.why)
        return Verdict(model_air, False, _unknown_without_schema(spec, model_air, found.why), note)
    failure = first_failure(found.schema, task)
    if failure is None:
        return Verdict(model_air, True)
    return Verdict(model_air, True, _refusal(spec, model_air, failure, overruled or {}))


def _unknown_without_schema(spec: CapabilitySpec, air: str, why: str) -> Optional[PixVerseInputError]:
    try:
        model = spec.model(air)
    except KeyError:
        model = None
    if model is not None and not model.new_on_runware:
        return None
    described = [m.air for m in spec.models if not m.new_on_runware]
    return PixVerseInputError(
        "model", air, described,
        f"{air} is new on Runware and the pack knows its choices only from Runware's schema, which could not "
        f"be read ({why}); nothing was uploaded or charged. Choose a model the pack describes, or try again later")


# -- a schema error → the node input, the value, what is allowed ------------------------------------

def _wire(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed(err: ValidationError) -> tuple[Any, str]:
    """(allowed, in words) for one failed keyword."""
    kind, limit = err.validator, err.validator_value
    if kind == "enum":
        return list(limit), "not one of the values it lists"
    if kind == "const":
        return [limit], "only this value is allowed here"
    words = {"minimum": f"at least {limit}", "maximum": f"at most {limit}",
             "exclusiveMinimum": f"more than {limit}", "exclusiveMaximum": f"less than {limit}",
             "minLength": f"at least {limit} characters", "maxLength": f"at most {limit} characters",
             "minItems": f"at least {limit} items", "maxItems": f"at most {limit} items",
             "type": f"a value of type {limit}", "multipleOf": f"a multiple of {limit}",
             "pattern": f"text matching {limit}"}
    if kind in words:
        return words[kind], f"must be {words[kind]}"
    return None, err.message


@dataclass(frozen=True)
class Failure:
    """The most relevant thing a schema refuses in a task: the request field (dotted, with [i]), its
    value (None when missing), what is allowed and the reason in words."""

    wire: str
    value: Any
    allowed: Any
    words: str


def first_failure(schema: Mapping[str, Any], task: Mapping[str, Any]) -> Optional[Failure]:
    """What `schema` (Draft 2019-09) refuses in `task`, or None when it accepts it."""
    errors = list(Draft201909Validator(schema).iter_errors(dict(task)))
    if not errors:
        return None
    err = best_match(errors)
    path = list(err.absolute_path)
    value: Any = err.instance
    if err.validator == "required" and isinstance(err.instance, Mapping):
        missing = [p for p in err.validator_value if p not in err.instance]
        path, value = path + missing[:1], None
        allowed, words = "a value", "required"
    elif err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
        known = set(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in known]
        path, value = path + extra[:1], err.instance.get(extra[0]) if extra else None
        allowed, words = sorted(known) or "nothing", "not a field this model takes (leave it unset)"
    elif err.validator == "dependentRequired" and isinstance(err.instance, Mapping):
        pairs = [(k, d) for k, deps in err.validator_value.items() if k in err.instance
                 for d in deps if d not in err.instance]
        key, dep = pairs[0] if pairs else (None, None)
        path, value = path + ([dep] if dep else []), None
        allowed, words = "a value", f"needed together with {key}" if key else err.message
    elif err.validator == "not" or err.schema is False:
        allowed, words = "leave it unset", "not allowed together with the other choices"
    else:
        allowed, words = _allowed(err)
    return Failure(_wire(path), value, allowed, words)


def _refusal(spec: CapabilitySpec, air: str, failure: Failure, overruled: Mapping[str, str]) -> PixVerseInputError:
    wire = failure.wire
    name = input_of_parameter(spec, wire) or CORE_INPUTS.get(wire.split("[")[0].split(".")[0]) or wire or "request"
    also = f" (the pack's spec says so too: {overruled[name]})" if name in overruled else ""
    return PixVerseInputError(name, failure.value, failure.allowed, f"Runware's schema for {air}: {failure.words}"
                              f"{also}; nothing was uploaded or charged", wire_name=wire or None)


# -- models Runware's registry adds -----------------------------------------------------------------

@dataclass
class Discovery:
    """What the registry read found: the new models (also in `load_spec()` now), and how it was read."""

    models: tuple[ModelSpec, ...] = ()
    why: str = ""      # why the registry could not be read (then nothing new is offered)
    origin: str = ""   # Document.origin
    schemas: dict[str, Found] = field(default_factory=dict)


def family_of(air: str) -> Optional[tuple[str, int, str]]:
    """("pixverse:1", 9, "") for "pixverse:1@9"; None for an AIR outside PixVerse's families."""
    match = FAMILY_PATTERN.match(air)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None


def newest_described(spec: CapabilitySpec, air: str) -> Optional[ModelSpec]:
    """The newest model pixverse.json describes in `air`'s family (a plain version before a variant)."""
    family = family_of(air)
    if family is None:
        return None
    described = [(family_of(m.air), m) for m in spec.models if not m.new_on_runware]
    same = [(f, m) for f, m in described if f is not None and f[0] == family[0]]
    if not same:
        return None
    return max(same, key=lambda fm: (fm[0][1], fm[0][2] == ""))[1]


def _props(schema: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    node: Any = schema
    for part in [p for p in path.split(".") if p]:
        node = node.get("properties", {}).get(part, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _listed(prop: Mapping[str, Any]) -> Optional[list]:
    if "enum" in prop and isinstance(prop["enum"], list):
        return prop["enum"]
    if "const" in prop:
        return [prop["const"]]
    return None


def derive_model(spec: CapabilitySpec, air: str, schema: Optional[Mapping[str, Any]]) -> Optional[ModelSpec]:
    """A ModelSpec for a model only the registry names: the newest described model of its family with
    this AIR, narrowed where `schema` lists values (durations, resolutions, which settings it takes)."""
    base = newest_described(spec, air)
    if base is None:
        return None
    data = base.model_dump()
    data.update(key=air, name=air, air=air, new_on_runware=True,
                source=f"Runware's registry; the choices of {base.name} ({base.air}), narrowed by its schema")
    if schema:
        duration = _props(schema, "duration")
        listed = _listed(duration)
        if base.durations is not None and listed and all(isinstance(v, int) for v in listed):
            default = base.durations.default if base.durations.default in listed else listed[0]
            data["durations"] = IntChoice(values=tuple(listed), default=default)
        elif base.durations is not None and isinstance(duration.get("minimum"), int) \
                and isinstance(duration.get("maximum"), int):
            lo, hi = duration["minimum"], duration["maximum"]
            data["durations"] = IntChoice(min=lo, max=hi, default=min(max(base.durations.default, lo), hi))
        tiers = _listed(_props(schema, "resolution"))
        if tiers and base.sizes and set(tiers) & set(base.sizes):
            data["sizes"] = {t: row for t, row in base.sizes.items() if t in tiers}
            if data["resolution_default"] not in data["sizes"]:
                data["resolution_default"] = next(iter(data["sizes"]))
        settings_props = _props(schema, base.settings_at).get("properties") if base.settings_at else None
        if isinstance(settings_props, Mapping) and base.settings:
            data["settings"] = tuple(s.input for s in spec.settings_of(base)
                                     if s.wire.split(".")[0] in settings_props)
    return ModelSpec.model_validate(data)


def discover(store: Optional[SchemaStore] = None, *, refresh: bool = False, kept_only: bool = False,
             spec: Optional[CapabilitySpec] = None) -> Discovery:
    """Read Runware's registry (`refresh`: now, whatever the kept copy's age; `kept_only`: the copy on
    disk, nothing fetched) and make every `pixverse:*` model pixverse.json does not describe part of
    `load_spec()`. When the registry was not read fresh, the models' schemas come from kept copies only."""
    store = store or default_store()
    described = spec or load_spec(described_only=True)
    doc = store.kept_registry() if kept_only else store.registry(refresh=refresh)
    if doc.body is None:
        set_discovered(())
        return Discovery(why=doc.why)
    entries = doc.body.get("models")
    entries = entries if isinstance(entries, Mapping) else {}
    known = {m.air for m in described.models}
    offline = kept_only or doc.origin == "kept copy"
    found: dict[str, Found] = {}
    models = []
    for air, entry in sorted(entries.items()):
        task_type = entry.get("taskType") if isinstance(entry, Mapping) else None
        if not air.startswith("pixverse:") or air in known or task_type not in (None, "videoInference"):
            continue
        found[air] = lookup(air, store, kept_only=offline)
        model = derive_model(described, air, found[air].schema)
        if model is not None:
            models.append(model)
    set_discovered(tuple(models))
    return Discovery(tuple(models), doc.why, doc.origin, found)
