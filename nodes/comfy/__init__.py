"""The ComfyUI layer: node classes, routes, start-ahead, the key store, the web guard, the sample inputs.

Owns everything that runs inside ComfyUI. Only its modules `entry`, `nodes`, `runtime`, `routes`, `panel_routes`,
`posted`, `ahead`, `jobs` and `schema` import ComfyUI, and only once ComfyUI calls the pack's
`comfy_entrypoint`: importing this package imports nothing of ComfyUI, so its ComfyUI-free helpers
(`keystore`, `webguard`, `samples`, and `http`, what both route modules share) are usable and testable on
their own.

May import: job, workflows, requests, money, client, media, spec, config, errors.
"""
