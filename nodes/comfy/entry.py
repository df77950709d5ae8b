"""ComfyUI's entry point: the extension, its start-up (routes, on-prompt hooks, orphaned paid tasks) and
the sample inputs. Imported only when ComfyUI calls the pack's `comfy_entrypoint`."""
from __future__ import annotations

import logging
import threading
import time

import folder_paths
from comfy_api.latest import ComfyExtension, io
from server import PromptServer

from .samples import write_samples
from ..requests import schema, schema_store
from ..spec import load_spec
from . import ahead, posted, routes, runtime
from .nodes import NODE_CLASSES

log = logging.getLogger("pixverse")


def place_samples() -> None:
    """The example workflows' inputs, written into ComfyUI's input folder where missing (never
    replacing a file). A failure here must not stop the nodes from loading."""
    try:
        for path in write_samples(folder_paths.get_input_directory()):
            log.info("PixVerse: wrote the sample input %s for the example workflows", path)
    except Exception:  # noqa: BLE001
        log.warning("PixVerse: could not write the example workflows' sample inputs", exc_info=True)


def read_registry() -> None:
    """Runware's model registry at start (at most ~3 s, else the copy kept beside the ledger): PixVerse
    models the spec does not describe join the model dropdowns of their family's nodes. A failure here
    must not stop the nodes from loading."""
    try:
        schema_store.keep_beside(runtime.ledger_path())
        found = schema.discover()
    except Exception:  # noqa: BLE001
        log.warning("PixVerse: could not read Runware's model registry", exc_info=True)
        return
    if found.why and not found.models:
        log.info("PixVerse: Runware's model registry could not be read (%s); the pack's own models are offered",
                 found.why)
    for model in found.models:
        log.info("PixVerse: %s is offered (%s)", model.label, model.source)


REFRESH_S = 60.0  # how often the background thread asks for each model's schema (a fresh copy: no request)


def keep_schemas_fresh() -> threading.Thread:
    """A daemon thread that reads each model's schema now and about every minute after, off ComfyUI's event
    loop (each read waits ≤ 3 s; a copy younger than 5 minutes is used without asking): the queue-time check
    and the estimate route read only kept copies (nodes/workflows/draft.py `fetch=False`), so they never wait
    on the network."""
    def refresh() -> None:
        while True:
            try:
                for model in load_spec().models:
                    schema.lookup(model.air)
            except Exception:  # noqa: BLE001 - a failure is retried at the next pass; runs go ahead on the spec
                log.debug("PixVerse: reading Runware's schemas failed", exc_info=True)
            time.sleep(REFRESH_S)
    thread = threading.Thread(target=refresh, name="pixverse-schemas", daemon=True)
    thread.start()
    return thread


_started = False


def start() -> None:
    """Once per process: the routes, the on-prompt hooks (the queue-time check reads the posted prompt;
    queued prompts may start early) and the paid tasks an earlier run left unfinished."""
    global _started
    if _started:
        return
    read_registry()  # before the nodes describe their inputs
    keep_schemas_fresh()
    routes.register()
    PromptServer.instance.add_on_prompt_handler(posted.on_prompt)
    PromptServer.instance.add_on_prompt_handler(ahead.STARTER.on_prompt)
    runtime.follow_orphans_at_start()
    _started = True


class PixVerseExtension(ComfyExtension):
    async def on_load(self) -> None:
        start()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        start()  # ComfyUI 0.3.64 never calls on_load: here too (once)
        place_samples()
        return list(NODE_CLASSES)


async def comfy_entrypoint() -> PixVerseExtension:
    return PixVerseExtension()
