"""The balance floor sees everything (issue 25 §2): a run is allowed when balance − (what this pack spent or
reserved since that balance was read) − (this run's expected cost: every take of a node together) ≥ floor; a
refusal on an older reading reads the balance again first — against the emulator playing a billing Runware."""
from __future__ import annotations

import asyncio
import time

import pytest

import fault_matrix
from support.jobs import choices, video_submissions
from support.keysafety import SENTINEL_KEY, artifact_dir
import workflow_runs as runs
from nodes import errors as E
from nodes.emulator import account as emu_account
from nodes.job import pipeline
from nodes import config
from nodes.config import MIN_BALANCE
from nodes.money import balance as B

PRICE = 0.299  # v5, 1080p, 5 s: Runware's documented price ($0.0598/s), the pack's estimate before any history


@pytest.fixture(scope="module")
def emu_server():
    from nodes.emulator import EmulatorServer

    with EmulatorServer(job_seconds=0.3, api_key=SENTINEL_KEY) as emu:
        yield emu


@pytest.fixture
def emu(emu_server, monkeypatch):
    for name in (MIN_BALANCE.env, emu_account.ENV_BALANCE):
        monkeypatch.delenv(name, raising=False)
    emu_server.reset()
    emu_server.dry_run = False  # plays a billing Runware
    emu_server.balance_start = None
    emu_server.balance_enforced = False
    B.CACHE.clear()
    yield emu_server
    emu_server.reset()
    emu_server.balance_start = None
    emu_server.job_seconds = 0.3
    B.CACHE.clear()


def _takes(runner, n, first_seed, **opt_kw):
    """A node's `count` n: takes of one 1080p text-to-video run claimed together, run concurrently."""
    group = pipeline.ClaimGroup(n) if n > 1 else None

    async def go():
        async with runner.client() as client:
            return await asyncio.gather(*(runs.text_to_video(client, choices(resolution="1080p", seed=first_seed + i),
                                                                 runner.opts(claim_group=group, config=config.load(), **opt_kw))
                                          for i in range(n)), return_exceptions=True)
    return asyncio.run(go())


def _refused_by_floor(results) -> bool:
    return all(isinstance(r, E.PixVerseBudgetError) and r.scope == "floor" for r in results)


def test_count_3_starts_none_count_2_starts_both_then_count_1_starts_none(emu, runner, monkeypatch):
    emu_account.set_balance(emu, 1.50)
    monkeypatch.setenv(MIN_BALANCE.env, "0.70")
    t0 = time.monotonic()
    three = _takes(runner, 3, 100)
    assert _refused_by_floor(three), three
    text = str(three[0])
    assert "3 takes × $0.299 = $0.897" in text and "$1.50" in text and "$0.603" in text and "$0.70" in text, text
    assert "Nothing was uploaded or submitted" in text
    assert emu.stats()["uploads"] == 0 and video_submissions(emu) == 0 and runner.ledger.entries() == []
    fault_matrix.record("floor $0.70, balance $1.50: count 3 at $0.299", "all 3 refused (3 × $0.299 counted together)",
                        0, time.monotonic() - t0)
    two = _takes(runner, 2, 200)
    assert all(isinstance(r, pipeline.JobResult) and r.origin == "new" for r in two), two
    assert video_submissions(emu) == 2
    one = _takes(runner, 1, 300)
    assert _refused_by_floor(one), one
    assert video_submissions(emu) == 2
    fault_matrix.record("floor $0.70, balance $1.50: count 2, then count 1", "2 videos, then the 1 refused", 2,
                        time.monotonic() - t0)


def test_what_runs_since_the_reading_counts(emu, runner, monkeypatch):
    """A take started while two others run (their cost not yet taken from the balance): the reading does not show
    them, the ledger does."""
    emu_account.set_balance(emu, 1.50)
    emu.job_seconds = 2.0
    monkeypatch.setenv(MIN_BALANCE.env, "0.70")

    async def go():
        async with runner.client() as client:
            group = pipeline.ClaimGroup(2)
            first = [asyncio.ensure_future(runs.text_to_video(client, choices(resolution="1080p", seed=400 + i),
                                                                  runner.opts(claim_group=group, config=config.load()))) for i in range(2)]
            while video_submissions(emu) < 2:
                await asyncio.sleep(0.02)
            late = await asyncio.gather(runs.text_to_video(client, choices(resolution="1080p", seed=410),
                                                               runner.opts(config=config.load())), return_exceptions=True)
            return late[0], await asyncio.gather(*first, return_exceptions=True)
    late, first = asyncio.run(go())
    assert all(isinstance(r, pipeline.JobResult) for r in first), first
    assert isinstance(late, E.PixVerseBudgetError) and late.scope == "floor", late
    assert "this pack has spent or reserved $0.598 since it was read" in str(late), str(late)
    assert video_submissions(emu) == 2


def test_a_top_up_counts_at_once(emu, runner, monkeypatch):
    emu_account.set_balance(emu, 0.80)
    monkeypatch.setenv(MIN_BALANCE.env, "0.70")
    assert _refused_by_floor(_takes(runner, 1, 500))
    emu_account.set_balance(emu, 5.00)  # topped up
    reading = B.CACHE.peek(emu.base_url)
    reading.checked_at -= B.FRESH_S + 1  # the reading is a few seconds old (the cache keeps it for a minute)
    done = _takes(runner, 1, 500)
    assert isinstance(done[0], pipeline.JobResult), done
    assert B.CACHE.peek(emu.base_url).balance == pytest.approx(5.00)
    fault_matrix.record("floor: refused, then a top-up", "the refusal re-read the balance; the run went ahead", 1, 0.0)


def test_batch_rows_past_the_floor_are_refused(emu, request, cli, monkeypatch):
    from test_batch import batch_args, results, rows, write_jsonl

    emu_account.set_balance(emu, 1.50)
    monkeypatch.setenv(MIN_BALANCE.env, "0.70")
    d = artifact_dir("floor", request.node.name)
    file = write_jsonl(d / "jobs.jsonl", rows(3, resolution="1080p"))
    code, stdout, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "3"), d, "three")
    assert code == 1, stderr
    got = results(d / "out")
    assert sorted(r["status"] for r in got) == ["done", "done", "refused"], got
    refused = next(r for r in got if r["status"] == "refused")
    assert refused["error"].startswith("Balance floor:") and "$0.70" in refused["error"], refused
    assert video_submissions(emu) == 2
    file = write_jsonl(d / "one.jsonl", rows(1, resolution="1080p", seed=77))
    code, stdout, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "1"), d, "one")
    assert code == 1 and [r["status"] for r in results(d / "out")] == ["refused"]
    assert video_submissions(emu) == 2
    fault_matrix.record("floor $0.70, balance $1.50: batch of 3 rows at $0.299, then 1", "2 done, 1 refused; then "
                        "the 1 refused", 2, 0.0)


@pytest.fixture
def runner(emu, request):
    from support.jobs import Runner

    r = Runner(emu, request.node.name)
    yield r
    r.close()
