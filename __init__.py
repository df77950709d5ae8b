"""ComfyUI-PixVerse-Runware: PixVerse video models in ComfyUI, through Runware's API.

ComfyUI imports this file and awaits `comfy_entrypoint`; only then is anything of ComfyUI imported
(nodes/comfy/entry.py). Outside ComfyUI (tests, the CLI) it imports cleanly and offers nothing more.
"""
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    """ComfyUI's V3 entry point: the pack's extension (nodes, routes, hooks)."""
    if not __package__:  # imported as a lone file (pytest does so when the clone's folder name is no identifier)
        raise RuntimeError("comfy_entrypoint needs the pack imported as a package")
    from .nodes.comfy.entry import comfy_entrypoint as entry  # imports ComfyUI: only now, inside ComfyUI
    return await entry()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
