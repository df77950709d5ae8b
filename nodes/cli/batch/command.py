"""Running the checked rows of a job file: the batch command behind `python -m nodes batch` (see __init__)."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from typing import Callable, Optional
from uuid import uuid4

from ...config import ALLOW_UNKNOWN_COST, Config
from ...config import load as load_config
from ...money import pricing
from ...job import pipeline, provenance
from ...client import RunwareClient
from ...client.window import WAIT_PREFIX
from ...errors import PixVerseBudgetError, PixVerseError, RunwareInterrupted
from ...money.ledger import HOST, LEDGER_FILENAME, SUBMITTED, SUBMITTING, SUCCEEDED, Ledger
from .jobfile import FileError, Row, check_rows, read_rows
from .results import Progress, ResultsTable

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def run(args: argparse.Namespace, *, base_url: Optional[str], api_key: Optional[str], endpoint: Optional[str],
         parser: argparse.ArgumentParser, build_job: Callable) -> int:
    """Check every row, estimate, run; the exit status. `parser` and `build_job` are generate's."""
    try:
        if args.jobs < 1:
            raise PixVerseError(f"--jobs {args.jobs}: at least 1")
        if args.max_cost is not None and not args.max_cost >= 0:
            raise PixVerseError(f"--max-cost {args.max_cost}: a number of US dollars, 0 or more")
        rows = read_rows(args.file)
        config = load_config()  # the environment, read once; a value not allowed is a usage error, before any work
    except (FileError, PixVerseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    check_rows(rows, args.file.resolve().parent, parser, build_job)
    for row in rows:
        if not row.ok:
            print(f"line {row.line}: {row.error}", file=sys.stderr)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(args.ledger if args.ledger is not None else args.out / LEDGER_FILENAME)
    except (OSError, sqlite3.Error) as exc:
        print(f"error: cannot open the output folder or job ledger: {exc}", file=sys.stderr)
        return EXIT_USAGE
    table = ResultsTable(args.out, rows)
    try:
        return _checked(args, rows, table, ledger, base_url, api_key, endpoint, config)
    finally:
        ledger.close()


def _checked(args, rows: list[Row], table: ResultsTable, ledger: Ledger, base_url, api_key, endpoint,
             config: Config) -> int:
    good = [row for row in rows if row.ok]
    print(f"batch: {len(rows)} rows ({len(rows) - len(good)} refused), --jobs {args.jobs}, ledger: {ledger.path}",
          file=sys.stderr, flush=True)
    if not good:
        table.write(force=True)
        print("error: no row can run; nothing was uploaded or submitted", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = RunwareClient(api_key=api_key, base_url=base_url)
    except PixVerseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    endpoint = endpoint or client.base_url
    refusal = _estimate(good, ledger, endpoint, args.max_cost, config.allow_unknown_cost)
    if refusal:
        for row in good:
            row.status, row.error = "refused", refusal
        table.write(force=True)
        print(f"error: {refusal}", file=sys.stderr)
        return EXIT_SOME_FAILED
    batch = Batch(args, rows, table, ledger, client, endpoint, config)
    code = asyncio.run(batch.run_all())
    return code


def _estimate(rows: list[Row], ledger: Ledger, endpoint: str, max_cost: Optional[float],
              allow_unknown: bool) -> str:
    """Each row's expected cost (pricing.estimate: free when the ledger holds it, else history, else a
    documented price); the refusal text when the batch is over --max-cost, else ""."""
    for row in rows:
        _estimate_row(row, ledger, endpoint)
    unknown = [row.line for row in rows if row.estimate.cost is None]
    total = sum(row.estimate.cost or 0.0 for row in rows)
    print(f"estimate: {pricing.usd(total)} for {len(rows) - len(unknown)} rows"
          + (f" (+ {len(unknown)} of unknown cost)" if unknown else ""), file=sys.stderr, flush=True)
    if max_cost is None:
        return ""
    if unknown and not allow_unknown:
        shown = ", ".join(map(str, unknown[:10])) + (" …" if len(unknown) > 10 else "")
        return (f"--max-cost {pricing.usd(max_cost)}: the cost of {len(unknown)} row(s) is unknown (no run of that "
                f"kind in the job ledger, no documented price; lines {shown}), so the batch was refused; nothing "
                f"was uploaded or submitted. Set {ALLOW_UNKNOWN_COST.env}=1 to count them as free")
    if total > max_cost + 1e-9:
        return (f"--max-cost {pricing.usd(max_cost)}: this batch is expected to cost {pricing.usd(total)}, over the "
                f"limit, so it was refused; nothing was uploaded or submitted. Raise --max-cost or run fewer rows")
    return ""


def _estimate_row(row: Row, ledger: Ledger, endpoint: str) -> None:
    # exact when nothing stands in: an upload's stand-in is not its fingerprint
    row.estimate = pricing.estimate(row.draft.task, ledger=ledger, endpoint=endpoint, exact=row.draft.exact,
                                    identity=row.draft.built.identity)


class Batch:
    """The rows that passed the checks, run `--jobs` at a time on one client and one ledger."""

    def __init__(self, args, rows: list[Row], table: ResultsTable, ledger: Ledger, client: RunwareClient,
                 endpoint: str, config: Config):
        self.args, self.rows, self.table, self.ledger, self.client = args, rows, table, ledger, client
        self.config = config
        self.endpoint = endpoint
        self.stopping = False
        self.reserved = 0.0  # the estimates of rows running now
        self.waiting = ""  # the last "waiting for a free slot at Runware (n running)" said
        self.unknown_running = 0  # rows of unknown cost running now (under --max-cost: at most one)
        self.progress = Progress(len(rows), args.jobs)
        for row in rows:
            if not row.ok:
                self.progress.counts["refused"] += 1

    async def run_all(self) -> int:
        loop = asyncio.get_running_loop()
        queue = [row for row in self.rows if row.ok]
        queue.reverse()
        self.table.write(force=True)  # every row there from the start (pending): a killed run leaves a table
        workers = [asyncio.ensure_future(self._worker(queue)) for _ in range(min(self.args.jobs, len(queue)))]
        before: object = False  # the SIGINT handler replaced on Windows, to put back
        try:
            loop.add_signal_handler(signal.SIGINT, self._interrupt, workers)
        except NotImplementedError:  # Windows' event loops have no add_signal_handler: the plain handler
            with contextlib.suppress(ValueError):  # (ValueError: not the main thread, no Ctrl-C to catch)
                before = signal.signal(signal.SIGINT,
                                       lambda *_: loop.call_soon_threadsafe(self._interrupt, workers))
        except RuntimeError:  # not the main thread
            pass
        try:
            async with self.client:
                ended = await asyncio.gather(*workers, return_exceptions=True)
            for exc in ended:  # a row's own errors are in its row; this would be a fault of the batch's
                if isinstance(exc, Exception):
                    self.progress.say(f"error: a batch worker stopped: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)
            if before is not False:
                signal.signal(signal.SIGINT, before if before is not None else signal.default_int_handler)
            self.progress.close()
            self.table.write(force=True)
        return self._end()

    def _interrupt(self, workers) -> None:
        if self.stopping:  # a second Ctrl-C: stop now (accepted tasks stay in the ledger all the same)
            for worker in workers:
                worker.cancel()
            return
        self.stopping = True
        self.progress.say(f"interrupted: submitting no new task; stopping {self.progress.running} running "
                          "job(s) within a second (Ctrl-C again to stop at once)")

    async def _worker(self, queue: list[Row]) -> None:
        while queue and not self.stopping:
            row = queue.pop()
            await self._run_row(row)
            self.table.write()

    def _over_max_cost(self, row: Row) -> bool:
        limit = self.args.max_cost
        if limit is None:
            return False
        expected = row.estimate.cost or 0.0
        return self.progress.spent + self.reserved + expected > limit + 1e-9

    async def _one_unknown_at_a_time(self, row: Row) -> None:
        """Under --max-cost, as under the spending limits: while a row of unknown cost runs, another row of
        unknown cost waits until a cost is learnt (then it is estimated again, and counted)."""
        if self.args.max_cost is not None and row.estimate.cost is None:
            _estimate_row(row, self.ledger, self.endpoint)  # a row that ran before may have taught its cost
        while self.args.max_cost is not None and row.estimate.cost is None and self.unknown_running \
                and not self.stopping:
            await asyncio.sleep(0.1)
            _estimate_row(row, self.ledger, self.endpoint)

    async def _run_row(self, row: Row) -> None:
        await self._one_unknown_at_a_time(row)
        if self.stopping:
            return
        if self._over_max_cost(row):
            row.status = "refused"
            row.error = (f"--max-cost {pricing.usd(self.args.max_cost)}: {pricing.usd(self.progress.spent)} spent + "
                         f"{pricing.usd(self.reserved)} running + this row's {row.estimate.text} would pass it; "
                         "not submitted")
            self.progress.finished_one(row, ran=False)
            return
        expected = row.estimate.cost or 0.0
        unknown = self.args.max_cost is not None and row.estimate.cost is None
        self.reserved += expected
        self.unknown_running += unknown
        row.status = "running"
        self.progress.started_one()
        started = time.monotonic()
        try:
            await self._attempt(row)
        finally:
            self.reserved -= expected
            self.unknown_running -= unknown
            row.seconds = time.monotonic() - started
        if row.status != "running":
            self.progress.finished_one(row, ran=True)
        else:
            self.progress.running -= 1

    async def _attempt(self, row: Row) -> None:
        opts = pipeline.JobOptions(
            output_dir=self.args.out, deadline_s=self.args.deadline, ledger=self.ledger,
            config=self.config, prompt_id=f"cli:{uuid4()}", on_progress=lambda e: self._seen(row, e),
            cancel_check=lambda: self.stopping, decode_frames=False, decode_audio=False)
        try:
            result = await row.run(self.client, opts)
        except RunwareInterrupted as exc:
            row.error = str(exc)  # stays "running": accepted (or not) and resumable, see _end
            return
        except PixVerseBudgetError as exc:
            row.status, row.error = "refused", str(exc)
            return
        except PixVerseError as exc:
            row.status, row.error = "failed", str(exc)
            row.task_uuid = getattr(exc, "task_uuid", None) or row.task_uuid
            return
        except Exception as exc:  # noqa: BLE001 - one row's surprise must not stop the others
            row.status, row.error = "failed", f"unexpected {type(exc).__name__}: {exc}"
            return
        # done: this run submitted (and paid for) the task; otherwise another row, process or run made it
        row.status = "done" if result.origin == "new" else "reused"
        row.task_uuid, row.file = result.task_uuid, str(result.video_path)
        provenance.note_input_files(result.video_path, provenance.files_of(row.args))
        row.cost = result.info.get("cost")
        row.dry_run = bool((getattr(result.video, "raw", None) or {}).get("dryRun")) or \
            self.ledger.is_dry_run(self.endpoint)
        row.made_by = self._made_by(row) if row.status == "reused" else ""
        row.error = ""

    def _made_by(self, row: Row) -> str:
        """Who paid for a reused row's task: another row of this run (its line), else the ledger row's owner."""
        maker = next((r.line for r in self.rows if r is not row and r.task_uuid == row.task_uuid
                      and r.status in ("done", "running")), None)
        if maker is not None:
            return f"line {maker}"
        entry = self.ledger.get(row.task_uuid)
        if entry is None or not entry.owner:
            return "an earlier run (recorded in the job ledger)"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.created_at))
        if entry.owner == f"{HOST}:{os.getpid()}":
            return f"this run, {when}"
        host, _, pid = entry.owner.rpartition(":")
        return f"another run: process {pid} on {host}, claimed {when}"

    def _seen(self, row: Row, event) -> None:
        _seen(row, event)
        if str(event.message).startswith(WAIT_PREFIX) and event.message != self.waiting:
            self.waiting = event.message  # the account is busy: say so once per change, not once per row
            self.progress.say(f"line {row.line}: {event.message}; nothing is charged for a refused submit")

    def _end(self) -> int:
        for row in self.rows:  # a row reused from one of this run's own rows that finished after it
            if row.status == "reused" and not row.made_by.startswith("line "):
                row.made_by = self._made_by(row)
        c = self.progress.counts
        unfinished = [row for row in self.rows if row.status in ("running", "pending")]
        print(f"{len(self.rows)} rows: {c['done']} done, {c['reused']} reused, {c['failed']} failed, "
              f"{c['refused']} refused" + (f", {len(unfinished)} not finished" if unfinished else "")
              + f"; {self.progress.spent_text()} (only tasks this run submitted; reused rows cost it nothing) "
              f"in {time.monotonic() - self.progress.started:.1f} s; "
              f"results: {self.table.jsonl}", file=sys.stderr)
        if self.stopping:
            accepted = [row for row in unfinished if row.task_uuid and self._accepted(row.task_uuid)]
            for row in accepted:
                row.status = "interrupted"  # accepted and billed; the same command resumes it
            self.table.write(force=True)
            print(f"interrupted: {len(accepted)} accepted task(s) are still running at Runware (billed); they are "
                  f"in the job ledger, and the same command again resumes them without paying again"
                  + (f" (taskUUIDs: {', '.join(r.task_uuid for r in accepted[:5])}{' …' if len(accepted) > 5 else ''})"
                     if accepted else ""), file=sys.stderr)
            return EXIT_INTERRUPTED
        return EXIT_OK if c["done"] + c["reused"] == len(self.rows) else EXIT_SOME_FAILED

    def _accepted(self, task_uuid: str) -> bool:
        entry = self.ledger.get(task_uuid)
        return entry is not None and entry.status in (SUBMITTING, SUBMITTED, SUCCEEDED)


def _seen(row: Row, event) -> None:
    if event.task_uuid:
        row.task_uuid = event.task_uuid
