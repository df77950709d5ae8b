"""Requests: user choices → the Runware `videoInference` task JSON, checked before anything is sent.

Owns the task builders (`tasks`), the one draft request with stand-ins for uploads (`draft`), the request
layout choice and its fallback (`layouts`), and the node inputs as data (`widgets`).
No HTTP, no codecs, no ledger.

May import: spec, config, errors.
"""
