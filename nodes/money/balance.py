"""The Runware account: the balance, a balance floor, and which endpoints only pretend to bill.

- **Balance** (`fetch_balance`): Runware's `accountManagement` task, `operation: getDetails`
  (runware.ai/docs/platform/account-management). Its answer also holds the organization's team members
  (names, e-mails, roles) and API keys: `keep_only` drops all of that the moment the reply is read, so only
  the balance (US dollars; Runware's reply names no currency) and the organization's name are ever stored,
  logged, served or shown.
- **Cache** (`BalanceCache`): one reading per endpoint, re-read at most once a minute, and marked stale
  when a task finishes (`after_task`) so the next reading shows what the task cost.
- **Floor** (`floor_of`, `floor_guard`): the job's configuration's `min_balance` (nodes/config.py: a variable
  or the ComfyUI setting *Runware → Spending → Keep at least*; the variable wins). A run is allowed when balance − (what this pack
  spent or reserved since that balance was read) − (this run's expected cost: every take of a node together)
  ≥ floor; else it is refused before anything is uploaded, in the claim's ledger transaction (so runs at once
  see each other). A refusal on a reading older than a few seconds reads the balance again first. When the balance cannot be read, the run
  goes ahead and the reading records why (the panel says the floor could not be checked).
- **Dry runs** (`note_reply`, `is_dry_run`): an endpoint that says in its own replies that it bills
  nothing (`"dryRun": true` in a getDetails or a task result — the local emulator does; Runware does not)
  is remembered in the ledger's `dry_run_endpoints` table. Spend, limits and estimates count only rows of
  other endpoints; dry runs are listed apart as "not billed". Nothing here looks at an address.

No ComfyUI import here.
"""
from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from ..client import RunwareClient
from ..client.envelope import error_of_data_item
from ..config import MIN_BALANCE, Config
from ..config import load as load_config
from ..errors import PixVerseBudgetError, PixVerseError, RunwareError, no_key_message
from .limits import ClaimGuard, claimed_together
from .pricing import usd

log = logging.getLogger("pixverse")

SETTING_PATH = "Settings → Runware → Spending → Keep at least"
TOP_UP_URL = "https://my.runware.ai/wallet"
CURRENCY = "USD"  # Runware's balance is in US dollars; its reply names no currency
MAX_AGE_S = 60.0  # read the balance at most once a minute
DRY_RUN_FIELD = "dryRun"  # what an endpoint that bills nothing says in its replies
KEEP = ("balance", "organizationName")  # everything else of getDetails is dropped on arrival


# -- the balance --------------------------------------------------------------------------------

@dataclass
class Balance:
    balance: Optional[float]
    currency: str = CURRENCY
    organization: Optional[str] = None
    checked_at: Optional[float] = None  # unix time of the reading (or of the failed attempt)
    dry_run: bool = False  # the endpoint said it bills nothing
    error: Optional[str] = None  # why it could not be read

    def to_json(self) -> dict:
        return asdict(self)


def keep_only(item: Mapping[str, Any]) -> dict:
    """The part of a getDetails answer we keep: the balance, the organization's name, the dry-run mark."""
    out = {k: item[k] for k in KEEP if k in item}
    if item.get(DRY_RUN_FIELD) is True:
        out[DRY_RUN_FIELD] = True
    return out


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


async def _post_tasks(client, task: dict):
    """(status, envelope, taskUUID) of one idempotent call through the client."""
    return await client.request([task], op=task["taskType"], task_uuid=task["taskUUID"])


