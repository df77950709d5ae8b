"""`python -m nodes`: the command line (nodes/cli/main.py).

May import: cli.
"""
import sys

from .cli.main import main

sys.exit(main())
