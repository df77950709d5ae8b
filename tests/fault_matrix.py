"""Rows of the fault matrix: each fault test records what happened; conftest prints the table."""
from __future__ import annotations

from dataclasses import dataclass

from keysafety import save_text


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