async def fetch_balance(client) -> Balance:
    """Ask the endpoint for the account's balance. RunwareError when it answers with an error."""
    task = {"taskType": "accountManagement", "taskUUID": str(uuid.uuid4()), "operation": "getDetails"}
    status, env, task_uuid = await _post_tasks(client, task)
    items = env.data_for(task_uuid) if env is not None else []
    if env is None or status >= 300 or env.errors or any(map(error_of_data_item, items)):
        raise client.reply_error(status, env, task_uuid=task_uuid, op="accountManagement")
    item = keep_only(next((i for i in items if "balance" in i), {}))  # nothing else goes further
    value = _number(item.get("balance"))
    if value is None:
        raise RunwareError("Runware's account details had no balance", status=status, task_uuid=task_uuid)
    name = item.get("organizationName")
    return Balance(round(value, 4), CURRENCY, str(name)[:120] if isinstance(name, str) else None,
                   time.time(), bool(item.get(DRY_RUN_FIELD)))


class BalanceCache:
    """The last reading per endpoint; a new one at most every `max_age` seconds, or after a task."""

    def __init__(self, max_age: float = MAX_AGE_S):
        self.max_age = max_age
        self._lock = threading.Lock()
        self._readings: dict[str, Balance] = {}
        self._stale: set[str] = set()
        self._inflight: dict[str, asyncio.Future] = {}

    def peek(self, endpoint: str) -> Optional[Balance]:
        with self._lock:
            return self._readings.get(endpoint)

    def invalidate(self, endpoint: Optional[str] = None) -> None:
        with self._lock:
            if endpoint is None:
                self._stale.update(self._readings)
            else:
                self._stale.add(endpoint)

    def clear(self) -> None:
        with self._lock:
            self._readings.clear()
            self._stale.clear()

    def fresh(self, endpoint: str, now: Optional[float] = None) -> Optional[Balance]:
        now = time.time() if now is None else now
        with self._lock:
            found = self._readings.get(endpoint)
            if found is None or endpoint in self._stale or found.checked_at is None:
                return None
            return found if now - found.checked_at < self.max_age else None

    async def get(self, endpoint: str, fetch: Callable[[], Any], *, ledger=None) -> Balance:
        """The cached reading while it is fresh, else a new one (a failed one is cached too: at most one
        attempt a minute). Never raises for a Runware or network error: the reading carries `error`."""
        found = self.fresh(endpoint)
        if found is not None:
            return found
        try:
            reading = await fetch()
        except RunwareError as exc:
            reading = Balance(None, checked_at=time.time(), error=exc.detail)
        except Exception as exc:  # noqa: BLE001 - a balance we cannot read never stops a run
            log.info("PixVerse: the Runware balance could not be read (%s)", type(exc).__name__)
            reading = Balance(None, checked_at=time.time(), error=f"{type(exc).__name__}")
        with self._lock:
            self._readings[endpoint] = reading
            self._stale.discard(endpoint)
        if reading.dry_run and ledger is not None:
            mark_dry_run(ledger, endpoint)
        return reading


CACHE = BalanceCache()


def cached_balance(endpoint: str) -> Optional[dict]:
    """The last balance reading of `endpoint` (no network), for the estimate beside it; None when none yet."""
    found = CACHE.peek(endpoint)
    if found is None or found.balance is None:
        return None
    return {"balance": found.balance, "currency": found.currency, "checked_at": found.checked_at,
            "dry_run": found.dry_run}


# -- the floor ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Floor:
    amount: Optional[float]  # None: no floor
    source: str = ""  # env | setting

    @property
    def where(self) -> str:
        """Where it was set, as the panel and the messages say it: the variable's name, or "setting"."""
        return (MIN_BALANCE.env or "") if self.source == "env" else "setting"


def floor_of(config: Config) -> Floor:
    """The floor of the job's configuration (nodes/config.py: the variable wins over the setting)."""
    return Floor(config.min_balance, config.source("min_balance") if config.min_balance is not None else "")


def how_to_change(floor: Floor) -> str:
    if floor.source == "env":
        return (f"lower {MIN_BALANCE.env} (or unset it) in the environment ComfyUI or the command runs in (it wins "
                f"over the ComfyUI setting), or top up at {TOP_UP_URL}")
    return (f"top up at {TOP_UP_URL}, or lower ComfyUI {SETTING_PATH} (or set {MIN_BALANCE.env}, which wins "
            f"over the setting)")


