"""The job ledger: a small SQLite file that remembers every paid task, so none is lost or paid twice.

A row is written *before* a video task is submitted (status ``preparing``, then ``submitting``
just before the POST) and follows the task to its end. On the next run of the same request:

- a ``finished`` row whose MP4 is still on disk is reused: no network at all;
- an unfinished row (``submitting`` / ``submitted`` / ``succeeded``, or ``finished`` with the file
  gone) is resumed by polling its taskUUID: never submitted again;
- only when there is no such row (or it ended ``failed`` / ``lost`` / ``refused`` / ``abandoned``)
  is a new task submitted.

A request is identified by its *fingerprint*: the sha256 of the canonical JSON of the task without
its taskUUID, where each uploaded input stands as ``"sha256:<hash of the uploaded bytes>"`` instead of
Runware's imageUUID/mediaUUID, so the same inputs match even after an upload has expired.

Two runs racing on one fingerprint (two ComfyUI prompts, two processes) claim it inside one
``BEGIN IMMEDIATE`` transaction: one inserts the row and submits, the other gets that row and
waits for it, then polls the same taskUUID.

A run follows its row through a `Job` (typed transitions: submitting → submitted → succeeded →
finished, or failed / lost / refused / abandoned). Once Runware has a task, a failed local write
(locked, read-only, full) never loses it: the Job keeps the taskUUID, the run goes on and says so.

The spend and recent-cost figures (`spent_since`, `charges_since`, `recent_costs`) are read here too:
this module holds all of the pack's SQL.

The ledger also keeps the upload cache: content hash → imageUUID/mediaUUID, reused while Runware
still keeps the upload (see RUNWARE_UPLOAD_RETENTION_DAYS).

No API key, header or other credential is ever stored here. Plain standard library: no ComfyUI.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from contextlib import suppress as contextlib_suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

log = logging.getLogger("pixverse")

# -- Runware facts (not PixVerse-specific, so not in the capability spec) ----------------------
RUNWARE_UPLOAD_RETENTION_DAYS = 30  # Runware keeps an upload for 30 days after it was last used
UPLOAD_REUSE_MARGIN_DAYS = 1        # reuse a cached upload only while a day of that is left
UPLOAD_REUSE_SECONDS = (RUNWARE_UPLOAD_RETENTION_DAYS - UPLOAD_REUSE_MARGIN_DAYS) * 86400

LEDGER_FILENAME = "pixverse-ledger.sqlite3"
SCHEMA_VERSION = 2
# Columns added after version 1 (ALTER TABLE on open: an older ledger gains them, keeping its rows).
# reserved: the expected cost set aside when the row was claimed (nodes/money/limits.py, the spending limit);
# prompt_id: the ComfyUI prompt that claimed it; cost_class: what kind of run it is, for estimates.
_ADDED_COLUMNS = (("reserved", "REAL"), ("prompt_id", "TEXT"), ("cost_class", "TEXT"))
# A row may stay `preparing`/`submitting` this long while the process that claimed it is alive
# (uploads and a rate-limited submit with its retries); after that it is treated as abandoned.
OWNER_STALE_SECONDS = 15 * 60
# How long a write after the submit (Job: submitted, succeeded, finished, notes) waits for a locked ledger
# before it is given up (and said): it runs on the job's event loop, where a cancel must be seen.
BRIEF_WAIT_SECONDS = 2.0

# Statuses, in the order a task goes through them.
PREPARING = "preparing"    # claimed; inputs being uploaded; nothing sent yet
SUBMITTING = "submitting"  # the submit POST is about to go / went without a clear reply
SUBMITTED = "submitted"    # Runware has the task
SUCCEEDED = "succeeded"    # Runware reported success; the MP4 is not (verified) on disk yet
FINISHED = "finished"      # the MP4 is on disk and plays
FAILED = "failed"          # the task failed at Runware/PixVerse (error stored)
LOST = "lost"              # Runware does not know the taskUUID (never received, or expired)
REFUSED = "refused"        # Runware refused the submit (nothing charged)
ABANDONED = "abandoned"    # the run stopped before submitting (nothing sent)
ACTIVE = (PREPARING, SUBMITTING, SUBMITTED, SUCCEEDED, FINISHED)
_IN_FLIGHT = (PREPARING, SUBMITTING, SUBMITTED, SUCCEEDED)
_RANK = {PREPARING: 0, SUBMITTING: 1, SUBMITTED: 2, SUCCEEDED: 3, FINISHED: 4}
# A row a real endpoint billed: not one of an endpoint that said in its replies that it bills nothing
# (a dry run against the local emulator; nodes/money/balance.py).
_BILLED = "endpoint NOT IN (SELECT endpoint FROM dry_run_endpoints)"
# What a row counts against a spending limit: its cost, else its reservation while it is under way;
# nothing for a dry run.
_CHARGED = (f"CASE WHEN NOT ({_BILLED}) THEN 0 WHEN cost IS NOT NULL THEN cost "
            f"WHEN status IN ({','.join(repr(s) for s in ACTIVE)}) THEN COALESCE(reserved, 0) ELSE 0 END")

HOST = socket.gethostname()
_ACTIVE_HERE: dict[str, int] = {}  # taskUUID → how many coroutines of this process work on it (claim to video)
_ACTIVE_LOCK = threading.Lock()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    task_uuid    TEXT PRIMARY KEY,
    fingerprint  TEXT,
    endpoint     TEXT NOT NULL DEFAULT '',
    model        TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL,
    request      TEXT,
    inputs       TEXT,
    notices      TEXT NOT NULL DEFAULT '[]',
    video_uuid   TEXT,
    result_url   TEXT,
    seed         INTEGER,
    cost         REAL,
    local_file   TEXT,
    file_bytes   INTEGER,
    error        TEXT,
    owner        TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    submitted_at REAL,
    finished_at  REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_request ON jobs (endpoint, fingerprint, created_at);
CREATE TABLE IF NOT EXISTS uploads (
    endpoint     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    ref          TEXT NOT NULL,
    url          TEXT,
    bytes        INTEGER,
    uploaded_at  REAL NOT NULL,
    last_used_at REAL NOT NULL,
    PRIMARY KEY (endpoint, kind, sha256)
);
-- endpoints that said in their replies that they bill nothing: dry runs (nodes/money/balance.py)
CREATE TABLE IF NOT EXISTS dry_run_endpoints (endpoint TEXT PRIMARY KEY, seen_at REAL NOT NULL);
"""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def fingerprint(task: dict) -> str:
    """sha256 of the canonical JSON of `task` without its taskUUID. Uploaded inputs must already
    stand as ``sha256:<content hash>`` references (see `pipeline.UploadInput.ref`)."""
    body = {k: v for k, v in task.items() if k != "taskUUID"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _owner() -> str:
    return f"{HOST}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine is running. When unsure: True (then only the row's age
    ends the wait; waiting is safe, a second submission is not)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would *terminate* the process on Windows
        try:
            import ctypes  # Windows only

            kernel32 = ctypes.windll.kernel32
            handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
            if not handle:
                return kernel32.GetLastError() != 87  # ERROR_INVALID_PARAMETER: no such process
            try:
                code = ctypes.c_ulong()
                if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                    return True
                return code.value == 259  # STILL_ACTIVE
            finally:
                kernel32.CloseHandle(handle)
        except Exception:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


