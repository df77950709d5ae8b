"""One job end to end: claim under the limits, encode and upload inputs, submit, poll, download, decode.

Owns the pipeline (`pipeline`), the checks made before anything is paid (`preflight`), the inputs'
encoding and uploads (`inputs`), ledger claims alone or as a group (`claims`), the submit that is sent
again only when Runware provably never made the task (`resubmit`), delivery of a finished video
(`delivery`), errors after acceptance (`aftercare`) and paid tasks followed in the background
(`followup`).

May import: requests, money, client, media, spec, config, errors.
"""