def check_floor(balance: Balance, expected: Optional[float], floor: Floor, basis: str = "", *,
                since: float = 0.0, takes: int = 1) -> Optional[str]:
    """Raise PixVerseBudgetError (scope "floor") when this run would take the balance below the floor: when
    balance − `since` (what this pack spent or reserved since the balance was read) − `takes` × `expected` (every
    take of the run together) < floor. Returns a note when the floor could not be checked (the run goes ahead),
    else None."""
    if floor.amount is None:
        return None
    if balance.balance is None:
        return (f"the balance floor of {usd(floor.amount)} could not be checked: the Runware balance could not be "
                f"read ({balance.error or 'no answer'}); the run went ahead")
    takes = max(1, int(takes))
    cost = (expected or 0.0) * takes
    since = max(0.0, since)
    after = balance.balance - since - cost
    if after < floor.amount - 1e-9:
        how = " (counted as $0.00)" if expected is None else (f" ({basis})" if basis else "")
        run = f"{takes} takes × {usd(expected)} = {usd(cost)}" if takes > 1 and expected is not None else usd(expected)
        age = f" (read {max(0.0, time.time() - balance.checked_at):.0f} s ago)" if balance.checked_at else ""
        spent = f", this pack has spent or reserved {usd(since)} since it was read" if since > 1e-9 else ""
        raise PixVerseBudgetError(
            f"Balance floor: your Runware balance is {usd(balance.balance)}{age}{spent}, and this run's expected cost "
            f"is {run}{how}, which would leave {usd(after)}, below the floor of {usd(floor.amount)} "
            f"({'environment ' + floor.where if floor.source == 'env' else 'ComfyUI setting'}). Nothing was "
            f"uploaded or submitted. To run it, {how_to_change(floor)}.",
            spent=since, limit=floor.amount, expected=cost if expected is not None else None, scope="floor")
    return None


FRESH_S = 5.0  # a reading older than this is read again before the floor refuses a run (a top-up counts at once)

def _since(ledger, reading: Balance, endpoint: str, exclude: Sequence[str] = ()) -> float:
    if ledger is None or reading.checked_at is None:
        return 0.0
    return ledger.charged_after(reading.checked_at, endpoint, exclude)


def _refuses(reading: Balance, cost: Optional[float], floor: Floor, ledger, endpoint: str, takes: int) -> bool:
    try:
        check_floor(reading, cost, floor, since=_since(ledger, reading, endpoint), takes=takes)
    except PixVerseBudgetError:
        return True
    return False


async def floor_guard(client, floor: Floor, guard: Optional[ClaimGuard], endpoint: str, *, ledger=None,
                      takes: int = 1, report: Callable[[str], None] = lambda note: None) -> Optional[ClaimGuard]:
    """The pipeline's hook before a new task is claimed: read the balance (cached) when a floor is set,
    and return a claim guard that refuses a *new* task (never a reused or resumed one, which cost nothing)
    that would take the balance below the floor. `guard` is the spending limit's claim guard
    (limits.budget_guard), whose `expected` estimate is the cost compared; the `takes` of a group (a node's
    count) are compared together, with what the ledger counts since the balance was read
    (`Ledger.charged_after`). A run the floor would refuse on a reading older than `FRESH_S` reads the
    balance again first. Returns `guard` unchanged when no floor is set; `report(note)` is told when the floor
    could not be checked."""
    if floor.amount is None:
        return guard
    expected = guard.expected if guard is not None else None
    cost, basis = (expected.cost, expected.basis) if expected is not None else (None, "")
    takes = max(1, takes)
    reading = await CACHE.get(endpoint, lambda: fetch_balance(client), ledger=ledger)
    if reading.checked_at is not None and time.time() - reading.checked_at > FRESH_S and \
            _refuses(reading, cost, floor, ledger, endpoint, takes):
        CACHE.invalidate(endpoint)  # a top-up since the reading counts at once
        reading = await CACHE.get(endpoint, lambda: fetch_balance(client), ledger=ledger)

    def checked(in_claim=None) -> dict:
        together = claimed_together()
        uuids = together.task_uuids if together is not None else ()
        note = check_floor(reading, cost, floor, basis, since=_since(in_claim, reading, endpoint, uuids),
                           takes=max(1, len(uuids)))
        if note:
            log.warning("PixVerse: %s", note)
            report(note)
        return guard(in_claim) if guard is not None else {}

    if guard is None:  # no ledger, so no claim transaction to run in: check now, every take together
        note = check_floor(reading, cost, floor, basis, takes=takes)
        if note:
            log.warning("PixVerse: %s", note)
            report(note)
        return None
    return ClaimGuard(expected, checked)


