"""Issue 17 item 14: .ci/run said "comfy-cli could not be installed" although it was: `pip … | grep -v …`
fails under pipefail when grep prints nothing (pip printed only the filtered warnings). Its `unwarned`
helper is run here, under the script's own shell options, with commands standing in for pip."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / ".ci" / "run"
WARN = "WARNING: Location 'file:///x' is ignored"


def unwarned(command: str) -> tuple[int, str]:
    script = ("set -euo pipefail\n" + re.search(r"^unwarned\(\) \{.*?^\}", RUN.read_text(), re.S | re.M).group(0)
              + f"\nrc=0; unwarned bash -c {shlex.quote(command)} || rc=$?; echo \"rc=$rc\"\n")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    *lines, last = out.stdout.splitlines()
    return int(last.split("=")[1]), "\n".join(lines)


@pytest.mark.parametrize("command,rc,shown", [
    (f'echo "{WARN}"', 0, ""),                        # only the filtered warning: a success (the bug)
    ("true", 0, ""),                                  # silent success (pip -q)
    (f'echo "{WARN}"; echo "real error" >&2; exit 3', 3, "real error"),  # a failure keeps its status
    ('echo "Successfully installed x"', 0, "Successfully installed x")])
def test_unwarned_returns_the_commands_own_status(command, rc, shown):
    assert unwarned(command) == (rc, shown)


def test_no_bare_grep_filter_is_left_under_pipefail():
    code = [line for line in RUN.read_text().splitlines() if not line.lstrip().startswith("#")]
    bare = [line for line in code if re.search(r"\|\s*grep\b", line) and "|| true" not in line]
    assert bare == []