@dataclass
class Entry:
    task_uuid: str
    status: str
    fingerprint: Optional[str] = None
    endpoint: str = ""
    model: str = ""
    request: Optional[str] = None
    inputs: dict = field(default_factory=dict)
    notices: list = field(default_factory=list)
    video_uuid: Optional[str] = None
    result_url: Optional[str] = None
    seed: Optional[int] = None
    cost: Optional[float] = None
    local_file: Optional[str] = None
    file_bytes: Optional[int] = None
    error: Optional[str] = None
    owner: Optional[str] = None
    created_at: float = 0.0
    updated_at: float = 0.0
    submitted_at: Optional[float] = None
    finished_at: Optional[float] = None
    reserved: Optional[float] = None
    prompt_id: Optional[str] = None
    cost_class: Optional[str] = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Entry":
        d = dict(row)
        d["inputs"] = json.loads(d.get("inputs") or "{}")
        d["notices"] = json.loads(d.get("notices") or "[]")
        return cls(**d)

    def file_ok(self) -> bool:
        """The finished MP4 is still where it was written, at the size it had."""
        if not self.local_file:
            return False
        try:
            size = os.path.getsize(self.local_file)
        except OSError:
            return False
        return size > 0 and (self.file_bytes is None or size == self.file_bytes)

    def reusable(self) -> bool:
        return self.status == FINISHED and self.file_ok()

    def owner_alive(self, now: Optional[float] = None) -> bool:
        """Whether the run that claimed this row may still be preparing or submitting it."""
        now = time.time() if now is None else now
        if now - self.updated_at > OWNER_STALE_SECONDS or not self.owner:
            return False
        here = self._owner_on_this_machine_alive()
        return True if here is None else here  # another machine sharing the file: only staleness tells


    def in_progress(self, now: Optional[float] = None) -> bool:
        """Whether a run is still working on this row, in any phase (the jobs tab: running, or stopped). This
        process: a live coroutine holds it (`working_on`); another process of this machine: it is alive;
        another machine: the row changed within OWNER_STALE_SECONDS."""
        now = time.time() if now is None else now
        here = self._owner_on_this_machine_alive()
        if here is None:
            return bool(self.owner) and now - self.updated_at <= OWNER_STALE_SECONDS
        return here

    def _owner_on_this_machine_alive(self) -> Optional[bool]:
        """Whether the owning run, when it is on this machine, is still working on the row (this process: a
        live coroutine holds it, `working_on`; another process: it is alive); None: no owner on this machine."""
        host, _, pid_text = (self.owner or "").rpartition(":")
        if host != HOST:
            return None
        try:
            pid = int(pid_text)
        except ValueError:
            return False
        if pid == os.getpid():
            with _ACTIVE_LOCK:
                return self.task_uuid in _ACTIVE_HERE
        return pid_alive(pid)


