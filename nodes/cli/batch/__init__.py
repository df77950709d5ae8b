"""`python -m nodes batch FILE`: many jobs from a file, several at once, through generate's own code.

    python -m nodes batch jobs.jsonl --jobs 8 --out videos --max-cost 20

- Every row is checked first (jobfile.py: generate's parser, then the CLI's `build_job`): a
  bad row is reported with its line number and generate's message, and nothing of it is uploaded.
- Then `--jobs` rows run at once on one event loop, one RunwareClient (one connection pool) and one
  job ledger, each through the pipeline exactly as `generate` runs it: the ledger reuses finished
  rows and resumes accepted-but-unfinished ones, so a re-run (after a kill too) never pays twice.
- Spending: the daily and per-prompt limits apply per row as in `generate`; `--max-cost` refuses the
  whole batch when its estimate is over it, and stops submitting when spent + running would pass it.
- Ctrl-C: no new task is submitted; waits end within a second and the accepted tasks stay in the
  ledger, resumed by the same command; exit 130.
- DIR/batch-results.jsonl and .csv (results.py), one row per input row, in input order.

Exit status: 0 every row done or reused; 1 any failed or refused; 2 a usage error (or no row valid);
130 interrupted.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Optional

from ...money.ledger import LEDGER_FILENAME


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="FILE",
                   help="JSON Lines (.jsonl) or CSV (.csv): one job per row, keys = generate's options with "
                        "underscores + workflow; file paths relative to FILE's folder")
    p.add_argument("--jobs", type=int, default=4, help="tasks at once (default 4)")
    p.add_argument("--out", type=Path, default=Path("pixverse-output"),
                   help="folder for the MP4s and batch-results.jsonl/.csv")
    p.add_argument("--max-cost", type=float, default=None, metavar="USD",
                   help="refuse the batch when its estimate is over this; stop submitting before spent + "
                        "running would pass it")
    p.add_argument("--ledger", type=Path, default=None,
                   help=f"job ledger file (default: <out>/{LEDGER_FILENAME}); re-running reuses and resumes")
    p.add_argument("--offline", action="store_true",
                   help="start the local Runware emulator in-process: no key, no charge")
    p.add_argument("--job-seconds", type=float, default=2.0, help="with --offline: how long a job takes")
    p.add_argument("--deadline", type=float, default=20 * 60, help="seconds to wait for each result")


def main(args: argparse.Namespace, *, base_url: Optional[str], api_key: Optional[str], endpoint: Optional[str],
         parser: argparse.ArgumentParser, build_job: Callable) -> int:
    """The batch command. `parser` and `build_job` are generate's (nodes/cli/main.py), passed in."""
    from .command import run  # lazy: the pipeline and httpx load only when a batch runs, not for --help

    return run(args, base_url=base_url, api_key=api_key, endpoint=endpoint, parser=parser, build_job=build_job)
