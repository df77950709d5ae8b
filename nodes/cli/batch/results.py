"""The batch command's output: the results table (JSON Lines + CSV, rewritten atomically) and progress.

Progress is a tqdm bar on a terminal (tqdm ships with ComfyUI; imported only then), else one line
per finished job on stdout.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from ...money.pricing import usd
from .jobfile import Row

RESULTS_NAME = "batch-results"
COLUMNS = ("line", "status", "taskUUID", "file", "cost", "seconds", "made_by", "error")
# A finished job rewrites the table at most every WRITE_EVERY_S, and never more than a tenth of the time
# (10,000 rows take about half a second to write), plus once more at the end.
WRITE_EVERY_S = 0.5
WRITE_SHARE = 0.1


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # readers see the old table or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsTable:
    """DIR/batch-results.jsonl and .csv: one row per input row, in input order."""

    def __init__(self, out_dir: Path, rows: list[Row]):
        self.rows = rows
        self.jsonl = Path(out_dir) / f"{RESULTS_NAME}.jsonl"
        self.csv = Path(out_dir) / f"{RESULTS_NAME}.csv"
        self._written = -1e9
        self._pause = WRITE_EVERY_S

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self._pause:
            return
        results = [row.result() for row in self.rows]
        self._replace(self.jsonl, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results), force)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in results)
        self._replace(self.csv, buf.getvalue(), force)
        self._written = time.monotonic()
        self._pause = max(WRITE_EVERY_S, (self._written - now) / WRITE_SHARE)

    @staticmethod
    def _replace(path: Path, text: str, final: bool) -> None:
        """Windows cannot replace a file another program holds open (Excel locks a CSV it shows): the old
        table stays and the next write tries again; the final table then goes beside it, under a new name."""
        try:
            _atomic_write(path, text)
        except PermissionError as exc:
            if not final:
                return
            beside = path.with_name(f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
            _atomic_write(beside, text)
            print(f"{path} could not be replaced ({exc.strerror or exc}; is it open in another program?): "
                  f"the final table is {beside}", file=sys.stderr)


class Progress:
    """Counts, spend so far and an ETA; a tqdm bar on a terminal, else a line per finished job."""

    def __init__(self, total: int, jobs: int, bar: Optional[bool] = None):
        self.total, self.jobs = total, jobs
        self.counts = {"done": 0, "reused": 0, "failed": 0, "refused": 0}
        self.running = 0
        self.spent = 0.0  # what this run paid: its own tasks ("done" rows), each once; nothing on a dry run
        self.dry_run = False  # the endpoint said it bills nothing: then nothing is spent
        self._paid: set[str] = set()
        self.started = time.monotonic()
        self.run_seconds: list[float] = []  # rows that ran a task here (not reused): their lengths
        self._bar = None
        if bar if bar is not None else sys.stdout.isatty():
            try:
                from tqdm import tqdm  # lazy: only for a terminal; ComfyUI ships it, the CLI does without
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, unit="job", dynamic_ncols=True, file=sys.stderr)

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def eta(self) -> Optional[float]:
        left = self.total - self.finished
        if not left:
            return 0.0
        if not self.run_seconds:
            return None
        waves = -(-left // max(1, self.jobs))  # rounds of --jobs at once still to go
        return waves * sorted(self.run_seconds)[len(self.run_seconds) // 2]

    def summary(self) -> str:
        eta = self.eta()
        c = self.counts
        return (f"{c['done']} done, {c['reused']} reused, {c['failed']} failed, {c['refused']} refused, "
                f"{self.running} running; {self.spent_text()}; "
                f"ETA {'?' if eta is None else f'{eta:.0f} s'}")

    def spent_text(self) -> str:
        """"spent $x" (this run's own tasks), or on a dry run what `generate` says: billed nothing."""
        if self.dry_run:
            return f"billed: nothing (a dry run: the endpoint bills nothing; its made-up cost {usd(self.spent)})"
        return f"spent {usd(self.spent)}"

    def started_one(self) -> None:
        self.running += 1
        self._refresh()

    def finished_one(self, row: Row, ran: bool) -> None:
        self.running -= 1 if ran else 0
        self.counts[row.status] = self.counts.get(row.status, 0) + 1
        self.dry_run = self.dry_run or row.dry_run
        if row.status == "done" and row.cost and row.task_uuid not in self._paid:
            self._paid.add(row.task_uuid)  # two identical rows follow one task: paid once
            self.spent += row.cost
        if row.status in ("done", "failed") and row.seconds is not None:
            self.run_seconds.append(row.seconds)
        if self._bar is not None:
            self._bar.update(1)
            self._refresh()
            return
        what = row.error if row.status in ("failed", "refused") else row.file
        if row.made_by:
            what += f" (made by {row.made_by}; not paid by this run)"
        cost = f" {usd(row.cost)}" if row.cost is not None else ""
        secs = f" {row.seconds:.1f} s" if row.seconds is not None else ""
        print(f"line {row.line}: {row.status}{secs}{cost} {row.task_uuid or '-'} {what} "
              f"[{self.finished}/{self.total}: {self.summary()}]", flush=True)

    def _refresh(self) -> None:
        if self._bar is not None:
            c = self.counts
            self._bar.set_postfix_str(f"done {c['done'] + c['reused']} run {self.running} "
                                      f"fail {c['failed'] + c['refused']} "
                                      f"{'dry run' if self.dry_run else usd(self.spent)}", refresh=True)

    def say(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
