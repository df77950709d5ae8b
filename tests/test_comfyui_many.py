"""Many videos at once in a real ComfyUI (COMFYUI_PATH) against the emulator: `count` on the generators,
and queued prompts started early (RUNWARE_PIXVERSE_START_AHEAD).

Speed is shown, not timed: each test asserts what could fail on any machine (tasks accepted, tasks
that overlapped at the emulator, nothing sent when refused) and prints the wall time against the
job length for docs/benchmarks.md (fault_matrix.FIGURES).

Skipped, with the reason, when COMFYUI_PATH is unset.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

import fault_matrix
from support import keysafety
from support.comfy import ServerKind, comfyui_path, generator_defaults, generator_values, pack_env
from nodes.emulator import FAKE_COST_PER_SECOND_USD
from nodes.spec import load_spec

pytestmark = pytest.mark.skipif(comfyui_path() is None,
                                reason="COMFYUI_PATH is not set: no ComfyUI checkout to run the nodes in")

KEY = keysafety.SENTINEL_KEY
SPEC = load_spec()
T2V = "RunwarePixVerseTextToVideo"
I2V = "RunwarePixVerseImageToVideo"
MB = 1 << 20


def t2v(prompt: str, seed: int, **over) -> dict:
    return generator_values(prompt=prompt, seed=seed, **{"fps": 24, **over})


def graph(values: dict, frames: bool = False) -> dict:
    g = {"1": {"class_type": T2V, "inputs": values},
         "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}}}
    if frames:
        g["3"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 1]}}
    return g


def i2v_graph(image: str, prompt: str, seed: int) -> dict:
    values = generator_defaults(image_to_video=True)
    values.update(model=SPEC.model("pixverse:1@5").label, prompt=prompt, resolution="360p", duration=5,
                  aspect_ratio="auto", fps=24, seed=seed)
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": I2V, "inputs": {"first_frame": ["1", 0], **values}},
            "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}}}


def infos(entry: dict, node: str = "2") -> list[dict]:
    return [json.loads(t) for t in entry["outputs"][node]["text"]]


def ok(entry: dict) -> dict:
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:3000]
    return entry


def max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def ledger_rows(comfy) -> list[dict]:
    path = comfy.user_dir / "runware" / "pixverse-ledger.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY created_at")]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def submissions(emulator) -> int:
    return emulator.stats()["video_submissions"]


# `comfy` is conftest's shared ComfyUI: start ahead off (its setting is unset; the variable is empty)


# -- count -------------------------------------------------------------------------------------

def test_count_makes_four_videos_at_once(comfy, emulator):
    emulator.reset()
    emulator.job_seconds = 6.0
    t0 = time.monotonic()
    entry = ok(comfy.wait(comfy.queue(graph(t2v("four takes of a red kite over a beach", 10, count=4))), 240))
    wall = time.monotonic() - t0
    shown = infos(entry, "2")
    assert sorted(i["seed"] for i in shown) == [10, 11, 12, 13]
    assert len({i["taskUUID"] for i in shown}) == 4 and all(i["file"] for i in shown)
    assert emulator.stats()["video_submissions"] == 4
    overlap = max_overlap(emulator.job_spans())
    assert overlap == 4, f"the four tasks ran {overlap} at a time"
    fault_matrix.FIGURES.append(f"count 4, 6 s jobs, real ComfyUI: {wall:.1f} s = {wall / 6:.2f} job lengths "
                                f"(4 tasks accepted, {overlap} at once)")
    # run again with the frames wired (ComfyUI's cache cannot answer): each variation is its own ledger row, reused
    entry = ok(comfy.wait(comfy.queue(graph(t2v("four takes of a red kite over a beach", 10, count=4),
                                            frames=True)), 120))
    assert emulator.stats()["video_submissions"] == 4
    assert {i["source"] for i in infos(entry, "2")} == {"reused"}


def test_count_one_behaves_as_before(comfy, emulator):
    emulator.reset()
    emulator.job_seconds = 0.5
    entry = ok(comfy.wait(comfy.queue(graph(t2v("a single paper crane", 3, count=1))), 120))
    assert len(infos(entry, "2")) == 1 and emulator.stats()["video_submissions"] == 1


def test_count_with_frames_keeps_memory_per_video(comfy, emulator):
    emulator.reset()
    emulator.job_seconds = 0.5
    pid = comfy.proc.pid
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    before = _status(pid, "VmRSS")
    values = t2v("a windmill turning at dusk", 20, count=4, resolution="720p")
    # the frames go to a node that reads their shape (not PreviewImage, whose 480 PNGs would cost minutes
    # and memory of their own): it runs once per video
    prompt = {**graph(values), "3": {"class_type": "GetImageSize", "inputs": {"image": ["1", 1]}},
              "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 2]}}}
    entry = ok(comfy.wait(comfy.queue(prompt), 300))
    peak = _status(pid, "VmHWM")
    one = 1280 * 720 * 3 * 4 * 24 * 5  # one decoded 720p 5 s video as float32
    assert entry["outputs"]["4"]["text"] == ["120"] * 4, entry["outputs"]["4"]  # 4 videos of 5 s at 24 fps
    fault_matrix.FIGURES.append(f"count 4 × 720p 5 s with frames wired: ComfyUI peak RSS {peak / MB:.0f} MB "
                                f"(idle {before / MB:.0f} MB; one video's frames {one / MB:.0f} MB)")
    assert peak - before < 4 * one + 1500 * MB


def test_count_over_the_daily_limit_is_refused_before_any_upload(comfy, emulator):
    """All or none: a limit with room for two of the three takes starts none of them."""
    emulator.reset()
    emulator.job_seconds = 0.5
    values = t2v("three foxes in a meadow", 40, count=3)
    each = 5 * FAKE_COST_PER_SECOND_USD  # the emulator's price of a 5 s video
    ok(comfy.wait(comfy.queue(graph(t2v("a fox alone, so the cost of this kind is known", 39))), 120))
    spent = comfy.http.get("/runware/pixverse/spend").json()["today"]["total"]
    before = emulator.stats()["video_submit_attempts"], emulator.stats()["uploads"]
    try:
        assert comfy.http.post("/settings/Runware.PixVerse.DailyLimit", json=spent + 2.5 * each).status_code == 200
        entry = comfy.wait(comfy.queue(graph(values)), 120)
        assert entry["status"]["status_str"] == "error"
        message = [d for e, d in entry["status"]["messages"] if e == "execution_error"][0]["exception_message"]
        assert "limit" in message and "Nothing was uploaded or submitted" in message, message
        assert (emulator.stats()["video_submit_attempts"], emulator.stats()["uploads"]) == before
        # room for all three: all three start
        assert comfy.http.post("/settings/Runware.PixVerse.DailyLimit", json=spent + 3.5 * each).status_code == 200
        entry = ok(comfy.wait(comfy.queue(graph(values)), 120))
        assert len(infos(entry, "2")) == 3 and emulator.stats()["video_submit_attempts"] == before[0] + 3
    finally:
        comfy.http.post("/settings/Runware.PixVerse.DailyLimit", json="")


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


# -- start queued prompts early ------------------------------------------------------------------

def _queue_six(server, tag: str) -> list[str]:
    return [server.queue(graph(t2v(f"{tag}: lantern number {i} floating on a lake", 100 + i))) for i in range(6)]


def test_six_queued_prompts_without_start_ahead_run_one_by_one(comfy, emulator):
    emulator.reset()
    emulator.job_seconds = 2.0
    ids = _queue_six(comfy, "off")
    for pid in ids:
        ok(comfy.wait(pid, 120))
    assert emulator.stats()["video_submissions"] == 6
    assert max_overlap(emulator.job_spans()) == 1


@pytest.fixture
def ahead(comfy):
    """The shared ComfyUI with start ahead set to 8 through its setting (put back after the test)."""
    from PIL import Image

    pixels = (np.random.default_rng(5).random((360, 640, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(comfy.input_dir / "still.png")
    comfy.set_setting("Runware.PixVerse.StartAhead", 8)
    return comfy


def test_six_queued_prompts_start_early(ahead, emulator):
    emulator.reset()
    emulator.job_seconds = 8.0
    t0 = time.monotonic()
    ids = _queue_six(ahead, "ahead")
    entries = [ok(ahead.wait(pid, 240)) for pid in ids]
    wall = time.monotonic() - t0
    assert emulator.stats()["video_submissions"] == 6  # one task per prompt
    tasks = [infos(e, "2")[0]["taskUUID"] for e in entries]
    assert len(set(tasks)) == 6
    overlap = max_overlap(emulator.job_spans())
    assert overlap >= 5, f"only {overlap} tasks ran at once"
    fault_matrix.FIGURES.append(f"6 queued prompts, 8 s jobs, start ahead on: {wall:.1f} s = {wall / 8:.2f} job "
                                f"lengths (6 tasks, {overlap} at once)")


def test_image_from_load_image_starts_early_with_the_same_task(ahead, emulator):
    emulator.reset()
    emulator.job_seconds = 8.0
    first = ahead.queue(graph(t2v("a queue keeper", 7)))  # runs now; the next one waits and starts early
    second = ahead.queue(i2v_graph("still.png", "the lake ripples", 8))
    wait_for(lambda: submissions(emulator) == 2, 30, "the waiting prompt's task is sent early")
    assert first not in ahead.http.get(f"/history/{first}").json()  # while the first prompt still runs
    ok(ahead.wait(first, 120))
    entry = ok(ahead.wait(second, 120))
    assert emulator.stats()["video_submissions"] == 2 and emulator.stats()["image_uploads"] == 1
    assert infos(entry, "3")[0]["source"] in ("resumed", "reused")


def test_a_prompt_deleted_after_its_early_start_still_delivers(ahead, emulator):
    emulator.reset()
    emulator.job_seconds = 3.0
    blocker = ahead.queue(graph(t2v("a slow blocker", 50)))
    doomed = ahead.queue(graph(t2v("a prompt removed from the queue", 51)))
    wait_for(lambda: submissions(emulator) == 2, 30, "the waiting prompt's task is sent early")
    assert ahead.http.post("/queue", json={"delete": [doomed]}).status_code == 200
    ok(ahead.wait(blocker, 120))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = [r for r in ledger_rows(ahead) if json.loads(r["request"] or "{}").get("seed") == 51
                and "a prompt removed from the queue" in json.loads(r["request"]).get("positivePrompt", "")]
        if rows and rows[0]["status"] == "finished":
            break
        time.sleep(0.5)
    assert rows and rows[0]["status"] == "finished", rows
    assert (ahead.output_dir / "pixverse" / f"pixverse_{rows[0]['task_uuid']}.mp4").is_file()
    assert emulator.stats()["video_submissions"] == 2


def test_early_start_respects_a_limit_that_refuses(ahead, emulator):
    emulator.reset()
    emulator.job_seconds = 2.0
    ahead.set_setting("Runware.PixVerse.DailyLimit", 0.0001)  # put back by the fixture after the test
    ahead.set_setting("Runware.PixVerse.AllowUnknownCost", True)
    ids = [ahead.queue(graph(t2v(f"refused lantern {i}", 300 + i))) for i in range(3)]
    for pid in ids:
        entry = ahead.wait(pid, 120)
        assert entry["status"]["status_str"] == "error", entry["status"]
        errors = [d for e, d in entry["status"]["messages"] if e == "execution_error"]
        assert errors, entry["status"]
        message = errors[0]["exception_message"]
        assert errors[0]["exception_type"].endswith("PixVerseBudgetError"), errors[0]
        assert "Daily spending limit" in message and "Nothing was uploaded or submitted" in message, message
    assert emulator.stats()["video_submit_attempts"] == 0


def _settings(**values):
    """A `prepare` for a pooled server: the user's ComfyUI settings file written before the start."""
    def write(base):
        (base / "user" / "default").mkdir(parents=True, exist_ok=True)
        (base / "user" / "default" / "comfy.settings.json").write_text(json.dumps(values))
    return write


