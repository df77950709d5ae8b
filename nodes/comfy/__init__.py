"""ComfyUI entry: the only package here that imports ComfyUI."""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io


class PixVerseExtension(ComfyExtension):
    async def on_load(self) -> None:
        from . import routes

        routes.register()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        # ComfyUI 0.3.64 never calls on_load; register the routes here too (idempotent).
        from . import routes
        from .nodes import NODE_CLASSES

        routes.register()

        return list(NODE_CLASSES)


async def comfy_entrypoint() -> PixVerseExtension:
    return PixVerseExtension()
