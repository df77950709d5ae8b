"""Requests: user choices → the Runware `videoInference` task JSON, checked before anything is sent.

Owns the task builders (`tasks`), the one draft request with stand-ins for uploads (`draft`), the request
layout choice and its fallback (`layouts`), and the node inputs as data (`widgets`). May import `spec`,
`config` and `errors` only: no HTTP, no codecs, no ledger; `draft` alone also reads the workflow table
(`workflows`, which sits on `tasks` and `widgets`).
"""