def test_restart_with_early_tasks_loses_nothing_and_pays_once(comfy_pool, emulator):
    """A server of its own: it is killed mid-run, and its ledger must hold only this test's tasks."""
    emulator.reset()
    emulator.job_seconds = 6.0
    server = comfy_pool.get(ServerKind("restart", pack_env(emulator.base_url, KEY),
                                       prepare=_settings(**{"Runware.PixVerse.StartAhead": 4})))
    try:
        blocker = server.queue(graph(t2v("a blocker before the restart", 60)))
        waiting = [server.queue(graph(t2v(f"restart lantern {i}", 61 + i))) for i in range(3)]
        wait_for(lambda: submissions(emulator) == 4, 30, "the three waiting prompts start early")
        server = comfy_pool.crash_and_restart("restart")  # a crash: no clean shutdown
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = ledger_rows(server)
            if len(rows) == 4 and all(r["status"] == "finished" for r in rows):
                break
            time.sleep(0.5)
        assert [r["status"] for r in rows] == ["finished"] * 4, rows
        assert emulator.stats()["video_submissions"] == 4  # followed after the restart, never sent again
        # the same prompts queued again are served from the ledger
        entry = ok(server.wait(server.queue(graph(t2v("restart lantern 0", 61))), 60))
        assert infos(entry, "2")[0]["source"] == "reused"
        assert emulator.stats()["video_submissions"] == 4
        del blocker, waiting
    finally:
        comfy_pool.stop("restart")


