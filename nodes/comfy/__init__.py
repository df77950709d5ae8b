"""ComfyUI entry: the only package here that imports ComfyUI."""
from __future__ import annotations

import logging

from comfy_api.latest import ComfyExtension, io

log = logging.getLogger("pixverse")


def place_samples() -> None:
    """The example workflows' inputs, written into ComfyUI's input folder where missing (never
    replacing a file). A failure here must not stop the nodes from loading."""
    try:
        import folder_paths

        from ..samples import write_samples

        for path in write_samples(folder_paths.get_input_directory()):
            log.info("PixVerse: wrote the sample input %s for the example workflows", path)
    except Exception:  # noqa: BLE001
        log.warning("PixVerse: could not write the example workflows' sample inputs", exc_info=True)


class PixVerseExtension(ComfyExtension):
    async def on_load(self) -> None:
        from . import routes

        routes.register()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        # ComfyUI 0.3.64 never calls on_load; register the routes here too (idempotent).
        from . import routes
        from .nodes import NODE_CLASSES

        routes.register()
        place_samples()

        return list(NODE_CLASSES)


async def comfy_entrypoint() -> PixVerseExtension:
    return PixVerseExtension()
