"""Claiming a job's ledger row under the spending limits: alone, or with the other takes of a group.

- `claim_when_allowed`: runs a claim (nodes/money/ledger.py) off the event loop, so a locked ledger never blocks
  the loop and a cancel is seen within 0.2 s; when the limit's guard says another run of unknown cost is
  under way (`limits.MustWait`), it waits about a second (cancellable, within the job's deadline) with the
  progress text `limits.WAIT_TEXT`, and claims again.
- `ClaimGroup(n)`: n jobs that the spending limits see together (a generator's ``count``): all claimed or
  none. Each job validates and encodes its inputs, then waits at the group; when all n have arrived, their
  claims (each with its guard) run in ONE ledger transaction (`Ledger.claim_many`), where the balance floor
  counts them as one run (`limits.claiming_together`). A refusal refuses them
  all (nothing inserted, nothing uploaded); a job that fails before arriving (a bad input) breaks the group
  and the others raise too. A request the ledger already holds counts as arrived without a new claim.

For the node (one ComfyUI event loop; the jobs run concurrently, e.g. with asyncio.gather)::

    group = pipeline.ClaimGroup(count)
    results = await asyncio.gather(*(pipeline.run(client, kind, {**values, "seed": seed + i},
                                                  replace(opts, claim_group=group)) for i in range(count)),
                                   return_exceptions=True)

No ComfyUI here.
"""
from __future__ import annotations

import asyncio
import contextvars
import math
import threading
import time
from typing import Any, Callable, Optional, TypeVar

from .. import errors as E
from . import preflight
from ..client.http import Waiter
from ..money.limits import WAIT_TEXT, MustWait, claiming_together

T = TypeVar("T")


