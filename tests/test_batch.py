"""`python -m nodes batch FILE`: many jobs at once against the emulator over 127.0.0.1, through the CLI's
`main`: in this process where only its output and exit status matter, in a subprocess (as a user runs it)
where it is killed or interrupted. What is counted is what the emulator saw (accepted video tasks,
uploads, how many ran at the same time), not wall time."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support.jobs import CHOICES, start_cli, video_submissions, wait_until
from support.keysafety import artifact_dir, save_text
from skips import CTRL_C_ON_WINDOWS
from nodes.cli.batch.jobfile import read_rows

ROW = {"workflow": "text-to-video", "prompt": CHOICES.prompt, "model": CHOICES.model, "resolution": "360p",
       "aspect_ratio": "16:9", "duration": 5, "fps": 16}


def rows(n: int, **over) -> list[dict]:
    return [{**ROW, "seed": 1000 + i, **over} for i in range(n)]


def write_jsonl(path: Path, items: list) -> Path:
    path.write_text("".join((json.dumps(i) if not isinstance(i, str) else i) + "\n" for i in items))
    return path


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "batch-results.jsonl").read_text().splitlines()]


def accepted_jobs(emu) -> list[tuple[str, float, float]]:
    """(taskUUID, submitted, finished) of every video task the emulator accepted."""
    with emu._lock:  # the emulator's own record of its jobs (test-only peek)
        return [(j.task_uuid, j.submitted_at, j.finished_at or time.time()) for j in emu._jobs.values()]


def max_overlap(jobs: list[tuple[str, float, float]]) -> int:
    edges = sorted([(s, 1) for _, s, _ in jobs] + [(f, -1) for _, _, f in jobs], key=lambda e: (e[0], e[1]))
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def batch_args(file: Path, out: Path, *extra: str) -> list[str]:
    return ["batch", str(file), "--out", str(out), *extra]


@pytest.fixture
def slow_emu(emu):
    emu.job_seconds = 3.0
    yield emu
    emu.job_seconds = 0.3


def test_24_jobs_at_8_at_once_then_a_rerun_costs_nothing(slow_emu, request, cli):
    emu, d = slow_emu, artifact_dir("batch", request.node.name)
    file = write_jsonl(d / "jobs.jsonl", rows(24))
    code, stdout, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "8"), d, "first", timeout=240)
    assert code == 0, stderr
    got = results(d / "out")
    assert [r["line"] for r in got] == list(range(1, 25))
    assert {r["status"] for r in got} == {"done"}
    assert len({r["taskUUID"] for r in got}) == 24 and all(Path(r["file"]).is_file() for r in got)
    assert video_submissions(emu) == 24
    jobs = accepted_jobs(emu)
    overlap = max_overlap(jobs)
    span = max(f for _, _, f in jobs) - min(s for _, s, _ in jobs)
    serial = sum(f - s for _, s, f in jobs)
    save_text("batch/figures.txt", f"24 jobs --jobs 8, 3 s jobs: max {overlap} at once at the emulator, "
                                   f"span {span:.1f} s vs {serial:.1f} s of jobs end to end")
    assert overlap >= 6, f"only {overlap} tasks ran at once"
    assert span <= serial / 2, (span, serial)
    assert "line 24: done" in stdout or "line 24: done" in stdout.replace("\r", "\n")
    with open(d / "out" / "batch-results.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [int(r["line"]) for r in table] == list(range(1, 25)) and table[0]["taskUUID"] == got[0]["taskUUID"]

    code, stdout, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "8"), d, "again", timeout=120)
    assert code == 0, stderr
    again = results(d / "out")
    assert video_submissions(emu) == 24  # no new task
    assert {r["status"] for r in again} == {"reused"}
    assert [r["taskUUID"] for r in again] == [r["taskUUID"] for r in got]


def test_killed_mid_way_then_rerun_pays_each_row_once(emu, request, cli):
    emu.job_seconds = 2.0
    d = artifact_dir("batch", request.node.name)
    file = write_jsonl(d / "jobs.jsonl", rows(12))
    args = batch_args(file, d / "out", "--jobs", "4")
    proc = start_cli(emu, args, d, "killed")
    try:
        assert wait_until(lambda: video_submissions(emu) >= 6, timeout=90), "the batch never got going"
    finally:
        proc.kill()  # SIGKILL; TerminateProcess on Windows
        proc.wait(timeout=30)
    before = video_submissions(emu)
    assert before < 12
    partial = results(d / "out")  # a valid table, one row per input row, whatever the kill interrupted
    assert [r["line"] for r in partial] == list(range(1, 13))
    assert {r["status"] for r in partial} <= {"pending", "running", "done"}

    code, stdout, stderr = cli(emu, args, d, "rerun", timeout=180)
    assert code == 0, stderr
    got = results(d / "out")
    assert {r["status"] for r in got} <= {"done", "reused"} and len(got) == 12
    accepted = [uuid for uuid, _, _ in accepted_jobs(emu)]
    assert video_submissions(emu) == 12 == len(set(accepted)), (before, video_submissions(emu))
    assert sorted(r["taskUUID"] for r in got) == sorted(accepted)  # each row's task accepted exactly once
    assert emu.stats()["duplicate_submits"] == 0


def test_bad_rows_are_reported_by_line_and_the_rest_run(emu, request, cli):
    d = artifact_dir("batch", request.node.name)
    from PIL import Image

    Image.new("RGB", (640, 360), (200, 40, 40)).save(d / "frame.png")
    items = [
        {**ROW, "seed": 1},
        {**ROW, "seed": 2, "colour": "red"},                                   # line 2: unknown key
        {**ROW, "seed": 3, "resolution": "4k"},                                # line 3: a value the model refuses
        {"workflow": "image-to-video", "prompt": "a cat", "first_frame": "missing.png"},  # line 4: no file
        "# a comment line",                                                    # line 5: skipped
        {"workflow": "image-to-video", "prompt": "a cat", "first_frame": "frame.png",
         "model": CHOICES.model, "duration": 99},                              # line 6: bad value, image not sent
        "{not json",                                                           # line 7
        {**ROW, "seed": 8},
    ]
    file = write_jsonl(d / "jobs.jsonl", items)
    code, stdout, stderr = cli(emu, batch_args(file, d / "out"), d, "batch")
    assert code == 1, stderr
    got = {r["line"]: r for r in results(d / "out")}
    assert sorted(got) == [1, 2, 3, 4, 6, 7, 8]
    assert got[1]["status"] == got[8]["status"] == "done"
    assert all(got[n]["status"] == "refused" for n in (2, 3, 4, 6, 7))
    assert "line 2: unknown key colour" in stderr
    assert "line 4: " in stderr and "missing.png" in got[4]["error"]
    assert "duration" in got[6]["error"] and "line 7: not valid JSON" in stderr
    stats = emu.stats()
    assert stats["video_submissions"] == 2 and stats["uploads"] == 0  # nothing of a bad row was sent

    # the message is generate's own, word for word
    bad = ["generate", "text-to-video", "--prompt", CHOICES.prompt, "--model", CHOICES.model, "--resolution", "4k",
           "--aspect-ratio", "16:9", "--duration", "5", "--fps", "16", "--seed", "3", "--out", str(d / "gen")]
    gcode, _, gerr = cli(emu, bad, d, "generate")
    assert gcode == 2
    message = gerr.strip().splitlines()[-1].removeprefix("error: ")
    assert f"line 3: {message}" in stderr and got[3]["error"] == message


def test_every_row_bad_runs_nothing(emu, request, cli):
    d = artifact_dir("batch", request.node.name)
    file = write_jsonl(d / "jobs.jsonl", [{**ROW, "resolution": "4k"}, {"workflow": "upscale", "prompt": "x"}])
    code, _, stderr = cli(emu, batch_args(file, d / "out"), d, "batch")
    assert code == 2 and "no row can run" in stderr
    assert "line 2: argument workflow: invalid choice: 'upscale'" in stderr
    assert emu.stats()["requests"] == 0
    assert [r["status"] for r in results(d / "out")] == ["refused", "refused"]


def test_modify_rows_run_and_a_bad_one_is_reported_by_line(emu, request, cli):
    from PIL import Image

    from nodes.media import render_test_video

    d = artifact_dir("batch", request.node.name)
    render_test_video(d / "clip.mp4", width=480, height=360, fps=12, duration=1.0, with_audio=False)
    Image.new("RGB", (400, 400), (20, 160, 220)).save(d / "look.png")
    modify = {"workflow": "modify", "video": "clip.mp4", "prompt": "make it snow", "resolution": "360p"}
    items = [
        {**modify, "seed": 1},
        {**modify, "seed": 2, "reference_image": "look.png", "audio": True},
        {**modify, "seed": 3, "duration": 5},                                  # line 3: Modify takes no duration
        {**modify, "seed": 4, "resolution": "1080p"},                          # line 4: a tier Modify lacks
        {**modify, "seed": 5, "reference_image": "missing.png"},               # line 5: no file
    ]
    file = write_jsonl(d / "jobs.jsonl", items)
    code, _, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "2"), d, "batch")
    assert code == 1, stderr
    got = {r["line"]: r for r in results(d / "out")}
    assert [got[n]["status"] for n in (1, 2, 3, 4, 5)] == ["done", "done", "refused", "refused", "refused"]
    assert "line 3: unknown key duration; modify takes: " in stderr
    assert "line 4: " in stderr and "resolution" in got[4]["error"] and "1080p" in got[4]["error"]
    assert "line 5: " in stderr and "missing.png" in got[5]["error"]
    tasks = {t["taskUUID"]: t for t in emu.video_tasks()}
    assert len(tasks) == 2 and all(tasks[got[n]["taskUUID"]]["model"] == "pixverse:modify@0" for n in (1, 2))
    with_look = tasks[got[2]["taskUUID"]]
    assert with_look["inputs"]["referenceImages"] and with_look["settings"] == {"audio": True}
    assert emu.stats()["uploads"] == 3  # the clip twice, the image once: nothing of a bad row

    # the same command again: both finished rows come from the ledger, nothing is sent
    code, _, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "2"), d, "again")
    assert code == 1 and len(emu.video_tasks()) == 2
    assert [r["status"] for r in results(d / "out")][:2] == ["reused", "reused"]


def test_usage_errors_exit_2(emu, request, cli):
    d = artifact_dir("batch", request.node.name)
    code, _, stderr = cli(emu, batch_args(d / "nope.jsonl", d / "out"), d, "missing")
    assert code == 2 and "cannot read the job file" in stderr
    (d / "jobs.txt").write_text("x\n")
    code, _, stderr = cli(emu, batch_args(d / "jobs.txt", d / "out"), d, "suffix")
    assert code == 2 and "JSON Lines" in stderr
    assert emu.stats()["requests"] == 0


def test_max_cost_refuses_the_batch_up_front(emu, request, cli):
    d = artifact_dir("batch", request.node.name)
    # v5 at 1080p has a documented price: $0.0598/s × 5 s = $0.299 a row
    file = write_jsonl(d / "jobs.jsonl", rows(4, resolution="1080p"))
    code, _, stderr = cli(emu, batch_args(file, d / "out", "--max-cost", "1"), d, "refused")
    assert code == 1
    assert "expected to cost $1.196" in stderr and "refused" in stderr
    assert emu.stats()["requests"] == 0
    assert {r["status"] for r in results(d / "out")} == {"refused"}
    # unknown costs (360p has no documented price, the ledger no history) are refused under --max-cost ...
    file = write_jsonl(d / "unknown.jsonl", rows(2))
    code, _, stderr = cli(emu, batch_args(file, d / "out2", "--max-cost", "5"), d, "unknown")
    assert code == 1 and "RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST=1" in stderr
    assert emu.stats()["requests"] == 0


def test_max_cost_stops_submitting_when_spent_would_pass_it(emu, request, monkeypatch, cli):
    d = artifact_dir("batch", request.node.name)
    monkeypatch.setenv("RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST", "1")  # subprocesses inherit os.environ
    file = write_jsonl(d / "jobs.jsonl", rows(5))  # each $0.20 at the emulator, unknown beforehand
    code, _, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "1", "--max-cost", "0.5"), d, "batch")
    assert code == 1, stderr
    got = results(d / "out")
    # the first row's cost ($0.20) is learnt, then counted for the others: $0.40 + $0.20 would pass $0.50
    assert [r["status"] for r in got] == ["done", "done", "refused", "refused", "refused"]
    assert "--max-cost $0.50: $0.40 spent" in got[2]["error"]
    assert video_submissions(emu) == 2


def test_max_cost_runs_one_row_of_unknown_cost_at_a_time(emu, request, monkeypatch, cli):
    """Issue 25 §4: five rows of unknown cost, --jobs 5, --max-cost $0.01: one runs, its cost is learnt, and the
    others are refused; the total passes --max-cost by at most that one row's cost."""
    import fault_matrix

    d = artifact_dir("batch", request.node.name)
    monkeypatch.setenv("RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST", "1")
    file = write_jsonl(d / "jobs.jsonl", [{**r, "seed": 2000 + i} for i, r in enumerate(rows(5))])
    t0 = time.monotonic()
    code, _, stderr = cli(emu, batch_args(file, d / "out", "--jobs", "5", "--max-cost", "0.01"), d, "batch")
    assert code == 1, stderr
    got = results(d / "out")
    assert sorted(r["status"] for r in got) == ["done", "refused", "refused", "refused", "refused"], got
    assert video_submissions(emu) == 1 and emu.stats()["peak_running"] == 1
    fault_matrix.record("batch --max-cost $0.01, 5 rows of unknown cost, --jobs 5", "1 runs, its cost learnt; 4 "
                        "refused", video_submissions(emu), time.monotonic() - t0)


