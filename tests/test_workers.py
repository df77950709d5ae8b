"""The session spread over pytest-xdist workers (tests/support/workers.py): the key check waits for every
other test, and the controller's summary holds every worker's rows."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

import fault_matrix
from support import workers


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "FOLDER", tmp_path / "workers")
    return tmp_path / "workers"


def test_the_wait_ends_when_the_last_test_ends_on_any_worker(folder):
    expected = {"tests/a.py::one", "tests/b.py::two@comfyui"}
    workers.test_ended("gw0", "tests/a.py::one")
    assert workers.wait_for_the_others(expected, timeout_s=0.3) == ["tests/b.py::two@comfyui"]  # a dead worker
    assert workers.wait_for_the_others(expected, idle_s=0.3) == ["tests/b.py::two@comfyui"]  # nothing ends any more
    ended = threading.Event()
    missing: list = []

    def wait():
        missing.extend(workers.wait_for_the_others(expected, timeout_s=30))
        ended.set()
    threading.Thread(target=wait, daemon=True).start()
    assert not ended.wait(0.8)  # still waiting for gw1's test
    workers.test_ended("gw1", "tests/b.py::two@comfyui")
    assert ended.wait(10) and missing == []


def test_passed_modules_are_read_from_every_worker(folder):
    workers.module_passed("gw0", "test_fault_matrix.py")
    workers.module_passed("gw2", "test_comfyui_integration.py")
    workers.module_passed(None, "test_ledger.py")  # a session without workers
    assert workers.passed_modules() == {"test_fault_matrix.py", "test_comfyui_integration.py", "test_ledger.py"}


def test_the_controller_prints_every_workers_rows(folder):
    def matrix(rows=(), bad=(), figures=()):
        return SimpleNamespace(ROWS=list(rows), BAD_INPUTS=list(bad), FIGURES=list(figures),
                               Row=fault_matrix.Row, BadInput=fault_matrix.BadInput)
    workers.save_summary("gw0", matrix([fault_matrix.Row("a fault", "an outcome", "1", 0.5)]), ["main"])
    workers.save_summary("gw1", matrix(bad=[fault_matrix.BadInput("CLI", "prompt", "too long", 0, 0)],
                                       figures=["decode: 1.0 s"]), ["browser-pinned"])
    controller, starts = matrix(), []
    workers.merged_summary(controller, starts)
    assert [r.fault for r in controller.ROWS] == ["a fault"] and controller.ROWS[0].seconds == 0.5
    assert [b.input for b in controller.BAD_INPUTS] == ["prompt"] and controller.FIGURES == ["decode: 1.0 s"]
    assert starts == ["main", "browser-pinned"]
