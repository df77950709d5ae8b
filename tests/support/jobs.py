"""Running pipeline jobs (with a job ledger) against the local emulator, for the ledger and fault tests.

Clients read the key from RUNWARE_API_KEY (the session's sentinel, set by conftest); every ledger,
output, info JSON and error text goes under the session's artifacts folder.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import httpx
import pytest

from support.keysafety import ROOT, artifact_dir, save_text
import workflow_runs as runs
from nodes.job import pipeline
from nodes.client import PollPolicy, RetryPolicy, RunwareClient
from nodes.errors import PixVerseError
from nodes.money.ledger import Ledger
from nodes.requests.tasks import GenerationChoices

FAST_POLL = PollPolicy(first_delay=0.05, factor=1.5, max_delay=0.3, cancel_slice=0.05,
                       lost_after_polls=3, lost_after_seconds=0.5)
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.5, retry_after_cap=5.0)

# The cheapest job the spec allows: v5, 360p, 5 s, 16 fps.
CHOICES = GenerationChoices(model="pixverse:1@5", prompt="a paper boat drifting down a rainy gutter",
                            resolution="360p", aspect_ratio="16:9", duration=5, fps=16, seed=7)


def choices(**over) -> GenerationChoices:
    return CHOICES.model_copy(update=over)


@dataclass
class Outcome:
    result: Optional[pipeline.JobResult]
    error: Optional[BaseException]
    seconds: float

    @property
    def text(self) -> str:
        return str(self.error) if self.error is not None else ""


class Runner:
    """One test's ledger + output folder, and a way to run jobs into them."""

    def __init__(self, emu, name: str):
        self.emu = emu
        self.dir = artifact_dir("jobs", name)
        self.ledger_path = self.dir / "ledger.sqlite3"
        self.ledger = Ledger(self.ledger_path)
        self.out = self.dir / "out"
        self.runs = 0

    def close(self) -> None:
        self.ledger.close()

    def client(self, **kw) -> RunwareClient:
        kw.setdefault("poll_policy", FAST_POLL)
        kw.setdefault("retry_policy", FAST_RETRY)
        return RunwareClient(base_url=self.emu.base_url, **kw)  # the key: RUNWARE_API_KEY

    def opts(self, **kw) -> pipeline.JobOptions:
        kw.setdefault("deadline_s", 30.0)
        kw.setdefault("decode_frames", False)
        kw.setdefault("decode_audio", False)
        kw.setdefault("ledger", self.ledger)
        kw.setdefault("output_dir", self.out)
        return pipeline.JobOptions(**kw)

    async def _go(self, job, client_kw: dict, opt_kw: dict):
        async with self.client(**client_kw) as client:
            return await job(client, self.opts(**opt_kw))

    def attempt(self, job=None, *, client_kw: Optional[dict] = None, **opt_kw) -> Outcome:
        """Run `job(client, opts)` (default: text-to-video with CHOICES); errors of ours are returned."""
        job = job or (lambda client, opts: runs.text_to_video(client, CHOICES, opts))
        self.runs += 1
        t0 = time.monotonic()
        try:
            result = asyncio.run(self._go(job, client_kw or {}, opt_kw))
        except PixVerseError as exc:
            save_text(f"jobs/{self.dir.name}/errors.txt", f"run {self.runs}: {type(exc).__name__}: {exc}")
            return Outcome(None, exc, time.monotonic() - t0)
        save_text(f"jobs/{self.dir.name}/info.jsonl", result.info_json().replace("\n", " "))
        return Outcome(result, None, time.monotonic() - t0)

    def run(self, job=None, **kw) -> pipeline.JobResult:
        outcome = self.attempt(job, **kw)
        if outcome.error is not None:
            raise outcome.error
        return outcome.result

    def entry(self, task_uuid: str):
        return self.ledger.get(task_uuid)


def video_submissions(emu) -> int:
    return emu.stats()["video_submissions"]


def read_timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(connect=5.0, read=seconds, write=5.0, pool=5.0)


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nodes", *args]


def cli_generate_args(out: Path, ledger: Path, prompt: str = CHOICES.prompt, deadline: float = 60) -> list[str]:
    return ["generate", "text-to-video", "--prompt", prompt, "--model", CHOICES.model, "--resolution", "360p",
            "--aspect-ratio", "16:9", "--duration", "5", "--fps", "16", "--seed", "7", "--out", str(out),
            "--ledger", str(ledger), "--deadline", str(deadline)]