async def off_loop(fn: Callable[[], T], cancel_check: Optional[Callable[[], bool]] = None) -> T:
    """`fn()` (a ledger call) in a daemon thread, raced with `cancel_check` (RunwareInterrupted, nothing sent)
    and with asyncio cancellation. A daemon thread rather than the loop's executor: a write stuck on a locked
    ledger (SQLite waits up to 30 s) must not hold up the end of the run or of the process either."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def settle(result: Any, exc: Optional[BaseException]) -> None:
        if not fut.done():
            fut.set_exception(exc) if exc is not None else fut.set_result(result)

    def work() -> None:
        try:
            result, exc = fn(), None
        except BaseException as caught:  # noqa: BLE001 - handed to the awaiting coroutine
            result, exc = None, caught
        try:
            loop.call_soon_threadsafe(settle, result, exc)
        except RuntimeError:  # the loop is gone: nobody waits for it any more
            pass

    threading.Thread(target=work, name="pixverse-ledger", daemon=True).start()
    waiter = Waiter(None, math.inf, cancel_check, 0.2, submitted=False)
    return await waiter.guard(lambda: fut)


def _wait_timeout(blockers: list[str]) -> E.RunwareTimeoutError:
    return E.RunwareTimeoutError(
        f"The job's deadline passed while it waited for another run of unknown cost "
        f"({', '.join(blockers) or 'under way'}) to be counted by the spending limit; nothing was uploaded "
        f"or submitted. Run it again.")


async def claim_when_allowed(ledger: Any, claim: Callable[[], T], opts: Any, deadline_at: float) -> T:
    """`claim()` (Ledger.claim / claim_many with the limit's guard), waiting while the limit says `MustWait`."""
    waiter: Optional[Waiter] = None
    while True:
        try:
            with preflight.ledger_usable(ledger):
                return await off_loop(claim, opts.cancel_check)
        except MustWait as wait:
            if waiter is None:
                opts.report("queued", WAIT_TEXT)
                waiter = Waiter(None, max(0.0, deadline_at - time.monotonic()), opts.cancel_check, 0.2,
                                submitted=False)
            try:
                await waiter.sleep(1.0)
            except E.RunwareTimeoutError:
                raise _wait_timeout(wait.blockers) from None


class _Member:
    def __init__(self, group: "ClaimGroup"):
        self.group = group
        self.arrived = False


_MEMBER: contextvars.ContextVar[Optional[_Member]] = contextvars.ContextVar("pixverse_claim_member", default=None)


class ClaimGroup:
    """n jobs claimed together: all or none (see the module docstring). One per generator run; its jobs run
    concurrently in one event loop, each with `JobOptions(claim_group=group)`."""

    def __init__(self, n: int):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"ClaimGroup: n must be an integer ≥ 1, got {n!r}")
        self.n = n
        self._joined = 0
        self._waiting: list[tuple[dict, asyncio.Future]] = []
        self._broken: Optional[BaseException] = None
        self._arrived = 0

    def __repr__(self) -> str:
        return f"ClaimGroup(n={self.n}, arrived={self._arrived}, broken={self._broken is not None})"

    # -- membership (pipeline's public job functions) ----------------------------------------------
    def join(self) -> contextvars.Token:
        self._joined += 1
        if self._joined > self.n:
            raise ValueError(f"ClaimGroup({self.n}): more jobs joined than it was made for")
        return _MEMBER.set(_Member(self))

    def leave(self, token: contextvars.Token, exc: Optional[BaseException]) -> None:
        member = _MEMBER.get()
        _MEMBER.reset(token)
        if exc is not None and member is not None and not member.arrived:
            self._break(exc)

    def _break(self, exc: BaseException) -> None:
        if self._broken is not None:
            return
        self._broken = exc
        for _, fut in self._waiting:
            if not fut.done():
                fut.set_exception(self._failure())
                fut.exception()  # marked retrieved: a take that stopped itself never reads its own
        self._waiting.clear()

    def _failure(self) -> BaseException:
        exc = self._broken
        if isinstance(exc, E.PixVerseBudgetError):
            return exc  # every take says why the limit refused them all
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return E.PixVerseError(
            f"Not started: another of the {self.n} takes of this run stopped before anything was sent ({why}), "
            f"and the takes are claimed all or none. Nothing was uploaded or submitted.")

    # -- the claim (pipeline._run_with_ledger) --------------------------------------------------------
    async def claim(self, ledger: Any, kw: dict, opts: Any, deadline_at: float):
        """This job's claim; returns when all n claims went in together (or raises for all)."""
        member = _MEMBER.get()
        if member is None or member.group is not self or member.arrived:
            return await claim_when_allowed(ledger, lambda: ledger.claim(**kw), opts, deadline_at)
        if self._broken is not None:
            member.arrived = True
            raise self._failure()
        fut = asyncio.get_running_loop().create_future()
        self._waiting.append((kw, fut))
        member.arrived = True
        self._arrived += 1
        if self._arrived == self.n:
            await self._claim_all(ledger, opts, deadline_at)
        return await self._await(fut, opts, deadline_at)

    def arrive_without_claim(self) -> None:
        """A job that claims nothing here (no ledger): it only stops being awaited."""
        member = _MEMBER.get()
        if member is None or member.group is not self or member.arrived:
            return
        member.arrived = True
        self._arrived += 1
        if self._arrived == self.n and self._waiting:
            self._break(E.PixVerseError("a take of this run has no job ledger to claim in"))

    async def _claim_all(self, ledger: Any, opts: Any, deadline_at: float) -> None:
        waiting, self._waiting = list(self._waiting), []
        mine = {kw["task_uuid"] for kw, _ in waiting}
        try:
            claims = await claim_when_allowed(ledger, lambda: self._claim_many(ledger, waiting, mine), opts,
                                              deadline_at)
        except BaseException as exc:
            self._waiting = waiting
            self._break(exc)
            return
        for (_, fut), claim in zip(waiting, claims):
            if not fut.done():
                fut.set_result(claim)

    def _claim_many(self, ledger: Any, waiting: list, mine: set) -> list:
        try:
            with claiming_together([kw["task_uuid"] for kw, _ in waiting]):  # limits and floor: one run
                return ledger.claim_many([kw for kw, _ in waiting])
        except MustWait as wait:
            if set(wait.blockers) <= mine:  # the takes themselves: a cost unknown for all of them
                raise E.PixVerseBudgetError(
                    f"Spending limit: this run's cost is unknown (no run of this kind in the job ledger yet), and "
                    f"under a limit only one run of unknown cost may be under way at a time, so {self.n} takes "
                    f"of it cannot start together. Nothing was uploaded or submitted. Run it once with count 1 "
                    f"(then its cost is known), or remove the limit.",
                    spent=None, limit=None, expected=None, scope="unknown") from None
            raise

    async def _await(self, fut: asyncio.Future, opts: Any, deadline_at: float):
        waiter = Waiter(None, max(0.0, deadline_at - time.monotonic()), opts.cancel_check, 0.2, submitted=False)
        try:
            while not fut.done():
                waiter.check()
                await asyncio.wait({fut}, timeout=0.2)
        except BaseException as exc:  # cancelled or interrupted while the others gather: none is claimed
            self._break(exc)
            raise
        return fut.result()