# -- after a task, and dry runs -----------------------------------------------------------------

def after_task(ledger, endpoint: str, raw: Optional[Mapping[str, Any]] = None) -> None:
    """A task finished at `endpoint`: its next balance reading is a new one; an endpoint whose result said
    it bills nothing is remembered as a dry-run endpoint."""
    CACHE.invalidate(endpoint)
    if ledger is not None and isinstance(raw, Mapping) and raw.get(DRY_RUN_FIELD) is True:
        mark_dry_run(ledger, endpoint)


def mark_dry_run(ledger, endpoint: str) -> None:
    try:
        ledger.mark_dry_run(endpoint)
    except Exception:  # noqa: BLE001 - a ledger that cannot record it only shows the run as billed
        log.warning("PixVerse: could not record %s as a dry-run endpoint in the job ledger", endpoint,
                    exc_info=True)


def is_dry_run(ledger, endpoint: str) -> bool:
    return bool(ledger is not None and endpoint and ledger.is_dry_run(endpoint))


def add_cli_parser(sub) -> None:
    p = sub.add_parser("balance", help="your Runware balance, and the balance floor in force")
    p.add_argument("--offline", action="store_true", help="ask the local Runware emulator (a dry run's balance)")
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.set_defaults(job_seconds=2.0)


def format_balance(reading: Balance, floor: Floor) -> list[str]:
    lines = []
    if reading.balance is None:
        lines.append(f"balance: could not be read ({reading.error or 'no answer'})")
    else:
        org = f" ({reading.organization})" if reading.organization else ""
        lines.append(f"balance: {usd(reading.balance)} {reading.currency}{org}"
                     + (" — a dry-run endpoint: nothing is billed" if reading.dry_run else ""))
    if floor.amount is not None:
        where = floor.where if floor.source == "env" else f"ComfyUI {SETTING_PATH}"
        lines.append(f"floor: keep at least {usd(floor.amount)} ({where})"
                     + ("; it cannot be checked while the balance cannot be read" if reading.balance is None else ""))
    lines.append(f"top up: {TOP_UP_URL}")
    return lines


async def cli_balance(args, base_url: Optional[str], api_key: Optional[str]) -> int:
    import json
    import sys

    if not api_key:
        print(f"error: {no_key_message()}", file=sys.stderr)
        return 2
    try:
        floor = floor_of(load_config())  # the environment: the command line reads no ComfyUI settings
    except PixVerseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    async with RunwareClient(api_key=api_key, base_url=base_url) as client:
        try:
            reading = await fetch_balance(client)
        except RunwareError as exc:
            reading = Balance(None, checked_at=time.time(), error=str(exc))
    if args.json:
        print(json.dumps({**reading.to_json(), "floor": asdict(floor)}, indent=2))
    else:
        print("\n".join(format_balance(reading, floor)))
    return 0 if reading.balance is not None else 1
