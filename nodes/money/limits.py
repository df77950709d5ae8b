"""What you allow: the spending limits, the reservation made when a task is claimed, and what was spent.

- **Spending limit** (`BudgetPolicy`, `budget_guard`): a daily limit (and optionally one per queued
  prompt) in US dollars, from the job's configuration (nodes/config.py: a variable wins over the ComfyUI
  setting; `policy_of`). Before a new task is claimed — before any upload — the expected cost
  (nodes/money/pricing.py) is added to what the ledger recorded; past the limit nothing is claimed, uploaded
  or submitted. The check runs inside the ledger's claim transaction (BEGIN IMMEDIATE) and the claimed
  row keeps the expected cost as its reservation, so two prompts at once cannot pass the limit
  together; the real cost replaces the reservation when Runware reports it, and a run that ends
  without a charge (refused, abandoned, failed, lost) counts nothing. A run of unknown cost is refused
  under a limit unless the configuration allows it (`allow_unknown_cost`); when allowed, it
  reserves nothing, so under a limit no other run starts beside it: a claim that finds such a run under
  way raises `MustWait` in the transaction and the pipeline waits until its cost is recorded, then checks
  again with that cost (`Ledger.unaccounted`). A `preparing` row of a run that is gone (killed) never
  went out and is settled `abandoned` before the check (`Ledger.release_dead_claims`).
- **Spent** (`spend_summary`): today and this month (local time), per model, from the ledger.

Money counted (`Ledger.spent_since`): a row's recorded cost; for a row still under way (preparing …
finished without a cost), its reservation. No SQL and no ComfyUI import here.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

from ..config import ALLOW_UNKNOWN_COST, DAILY_LIMIT, PROMPT_LIMIT, Config
from ..errors import PixVerseBudgetError
from .pricing import Estimate, estimate_new, usd
from ..spec import CapabilitySpec, load_spec

SETTING_PATH = "Settings → Runware → Spending"
_EPS = 1e-9
WAIT_TEXT = "waiting: another run of unknown cost is under way; the spending limit counts it first"


class MustWait(Exception):
    """Raised by the claim guard: under an active limit, a run the limit has not accounted for yet (its cost
    was unknown and is not recorded yet) is under way, so this one may not start beside it. Nothing is
    inserted; the caller waits (about a second, cancellable) and claims again, then is checked with the cost
    the ledger has learnt meanwhile. `blockers`: the taskUUIDs of those runs."""

    def __init__(self, blockers: Sequence[str]):
        super().__init__(WAIT_TEXT)
        self.blockers = list(blockers)


@dataclass
class BudgetPolicy:
    """The limits in force for a run, and where each came from (for the message that says how to raise it)."""

    daily_limit: Optional[float] = None
    daily_source: str = ""
    prompt_limit: Optional[float] = None
    prompt_source: str = ""
    allow_unknown: bool = False
    allow_source: str = ""
    prompt_id: Optional[str] = None  # the queued prompt (ComfyUI) or CLI run the task belongs to

    @property
    def active(self) -> bool:
        return self.daily_limit is not None or self.prompt_limit is not None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "prompt_id"}


def policy_of(config: Config, prompt_id: Optional[str] = None) -> BudgetPolicy:
    """The limits of `config` (nodes/config.py: read once, the environment winning over the settings) for a
    task of the queued prompt or command `prompt_id`."""
    return BudgetPolicy(daily_limit=config.daily_limit, daily_source=config.source("daily_limit"),
                        prompt_limit=config.prompt_limit, prompt_source=config.source("prompt_limit"),
                        allow_unknown=config.allow_unknown_cost, allow_source=config.source("allow_unknown_cost"),
                        prompt_id=prompt_id)


def day_start(now: Optional[float] = None) -> float:
    t = time.localtime(time.time() if now is None else now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def month_start(now: Optional[float] = None) -> float:
    t = time.localtime(time.time() if now is None else now)
    return time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1))


def _env_name(kind: str) -> str:
    return (DAILY_LIMIT if kind == "daily" else PROMPT_LIMIT).env or ""


def _how_to_raise(kind: str, source: str) -> str:
    env_name, setting = _env_name(kind), ("Daily spending limit" if kind == "daily"
                                          else "Spending limit per queued prompt")
    if source == "env":
        return (f"raise {env_name} (or unset it) in the environment ComfyUI or the command runs in; it wins "
                f"over the ComfyUI setting")
    return f"raise it in ComfyUI {SETTING_PATH} → {setting} (or set {env_name}, which wins over the setting)"


def _source_label(kind: str, source: str) -> str:
    if source == "env":
        return f" ({_env_name(kind)})"
    return " (ComfyUI setting)"


@dataclass
class Together:
    """The takes of one run (a node's `count`) being claimed in one transaction: their taskUUIDs (the balance
    floor counts them as one run, not as spending since its reading) and what the ones the limits checked so far
    reserved (a refusal says what was spent before them and what all n would cost)."""

    task_uuids: tuple[str, ...]
    passed: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.task_uuids)


_together = threading.local()  # the claim transaction runs in one ledger thread: its group lives there


@contextmanager
def claiming_together(task_uuids: Sequence[str]) -> Iterator[None]:
    """Around `Ledger.claim_many` of a run's takes (nodes/job/claims.py): the limits' refusal then speaks of the
    n takes together ("$0.20 spent today + this run's 8 takes 8 × $0.20 = $1.60"), not of the take it stopped at
    (whose "spent" already holds the reservations of the takes before it), and the floor (nodes/money/balance.py)
    counts them as one run."""
    _together.group = Together(tuple(task_uuids))
    try:
        yield
    finally:
        _together.group = None


def claimed_together() -> Optional[Together]:
    """The takes being claimed together in this thread's claim transaction, if any."""
    return getattr(_together, "group", None)


