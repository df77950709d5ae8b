"""The emulator's `accountManagement` task, answered like Runware's (runware.ai/docs/platform/account-management).

`getDetails` answers the organization, a made-up team member and API key (as Runware's reply holds them, so
tests can show the product drops them), and a balance that goes down by each finished task's (made-up) cost:
`balance_start` (RUNWARE_EMULATOR_BALANCE, else $1000.00; `set_balance` sets it) minus the cost of every job
that finished. Once a balance was set (`set_balance` or the environment), a video task that the balance cannot
pay is refused like Runware refuses it: HTTP 402, `insufficientCredits`, nothing billed.

As a user's offline dry run (`python -m nodes.emulator`, the CLI's `--offline`: `server.dry_run = True`), its
getDetails reply and every video result say `"dryRun": true`: it bills nothing, and the product learns that from
the reply, not from the address it runs at (nodes/money/balance.py). In tests it may play a billing Runware
(`dry_run` False, the default of `EmulatorServer`), so the spending limits can be tested against it.
"""
from __future__ import annotations

import os
from typing import Any

from ..config import EMULATOR_BALANCE
from .validate import DOCS_ROOT, TaskError, invalid

ENV_BALANCE = EMULATOR_BALANCE.env or ""  # declared with every other variable (nodes/config.py)
DEFAULT_BALANCE = float(EMULATOR_BALANCE.default)
ORGANIZATION = "Emulated organization (dry run)"


def balance_start(server) -> float:
    start = getattr(server, "balance_start", None)
    if start is None:
        try:
            start = float(os.environ.get(ENV_BALANCE, "") or "nan")
        except ValueError:
            start = float("nan")
        server.balance_enforced = start == start  # set in the environment
        start = start if server.balance_enforced else DEFAULT_BALANCE
        server.balance_start = start
    return float(start)


def says_dry_run(server) -> bool:
    return bool(getattr(server, "dry_run", False))


def set_balance(server, amount: float) -> None:
    """Make the balance `amount` now (the costs of jobs finished so far are kept counted)."""
    server.balance_start = float(amount) + spent(server)
    server.balance_enforced = True


def spent(server) -> float:
    with server._lock:
        jobs = list(server._jobs.values())
    return round(sum(float(j.plan.cost or 0) for j in jobs if j.state == "success"), 4)


def remaining(server) -> float:
    return round(balance_start(server) - spent(server), 4)


def account_task(server, task: dict) -> dict[str, Any]:
    operation = task.get("operation")
    if operation != "getDetails":
        raise invalid("operation", operation, "Unsupported account management operation.", ["getDetails"])
    out = {
        "taskType": "accountManagement", "taskUUID": task.get("taskUUID"), "operation": "getDetails",
        "organizationUUID": "00000000-0000-4000-8000-00000000e1a0", "organizationName": ORGANIZATION,
        "AIRSource": "emulator", "balance": remaining(server),
        "team": [{"name": "Emulated Owner", "email": "owner@emulator.invalid", "roles": ["Owner"],
                  "joinedAt": "2026-01-01T00:00:00Z"}],
        "apiKeys": [{"name": "emulated key", "key": "emulated-key-0000", "createdAt": "2026-01-01T00:00:00Z"}],
    }
    if says_dry_run(server):
        out["dryRun"] = True
    return out


def check_funds(server, plan) -> None:
    """Refuse a video task the balance cannot pay (HTTP 402, as Runware does): nothing is billed."""
    left = remaining(server)
    if not getattr(server, "balance_enforced", False):
        return
    cost = float(getattr(plan, "cost", 0) or 0)
    if cost > left + 1e-9:
        raise TaskError("insufficientCredits",
                        f"Insufficient credits: this task costs ${cost:.4f} and the balance is ${left:.4f}. "
                        "Top up your balance to continue.", None, status=402,
                        documentation=f"{DOCS_ROOT}/platform/account-management")
