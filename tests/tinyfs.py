"""Small real file systems for the full-disk and read-only cases: a tmpfs mounted for one test.

Needs root and the right to mount (this machine's containers have both); elsewhere the tests that
use it are skipped with that reason printed.
"""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


class TinyFS:
    def __init__(self, path: Path, size_bytes: int):
        self.path = path
        self.size_bytes = size_bytes

    def remount(self, *options: str) -> None:
        subprocess.run(["mount", "-o", ",".join(("remount",) + options), str(self.path)], check=True,
                       capture_output=True)

    def read_only(self) -> None:
        self.remount("ro")

    def writable(self) -> None:
        self.remount("rw")

    def fill(self, leave_bytes: int) -> Path:
        """Write a filler file until only about `leave_bytes` are free."""
        filler = self.path / "filler.bin"
        free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
        with open(filler, "ab") as fh:
            fh.write(b"\0" * max(0, free - leave_bytes))
        return filler


@contextmanager
def tiny_fs(where: Path, size_bytes: int) -> Iterator[TinyFS]:
    where.mkdir(parents=True, exist_ok=True)
    if os.name != "posix" or os.geteuid() != 0 or not Path("/proc/filesystems").is_file():
        pytest.skip("mounting a small tmpfs needs Linux and root; this case runs where the suite runs as root "
                    "(.ci/run)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield TinyFS(where, size_bytes)
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
