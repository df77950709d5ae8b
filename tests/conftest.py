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
from support import keysafety, workers
from support.emulators import BROWSER_KEY, COMFY_JOB_SECONDS, EMU_JOB_SECONDS, reset_emulator  # noqa: E402
import seed_page  # noqa: E402
import skips  # noqa: E402

# The whole session runs with one sentinel key: every client the suite makes reads it from here
# (subprocesses inherit it), and test_zz_key_safety checks it was written nowhere.
os.environ["RUNWARE_API_KEY"] = keysafety.SENTINEL_KEY
KEY_SAFETY_MODULE = "test_zz_key_safety.py"


WORKER = None  # this process's xdist worker ("gw0", …); None without workers and in the controller


def pytest_configure(config):
    global WORKER
    WORKER = workers.worker_id(config)
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


# Tiers (markers registered in pyproject.toml), applied here so no test module has to say it:
#   comfyui - uses a real ComfyUI (the `comfy_pool` fixture, directly or through `comfy`/`comfy_server`);
#   browser - drives Chromium (the `browser` fixture); always also `comfyui`;
#   slow    - both of the above, and the tests without ComfyUI in SLOW_TESTS (3 s or more each on the 2-core
#             machine: processes started and killed, many jobs, a 100 MP picture).
# The tier without ComfyUI: pytest -m "not comfyui and not browser"; the fastest loop: pytest -m "not slow".
SLOW_TESTS = {
    "test_fault_matrix.py": {"test_cli_runs_of_unknown_cost_at_once_hold_the_limit",
                             "test_cli_killed_mid_poll_resumes_the_same_task",
                             "test_cli_after_payment_failure_is_a_clear_error",
                             "test_takes_wait_with_the_others_for_a_run_of_unknown_cost",
                             "test_cancel_during_a_submit_runware_never_took_is_settled_lost",
                             "test_two_processes_racing", "test_a_ledger_locked_after_the_submit_holds_the_loop_briefly",
                             "test_cancel_during_a_stalled_submit_then_settled_in_the_background",
                             "test_runware_unavailable_for_a_while", "test_runs_of_unknown_cost_at_once_wait_for_the_first_ones_cost",
                             "test_dripping_download_ends_by_the_deadline"},
    "test_batch.py": {"test_24_jobs_at_8_at_once_then_a_rerun_costs_nothing", "test_ctrl_c_stops_submitting_and_the_rerun_resumes",
                      "test_killed_mid_way_then_rerun_pays_each_row_once", "test_max_cost_stops_submitting_when_spent_would_pass_it"},
    "test_bad_input.py": {"test_huge_png_is_reduced_while_loading_with_bounded_memory"},
    "test_new_model_and_setting.py": {"test_the_cli_lists_and_takes_them"},
    "test_emulator.py": {"test_a_state_folder_remembers_tasks_across_restarts"},
    "test_runware_sdk.py": {"test_the_official_sdk_drives_the_emulator"},
}


# With workers (`-n`, tests/support/workers.py), the real-ComfyUI tests of one group run in one worker, so each
# pooled ComfyUI is started once per session: the browser tests of each frontend (a server of their own per
# frontend) are a group each, every other real-ComfyUI test is one group.
def comfy_group(item, browser: bool) -> str:
    if not browser:
        return "comfyui"
    params = getattr(getattr(item, "callspec", None), "params", {})
    frontend = params.get("frontend")
    return f"comfyui-browser-{frontend[0] if frontend else 'pinned'}"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups and pytest's -m reads the tiers
def pytest_collection_modifyitems(session, config, items):
    """Tier markers and ComfyUI groups; the key check reads what every other test wrote, so it runs last."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        browser = "browser" in names or item.path.name.startswith("test_browser")
        comfyui = browser or "comfy_pool" in names
        if browser:
            item.add_marker(pytest.mark.browser)
        if comfyui:
            item.add_marker(pytest.mark.comfyui)
            item.add_marker(pytest.mark.xdist_group(comfy_group(item, browser)))
        if comfyui or item.originalname in SLOW_TESTS.get(item.path.name, ()):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.path.name == KEY_SAFETY_MODULE)
    keysafety.COLLECTED.update(item.path.name for item in items)


def pytest_collection_finish(session):
    """The tests the key check waits for when workers share the session (every one but its own)."""
    if WORKER is not None and session.config.getvalue("loadgroup"):
        ungrouped = [item.nodeid for item in session.items
                     if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
        if ungrouped:  # each worker would start its own ComfyUI of every kind
            raise pytest.UsageError(f"--dist loadgroup did not group {ungrouped[0]} (pytest {pytest.__version__} with "
                                    "this pytest-xdist; requirements-dev.txt pins the pytest that works)")
    workers.OTHERS.update(item.nodeid for item in session.items if item.path.name != KEY_SAFETY_MODULE)


def pytest_runtest_logreport(report):
    """pytest's captured output (stdout, stderr, log records) of every test, for the key check."""
    captured = [f"--- {report.nodeid} [{report.when}] {title}\n{text}" for title, text in report.sections if text]
    if report.longrepr is not None and report.failed:
        captured.append(f"--- {report.nodeid} [{report.when}] failure\n{report.longreprtext}")
    if captured:
        keysafety.save_text("logs/captured.txt", "\n".join(captured))
    if report.when == "call" and report.passed:
        keysafety.PASSED.add(Path(report.nodeid.split("::")[0]).name)
        workers.module_passed(WORKER, Path(report.nodeid.split("::")[0]).name)
    if report.when == "teardown":
        workers.test_ended(WORKER, report.nodeid)


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


