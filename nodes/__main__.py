"""`python -m nodes`: the command line (nodes/cli/main.py).

May import: cli.
"""
import sys

from .cli.main import main

# Windows writes a redirected stdout/stderr in the locale's code page (cp1252 …), which has no ×, →
# or ≤: such a character would end the command with UnicodeEncodeError. It prints as "?" instead.
for _stream in (sys.stdout, sys.stderr):
    if "utf" not in (getattr(_stream, "encoding", None) or "utf").lower() and hasattr(_stream, "reconfigure"):
        _stream.reconfigure(errors="replace")

sys.exit(main())