# -- start-ahead off the loop, and telling (issue 25 item 8) ------------------------------------------------

def test_a_huge_load_image_started_early_leaves_the_server_answering(ahead, emulator):
    """A queued prompt whose Load Image is 10000x10000: its early start decodes, encodes and hashes the image
    off ComfyUI's event loop (Load Image in a worker thread, the job on the `pixverse-ahead` loop), so
    GET /system_stats keeps answering. The figure is printed, not asserted; what is asserted is where the
    work ran (the thread the log names) and that the prompt's turn reuses the early task."""
    from PIL import Image

    emulator.reset()
    emulator.job_seconds = 90.0  # the blocker outlasts the early start's preparation (the emulator fixes a job's
    # length when it is submitted), on a machine loaded by other work too; it is ended once the huge one is in
    ramp = np.linspace(0, 255, 10000, dtype=np.float32)
    pixels = np.empty((10000, 10000, 3), dtype=np.uint8)
    pixels[..., 0] = ramp[None, :]
    pixels[..., 1] = ramp[:, None]
    pixels[..., 2] = 128
    Image.fromarray(pixels).save(ahead.input_dir / "huge.png", compress_level=1)
    del pixels
    blocker = ahead.queue(graph(t2v("a blocker for the huge image", 80)))
    t0 = time.monotonic()
    huge = ahead.queue(i2v_graph("huge.png", "a huge gradient", 81))
    worst = 0.0
    while emulator.stats()["video_submissions"] < 2 and time.monotonic() - t0 < 85:
        s = time.monotonic()
        assert ahead.http.get("/system_stats").status_code == 200
        worst = max(worst, time.monotonic() - s)
    assert emulator.stats()["video_submissions"] == 2, "the huge prompt was not started early"
    prepared = time.monotonic() - t0
    emulator.job_seconds = 3.0
    assert emulator.finish_running() == 2  # the blocker and the early task: no need to sit out their 90 s
    ok(ahead.wait(blocker, 180))
    entry = ok(ahead.wait(huge, 240))
    assert infos(entry, "3")[0]["source"] in ("resumed", "reused") and emulator.stats()["video_submissions"] == 2
    assert "inputs encoded and hashed in thread pixverse-ahead" in ahead.log()
    fault_matrix.FIGURES.append(f"start-ahead of a 10000x10000 Load Image: slowest GET /system_stats while it was "
                                f"prepared ({prepared:.1f} s) {worst:.3f} s (before: 9.6 s)")
    print(f"\nslowest /system_stats during the early start of a 10000x10000 image ({prepared:.1f} s to its "
          f"submit): {worst:.3f} s")