def pytest_sessionfinish(session):
    if WORKER is not None:  # the controller prints the summary: this worker's rows go to it
        workers.save_summary(WORKER, fault_matrix, COMFY_STARTS)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if workers.is_controller(config):
        workers.merged_summary(fault_matrix, COMFY_STARTS)
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
    if COMFY_STARTS:
        terminalreporter.write_line(f"ComfyUI started {len(COMFY_STARTS)} times: {', '.join(COMFY_STARTS)}")
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


# -- real ComfyUI: one emulator and one server per kind for the whole session ------------------------

COMFY_STARTS: list[str] = []  # the kinds of ComfyUI servers started this session, in order (the summary says)


@pytest.fixture(scope="session")
def session_emulator():
    """The Runware emulator every pooled ComfyUI talks to. It accepts only the session's sentinel key."""
    from nodes.emulator import EmulatorServer

    with EmulatorServer(job_seconds=COMFY_JOB_SECONDS, api_key=keysafety.SENTINEL_KEY) as emu:
        yield emu


@pytest.fixture(scope="session")
def browser_emulator():
    """The emulator of the browser servers: it accepts only the key the user enters in the settings dialog
    (test_browser.SENTINEL_KEY). That key is stored in the user folder, which the final key search reads, so
    it is not the session's."""
    from nodes.emulator import EmulatorServer

    with EmulatorServer(job_seconds=COMFY_JOB_SECONDS, api_key=BROWSER_KEY) as emu:
        yield emu


@pytest.fixture
def emulator(session_emulator):
    """The session's emulator, reset before the test (a real-ComfyUI or browser test)."""
    reset_emulator(session_emulator, COMFY_JOB_SECONDS)
    yield session_emulator


@pytest.fixture(scope="session")
def comfy_pool():
    """ComfyUI servers by kind (tests/support/comfy.py), each started once and stopped at the session's end.
    Their base folders live under the session's artifacts, which the final key search scans."""
    from support.comfy import ComfyPool, comfyui_path

    if comfyui_path() is None:
        pytest.skip("COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")
    pool = ComfyPool(keysafety.ARTIFACTS, started=COMFY_STARTS)
    yield pool
    for tail in pool.close():
        keysafety.save_text("logs/comfyui-tails.txt", tail)


def main_kind(emulator_url: str):
    from support.comfy import ServerKind, pack_env

    return ServerKind("main", pack_env(emulator_url, keysafety.SENTINEL_KEY))


@pytest.fixture(scope="session")
def comfy_server(comfy_pool, session_emulator):
    """The ComfyUI most real-ComfyUI modules share: the session's key in its environment, every
    RUNWARE_PIXVERSE_* variable empty (the settings decide), the session's emulator as Runware."""
    return comfy_pool.get(main_kind(session_emulator.base_url))


def _one_test(server):
    """A pooled ComfyUI for one test: idle at the start; its settings put back and its queue emptied after."""
    server.settle()
    snapshot = server.settings_snapshot()
    yield server
    server.settle()
    server.restore_settings(snapshot)


@pytest.fixture
def comfy(comfy_server, emulator):
    """The shared ComfyUI for one test: idle at the start; its settings put back and its queue emptied after."""
    yield from _one_test(comfy_server)


@pytest.fixture
def money_comfy(comfy_pool, session_emulator, emulator):
    """A ComfyUI of the money tests' own (the floor, today's spend, start-ahead's claims): they read what the
    ledger holds since a balance reading or today, which the shared server's ledger would move under them (other
    modules' runs, and the paid tasks those leave to background follow-ups). Shared by those modules only."""
    from support.comfy import ServerKind, pack_env

    server = comfy_pool.get(ServerKind("money", pack_env(session_emulator.base_url, keysafety.SENTINEL_KEY)))
    yield from _one_test(server)




@pytest.fixture(scope="module")
def emu_server():
    """One emulator per module for pipeline and ledger tests. It accepts only the session's sentinel key,
    so every request proves which key was used; `emu` resets it."""
    from nodes.emulator import EmulatorServer

    with EmulatorServer(job_seconds=EMU_JOB_SECONDS, api_key=keysafety.SENTINEL_KEY) as emu:
        yield emu


@pytest.fixture
def emu(emu_server):
    """The module's emulator, reset before and after the test (a changed job length, layouts and balance too)."""
    reset_emulator(emu_server, EMU_JOB_SECONDS)
    emu_server.dry_run = False
    yield emu_server
    reset_emulator(emu_server, EMU_JOB_SECONDS)
    emu_server.dry_run = False


@pytest.fixture
def make_emulator():
    """`make_emulator(**options)` → a started EmulatorServer of its own (another key, spec, layouts or state
    folder than the module's), stopped after the test."""
    from nodes.emulator import EmulatorServer

    started = []

    def make(**options):
        emu = EmulatorServer(**options).start()
        started.append(emu)
        return emu
    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def cli(monkeypatch, capsys):
    """`cli(emu, args, log_dir, name)` → (exit status, stdout, stderr) of `python -m nodes ARGS`, run by
    `nodes.cli.main` in this process (jobs.run_cli_here): no Python + torch start-up. A test that kills or
    interrupts the command starts it as a process instead (jobs.start_cli / run_cli)."""
    from support.jobs import run_cli_here

    def run(emu, args, log_dir, name, timeout=120):
        return run_cli_here(emu, args, log_dir, name, monkeypatch, capsys, timeout=timeout)
    return run


@pytest.fixture
def runner(emu, request):
    from support.jobs import Runner

    r = Runner(emu, request.node.name)
    yield r
    r.close()
