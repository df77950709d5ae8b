"""Issue 25 items 5 and 10: batch accounting that is true, and messages that are true.

Against the emulator over 127.0.0.1; the batch through the CLI's `main` (two processes at once as
subprocesses). Each test records a fault-matrix or bad-input row."""
from __future__ import annotations

import asyncio
import re
import time

import pytest

import fault_matrix
from support.jobs import CHOICES, choices, start_cli, video_submissions, wait_until
from support.keysafety import artifact_dir
import workflow_runs as runs
from nodes.config import Config
from nodes import errors as E
from nodes.job import pipeline
from nodes.money import limits
from test_batch import ROW, batch_args, results, rows, write_jsonl

SUMMARY = re.compile(r"(\d+) rows: (\d+) done, (\d+) reused, (\d+) failed, (\d+) refused.*?; (spent \$[\d.]+|billed: "
                     r"nothing[^;]*)")


def _summary(stderr: str) -> tuple[int, int, str]:
    found = SUMMARY.search(stderr)
    assert found, stderr
    return int(found.group(2)), int(found.group(3)), found.group(6)


def _usd(text: str) -> float:
    return float(text.split("$", 1)[1].rstrip(")"))


# -- item 5: batch accounting -----------------------------------------------------------------------------

def test_duplicate_rows_one_done_one_reused_by_line(emu, request, cli):
    d = artifact_dir("details", request.node.name)
    file = write_jsonl(d / "jobs.jsonl", [{**ROW, "seed": 5}, {**ROW, "seed": 6}, {**ROW, "seed": 5}])
    t0 = time.monotonic()
    code, _, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "3"), d, "batch")
    assert code == 0, stderr
    got = results(d / "out")
    assert video_submissions(emu) == 2
    assert sorted(r["status"] for r in got) == ["done", "done", "reused"], got
    reused = next(r for r in got if r["status"] == "reused")
    maker = next(r for r in got if r["taskUUID"] == reused["taskUUID"] and r is not reused)
    assert maker["status"] == "done" and reused["made_by"] == f"line {maker['line']}", got
    done, again, spent = _summary(stderr)
    assert (done, again) == (2, 1) and _usd(spent) == pytest.approx(0.4), stderr  # two tasks at $0.20, once each
    fault_matrix.record("batch: two identical rows in one file", "1 task; one row done, the other reused "
                        "(made_by: its line); spent counts it once", video_submissions(emu), time.monotonic() - t0)


def test_two_batch_processes_on_one_file_spend_what_they_made(emu, request):
    """The issue's case: two processes on the same file and folder each said "N done, spent $X" for the same
    tasks. Now each row is done in one process and reused (made by the other process) in the other, and the two
    "spent" figures add up to what the emulator accepted."""
    emu.job_seconds = 1.0
    d = artifact_dir("details", request.node.name)
    n = 6
    file = write_jsonl(d / "jobs.jsonl", rows(n))
    args = batch_args(file, d / "out", "--jobs", "3")
    t0 = time.monotonic()
    procs = [start_cli(emu, args, d, f"p{i}") for i in (1, 2)]
    for proc in procs:
        assert proc.wait(timeout=240) == 0, (d / "p1.stderr").read_text() + (d / "p2.stderr").read_text()
    summaries = [_summary((d / f"p{i}.stderr").read_text()) for i in (1, 2)]
    assert video_submissions(emu) == n and emu.stats()["duplicate_submits"] == 0
    assert sum(s[0] for s in summaries) == n, summaries  # each task "done" in exactly one process
    assert all(s[0] + s[1] == n for s in summaries), summaries
    assert sum(_usd(s[2]) for s in summaries) == pytest.approx(n * 0.2), summaries
    stdout = (d / "p1.stdout").read_text() + (d / "p2.stdout").read_text()
    if any(s[1] for s in summaries):
        assert "made by another run: process" in stdout, stdout
    fault_matrix.record(f"two batch processes, same file and folder ({n} rows)",
                        f"{n} tasks; done {summaries[0][0]} + {summaries[1][0]}; {summaries[0][2]} + "
                        f"{summaries[1][2]}; the rest reused, made by the other process", video_submissions(emu),
                        time.monotonic() - t0)


