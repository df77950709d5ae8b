"""Benchmark (not a test): `python -m nodes batch` at scale against the local emulator.

    python tests/bench/batch_scale.py                     # 24 @ 8, 500 @ 16, 500 @ 64, 2 s jobs (~3-4 min)
    python tests/bench/batch_scale.py --runs 24:8,100:32 --job-seconds 3

The emulator runs in its own process (`python -m nodes.emulator`) with a fixed job length; each run
is the real CLI in a fresh subprocess with a fresh ledger and output folder (no reuse). Rows differ by
prompt, not seed, so the emulator renders one small MP4 (v5, 360p, 5 s) once, in a warm-up run of one
job before the figures, and serves it to all:
what is measured is the batch tool (submit, poll, download, probe, ledger, results table), not the
renderer. Printed per run: wall time (the whole command: start-up, checking and estimating
every row, running), run time (from the first submit to the last row, as the command reports it), the ideal (rounds × job length, rounds = ceil(jobs / --jobs)),
run time / ideal, the median time a row took inside the batch, peak RSS and CPU seconds of the batch
process (os.wait4), and the emulator's CPU seconds over the run (/proc). The machine's load average
is printed too: the figures mean something only on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-batch-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_emulator(port: int, job_seconds: float, media: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "nodes.emulator", "--port", str(port), "--job-seconds",
                             str(job_seconds), "--api-key", KEY, "--media-dir", str(media)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the emulator did not start")


def one_run(n: int, jobs: int, job_seconds: float, port: int, emu_pid: int, work: Path) -> dict:
    folder = work / f"{n}x{jobs}"
    folder.mkdir()
    file = folder / "jobs.jsonl"
    with open(file, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"workflow": "text-to-video", "prompt": f"bench shot {i}: a paper boat on a pond",
                                 "model": "pixverse:1@5", "resolution": "360p", "aspect_ratio": "16:9",
                                 "duration": 5, "fps": 16, "seed": 7}) + "\n")
    env = dict(os.environ, RUNWARE_BASE_URL=f"http://127.0.0.1:{port}/v1", RUNWARE_API_KEY=KEY)
    emu_cpu0, t0 = cpu_seconds(emu_pid), time.monotonic()
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "nodes", "batch", str(file), "--jobs", str(jobs),
                                 "--out", str(folder / "out")], cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    rows = [json.loads(line) for line in (folder / "out" / "batch-results.jsonl").read_text().splitlines()]
    ideal = math.ceil(n / jobs) * job_seconds
    summary = (folder / "stderr").read_text().strip().splitlines()[-1]  # "… spent $X in S s; results: …"
    ran = float(summary.rsplit(" in ", 1)[1].split(" s;")[0])
    return {"jobs": n, "at_once": jobs, "exit": code, "done": sum(r["status"] == "done" for r in rows),
            "wall": wall, "ran": ran, "ideal": ideal, "ratio": ran / ideal,
            "row_median": statistics.median(r["seconds"] for r in rows if r["seconds"] is not None),
            "rss_mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime,
            "emu_cpu": cpu_seconds(emu_pid) - emu_cpu0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="24:8,500:16,500:64", help="JOBS:AT_ONCE,… (default %(default)s)")
    ap.add_argument("--job-seconds", type=float, default=2.0)
    a = ap.parse_args()
    runs = [tuple(int(x) for x in r.split(":")) for r in a.runs.split(",")]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; job length {a.job_seconds:g} s")
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        work = Path(tmp)
        (work / "media").mkdir()
        port = free_port()
        emu = start_emulator(port, a.job_seconds, work / "media")
        try:
            one_run(1, 1, a.job_seconds, port, emu.pid, work)  # warm-up: the emulator renders its one MP4 here
            print(f"{'jobs':>5} {'--jobs':>6} {'done':>5} {'wall s':>7} {'run s':>6} {'ideal s':>7} {'×ideal':>6} "
                  f"{'row s':>6} {'peak RSS MB':>11} {'CPU s':>6} {'emu CPU s':>9}  load")
            for n, jobs in runs:
                r = one_run(n, jobs, a.job_seconds, port, emu.pid, work)
                print(f"{r['jobs']:>5} {r['at_once']:>6} {r['done']:>5} {r['wall']:>7.1f} {r['ran']:>6.1f} {r['ideal']:>7.1f} "
                      f"{r['ratio']:>6.2f} {r['row_median']:>6.2f} {r['rss_mb']:>11.0f} {r['cpu']:>6.1f} "
                      f"{r['emu_cpu']:>9.1f}  {os.getloadavg()[0]:.1f}"
                      + ("" if r["exit"] == 0 else f"  (exit {r['exit']}; see {work})"), flush=True)
        finally:
            emu.terminate()
            emu.wait(timeout=30)


if __name__ == "__main__":
    main()