def test_csv_input(emu, request, cli):
    d = artifact_dir("batch", request.node.name)
    (d / "jobs.csv").write_text(
        "workflow,prompt,model,resolution,duration,seed,sound_effects\n"
        f'text-to-video,"{CHOICES.prompt}, at night",{CHOICES.model},360p,5,11,true\n'
        "\n"
        f'text-to-video,"a two-line\nprompt",{CHOICES.model},360p,5,12,\n'
        f"text-to-video,a third,{CHOICES.model},360p,5,13,no\n")
    code, stdout, stderr = cli(emu, batch_args(d / "jobs.csv", d / "out"), d, "batch")
    assert code == 0, stderr
    got = results(d / "out")
    assert [r["line"] for r in got] == [2, 4, 6] and {r["status"] for r in got} == {"done"}
    tasks = {t["taskUUID"]: t for t in emu.video_tasks()}
    first = tasks[got[0]["taskUUID"]]
    assert first["positivePrompt"] == f"{CHOICES.prompt}, at night" and first["seed"] == 11
    assert "soundEffectSwitch" in json.dumps(first) and "soundEffectSwitch" not in json.dumps(tasks[got[2]["taskUUID"]])


def test_csv_line_numbers_count_physical_lines(tmp_path):
    path = tmp_path / "jobs.csv"
    path.write_text('workflow,prompt\ntext-to-video,"one\ntwo"\n\ntext-to-video,three\n')
    assert [(r.line, r.values["prompt"]) for r in read_rows(path)] == [(2, "one\ntwo"), (5, "three")]


