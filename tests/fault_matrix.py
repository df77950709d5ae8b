"""Rows of the fault matrix: each fault test records what happened; conftest prints the table."""
from __future__ import annotations

from dataclasses import dataclass

from support.keysafety import save_text


@dataclass
class Row:
    fault: str
    outcome: str
    submissions: str
    seconds: float


ROWS: list[Row] = []


def record(fault: str, outcome: str, submissions, seconds: float) -> None:
    ROWS.append(Row(fault, outcome, str(submissions), seconds))


def table() -> list[str]:
    if not ROWS:
        return []
    heads = ("fault", "outcome", "submissions", "seconds")
    cells = [(r.fault, r.outcome, r.submissions, f"{r.seconds:.2f}") for r in ROWS]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = lambda c: "| " + " | ".join(str(v).ljust(w) for v, w in zip(c, widths)) + " |"  # noqa: E731
    out = [line(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells]
    save_text("fault-matrix.md", "\n".join(out))
    return out


# -- bad inputs: refused before anything is paid ------------------------------------------------

@dataclass
class BadInput:
    via: str
    input: str
    message: str
    uploads: int
    submissions: int


BAD_INPUTS: list[BadInput] = []
FIGURES: list[str] = []


def record_bad_input(via: str, what: str, message: str, uploads: int, submissions: int) -> None:
    BAD_INPUTS.append(BadInput(via, what, message, uploads, submissions))


def bad_input_table() -> list[str]:
    if not BAD_INPUTS:
        return []
    heads = ("via", "input", "message (shortened)", "uploads", "submissions")
    cells = []
    for r in BAD_INPUTS:
        msg = " ".join(r.message.split())
        cells.append((r.via, r.input, msg if len(msg) <= 150 else msg[:147] + "...", str(r.uploads),
                      str(r.submissions)))
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = lambda c: "| " + " | ".join(str(v).ljust(w) for v, w in zip(c, widths)) + " |"  # noqa: E731
    out = [line(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(c) for c in cells]
    save_text("bad-inputs.md", "\n".join(out))
    return out
