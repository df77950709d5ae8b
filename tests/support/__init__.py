"""The shared test harness (not tests themselves; conftest puts tests/ on sys.path, so `from support import …`).

- `comfy`: a real ComfyUI (COMFYUI_PATH) with the pack linked in, over HTTP; `ComfyPool` starts one server per
  kind per session (conftest's `comfy_pool`, `comfy_server`, `comfy`); `generator_values`, the one helper for a
  generator node's inputs.
- `jobs`: pipeline runs with a job ledger against the emulator, and the CLI in this process or as a process.
- `keysafety`: the session's sentinel key and artifacts folder, searched by test_zz_key_safety.
- `wire`: reads a recorded videoInference task in either request layout.
"""