def test_ctrl_c_stops_submitting_and_the_rerun_resumes(emu, request, cli):
    if os.name == "nt":
        pytest.skip(CTRL_C_ON_WINDOWS)
    emu.job_seconds = 2.0
    d = artifact_dir("batch", request.node.name)
    file = write_jsonl(d / "jobs.jsonl", rows(6))
    args = batch_args(file, d / "out", "--jobs", "2")
    proc = start_cli(emu, args, d, "interrupted")
    assert wait_until(lambda: video_submissions(emu) >= 2, timeout=60)
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    stderr = (d / "interrupted.stderr").read_text()
    assert code == 130, stderr
    stopped_at = video_submissions(emu)
    assert stopped_at < 6
    interrupted = [r for r in results(d / "out") if r["status"] == "interrupted"]
    assert 1 <= len(interrupted) <= 2 and all(r["taskUUID"] for r in interrupted)
    assert f"{len(interrupted)} accepted task(s) are still running" in stderr
    code, _, stderr = cli(emu, args, d, "rerun", timeout=120)
    assert code == 0, stderr
    assert video_submissions(emu) == 6 and emu.stats()["duplicate_submits"] == 0
    assert {r["status"] for r in results(d / "out")} <= {"done", "reused"}


def test_a_results_table_open_in_another_program_never_stops_the_batch(tmp_path, monkeypatch, capsys):
    """Windows cannot replace a file another program holds open (Excel locks the CSV it shows): a write
    along the way leaves the old table, the final one goes beside it under a new name and says so."""
    from nodes.cli.batch import results

    table = results.ResultsTable(tmp_path, [])
    table.write(force=True)
    old = table.csv.read_text(encoding="utf-8")
    real = os.replace

    def locked(src, dst):
        if Path(dst) == table.csv:
            raise PermissionError(13, "The process cannot access the file because it is being used", str(dst))
        return real(src, dst)
    monkeypatch.setattr(results.os, "replace", locked)
    table.write(force=False)  # along the way: no error, the old table stays
    assert table.csv.read_text(encoding="utf-8") == old
    table.write(force=True)  # the final table: beside it
    beside = [p for p in tmp_path.glob("batch-results-*.csv")]
    assert len(beside) == 1 and beside[0].read_text(encoding="utf-8") == old
    err = capsys.readouterr().err
    assert str(table.csv) in err and str(beside[0]) in err and "open in another program" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".batch-results")]  # no temp file left
