"""Runware's schema in a job (nodes/requests/schema.py): which spec the request is built with, and the
last check before anything is uploaded. The pipeline calls both; the ledger's folder keeps the copies."""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional, Sequence

from .. import errors as E
from ..requests import schema, schema_store
from ..requests.tasks import BuiltTask
from ..spec import CapabilitySpec, ModelSpec
from ..workflows.draft import PLACEHOLDER_REF
from .inputs import UploadInput, with_refs


async def judged_spec(spec: CapabilitySpec, ledger: Any, model_of: Callable[[CapabilitySpec], ModelSpec]) -> CapabilitySpec:
    """The spec a job's request is built with: where Runware's schema for its model (`model_of(spec)`, the
    workflow's choice) can be read, that schema decides and the spec's rules between choices only tell
    (nodes/requests/schema.py)."""
    schema_store.keep_beside(getattr(ledger, "path", None))
    try:
        model = model_of(spec)
    except E.PixVerseInputError:
        return spec  # the build refuses it, naming the input
    return schema.spec_for(spec, await asyncio.to_thread(schema.lookup, model.air))


async def judge_by_schema(built: BuiltTask, spec: CapabilitySpec, ledger: Any, notes: Optional[list[str]],
                          uploads: Sequence[UploadInput]) -> list[str]:
    """Runware's schema for the task's model judges it (uploads as stand-ins): a refusal raises before
    anything is uploaded; without a schema the returned notes say once that only the spec checked it."""
    schema_store.keep_beside(getattr(ledger, "path", None))
    task = with_refs(built.task, {up.ref: PLACEHOLDER_REF for up in uploads})
    verdict = await asyncio.to_thread(schema.check, task, built.model.air, spec=spec, overruled=built.overruled)
    verdict.raise_refusal()
    notes = list(notes or [])
    if verdict.note and verdict.note not in notes:
        notes.append(verdict.note)
    return notes