@dataclass(frozen=True)
class Claim:
    entry: Entry
    new: bool  # True: this run inserted the row and must submit; False: follow `entry`


class Job:
    """One task's life in the ledger, as typed transitions:
    claimed (preparing) → submitting → submitted → succeeded → finished, or it ends
    failed / lost / refused / abandoned.

    `submitting()` is the one write that must reach the disk (before the POST: a restart then polls,
    never resends), so its error is raised. Every other write may fail (a locked, read-only or full
    ledger): Runware has, or never got, the task either way, so the taskUUID is kept here, the run goes
    on, and the failure is logged; for the writes that matter to the next run (submitted, succeeded,
    finished) the user is told in `notices`. Without a ledger every transition does nothing."""

    def __init__(self, ledger: Optional["Ledger"], task_uuid: str, notices: Optional[list] = None):
        self.ledger = ledger
        self.task_uuid = task_uuid
        self.notices = notices if notices is not None else []

    def _write(self, what: Callable[..., Any], *args: Any, tell: bool = False, **kw: Any) -> bool:
        if self.ledger is None:
            return False
        brief = getattr(self.ledger, "brief", None)
        try:
            with brief() if brief is not None else nullcontext():
                return what(*args, **kw) is not False  # False: the row was not in a state this step moves from
        except (sqlite3.Error, OSError) as exc:
            text = (f"the job ledger {self.ledger.path} could not be updated ({type(exc).__name__}: {exc}); "
                    f"task {self.task_uuid} is not recorded as finished there, so the next run of this job "
                    f"polls it again (no new charge)")
            log.warning("PixVerse: %s", text)
            if tell and text not in self.notices:
                self.notices.append(text)
            return False

    # forward
    def submitting(self) -> None:
        if self.ledger is not None:
            self.ledger.advance(self.task_uuid, SUBMITTING)

    def submitted(self) -> bool:
        return self._write(lambda: self.ledger.advance(self.task_uuid, SUBMITTED, submitted_at=time.time()),
                           tell=True)

    def succeeded(self, *, video_uuid: Optional[str], result_url: Optional[str], seed: Optional[int],
                  cost: Optional[float]) -> bool:
        return self._write(lambda: self.ledger.record_success(
            self.task_uuid, video_uuid=video_uuid, result_url=result_url, seed=seed, cost=cost,
            notices=list(self.notices)), tell=True)

    def finished(self, path: os.PathLike | str, size: int) -> bool:
        return self._write(lambda: self.ledger.record_file(self.task_uuid, path, size), tell=True)

    # ends
    def failed(self, error: str) -> bool:
        return self._write(lambda: self.ledger.settle(self.task_uuid, FAILED, error))

    def lost(self, error: str) -> bool:
        return self._write(lambda: self.ledger.settle(self.task_uuid, LOST, error))

    def refused(self, error: str) -> bool:
        return self._write(lambda: self.ledger.settle(self.task_uuid, REFUSED, error))

    def abandoned(self, error: str) -> bool:
        return self._write(lambda: self.ledger.settle(self.task_uuid, ABANDONED, error))

    # neither
    def note(self, error: str) -> bool:
        """The last error of a task that stays resumable (timeout, cancel, network, a failed save)."""
        return self._write(lambda: self.ledger.note_error(self.task_uuid, error))

    def used_uploads(self, endpoint: str, keys: Iterable[tuple[str, str]]) -> bool:
        return self._write(lambda: self.ledger.touch_uploads(endpoint, list(keys)))


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