def cli_env(emu) -> dict[str, str]:
    env = dict(os.environ)  # RUNWARE_API_KEY: the sentinel
    env.update(RUNWARE_BASE_URL=emu.base_url, PYTHONUNBUFFERED="1")
    return env


def start_cli(emu, args: list[str], log_dir: Path, name: str) -> subprocess.Popen:
    out = open(log_dir / f"{name}.stdout", "wb")
    err = open(log_dir / f"{name}.stderr", "wb")
    return subprocess.Popen(cli_command(*args), cwd=ROOT, env=cli_env(emu), stdout=out, stderr=err)


def run_cli(emu, args: list[str], log_dir: Path, name: str, timeout: float = 120) -> tuple[int, str, str]:
    proc = subprocess.run(cli_command(*args), cwd=ROOT, env=cli_env(emu), capture_output=True, timeout=timeout)
    stdout, stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    (log_dir / f"{name}.stdout").write_text(stdout)
    (log_dir / f"{name}.stderr").write_text(stderr)
    return proc.returncode, stdout, stderr


def run_cli_here(emu, args: list[str], log_dir: Path, name: str, monkeypatch, capsys,
                 timeout: float = 120) -> tuple[int, str, str]:
    """`python -m nodes ARGS` in this process (`nodes.cli.main`): run_cli's result without a Python + torch
    start-up. For tests of what the command prints and returns; killing and signals need run_cli/start_cli.
    It runs in a worker thread so that `timeout` holds as it does for run_cli: past it, the test fails (the
    thread, which cannot be killed, is left to end with the session)."""
    import threading

    from nodes.cli import main as cli

    monkeypatch.setenv("RUNWARE_BASE_URL", emu.base_url)  # RUNWARE_API_KEY: the sentinel, as for run_cli
    capsys.readouterr()  # what was printed before is not this command's
    ended: list = []

    def work() -> None:
        try:
            ended.append(("code", cli.main([str(a) for a in args])))
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            ended.append(("raised", exc))

    worker = threading.Thread(target=work, name=f"cli-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not ended:
        stdout, stderr = capsys.readouterr()
        (log_dir / f"{name}.stdout").write_text(stdout, encoding="utf-8")
        (log_dir / f"{name}.stderr").write_text(stderr, encoding="utf-8")
        pytest.fail(f"python -m nodes {' '.join(map(str, args))} did not end within {timeout:g} s")
    what, value = ended[0]
    if what == "raised":
        raise value
    code = value
    stdout, stderr = capsys.readouterr()
    (log_dir / f"{name}.stdout").write_text(stdout, encoding="utf-8")
    (log_dir / f"{name}.stderr").write_text(stderr, encoding="utf-8")
    return code, stdout, stderr


class Press:
    """A cancel check (JobOptions.cancel_check) pressed the first time `when()` holds — an event such as an
    emulator counter, never a clock. It remembers when it was pressed and what the emulator had counted
    then, so a test bounds what happened after the cancel by counters or by a fraction of the stall it
    injected, not by a wall-clock figure a loaded machine can miss."""

    def __init__(self, emu, when):
        self.emu, self.when = emu, when
        self.at: Optional[float] = None
        self.counted: dict = {}

    def __call__(self) -> bool:
        if self.at is None and self.when():
            self.at, self.counted = time.monotonic(), self.emu.stats()
        return self.at is not None

    def since(self) -> float:
        assert self.at is not None, "the cancel was never pressed"
        return time.monotonic() - self.at

    def more(self, counter: str) -> int:
        """How many more `counter` (an emulator stat: polls, uploads, …) happened after the press."""
        assert self.at is not None, "the cancel was never pressed"
        return self.emu.stats()[counter] - self.counted[counter]


def wait_until(predicate, timeout: float = 30.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def value_of(stdout: str, label: str) -> Optional[str]:
    for line in stdout.splitlines():
        if line.startswith(label + ":"):
            return line.split(":", 1)[1].strip()
    return None


def dead_pid() -> int:
    """The pid of a process that has exited (for a ledger row whose owner died)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout.strip())




def frame(seed: int, h: int = 360, w: int = 640):
    """A random IMAGE tensor [1,h,w,3] (a different picture per seed)."""
    import numpy as np
    import torch

    g = np.random.default_rng(seed)
    return torch.from_numpy(g.random((1, h, w, 3), dtype=np.float32))
