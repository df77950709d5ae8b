"""Money: the job ledger, prices and estimates, spending limits, the Runware balance and its floor.

Owns what was paid (`ledger`: nothing paid is lost or paid twice), what a run costs (`pricing`), what
the user allows (`limits`) and the account's balance (`balance`).
It never imports `job`, `requests` or the front ends.

May import: client, spec, config, errors.
"""