class LedgerReplaced(sqlite3.DatabaseError):
    """The ledger file was swapped under this live process (replaced by another file, overwritten with other
    bytes, or deleted). The write that noticed it was not made; the message says what happened and where the
    replaced file went. The Ledger then uses a new file at its path, as at start-up (a damaged file is moved
    aside, a good SQLite file is used as it is)."""


def _identity(path: Path) -> Optional[tuple[int, int]]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _header_ok(path: Path) -> bool:
    """The file starts as an SQLite database does (an empty file is one SQLite has not written yet)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return False
    return head in (b"", SQLITE_HEADER)


class Ledger:
    """One SQLite file. Thread-safe; several processes may share the file.

    Every write first checks that the file is still the one opened (device and inode) and still starts as an
    SQLite file: a file swapped under the live process is never written into silently (`LedgerReplaced`).
    On Windows the check is the same (`os.stat` gives NTFS's file index as st_ino); there SQLite holds the
    file open without delete sharing, so another program can overwrite it in place (the header check sees
    that) but not rename or delete it; moving a damaged file aside then works once this process closed it,
    and when another process still holds it open the move fails and is said (writes stay refused)."""

    def __init__(self, path: os.PathLike | str, *, timeout: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._lock = threading.RLock()
        self._header_fd: Optional[int] = None
        self._connect()

    def _connect(self) -> None:
        self._watching = False  # the schema transaction below writes the file it opens: nothing to compare yet
        self._conn = sqlite3.connect(str(self.path), timeout=self._timeout, isolation_level=None,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        try:
            self._prepare()
        except BaseException:  # a damaged file: closed here, so that it can be moved aside (Windows cannot
            self._conn.close()  # rename a file that is open)
            raise

    def _prepare(self) -> None:
        with self._lock:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError:  # e.g. a file system without shared memory: keep rollback journal
                pass
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._tx():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                have = {row[1] for row in self._conn.execute("PRAGMA table_info(jobs)")}
                for name, kind in _ADDED_COLUMNS:
                    if name not in have:
                        self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                if version < SCHEMA_VERSION:
                    self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._opened = _identity(self.path)  # the file this connection writes (after its first write)
            # One descriptor, open as long as the connection, reads the header on each write. Never open and
            # close the file anew while SQLite holds it: on POSIX, closing any descriptor of a file drops
            # every lock this process holds on it, and another process's SQLite then takes itself for the
            # last user and deletes the WAL this connection still writes (sqlite.org/howtocorrupt.html 2.2).
            self._header_fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            self._watching = True

    def _check_file(self) -> None:
        """Raise LedgerReplaced (after moving a damaged file aside and opening a new ledger) when the file at
        `path` is not the one this connection writes any more, or no longer starts as an SQLite file."""
        now = _identity(self.path)
        if now == self._opened and self._header_still_ok():
            return
        if now is None:
            what, aside = "deleted", None
        elif now != self._opened:
            what = "replaced by another file"
            aside = None if _header_ok(self.path) else self._aside_name()
        else:
            what, aside = "overwritten with bytes that are not an SQLite database", self._aside_name()
        kept = self._readable_rows()
        # Closing may checkpoint this connection's WAL into the file it has open (the old one, which is then
        # moved aside as it is): never into whatever is at `path` now.
        self._close_connection()
        moved = ""
        if aside is not None:
            try:
                os.replace(self.path, aside)
                moved = f"; that file was moved to {aside}"
            except OSError as exc:  # Windows: another process still holds it open
                self._opened = None
                raise LedgerReplaced(f"the job ledger {self.path} was {what} while this process ran, and it could "
                                     f"not be moved aside ({exc}); nothing was written into it. Close the other "
                                     f"programs using it, then run again") from None
        journal = aside or f"{self.path}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
        for extra in ("-wal", "-shm"):  # the old file's journal must not be applied to the new file
            with contextlib_suppress(OSError):
                os.replace(f"{self.path}{extra}", f"{journal}{extra}")
        self._connect()
        copied = self._copy_in(kept)
        started = "a new ledger was started there" if aside is not None or now is None else \
            "this process now uses the file found there"
        if copied:
            started += (f", and the {copied} row(s) this process could still read from the file it had open were "
                        f"copied into it")
        text = (f"the job ledger {self.path} was {what} while this process ran{moved}; {started}. Nothing was "
                f"written into the replaced file, and the write that noticed it was not made. Tasks recorded only "
                f"in the old file are not resumed by re-running: fetch one by its taskUUID (Recover)")
        log.warning("PixVerse: %s", text)
        raise LedgerReplaced(text)

    _KEPT_TABLES = ("jobs", "uploads", "dry_run_endpoints")

    def _readable_rows(self) -> dict[str, list[dict]]:
        """What the open connection can still read of the file it has open (intact when the file was swapped by
        a rename or deleted; unreadable when it was overwritten in place): carried into the new ledger."""
        kept: dict[str, list[dict]] = {}
        for table in self._KEPT_TABLES:
            try:
                kept[table] = [dict(r) for r in self._conn.execute(f"SELECT * FROM {table}").fetchall()]
            except sqlite3.Error:
                return {}
        return kept

    def _copy_in(self, kept: dict[str, list[dict]]) -> int:
        copied = 0
        try:
            with self._tx():
                for table, rows in kept.items():
                    for row in rows:
                        names = ", ".join(row)
                        cur = self._conn.execute(f"INSERT OR IGNORE INTO {table} ({names}) VALUES "
                                                 f"({', '.join('?' * len(row))})", tuple(row.values()))
                        copied += cur.rowcount if table == "jobs" else 0
        except sqlite3.Error as exc:
            log.warning("PixVerse: the rows of the replaced job ledger could not be copied (%s)", exc)
            return 0
        return copied

    def _aside_name(self) -> str:
        return f"{self.path}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._close_connection()

    def _close_connection(self) -> None:
        self._conn.close()  # first: the descriptor below is closed only once SQLite holds no lock here
        fd, self._header_fd = getattr(self, "_header_fd", None), None
        if fd is not None:
            os.close(fd)

    def _header_still_ok(self) -> bool:
        """The file this connection writes still starts as an SQLite database (read through the descriptor
        kept open since the connection was made, never a new one)."""
        if self._header_fd is None:
            return True
        os.lseek(self._header_fd, 0, os.SEEK_SET)
        return os.read(self._header_fd, len(SQLITE_HEADER)) in (b"", SQLITE_HEADER)

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _tx(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._watching:
                self._check_file()
            self._conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def brief(self, seconds: float = BRIEF_WAIT_SECONDS) -> Iterator[None]:
        """Statements inside wait at most `seconds` (not the ledger's timeout) for a lock another program
        holds: for the writes after the submit, which may fail (`Job`) but must not hold up the event loop."""
        with self._lock:
            wait = min(seconds, self._timeout)
            self._conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
            try:
                yield
            finally:
                self._conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")

    # -- jobs -----------------------------------------------------------------------------------

    def get(self, task_uuid: str) -> Optional[Entry]:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE task_uuid = ?", (task_uuid,)).fetchone()
        return Entry.from_row(row) if row else None

    def find(self, endpoint: str, fingerprint: str) -> Optional[Entry]:
        """The newest row of this request that is still worth following (see module docstring)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT * FROM jobs WHERE endpoint = ? AND fingerprint = ? AND status IN "
                f"({','.join('?' * len(ACTIVE))}) ORDER BY created_at DESC LIMIT 1",
                (endpoint, fingerprint, *ACTIVE)).fetchone()
        return Entry.from_row(row) if row else None

    def entries(self) -> list[Entry]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()
        return [Entry.from_row(r) for r in rows]

    def claim(self, *, fingerprint: str, endpoint: str, task_uuid: str, model: str = "",
              request: Optional[dict] = None, inputs: Optional[dict] = None,
              notices: Iterable[str] = (), fresh: bool = False,
              guard: Optional[Callable[["Ledger"], dict]] = None) -> Claim:
        """Atomically: return the row to follow for this request, or insert ours (`new=True`).

        `fresh`: insert a new row whatever exists (the user asked for a new task).
        `guard(ledger)`: called inside the same transaction just before our row is inserted (never when
        an existing row is followed); returns extra columns for it (reserved, prompt_id, cost_class) or
        raises to insert nothing (the spending limit, nodes/money/limits.py: concurrent claims are serialized
        by BEGIN IMMEDIATE, so each sees the reservations of the ones before it)."""
        with self._tx():
            claim = self._claim_in_tx(fingerprint=fingerprint, endpoint=endpoint, task_uuid=task_uuid, model=model,
                                      request=request, inputs=inputs, notices=notices, fresh=fresh, guard=guard)
        return claim if not claim.new else Claim(self.get(task_uuid), new=True)

    def claim_many(self, claims: Sequence[dict]) -> list[Claim]:
        """All of `claims` (each the keyword arguments of `claim`) in ONE transaction: all or none.

        Each guard runs after the rows claimed before it in the list are in, so the spending limit sees
        them all (a group of takes, nodes/job/claims.py `ClaimGroup`); when one raises, nothing is inserted."""
        with self._tx():
            made = [self._claim_in_tx(**kw) for kw in claims]
        return [Claim(self.get(c.entry.task_uuid), new=True) if c.new else c for c in made]

    def _claim_in_tx(self, *, fingerprint: str, endpoint: str, task_uuid: str, model: str = "",
                     request: Optional[dict] = None, inputs: Optional[dict] = None,
                     notices: Iterable[str] = (), fresh: bool = False,
                     guard: Optional[Callable[["Ledger"], dict]] = None) -> Claim:
        now = time.time()
        if not fresh:
            row = self._conn.execute(
                f"SELECT * FROM jobs WHERE endpoint = ? AND fingerprint = ? AND status IN "
                f"({','.join('?' * len(ACTIVE))}) ORDER BY created_at DESC LIMIT 1",
                (endpoint, fingerprint, *ACTIVE)).fetchone()
            if row is not None:
                return Claim(Entry.from_row(row), new=False)
        extra = guard(self) if guard is not None else {}
        unknown = set(extra) - {name for name, _ in _ADDED_COLUMNS}
        if unknown:
            raise ValueError(f"not claimable: {sorted(unknown)}")
        self._conn.execute(
            "INSERT INTO jobs (task_uuid, fingerprint, endpoint, model, status, request, inputs, "
            "notices, owner, created_at, updated_at" + "".join(f", {k}" for k in extra) + ") VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?" + ",?" * len(extra) + ")",
            (task_uuid, fingerprint, endpoint, model, PREPARING,
             canonical_json(request) if request is not None else None,
             json.dumps(inputs or {}, sort_keys=True), json.dumps(list(notices)), _owner(), now, now,
             *extra.values()))
        return Claim(Entry(task_uuid=task_uuid, status=PREPARING), new=True)

    # -- money (the figures nodes/money/pricing.py and nodes/money/limits.py work from) ----------------------

    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def recent_costs(self, endpoint: str, model: str, limit: int) -> list[tuple[Optional[str], float, Optional[str]]]:
        """(request JSON, cost, cost class) of the newest rows of `model` at `endpoint` with a recorded cost."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT request, cost, cost_class FROM jobs WHERE endpoint = ? AND model = ? AND cost IS NOT NULL "
                f"AND {_BILLED} ORDER BY COALESCE(finished_at, updated_at) DESC LIMIT ?", (endpoint, model, limit)).fetchall()
        return [(r["request"], float(r["cost"]), r["cost_class"]) for r in rows]

    def spent_since(self, since: float, prompt_id: Optional[str] = None) -> float:
        """What rows created since `since` (of one queued prompt, if given) count: see `_CHARGED`.
        Inside `claim`'s guard it reads within the claim's transaction."""
        sql = f"SELECT COALESCE(SUM({_CHARGED}), 0) FROM jobs WHERE created_at >= ?"
        params: list[Any] = [since]
        if prompt_id is not None:
            sql += " AND prompt_id = ?"
            params.append(prompt_id)
        with self._lock:
            return float(self._conn.execute(sql, params).fetchone()[0])

    def charged_after(self, since: float, endpoint: str, exclude: Sequence[str] = ()) -> float:
        """What a balance of `endpoint` read at `since` (unix time) may not show yet (the balance floor,
        nodes/money/balance.py): what its rows created since then, still under way, or finished since then count
        (see `_CHARGED`), leaving out the rows of `exclude` (taskUUIDs: the takes being claimed together)."""
        sql = (f"SELECT COALESCE(SUM({_CHARGED}), 0) FROM jobs WHERE endpoint = ? AND (created_at >= ? OR "
               f"finished_at >= ? OR status IN ({','.join('?' * len(_IN_FLIGHT))}))")
        params: list[Any] = [endpoint, since, since, *_IN_FLIGHT]
        if exclude:
            sql += f" AND task_uuid NOT IN ({','.join('?' * len(exclude))})"
            params += list(exclude)
        with self._lock:
            return float(self._conn.execute(sql, params).fetchone()[0])

    def charges_since(self, since: float) -> list[dict]:
        """{model, created_at, cost, charged} of every row created since `since` that counts something."""
        with self._lock:
            rows = self._conn.execute(f"SELECT model, created_at, cost, ({_CHARGED}) AS charged FROM jobs "
                                      f"WHERE created_at >= ? AND ({_CHARGED}) > 0", (since,)).fetchall()
        return [dict(r) for r in rows]

    def unaccounted(self, since: float, prompt_id: Optional[str] = None) -> list[Entry]:
        """Rows under way that a spending limit has not accounted for: claimed since `since` (of one queued
        prompt, if given) with no reservation (their cost was unknown) and no recorded cost yet, whose run is
        alive (a dead run's row will never learn its cost here). Read inside a claim's transaction too."""
        sql = (f"SELECT * FROM jobs WHERE created_at >= ? AND cost IS NULL AND reserved IS NULL AND status IN "
               f"({','.join('?' * len(_IN_FLIGHT))})")
        params: list[Any] = [since, *_IN_FLIGHT]
        if prompt_id is not None:
            sql += " AND prompt_id = ?"
            params.append(prompt_id)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        now = time.time()
        return [e for e in map(Entry.from_row, rows) if e.owner_alive(now)]

    def release_dead_claims(self) -> int:
        """Settle `abandoned` the `preparing` rows whose run is gone (a killed process, a coroutine that ended
        without settling): nothing of them was ever sent, so their reservations stop counting. Runs in the
        caller's transaction when there is one (a claim's guard), else in its own."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM jobs WHERE status = ?", (PREPARING,)).fetchall()
            dead = [e.task_uuid for e in map(Entry.from_row, rows) if not e.owner_alive()]
            if not dead:
                return 0
            sql = (f"UPDATE jobs SET status = ?, error = ?, updated_at = ? WHERE status = ? AND task_uuid IN "
                   f"({','.join('?' * len(dead))})")
            params = (ABANDONED, "the run that claimed it ended before submitting; nothing was sent",
                      time.time(), PREPARING, *dead)
            if self._conn.in_transaction:
                self._conn.execute(sql, params)
            else:
                with self._tx():
                    self._conn.execute(sql, params)
        return len(dead)

    def adopt(self, task_uuid: str, *, endpoint: str = "", model: str = "") -> Entry:
        """A row for a taskUUID this ledger has not seen (recovering a task from elsewhere)."""
        now = time.time()
        with self._tx():
            self._conn.execute(
                "INSERT OR IGNORE INTO jobs (task_uuid, endpoint, model, status, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?)", (task_uuid, endpoint, model, SUBMITTED, now, now))
        return self.get(task_uuid)

    def advance(self, task_uuid: str, status: str, **extra: Any) -> bool:
        """Move a row forward (preparing → submitting → submitted → succeeded → finished); never back."""
        rank = _RANK[status]
        lower = [s for s, r in _RANK.items() if r < rank]
        return self._update(task_uuid, status, lower, **extra)

    def settle(self, task_uuid: str, status: str, error: Optional[str] = None) -> bool:
        """Mark a row failed / lost / refused / abandoned, unless its result is already in."""
        allowed = {FAILED: (PREPARING, SUBMITTING, SUBMITTED), LOST: (PREPARING, SUBMITTING, SUBMITTED, SUCCEEDED, FINISHED),
                   REFUSED: (PREPARING, SUBMITTING), ABANDONED: (PREPARING, SUBMITTING)}[status]
        return self._update(task_uuid, status, allowed, error=error)

    def note_error(self, task_uuid: str, error: str) -> None:
        """Remember the last error of a row that stays resumable (timeout, cancel, network)."""
        with self._tx():
            self._conn.execute("UPDATE jobs SET error = ?, updated_at = ? WHERE task_uuid = ?",
                               (error, time.time(), task_uuid))

    def record_success(self, task_uuid: str, *, video_uuid: Optional[str], result_url: Optional[str],
                       seed: Optional[int], cost: Optional[float], notices: Iterable[str]) -> None:
        with self._tx():
            self._conn.execute(
                "UPDATE jobs SET video_uuid = ?, result_url = ?, seed = ?, cost = ?, notices = ?, error = NULL, "
                "status = CASE WHEN status = ? THEN status ELSE ? END, updated_at = ? WHERE task_uuid = ?",
                (video_uuid, result_url, seed, cost, json.dumps(list(notices)), FINISHED, SUCCEEDED,
                 time.time(), task_uuid))

    def record_file(self, task_uuid: str, path: os.PathLike | str, size: int) -> None:
        now = time.time()
        with self._tx():
            self._conn.execute(
                "UPDATE jobs SET status = ?, local_file = ?, file_bytes = ?, finished_at = ?, updated_at = ?, "
                "error = NULL WHERE task_uuid = ?", (FINISHED, str(path), int(size), now, now, task_uuid))

    _COLUMNS = frozenset({"submitted_at", "error", "owner"})

    def _update(self, task_uuid: str, status: str, from_statuses: Iterable[str], **extra: Any) -> bool:
        unknown = set(extra) - self._COLUMNS
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        from_statuses = tuple(from_statuses)
        sets = "".join(f", {k} = ?" for k in extra)
        with self._tx():
            cur = self._conn.execute(
                f"UPDATE jobs SET status = ?, updated_at = ?{sets} WHERE task_uuid = ? AND status IN "
                f"({','.join('?' * len(from_statuses))})",
                (status, time.time(), *extra.values(), task_uuid, *from_statuses))
            return cur.rowcount > 0

    def mark_dry_run(self, endpoint: str) -> None:
        """`endpoint` said in a reply that it bills nothing: its rows are dry runs (nodes/money/balance.py)."""
        with self._tx():
            self._conn.execute("INSERT OR IGNORE INTO dry_run_endpoints (endpoint, seen_at) VALUES (?, ?)",
                               (endpoint, time.time()))

    def is_dry_run(self, endpoint: str) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM dry_run_endpoints WHERE endpoint = ?", (endpoint,)).fetchone() \
                is not None

    def dry_run_endpoints(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT endpoint FROM dry_run_endpoints")}

    def page(self, limit: int, offset: int = 0) -> tuple[list["Entry"], int]:
        """A page of rows, newest first, and how many rows there are (the jobs panel)."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                                      (limit, offset)).fetchall()
            total = self._conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        return [Entry.from_row(r) for r in rows], int(total)

    def dry_runs_since(self, since: float) -> tuple[int, float]:
        """(how many, their made-up cost) of the dry runs created since `since`."""
        with self._lock:
            row = self._conn.execute(f"SELECT COUNT(*), COALESCE(SUM(cost), 0) FROM jobs WHERE created_at >= ? "
                                     f"AND NOT ({_BILLED})", (since,)).fetchone()
        return int(row[0]), float(row[1])

    # -- uploads ----------------------------------------------------------------------------------

    def cached_upload(self, endpoint: str, kind: str, sha256: str, *, now: Optional[float] = None) -> Optional[str]:
        """The imageUUID/mediaUUID of these bytes, while Runware still keeps them."""
        now = time.time() if now is None else now
        with self._lock:
            row = self._conn.execute(
                "SELECT ref, last_used_at FROM uploads WHERE endpoint = ? AND kind = ? AND sha256 = ?",
                (endpoint, kind, sha256)).fetchone()
        if row is None or now - row["last_used_at"] > UPLOAD_REUSE_SECONDS:
            return None
        return row["ref"]

    def remember_upload(self, endpoint: str, kind: str, sha256: str, ref: str, url: Optional[str] = None,
                        size: Optional[int] = None) -> None:
        now = time.time()
        with self._tx():
            self._conn.execute(
                "INSERT OR REPLACE INTO uploads (endpoint, kind, sha256, ref, url, bytes, uploaded_at, last_used_at) "
                "VALUES (?,?,?,?,?,?,?,?)", (endpoint, kind, sha256, ref, url, size, now, now))

    def touch_uploads(self, endpoint: str, keys: Iterable[tuple[str, str]]) -> None:
        """These uploads were just used in a task: Runware's 30 days start again."""
        now = time.time()
        with self._tx():
            for kind, sha256 in keys:
                self._conn.execute("UPDATE uploads SET last_used_at = ? WHERE endpoint = ? AND kind = ? AND sha256 = ?",
                                   (now, endpoint, kind, sha256))

    def forget_uploads(self, endpoint: str, keys: Iterable[tuple[str, str]]) -> None:
        with self._tx():
            for kind, sha256 in keys:
                self._conn.execute("DELETE FROM uploads WHERE endpoint = ? AND kind = ? AND sha256 = ?",
                                   (endpoint, kind, sha256))


@contextmanager
def working_on(task_uuid: str) -> Iterator[None]:
    """Mark a row as worked on by a live coroutine of this process: prepared, submitted, waited for or
    downloaded (see owner_alive, in_progress). Nested uses for one taskUUID count."""
    with _ACTIVE_LOCK:
        _ACTIVE_HERE[task_uuid] = _ACTIVE_HERE.get(task_uuid, 0) + 1
    try:
        yield
    finally:
        with _ACTIVE_LOCK:
            left = _ACTIVE_HERE.pop(task_uuid, 1) - 1
            if left > 0:
                _ACTIVE_HERE[task_uuid] = left


_open: dict[str, Ledger] = {}
_open_lock = threading.Lock()


def open_ledger(path: os.PathLike | str) -> Ledger:
    """One shared Ledger per file in this process."""
    key = str(Path(path).resolve())
    with _open_lock:
        ledger = _open.get(key)
        if ledger is None:
            ledger = _open[key] = Ledger(key)
        return ledger


def forget_ledger(path: os.PathLike | str) -> None:
    """Close and drop this process's shared Ledger of `path`, if any (before the file is moved aside)."""
    key = str(Path(path).resolve())
    with _open_lock:
        ledger = _open.pop(key, None)
    if ledger is not None:
        ledger.close()