def test_dry_run_batch_bills_nothing(emu, request, cli):
    emu.dry_run = True  # what --offline's emulator says in its replies
    try:
        d = artifact_dir("details", request.node.name)
        file = write_jsonl(d / "jobs.jsonl", rows(2))
        code, _, stderr = cli(emu, batch_args(file, d / "out"), d, "batch")
    finally:
        emu.dry_run = False
    assert code == 0, stderr
    _, _, spent = _summary(stderr)
    assert spent.startswith("billed: nothing (a dry run"), stderr
    assert not re.search(r"; spent \$", stderr), stderr
    fault_matrix.record("batch against a dry-run endpoint (--offline)", "says billed: nothing, as generate does",
                        video_submissions(emu), 0.0)


# -- item 10: messages ------------------------------------------------------------------------------------

def test_daily_limit_refusal_of_count_8_speaks_of_the_eight(emu, runner):
    runner.run(lambda client, opts: runs.text_to_video(client, choices(prompt="history"), opts))  # $0.20 known
    spent = runner.ledger.spent_since(limits.day_start())
    assert spent == pytest.approx(0.2)
    group = pipeline.ClaimGroup(8)
    policy = Config(daily_limit=1.0, sources={"daily_limit": "env"})

    async def go():
        async with runner.client() as client:
            return await asyncio.gather(*(runs.text_to_video(client, choices(prompt="eight", seed=300 + i),
                                                                 runner.opts(config=policy, claim_group=group))
                                          for i in range(8)), return_exceptions=True)
    got = asyncio.run(go())
    assert all(isinstance(r, E.PixVerseBudgetError) for r in got), got
    text = str(got[0])
    assert text.startswith("Daily spending limit reached: $0.20 spent today (job ledger) + this run's 8 takes' "
                           "expected cost 8 × $0.20 = $1.60"), text
    assert "makes $1.80, over the limit of $1.00" in text, text
    assert video_submissions(emu) == 1
    fault_matrix.record_bad_input("Python API", "count 8 at $0.20 over a $1.00 daily limit, $0.20 spent", text, 0, 0)


def test_busy_refusal_says_nothing_was_charged():
    err = E.RunwareRateLimitError("Too many concurrent generations", status=429, code="rateLimitExceeded")
    assert "nothing was charged" in str(err) and "Too many concurrent generations" in str(err)
    fault_matrix.record_bad_input("client", "HTTP 429 busy refusal, surfaced", str(err), 0, 0)


def test_a_1x10000_image_is_reported_with_its_real_size(emu, request, cli):
    from PIL import Image

    d = artifact_dir("details", request.node.name)
    Image.new("RGB", (1, 10000), (90, 90, 90)).save(d / "strip.png")
    code, _, stderr = cli(emu, ["generate", "image-to-video", "--prompt", "a strip", "--model", CHOICES.model,
                                "--first-frame", str(d / "strip.png"), "--out", str(d / "out")], d, "strip")
    assert code != 0
    assert "1x10000" in stderr and "4000" not in stderr.split("1x10000", 1)[1][:20], stderr
    assert "Traceback" not in stderr and emu.stats()["uploads"] == 0 and video_submissions(emu) == 0
    fault_matrix.record_bad_input("CLI", "a 1x10000 px image", stderr.strip().splitlines()[-1], 0, 0)


def test_semicolon_csv_names_the_separator(emu, request, cli):
    d = artifact_dir("details", request.node.name)
    (d / "jobs.csv").write_text(f"workflow;prompt;model\ntext-to-video;a fox;{CHOICES.model}\n")
    code, _, stderr = cli(emu, batch_args(d / "jobs.csv", d / "out"), d, "semicolons")
    assert code == 2, stderr
    assert "separated by semicolons (';')" in stderr and "commas" in stderr, stderr
    assert "no `workflow`" not in stderr and emu.stats()["requests"] == 0
    fault_matrix.record_bad_input("batch", "a CSV job file separated by semicolons", stderr.strip(), 0, 0)