def test_a_file_changed_after_an_early_start_is_said(ahead, emulator):
    """The issue's case: Load Image a4.png queued, its task started early, then the file overwritten: at its
    turn the node sends a new task (its inputs differ) and says so, naming the early task."""
    from PIL import Image

    emulator.reset()
    emulator.job_seconds = 3.0
    Image.new("RGB", (640, 360), (200, 30, 30)).save(ahead.input_dir / "a4.png")
    blocker = ahead.queue(graph(t2v("a blocker for a4", 90)))
    changed = ahead.queue(i2v_graph("a4.png", "a red card", 91))
    wait_for(lambda: submissions(emulator) >= 2, 60, "the changed file's prompt is started early")
    early = [t["taskUUID"] for t in emulator.video_tasks()]
    assert len(early) == 2
    Image.new("RGB", (640, 360), (30, 30, 200)).save(ahead.input_dir / "a4.png")  # overwritten while it waits
    ok(ahead.wait(blocker, 120))
    entry = ok(ahead.wait(changed, 120))
    info = infos(entry, "3")[0]
    assert emulator.stats()["video_submissions"] == 3 and info["taskUUID"] not in early
    side = Path(info["file"]).with_suffix(".json")  # provenance beside the video in output/pixverse (item 11)
    assert side.is_file() and json.loads(side.read_text())["taskUUID"] == info["taskUUID"]
    said = [n for n in info["notices"] if n.startswith("started early: task ")]
    assert said and any(u in said[0] for u in early) and "no longer match" in said[0], info["notices"]
    fault_matrix.FIGURES.append("start-ahead, file changed before its turn: node says " + said[0][:160])
