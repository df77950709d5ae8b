"""The batch command's job file: JSON Lines or CSV rows → generate's parsed options, checked.

Each row is what `python -m nodes generate WORKFLOW …` takes, as keys with underscores plus
`workflow`; file paths are relative to the job file's folder. A row is turned into generate's own
command line and parsed by generate's own parser, then drafted by the CLI's `build_job` (the same
code `generate` runs): a bad row gets the message `generate` would print, with its line number,
before anything of it is uploaded or sent.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ...errors import PixVerseError
from ...spec import load_spec

# file options of each workflow: relative to the job file's folder
PATH_KEYS = {"image-to-video": ("first_frame", "last_frame"), "lipsync": ("video", "audio"),
             "modify": ("video", "reference_image")}
# generate's options that belong to the whole batch (its command line), not to a row
RUN_KEYS = ("out", "ledger", "offline", "deadline", "job_seconds", "new")
_INTERNAL = ("command", "workflow", "setting_inputs", "aspect_ratio_default")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
# a finished row; before that: pending, running. done: this run paid for its task; reused: another row of this
# run, another process or an earlier run did (its `made_by` says which), this run paid nothing for it
STATUSES = ("done", "reused", "failed", "refused")


@dataclass
class Row:
    """One job of the file and what became of it (one line of batch-results.jsonl)."""

    line: int
    values: dict[str, Any]
    args: Any = None  # argparse.Namespace of `generate WORKFLOW`
    draft: Any = None  # tasks.BuiltTask (stand-ins for uploads)
    run: Optional[Callable] = None  # run(client, opts) → pipeline.JobResult
    estimate: Any = None  # pricing.Estimate
    status: str = "pending"
    task_uuid: str = ""
    file: str = ""
    cost: Optional[float] = None
    seconds: Optional[float] = None
    error: str = ""
    made_by: str = ""  # a reused row: who paid for its task ("line 3", "another run: process …")
    dry_run: bool = False  # the endpoint said it bills nothing

    @property
    def ok(self) -> bool:
        return self.run is not None

    def result(self) -> dict[str, Any]:
        return {"line": self.line, "status": self.status, "taskUUID": self.task_uuid, "file": self.file,
                "cost": self.cost, "seconds": None if self.seconds is None else round(self.seconds, 2),
                "made_by": self.made_by, "error": self.error}


class RowError(Exception):
    """A row that cannot run; the message is what is shown after its line number."""


class FileError(PixVerseError):
    """The job file itself cannot be read (a usage error)."""


def read_rows(path: Path) -> list[Row]:
    """The file's rows with their line numbers. JSON Lines (.jsonl, .ndjson, .json) or CSV (.csv)."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read the job file {path}: {exc}") from None
    if suffix == ".csv":
        return _csv_rows(text)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl_rows(text)
    raise FileError(f"{path}: a job file is JSON Lines (.jsonl) or CSV (.csv), by its extension")


def _jsonl_rows(text: str) -> list[Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            values = json.loads(line)
        except ValueError as exc:
            rows.append(Row(number, {}, error=f"not valid JSON ({exc})", status="refused"))
            continue
        if not isinstance(values, dict):
            rows.append(Row(number, {}, error="a row must be a JSON object of options", status="refused"))
            continue
        rows.append(Row(number, values))
    return rows


def _csv_rows(text: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, header, start = [], None, 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            _check_separator(header, line)
            continue
        if len(cells) > len(header):
            rows.append(Row(line, {}, error=f"{len(cells)} cells but the header names {len(header)}",
                            status="refused"))
            continue
        rows.append(Row(line, {k: v for k, v in zip(header, cells) if k and v.strip() != ""}))
    return rows


_OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _check_separator(header: list[str], line: int) -> None:
    """A header that is one cell holding `;`, a tab or `|` (a spreadsheet saved with another separator):
    name it, instead of every row saying it has no `workflow`."""
    if len(header) != 1 or "workflow" in header:
        return
    for sep, name in _OTHER_SEPARATORS.items():
        if sep in header[0]:
            raise FileError(
                f"line {line}: the header {header[0][:80]!r} is one column: its names are separated by {name} "
                f"({sep!r}), and a CSV job file separates them with commas. Save it as comma-separated CSV "
                f"(or write it as JSON Lines, .jsonl)")


def _cell(key: str, value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise RowError(f"{key}: {value!r} is not a single value")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _flag_on(key: str, value: Any) -> bool:
    text = str(value).strip().lower() if not isinstance(value, bool) else ("true" if value else "false")
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowError(f"{key}: {value!r} is not true or false")


def command_line(values: dict[str, Any], base: Path) -> list[str]:
    """A row → `generate WORKFLOW --key=value …`, as generate's parser takes it."""
    workflow = str(values.get("workflow", "")).strip()
    if not workflow:
        raise RowError("no `workflow` (text-to-video, image-to-video, lipsync, modify)")
    booleans = {s.input for s in load_spec().settings_for(workflow) if s.kind == "boolean"}
    argv = ["generate", workflow]
    for key, value in values.items():
        name = key.strip().replace("-", "_")
        if name == "workflow":
            continue
        if name in RUN_KEYS:
            raise RowError(f"{key}: set for the whole batch on its command line, not per row")
        flag = "--" + name.replace("_", "-")
        if name in booleans:
            argv += [flag] if _flag_on(key, value) else []
            continue
        text = _cell(key, value)
        if name in PATH_KEYS.get(workflow, ()):
            text = str((base / text).resolve()) if text.strip() else text
        argv.append(f"{flag}={text}")
    return argv


def parse_row(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """generate's parser on a row's command line; its error message (not its exit) on a bad one."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args, unknown = parser.parse_known_args(argv)
    except SystemExit:
        lines = [line for line in err.getvalue().splitlines() if ": error: " in line]
        raise RowError(lines[-1].split(": error: ", 1)[1] if lines else err.getvalue().strip()) from None
    unknown = [a for a in argv[2:] if a in unknown or a.split("=", 1)[0].lstrip("-").replace("-", "_")
               not in vars(args)]  # also a key argparse took as an abbreviation of another
    if unknown:
        keys = [u.split("=", 1)[0].lstrip("-").replace("-", "_") for u in unknown if u.startswith("--")]
        known = sorted(k for k in vars(args) if k not in _INTERNAL and k not in RUN_KEYS)
        raise RowError(f"unknown key{'s' if len(keys) > 1 else ''} {', '.join(keys) or unknown[0]!s}; "
                       f"{argv[1]} takes: workflow, {', '.join(known)}")
    return args


def check_rows(rows: list[Row], base: Path, parser: argparse.ArgumentParser, build_job: Callable) -> None:
    """Parse and draft every row (generate's parser and build_job); a bad row keeps its message."""
    for row in rows:
        if row.error:
            continue
        try:
            row.args = parse_row(parser, command_line(row.values, base))
            row.draft, row.run = build_job(row.args)
        except RowError as exc:
            row.status, row.error = "refused", str(exc)
        except (PixVerseError, OSError) as exc:
            row.status, row.error = "refused", str(exc)
        except Exception as exc:  # noqa: BLE001 - a surprise in one row is that row's, the others still run
            row.status, row.error = "refused", f"unexpected {type(exc).__name__}: {exc}"
