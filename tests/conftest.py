import logging
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings as _hypothesis_settings

# The same examples on every run, so CI never fails on a draw that a developer's run did not see.
# Set HYPOTHESIS_PROFILE=explore for fresh random draws when hunting bugs.
_hypothesis_settings.register_profile("ci", derandomize=True)
_hypothesis_settings.register_profile("explore", derandomize=False)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fault_matrix  # noqa: E402
import keysafety  # noqa: E402
import seed_page  # noqa: E402
import skips  # noqa: E402

# The whole session runs with one sentinel key: every client the suite makes reads it from here
# (subprocesses inherit it), and test_zz_key_safety checks it was written nowhere.
os.environ["RUNWARE_API_KEY"] = keysafety.SENTINEL_KEY
KEY_SAFETY_MODULE = "test_zz_key_safety.py"


def pytest_configure(config):
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    artifacts = keysafety.prepare()
    (artifacts / "logs").mkdir(exist_ok=True)
    handler = logging.FileHandler(artifacts / "logs" / "session.log", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # every record of the run reaches the file the key check reads
    for noisy in ("PIL", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    keysafety.track_emulators()
    if config.getoption("log_level", None) is None and not config.getini("log_level"):
        config.option.log_level = "INFO"  # what a failure report shows; the session log keeps DEBUG


def pytest_collection_modifyitems(session, config, items):
    """The key check reads what every other test wrote, so it runs last."""
    items.sort(key=lambda item: item.path.name == KEY_SAFETY_MODULE)
    keysafety.COLLECTED.update(item.path.name for item in items)


def pytest_runtest_logreport(report):
    """pytest's captured output (stdout, stderr, log records) of every test, for the key check."""
    captured = [f"--- {report.nodeid} [{report.when}] {title}\n{text}" for title, text in report.sections if text]
    if report.longrepr is not None and report.failed:
        captured.append(f"--- {report.nodeid} [{report.when}] failure\n{report.longreprtext}")
    if captured:
        keysafety.save_text("logs/captured.txt", "\n".join(captured))
    if report.when == "call" and report.passed:
        keysafety.PASSED.add(Path(report.nodeid.split("::")[0]).name)


# In CI (.ci/run sets PIXVERSE_CI=1, the hosted workflow PIXVERSE_CI=hosted) a skip guards nothing: it
# fails unless tests/skips.py allows its reason.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    refused = skips.refusal(reason)
    if refused is not None:
        report.outcome = "failed"
        report.longrepr = refused


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while collected (pytest.importorskip at module level)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        refused = skips.refusal(reason)
        if refused is not None:
            report.outcome = "failed"
            report.longrepr = refused


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = fault_matrix.table()
    if rows:
        terminalreporter.write_sep("=", "fault matrix (pipeline + job ledger against the Runware emulator)")
        for line in rows:
            terminalreporter.write_line(line)
    bad = fault_matrix.bad_input_table()
    if bad:
        terminalreporter.write_sep("=", "bad inputs (refused before any upload or submission; counted on the emulator)")
        for line in bad:
            terminalreporter.write_line(line)
    if fault_matrix.FIGURES:
        terminalreporter.write_sep("=", "measured figures")
        for line in fault_matrix.FIGURES:
            terminalreporter.write_line(line)
    terminalreporter.write_line(f"test artifacts (searched for the sentinel key): {keysafety.ARTIFACTS}")


@pytest.fixture(scope="session")
def seed():
    path = seed_page.seed_path()
    if path is None:
        pytest.skip("seed page not found (../shared/seed/runware-pixverse-provider.md or "
                    "PIXVERSE_SEED_PATH): the spec-vs-seed checks need it")
    return seed_page.parse(path)


@pytest.fixture(scope="session")
def spec():
    from nodes.spec import load_spec
    return load_spec()


@pytest.fixture(scope="module")
def emulator(request):
    """A Runware emulator for a module's real-ComfyUI tests; it accepts only the module's EMULATOR_KEY."""
    from nodes.emulator import EmulatorServer

    with EmulatorServer(job_seconds=1.0, api_key=request.module.EMULATOR_KEY) as emu:
        yield emu


EMU_JOB_SECONDS = 0.3


@pytest.fixture(scope="module")
def emu_server():
    """One emulator per module for pipeline and ledger tests. It accepts only the session's sentinel key,
    so every request proves which key was used; `emu` resets it."""
    from nodes.emulator import EmulatorServer

    with EmulatorServer(job_seconds=EMU_JOB_SECONDS, api_key=keysafety.SENTINEL_KEY) as emu:
        yield emu


@pytest.fixture
def emu(emu_server):
    """The module's emulator, reset before and after the test (a changed job length too)."""
    emu_server.reset()
    emu_server.job_seconds = EMU_JOB_SECONDS
    yield emu_server
    emu_server.reset()
    emu_server.job_seconds = EMU_JOB_SECONDS


@pytest.fixture
def cli(monkeypatch, capsys):
    """`cli(emu, args, log_dir, name)` → (exit status, stdout, stderr) of `python -m nodes ARGS`, run by
    `nodes.cli.main` in this process (jobs.run_cli_here): no Python + torch start-up. A test that kills or
    interrupts the command starts it as a process instead (jobs.start_cli / run_cli)."""
    from jobs import run_cli_here

    def run(emu, args, log_dir, name, timeout=120):
        return run_cli_here(emu, args, log_dir, name, monkeypatch, capsys, timeout=timeout)
    return run


@pytest.fixture
def runner(emu, request):
    from jobs import Runner

    r = Runner(emu, request.node.name)
    yield r
    r.close()
