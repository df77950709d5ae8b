"""Issue 25 in a real ComfyUI (COMFYUI_PATH) against the emulator, with start-ahead on: the balance floor through
a node's `count`, a `count` 5 on an account that renders 2 at once, and start-ahead claiming a node's takes all
or none. Each test asserts what the emulator saw (accepted tasks, busy refusals, how many ran at once).

Skipped, with the reason, when COMFYUI_PATH is unset.
"""
from __future__ import annotations

import asyncio
import struct
import threading
import time

import pytest

import fault_matrix
from support import keysafety
from support.comfy import comfyui_path
from nodes.config import MIN_BALANCE, START_AHEAD
from nodes.emulator import FAKE_COST_PER_SECOND_USD
from nodes.emulator import account as emu_account
from nodes.money import balance as B
from test_comfyui_many import graph, infos, ok, t2v

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

EMULATOR_KEY = keysafety.SENTINEL_KEY


@pytest.fixture
def comfy(money_comfy):
    """conftest's ComfyUI for the money tests, with start ahead on (8) through its setting; the settings file is
    put back after each test (a test may turn it off)."""
    money_comfy.set_setting(START_AHEAD.setting, 8)
    return money_comfy


class ProgressTexts:
    """The nodes' progress texts ComfyUI sends to every client over its websocket (binary event 3: TEXT)."""

    def __init__(self, url: str):
        self.url = url.replace("http://", "ws://").rstrip("/") + "/ws?clientId=pixverse-busy-test"
        self.texts: list[str] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    async def _listen(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url) as ws:
                self.ready.set()
                while not self._stop.is_set():
                    try:
                        msg = await ws.receive(timeout=0.2)
                    except asyncio.TimeoutError:
                        continue
                    if msg.type == aiohttp.WSMsgType.BINARY and struct.unpack(">I", msg.data[:4])[0] == 3:
                        size = struct.unpack(">I", msg.data[4:8])[0]
                        self.texts.append(msg.data[8 + size:].decode("utf-8", "replace"))
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        return

    def __enter__(self) -> "ProgressTexts":
        self._thread.start()
        assert self.ready.wait(10), "no websocket connection to ComfyUI"
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def _error(entry: dict) -> str:
    assert entry["status"]["status_str"] == "error", entry["status"]
    return [d for e, d in entry["status"]["messages"] if e == "execution_error"][0]["exception_message"]


def test_floor_through_a_nodes_count(comfy, emulator):
    """Balance $1.50, floor $0.70: count 3 at $0.299 starts none; count 2 starts both; then count 1 starts none."""
    emulator.reset()
    emulator.job_seconds = 0.5
    emu_account.set_balance(emulator, 1.50)
    try:
        assert comfy.http.post(f"/settings/{MIN_BALANCE.setting}", json=0.70).status_code == 200
        # the shared server may hold a reading from an earlier test: read the $1.50 now (the jobs tab's refresh)
        assert comfy.http.get("/runware/pixverse/balance?refresh=1").json()["balance"] == 1.5
        message = _error(comfy.wait(comfy.queue(graph(t2v("three herons", 70, resolution="1080p", count=3))), 120))
        assert "Balance floor" in message and "3 takes × $0.299 = $0.897" in message, message
        assert emulator.stats()["video_submit_attempts"] == 0 and emulator.stats()["uploads"] == 0
        entry = ok(comfy.wait(comfy.queue(graph(t2v("two herons", 80, resolution="1080p", count=2))), 120))
        assert len(infos(entry, "2")) == 2 and emulator.stats()["video_submissions"] == 2
        message = _error(comfy.wait(comfy.queue(graph(t2v("one heron", 90, resolution="1080p"))), 120))
        assert "Balance floor" in message, message
        assert emulator.stats()["video_submissions"] == 2
        fault_matrix.record("real ComfyUI, floor $0.70, balance $1.50: count 3, count 2, count 1",
                            "none, both, none", 2, 0.0)
    finally:
        comfy.http.post(f"/settings/{MIN_BALANCE.setting}", json="")
        emulator.balance_start, emulator.balance_enforced = None, False