def check_budget(ledger, policy: BudgetPolicy, expected: Estimate, now: Optional[float] = None) -> None:
    """Raise PixVerseBudgetError when this run would pass a limit. Called inside the ledger's claim
    transaction (see `budget_guard`), so the spending it reads cannot change before the row is in."""
    if not policy.active:
        return
    if policy.prompt_limit is not None and policy.prompt_id is None:  # never a limit silently not counted
        raise PixVerseBudgetError(
            f"Spending limit per queued prompt: a limit of {usd(policy.prompt_limit)}"
            f"{_source_label('prompt', policy.prompt_source)} is set, but this run does not say which queued "
            f"prompt it belongs to (ComfyUI gave no prompt id), so its spending cannot be counted against the "
            f"limit and the run was not started. Nothing was uploaded or submitted. To run it, remove the "
            f"per-prompt limit ("
            + (f"unset {PROMPT_LIMIT.env}" if policy.prompt_source == "env"
               else f"ComfyUI {SETTING_PATH} → Spending limit per queued prompt") + ").",
            spent=None, limit=policy.prompt_limit, expected=expected.cost, scope="prompt")
    ledger.release_dead_claims()  # a killed run's `preparing` row was never sent: it reserves nothing
    blockers = _unaccounted(ledger, policy, now)
    if blockers:
        raise MustWait(blockers)
    cost = expected.cost or 0.0
    how = f" ({expected.basis})" if expected.cost is not None else " (unknown; allowed by your setting)"
    checks = []
    if policy.daily_limit is not None:
        checks.append(("daily", policy.daily_limit, policy.daily_source, ledger.spent_since(day_start(now)), "today"))
    if policy.prompt_limit is not None:
        checks.append(("prompt", policy.prompt_limit, policy.prompt_source,
                       ledger.spent_since(0.0, policy.prompt_id), "by this queued prompt"))
    if expected.cost is None and not policy.allow_unknown:
        limits = "; ".join(f"{usd(spent)} spent {when} of the limit of {usd(limit)}"
                           f"{_source_label(kind, source)}"
                           for kind, limit, source, spent, when in checks)
        raise PixVerseBudgetError(
            f"Spending limit: this run's cost is unknown (no run of this kind in the job ledger yet, and no price "
            f"Runware documents for it), and a limit is set ({limits or 'per queued prompt'}), so it was not started. "
            f"Nothing was uploaded or submitted. To allow runs of unknown cost under the limit, turn on "
            f"{SETTING_PATH} → Allow runs of unknown cost, or set {ALLOW_UNKNOWN_COST.env}=1; or remove the limit.",
            spent=checks[0][3] if checks else None, limit=policy.daily_limit or policy.prompt_limit, expected=None,
            scope="unknown")
    group = claimed_together()
    for kind, limit, source, spent, when in checks:
        total = spent + cost
        if total > limit + _EPS or (expected.cost is None and spent >= limit - _EPS):
            title = "Daily spending limit" if kind == "daily" else "Spending limit per queued prompt"
            this_run, makes = f"this run's expected cost {usd(expected.cost)}{how}", "="
            if group is not None and group.n > 1:
                # `spent` holds the reservations of this run's takes checked before this one: take them out,
                # and count every take (the ones not checked yet cost what this one does: only the seed differs)
                spent = max(0.0, spent - sum(group.passed))
                takes = sum(group.passed) + cost * (group.n - len(group.passed))
                total = spent + takes
                each = f"{group.n} × {usd(expected.cost)}" if all(abs(c - cost) < _EPS for c in group.passed) \
                    else f"{group.n} takes"
                this_run, makes = f"this run's {group.n} takes' expected cost {each} = {usd(takes)}{how}", "makes"
            raise PixVerseBudgetError(
                f"{title} reached: {usd(spent)} spent {when} (job ledger) + {this_run} {makes} {usd(total)}, "
                f"over the limit of {usd(limit)}"
                f"{_source_label(kind, source)}. "
                f"Nothing was uploaded or submitted. To run it, {_how_to_raise(kind, source)}"
                + ("; or wait until tomorrow (local time)." if kind == "daily" else "."),
                spent=spent, limit=limit, expected=expected.cost, scope=kind)
    if group is not None:
        group.passed.append(cost)


