"""ComfyUI-PixVerse-Runware: PixVerse video models in ComfyUI, through Runware's API.

ComfyUI imports this file. Outside ComfyUI (tests, the CLI) it imports cleanly and offers nothing.
"""
WEB_DIRECTORY = "./web"
_COMFY_MODULES = ("comfy_api", "comfy", "folder_paths", "server", "comfy_execution")

if not __package__:  # imported as a lone file (pytest does so when the clone's folder name is no identifier)
    comfy_entrypoint = None
else:
    try:
        from .nodes.comfy import comfy_entrypoint  # noqa: F401  (ComfyUI looks for this name)
    except ModuleNotFoundError as exc:  # no ComfyUI here: the core under nodes/ still works on its own
        if (exc.name or "").split(".")[0] not in _COMFY_MODULES:
            raise
        comfy_entrypoint = None

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