def test_count_5_on_an_account_that_renders_2_at_once(comfy, emulator):
    emulator.reset()
    emulator.max_concurrent = 2
    emulator.job_seconds = 2.0
    t0 = time.monotonic()
    try:  # start-ahead off: the node itself runs its takes (and tells in its progress text)
        assert comfy.http.post(f"/settings/{START_AHEAD.setting}", json=0).status_code == 200
        with ProgressTexts(comfy.url) as progress:
            entry = ok(comfy.wait(comfy.queue(graph(t2v("five lanterns on a busy account", 500, count=5))), 240))
    finally:
        comfy.http.post(f"/settings/{START_AHEAD.setting}", json=8)
    wall = time.monotonic() - t0
    waits = [t for t in progress.texts if "waiting for a free slot at Runware (" in t]
    assert waits, progress.texts[-5:]  # the node's progress text says why a take waits
    shown = infos(entry, "2")
    assert len({i["taskUUID"] for i in shown}) == 5 and all(i["file"] for i in shown)
    stats = emulator.stats()
    assert stats["video_submissions"] == 5 and stats["duplicate_submits"] == 0, stats
    assert stats["peak_running"] <= 2 and stats["busy_refusals"] >= 1, stats
    fault_matrix.record("real ComfyUI, account renders 2 at once: count 5", f"5 videos, at most "
                        f"{stats['peak_running']} running, {stats['busy_refusals']} busy refusals (not billed)", 5, wall)


def test_start_ahead_claims_a_nodes_takes_all_or_none(comfy, emulator):
    """A count 3 node queued behind another prompt, under a limit with room for 2 of its takes: start-ahead starts
    none of them (as the node would), and the node, in its turn, is refused before any upload."""
    emulator.reset()
    emulator.job_seconds = 3.0
    each = 5 * FAKE_COST_PER_SECOND_USD
    ok(comfy.wait(comfy.queue(graph(t2v("a crane alone, so the cost of this kind is known", 600))), 120))
    spent = comfy.http.get("/runware/pixverse/spend").json()["today"]["total"]
    try:
        # the blocker's own cost is counted too: room for it and two takes, not three
        limit = spent + each + 2.5 * each
        assert comfy.http.post("/settings/Runware.PixVerse.DailyLimit", json=limit).status_code == 200
        blocker = comfy.queue(graph(t2v("a slow blocker", 610)))
        waiting = comfy.queue(graph(t2v("three cranes queued early", 620, count=3)))
        ok(comfy.wait(blocker, 120))
        message = _error(comfy.wait(waiting, 120))
        assert "limit" in message and "Nothing was uploaded or submitted" in message, message
        assert emulator.stats()["video_submit_attempts"] == 2  # the first crane and the blocker: no take
        fault_matrix.record("start-ahead, count 3 under a limit with room for 2", "no take started early; the node "
                            "refused all 3 in its turn", 0, 0.0)
    finally:
        comfy.http.post("/settings/Runware.PixVerse.DailyLimit", json="")


def test_start_ahead_on_a_busy_account_waits_for_slots(comfy, emulator):
    """A count 3 prompt queued behind a running one is started early on an account that renders 2 at once: the
    early takes and the running prompt share the window; every video is made, each task accepted once."""
    emulator.reset()
    emulator.max_concurrent = 2
    emulator.job_seconds = 2.0
    t0 = time.monotonic()
    blocker = comfy.queue(graph(t2v("a blocker on a busy account", 700)))
    waiting = comfy.queue(graph(t2v("three takes started early on a busy account", 710, count=3)))
    ok(comfy.wait(blocker, 120))
    entry = ok(comfy.wait(waiting, 240))
    shown = infos(entry, "2")
    assert len({i["taskUUID"] for i in shown}) == 3 and all(i["file"] for i in shown)
    stats = emulator.stats()
    assert stats["video_submissions"] == 4 and stats["duplicate_submits"] == 0, stats
    assert stats["peak_running"] <= 2 and stats["busy_refusals"] >= 1, stats
    early = [line for line in comfy.log().splitlines() if "early task" in line and "is ready" in line]
    assert sum(i["taskUUID"] in " ".join(early) for i in shown) == 3, early  # the three takes were started early
    fault_matrix.record("real ComfyUI, start-ahead on an account that renders 2 at once: blocker + count 3",
                        f"4 videos, at most {stats['peak_running']} running, {stats['busy_refusals']} busy "
                        f"refusals (not billed)", 4, time.monotonic() - t0)