def _unaccounted(ledger, policy: BudgetPolicy, now: Optional[float]) -> list[str]:
    rows = []
    if policy.daily_limit is not None:
        rows += ledger.unaccounted(day_start(now))
    if policy.prompt_limit is not None and policy.prompt_id is not None:
        rows += ledger.unaccounted(0.0, policy.prompt_id)
    return sorted({e.task_uuid for e in rows})


@dataclass(frozen=True)
class ClaimGuard:
    """What runs inside the ledger's claim transaction just before a new task's row goes in (`check(ledger)`:
    the limits, and the row's reservation), with the expected cost as it stood before the claim (`expected`:
    what the balance floor, nodes/money/balance.py, compares). Called as `guard(ledger)` by Ledger.claim."""

    expected: Optional[Estimate]
    check: Callable[[Any], dict]

    def __call__(self, ledger) -> dict:
        return self.check(ledger)


def budget_guard(policy: BudgetPolicy, ledger, built, uploads: Sequence[Any] = (), endpoint: str = "",
                 spec: Optional[CapabilitySpec] = None) -> Optional[ClaimGuard]:
    """The one call the pipeline makes before any upload: the claim guard for `ledger` (see Ledger.claim)
    that checks `policy`'s limits and reserves the expected cost in the claim's transaction.

    None without a ledger and without a limit; an error when a limit is set but there is no ledger
    to count against (a limit is never silently bypassed)."""
    if ledger is None:
        if policy.active:
            raise PixVerseBudgetError(
                "A spending limit is set, but the job ledger that counts the spending could not be opened, so "
                "the run was not started. Nothing was uploaded or submitted. See the log for the ledger's path.",
                spent=None, limit=policy.daily_limit or policy.prompt_limit, expected=None, scope="ledger")
        return None
    audio = next((u for u in uploads if getattr(u, "parameter", "") == "audio"), None)
    audio_seconds = getattr(audio, "seconds", None)  # lipsync with an audio clip: priced per second of it

    def check(in_claim) -> dict:
        # Estimated inside the claim's transaction: a run that waited for another one's cost is checked
        # with what the ledger learnt meanwhile.
        expected = estimate_new(built.task, ledger=in_claim, endpoint=endpoint, spec=spec,
                                audio_seconds=audio_seconds)
        check_budget(in_claim, policy, expected)
        return {"reserved": expected.cost, "prompt_id": policy.prompt_id, "cost_class": expected.cost_class}

    # the balance floor (nodes/money/balance.py) compares the expected cost as it stands before the claim
    return ClaimGuard(estimate_new(built.task, ledger=ledger, endpoint=endpoint, spec=spec,
                                   audio_seconds=audio_seconds), check)


