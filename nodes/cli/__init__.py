"""The command line (`python -m nodes`): generate, batch, recover, options, spend, balance.

Owns the argument parsing and the batch command (`batch/`); every job goes through the same pipeline as
the nodes.

May import: job, requests, money, client, media, spec, config, errors, emulator (for --offline).
"""