# -- what was spent ------------------------------------------------------------------------------

def spend_summary(ledger, now: Optional[float] = None, spec: Optional[CapabilitySpec] = None) -> dict:
    """Today's and this month's spending (local time), in all and per model, from the ledger (None: nothing)."""
    spec = spec or load_spec()
    now = time.time() if now is None else now
    today, month = day_start(now), month_start(now)
    if ledger is not None:
        try:
            ledger.release_dead_claims()  # a killed run's `preparing` row was never sent: it counts nothing
        except Exception:  # noqa: BLE001 - a read-only or locked ledger: the figures are still read
            pass
    rows = ledger.charges_since(month) if ledger is not None else []

    def label(air: str) -> str:
        try:
            return spec.model(air).name
        except KeyError:
            return air or "unknown model"

    def period(since: float) -> dict:
        chosen = [r for r in rows if r["created_at"] >= since]
        by_model: dict[str, dict] = {}
        for r in chosen:
            m = by_model.setdefault(r["model"] or "", {"model": r["model"] or "", "name": label(r["model"] or ""),
                                                       "total": 0.0, "runs": 0, "pending": 0.0})
            m["total"] += r["charged"]
            m["runs"] += 1
            if r["cost"] is None:
                m["pending"] += r["charged"]
        for m in by_model.values():
            m["total"], m["pending"] = round(m["total"], 4), round(m["pending"], 4)
        return {"total": round(sum(r["charged"] for r in chosen), 4), "runs": len(chosen),
                "pending": round(sum(r["charged"] for r in chosen if r["cost"] is None), 4),
                "by_model": sorted(by_model.values(), key=lambda m: -m["total"])}

    return {"day": time.strftime("%Y-%m-%d", time.localtime(now)),
            "month": time.strftime("%Y-%m", time.localtime(now)),
            "today": period(today), "this_month": period(month),
            "not_billed": {"today": not_billed(ledger, today), "this_month": not_billed(ledger, month)}}


def not_billed(ledger, since: float) -> dict:
    """Dry runs since `since` (rows of an endpoint that said it bills nothing): how many, and the made-up
    cost their endpoint reported, which no limit, estimate or total counts."""
    if ledger is None:
        return {"runs": 0, "emulated_cost": 0.0}
    runs, cost = ledger.dry_runs_since(since)
    return {"runs": runs, "emulated_cost": round(cost, 4)}


def _not_billed_lines(summary: dict) -> list[str]:
    out = []
    for key, title in (("today", "today"), ("this_month", "this month")):
        nb = (summary.get("not_billed") or {}).get(key) or {}
        if nb.get("runs"):
            out.append(f"not billed ({title}): {nb['runs']} dry run{'s' if nb['runs'] != 1 else ''} against an "
                       f"endpoint that bills nothing (its made-up cost {usd(nb['emulated_cost'])} is not counted)")
    return out


def format_spend(summary: dict, policy: Optional[BudgetPolicy] = None) -> str:
    lines = []
    for key, title in (("today", f"today ({summary['day']})"), ("this_month", f"this month ({summary['month']})")):
        p = summary[key]
        pending = f", of which {usd(p['pending'])} reserved for runs under way" if p["pending"] else ""
        lines.append(f"{title}: {usd(p['total'])} in {p['runs']} run{'s' if p['runs'] != 1 else ''}{pending}")
        for m in p["by_model"]:
            lines.append(f"  {m['name']} ({m['model']}): {usd(m['total'])} in {m['runs']} run{'s' if m['runs'] != 1 else ''}")
    lines.extend(_not_billed_lines(summary))
    if policy is not None:
        if policy.daily_limit is not None:
            left = max(0.0, policy.daily_limit - summary["today"]["total"])
            lines.append(f"daily limit: {usd(policy.daily_limit)} ({'environment' if policy.daily_source == 'env' else 'setting'}), "
                         f"{usd(left)} left today")
        if policy.prompt_limit is not None:
            lines.append(f"limit per queued prompt: {usd(policy.prompt_limit)}")
        if policy.active:
            lines.append(f"runs of unknown cost: {'allowed' if policy.allow_unknown else 'refused'} under the limit")
    return "\n".join(lines)
