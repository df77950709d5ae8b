"""The bill (nodes/money/pricing.py, nodes/money/limits.py): the cost class, the estimate before Run, the spending limit and its
reservation in the ledger's claim transaction, and the `spend` figures — against the emulator, whose
(fake) price grows with duration and size."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid

import numpy as np
import pytest

from support.jobs import choices, frame, video_submissions
from support.keysafety import artifact_dir, save_text
import workflow_runs as runs
from nodes.money import limits, pricing
from nodes.job import pipeline
from nodes.money import ledger as L
from nodes import config
from nodes.config import ALLOW_UNKNOWN_COST, DAILY_LIMIT, PROMPT_LIMIT, Config
from nodes.emulator import FAKE_COST_PER_SECOND_USD
from nodes.errors import PixVerseBudgetError, PixVerseInputError
from nodes.money.ledger import Ledger
from nodes.requests.tasks import build_image_to_video, build_lipsync, build_text_to_video
from web_expect import load_routes


def limits_set(daily=None, prompt=None, allow=False, source="") -> Config:
    """The configuration with these limits, each from `source` ("env", "setting", or "": the default)."""
    given = {"daily_limit": daily, "prompt_limit": prompt, "allow_unknown_cost": allow or None}
    return Config(daily_limit=daily, prompt_limit=prompt, allow_unknown_cost=allow,
                  sources={k: source for k, v in given.items() if v is not None and source})

ROUTES = load_routes()  # the estimate route, without ComfyUI




def t2v(**over):
    return lambda client, opts: runs.text_to_video(client, choices(**over), opts)


def i2v(image, **over):
    return lambda client, opts: runs.image_to_video(client, choices(**over), image, None, opts)


def est(runner, **over):
    task = build_text_to_video(choices(**over)).task
    return pricing.estimate(task, ledger=runner.ledger, endpoint=runner.emu.base_url)


def counts(emu):
    s = emu.stats()
    return s["uploads"], s["image_uploads"], s["media_uploads"], s["video_submissions"], s["video_submit_attempts"]


# -- the cost class --------------------------------------------------------------------------------

def test_cost_class_ignores_free_text_seed_and_inputs_but_not_settings():
    base = build_text_to_video(choices()).task
    same = build_text_to_video(choices(prompt="another prompt entirely", seed=99, negative_prompt="blur")).task
    assert pricing.cost_class(base) == pricing.cost_class(same)
    for change in (dict(duration=8), dict(resolution="720p"), dict(model="pixverse:1@3"),
                   dict(settings={"style": "anime"}), dict(model="pixverse:1@3", settings={"sound_effects": True})):
        assert pricing.cost_class(build_text_to_video(choices(**change)).task) != pricing.cost_class(base), change
    # the seed layout sends the default fps, the current one leaves it out: one kind; another rate is another
    assert pricing.cost_class(build_text_to_video(choices(), layout="seed").task) == pricing.cost_class(base)
    assert pricing.cost_class(build_text_to_video(choices(fps=24), layout="seed").task) != pricing.cost_class(base)
    # a sound description is free text: it does not change the class, switching sound on does
    with_sound = build_text_to_video(choices(model="pixverse:1@3", settings={
        "sound_effects": True, "sound_effect_content": "rain"})).task
    other_sound = build_text_to_video(choices(model="pixverse:1@3", settings={
        "sound_effects": True, "sound_effect_content": "thunder and wind"})).task
    assert pricing.cost_class(with_sound) == pricing.cost_class(other_sound)
    # the size counts as its resolution tier: 16:9 and 1:1 at 360p are one kind
    assert pricing.cost_class(build_text_to_video(choices(aspect_ratio="1:1")).task) == pricing.cost_class(base)
    cls = json.loads(pricing.cost_class(base))
    assert cls == {"model": "pixverse:1@5", "resolution": "360p", "duration": 5}
    # inputs: another image is the same kind of run, in either request layout
    i2v_choices = choices(aspect_ratio="auto")
    a = build_image_to_video(i2v_choices, "sha256:" + "ab" * 32, first_frame_size=(640, 360), layout="current").task
    b = build_image_to_video(i2v_choices.model_copy(update={"prompt": "x y"}), "sha256:" + "cd" * 32,
                             first_frame_size=(640, 360), layout="seed").task
    assert "inputs" in a and "frameImages" in b  # the two layouts
    assert pricing.cost_class(a) == pricing.cost_class(b) != pricing.cost_class(base)
    assert json.loads(pricing.cost_class(a))["inputs_given"] == {"frames": ["first"]}
    # lipsync: the speech text is free text, the voice a setting
    l1 = build_lipsync(video="sha256:" + "ab" * 32, speech_text="Hello there", voice="Emily", layout="current").task
    l2 = build_lipsync(video="sha256:" + "cd" * 32, speech_text="Something else", voice="Emily", layout="seed").task
    l3 = build_lipsync(video="sha256:" + "cd" * 32, speech_text="Hello there", voice="James").task
    assert pricing.cost_class(l1) == pricing.cost_class(l2) != pricing.cost_class(l3)


def test_documented_price_is_used_only_where_runware_states_one():
    at_1080 = pricing.estimate_new(build_text_to_video(choices(resolution="1080p", duration=5)).task)
    assert at_1080.source == "price" and at_1080.cost == pytest.approx(0.299)  # Runware: $0.0598/s, 5 s: $0.299
    assert "Runware's price page" in at_1080.text and "$0.0598/s at 1080p" in at_1080.text
    at_360 = pricing.estimate_new(build_text_to_video(choices()).task)  # Runware states no 360p price
    assert (at_360.source, at_360.cost, at_360.text) == ("unknown", None, "unknown: no run of this kind yet")
    fast = pricing.estimate_new(build_text_to_video(choices(model="pixverse:1@5-fast", resolution="720p", duration=8,
                                                          fps=None)).task)
    assert (fast.source, fast.cost) == ("price", 0.2475) and "720p, 8 s: $0.2475" in fast.text  # Runware's table
    entries = [e for model in pricing.documented_prices().values() for e in model]
    assert entries and all(e["source"].startswith("https://runware.ai/docs/models/pixverse") and e["read"]
                           for e in entries)


def test_modify_price_is_per_second_of_the_source_video_and_unpublished_prices_are_said():
    """Runware's Modify page: $0.04 / $0.05 / $0.06 per second at 360p / 540p / 720p. A Modify task carries
    no duration (the video keeps its source's length), so the price needs the probed length as `duration`."""
    from nodes.requests.tasks import build_modify

    for tier, per_second in (("360p", 0.04), ("540p", 0.05), ("720p", 0.06)):
        task = build_modify(choices(model="pixverse:modify@0", resolution=tier, aspect_ratio="auto", duration=None,
                                    fps=None), "sha256:" + "ab" * 32, layout="current").task
        assert "duration" not in task
        cls = pricing.cost_class(task)
        assert json.loads(cls)["resolution"] == tier
        cost, entry = pricing.documented_price("pixverse:modify@0", cls, 10.0, None)
        assert cost == pytest.approx(10 * per_second) and entry["source"].endswith("/pixverse-modify")
        assert pricing.documented_price("pixverse:modify@0", cls, None, None) is None  # no length: no figure
    # where Runware publishes no price, prices.json says so (pages checked, date) and holds no figure
    raw = json.loads(pricing.PRICES_PATH.read_text(encoding="utf-8"))
    unpublished = raw["not_published"]
    assert set(unpublished) == {"pixverse:1@1", "pixverse:1@3", "pixverse:1@6", "pixverse:1@7", "pixverse:1@8"}
    assert not set(unpublished) & set(raw["prices"])
    assert all(e["pages"] and all(p.startswith("https://runware.ai/docs/models/pixverse") for p in e["pages"])
               and "2026-" in e["note"] for e in unpublished.values())


# -- the estimate after runs of known cost ---------------------------------------------------------

def test_estimate_after_runs_of_known_cost(emu, runner):
    assert est(runner).source == "unknown"
    first = runner.run(t2v())  # 360p, 5 s
    assert first.video.cost == pytest.approx(5 * FAKE_COST_PER_SECOND_USD)
    e = est(runner, prompt="a different prompt", seed=3)
    assert (e.source, e.cost, e.runs) == ("ledger", first.video.cost, 1)
    assert e.text == f"≈ {pricing.usd(first.video.cost)} (the last run like this)"
    # the very same request again is the ledger's finished task: free
    same = est(runner)
    assert (same.source, same.cost, same.task_uuid) == ("reused", 0.0, first.task_uuid)
    assert same.text.startswith("free: re-uses finished task " + first.task_uuid)
    # other kinds of run are not guessed from this one; once run, each has its own (different) figure
    for over in (dict(duration=8), dict(resolution="720p")):
        assert est(runner, prompt="new", **over).source == "unknown"
        done = runner.run(t2v(prompt="another boat", **over))
        e = est(runner, prompt="yet another", **over)
        assert e.source == "ledger" and e.cost == done.video.cost != first.video.cost
    # the median of the last 3 runs of a kind
    for i in range(3):
        runner.run(t2v(prompt=f"boat number {i}"))
    rows = [r for r in runner.ledger.entries() if r.cost is not None and json.loads(r.cost_class)["duration"] == 5
            and json.loads(r.cost_class)["resolution"] == "360p"]
    assert len(rows) == 4 and all(r.cost_class == pricing.cost_class(json.loads(r.request)) for r in rows)
    e = est(runner, prompt="pp")
    assert (e.source, e.runs) == ("ledger", 3) and e.text.endswith("(median of the last 3 runs like this)")
    # another endpoint's history (the emulator vs Runware) does not count
    assert pricing.estimate(build_text_to_video(choices(prompt="pp")).task, ledger=runner.ledger,
                          endpoint="https://api.runware.ai/v1").source == "unknown"


# -- the spending limit ------------------------------------------------------------------------------

def test_the_limit_refuses_the_run_that_would_cross_it_before_any_upload(emu, runner):
    cost = 5 * FAKE_COST_PER_SECOND_USD  # 0.20
    policy = limits_set(daily=2 * cost + 0.05, allow=True, source="env")
    one = runner.run(i2v(frame(1)), config=policy)  # unknown cost (first of its kind): allowed by the policy
    two = runner.run(i2v(frame(2), prompt="the boat sinks slowly"), config=policy)  # expected 0.20: 0.40 ≤ 0.45
    assert runner.entry(one.task_uuid).reserved is None and runner.entry(two.task_uuid).reserved == pytest.approx(cost)
    before = counts(emu)
    outcome = runner.attempt(i2v(frame(3), prompt="a third boat"), config=policy)
    assert isinstance(outcome.error, PixVerseBudgetError), outcome.error
    assert counts(emu) == before  # nothing uploaded, nothing submitted
    text = outcome.text
    assert "Daily spending limit reached: $0.40 spent today" in text and "over the limit of $0.45" in text
    assert "expected cost $0.20 (median of the last 2 runs like this) = $0.60" in text
    assert "Nothing was uploaded or submitted" in text and "RUNWARE_PIXVERSE_DAILY_LIMIT" in text
    assert (outcome.error.spent, outcome.error.limit, outcome.error.expected) == (pytest.approx(0.4), 0.45,
                                                                                  pytest.approx(0.2))
    assert len(runner.ledger.entries()) == 2  # no row for the refused run
    # a reused result costs nothing and is never refused
    again = runner.run(i2v(frame(1)), config=policy)
    assert again.origin == "reused" and counts(emu) == before
    # a setting as the source: the message says where to raise it
    refused = runner.attempt(i2v(frame(5), prompt="x y z"), config=limits_set(daily=0.3, source="setting"))
    assert "Settings → Runware → Spending → Daily spending limit" in refused.text


def test_unknown_cost_is_refused_under_a_limit_unless_allowed(emu, runner):
    before = counts(emu)
    out = runner.attempt(i2v(frame(4)), config=limits_set(daily=100.0, source="setting"))
    assert isinstance(out.error, PixVerseBudgetError) and "cost is unknown" in out.text
    assert "RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST=1" in out.text and counts(emu) == before
    assert "$0.00 spent today of the limit of $100.00 (ComfyUI setting)" in out.text
    ok = runner.run(i2v(frame(4)), config=limits_set(daily=100.0, allow=True))
    assert ok.origin == "new"
    assert runner.run(i2v(frame(4)), config=limits_set(daily=0.01)).origin == "reused"  # never refused


def test_per_prompt_limit(emu, runner):
    policy = limits_set(prompt=0.3, allow=True, source="setting")
    runner.run(t2v(prompt="first of prompt A"), config=policy, prompt_id="prompt-A")
    out = runner.attempt(t2v(prompt="second of prompt A"), config=policy, prompt_id="prompt-A")
    assert isinstance(out.error, PixVerseBudgetError) and "Spending limit per queued prompt reached" in out.text
    assert "$0.20 spent by this queued prompt" in out.text
    assert runner.run(t2v(prompt="first of prompt B"), config=limits_set(prompt=0.3, allow=True),
                      prompt_id="prompt-B").origin == "new"


def test_two_prompts_at_once_cannot_together_pass_the_limit(emu, runner, monkeypatch):
    """Limit above one run's cost, below two: of two runs started at the same moment in two threads, each
    with its own ledger connection (as two processes would have), exactly one is submitted. The check is
    slowed down inside the claim transaction, so without BEGIN IMMEDIATE both would read the same
    spending and both pass."""
    import threading

    runner.run(t2v(prompt="history"))  # a known cost (0.20) for this kind of run
    spent = 5 * FAKE_COST_PER_SECOND_USD
    policy = limits_set(daily=spent + 0.3, source="env")  # room for one more run, not two
    check = limits.check_budget

    def slow_check(*args, **kw):
        check(*args, **kw)
        time.sleep(0.5)  # between reading the spending and inserting the reservation

    monkeypatch.setattr(limits, "check_budget", slow_check)
    before = video_submissions(emu)
    ledgers = [Ledger(runner.ledger_path), Ledger(runner.ledger_path)]
    start = threading.Barrier(2)
    results: list = [None, None]

    async def one(i):
        from support.jobs import FAST_POLL, FAST_RETRY
        from nodes.client import RunwareClient

        opts = runner.opts(ledger=ledgers[i], config=policy)
        async with RunwareClient(base_url=emu.base_url, poll_policy=FAST_POLL, retry_policy=FAST_RETRY) as client:
            start.wait()
            return await runs.text_to_video(client, choices(prompt=f"concurrent boat {i}"), opts)

    def thread(i):
        try:
            results[i] = asyncio.run(one(i))
        except BaseException as exc:  # noqa: BLE001 - examined below
            results[i] = exc

    threads = [threading.Thread(target=thread, args=(i,)) for i in (0, 1)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for led in ledgers:
            led.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    done = [r for r in results if not isinstance(r, BaseException)]
    save_text(f"jobs/{runner.dir.name}/errors.txt", "\n".join(map(str, errors)))
    assert len(done) == 1 and len(errors) == 1 and isinstance(errors[0], PixVerseBudgetError), results
    assert "reached: $0.40 spent today" in str(errors[0])  # the first run's reservation counted
    assert video_submissions(emu) == before + 1
    total = runner.ledger.spent_since(limits.day_start())
    assert total == pytest.approx(2 * spent) and total <= policy.daily_limit


def test_a_reservation_is_replaced_by_the_real_cost_and_released_when_nothing_was_charged(runner):
    led = runner.ledger
    guard = lambda conn: {"reserved": 0.5, "cost_class": "k"}  # noqa: E731
    led.claim(fingerprint="f1", endpoint="e", task_uuid="u1", guard=guard)
    led.claim(fingerprint="f2", endpoint="e", task_uuid="u2", guard=guard)
    assert led.spent_since(0) == pytest.approx(1.0)  # two reservations under way
    led.record_success("u1", video_uuid="v", result_url="x", seed=1, cost=0.2, notices=[])
    led.settle("u2", L.REFUSED, "refused by Runware")
    assert led.spent_since(0) == pytest.approx(0.2)


def test_policy_sources_and_bad_values():
    """The limits come from the one reader (nodes/config.py): the environment wins over the settings, and a
    value that is not allowed is refused naming the variable or the setting."""
    settings = {DAILY_LIMIT.setting: 5, ALLOW_UNKNOWN_COST.setting: True, PROMPT_LIMIT.setting: 0}
    p = limits.policy_of(config.load(settings, env={}))
    assert (p.daily_limit, p.daily_source, p.prompt_limit, p.allow_unknown, p.allow_source) == (5.0, "setting", None,
                                                                                                True, "setting")
    p = limits.policy_of(config.load(settings, env={DAILY_LIMIT.env: "2.5", ALLOW_UNKNOWN_COST.env: "0"}))
    assert (p.daily_limit, p.daily_source, p.allow_unknown) == (2.5, "env", False)  # the environment wins
    assert not limits.policy_of(config.load({}, env={})).active
    with pytest.raises(PixVerseInputError) as err:
        config.load({}, env={DAILY_LIMIT.env: "ten dollars"})
    assert "RUNWARE_PIXVERSE_DAILY_LIMIT = 'ten dollars'" in str(err.value) and "US dollars" in str(err.value)
    with pytest.raises(PixVerseInputError) as err:
        config.load({DAILY_LIMIT.setting: -1}, env={})
    assert "Settings → Runware → Spending → Daily limit (Runware.PixVerse.DailyLimit) = -1" in str(err.value)
    with pytest.raises(PixVerseInputError) as err:  # a flag that is neither on nor off: refused, not read as off
        config.load({}, env={ALLOW_UNKNOWN_COST.env: "maybe"})
    assert "RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST = 'maybe'" in str(err.value)


# -- the ledger: old files survive the new columns -----------------------------------------------------

def test_a_version_1_ledger_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE jobs (task_uuid TEXT PRIMARY KEY, fingerprint TEXT, endpoint TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, request TEXT, inputs TEXT,
            notices TEXT NOT NULL DEFAULT '[]', video_uuid TEXT, result_url TEXT, seed INTEGER, cost REAL,
            local_file TEXT, file_bytes INTEGER, error TEXT, owner TEXT, created_at REAL NOT NULL,
            updated_at REAL NOT NULL, submitted_at REAL, finished_at REAL);
        PRAGMA user_version=1;""")
    now = time.time()
    conn.execute("INSERT INTO jobs (task_uuid, endpoint, model, status, request, cost, created_at, updated_at) "
                 "VALUES ('old', 'e', 'pixverse:1@5', 'finished', ?, 0.2, ?, ?)",
                 (json.dumps(build_text_to_video(choices()).task), now, now))
    conn.commit()
    conn.close()
    with Ledger(path) as led:
        assert led.schema_version() == L.SCHEMA_VERSION == 2
        old = led.get("old")
        assert (old.cost, old.reserved, old.cost_class) == (0.2, None, None)
        # an old row without a stored class still counts for the estimate and the spend
        e = pricing.estimate_new(build_text_to_video(choices(prompt="new")).task, ledger=led, endpoint="e")
        assert (e.source, e.cost) == ("ledger", 0.2)
        assert limits.spend_summary(led)["today"]["total"] == pytest.approx(0.2)
    with Ledger(path) as led:  # opening again changes nothing
        assert led.get("old").cost == 0.2


# -- what was spent -------------------------------------------------------------------------------------

def _row(led, uuid, model, cost, created, status=L.FINISHED, reserved=None):
    led.claim(fingerprint=uuid, endpoint="e", task_uuid=uuid, model=model, guard=lambda c: {"reserved": reserved})
    if cost is not None:
        led.record_success(uuid, video_uuid="v", result_url="x", seed=1, cost=cost, notices=[])
    with led._tx():  # backdate the row, and give it its final status
        led._conn.execute("UPDATE jobs SET status = ?, created_at = ? WHERE task_uuid = ?", (status, created, uuid))


def _without_limits_in_env(monkeypatch) -> None:
    for name in [k for k in __import__("os").environ if k.startswith("RUNWARE_PIXVERSE_")]:
        monkeypatch.delenv(name)


def test_spend_figures_against_the_ledger(runner, tmp_path, monkeypatch, capsys):
    led = runner.ledger
    now = time.time()
    today, month = limits.day_start(now), limits.month_start(now)
    _row(led, "a", "pixverse:1@5", 0.2, today + 1)
    _row(led, "b", "pixverse:1@5", 0.3, today + 2)
    _row(led, "c", "pixverse:1@3", 0.5, today + 3)
    _row(led, "d", "pixverse:1@3", None, today + 4, status=L.SUBMITTED, reserved=0.25)  # under way: reserved
    _row(led, "e", "pixverse:1@3", None, today + 5, status=L.REFUSED, reserved=0.25)  # not charged
    _row(led, "f", "pixverse:1@5", 1.0, today - 1 if today - 1 >= month else month)  # yesterday (or today on the 1st)
    _row(led, "g", "pixverse:1@5", 7.0, month - 86400)  # last month
    s = limits.spend_summary(led, now)
    on_first = today - 1 < month
    assert s["today"]["total"] == pytest.approx(1.25 + (1.0 if on_first else 0))
    assert s["today"]["pending"] == pytest.approx(0.25)
    assert s["this_month"]["total"] == pytest.approx(2.25) and s["this_month"]["runs"] == 5
    by_model = {m["model"]: m for m in s["this_month"]["by_model"]}
    assert by_model["pixverse:1@5"]["total"] == pytest.approx(1.5) and by_model["pixverse:1@5"]["runs"] == 3
    assert by_model["pixverse:1@3"]["total"] == pytest.approx(0.75) and by_model["pixverse:1@3"]["name"] == "PixVerse v4.5"
    # the same figures from `python -m nodes spend` (its main, in this process)
    from nodes.cli import main as cli

    _without_limits_in_env(monkeypatch)
    monkeypatch.setenv(DAILY_LIMIT.env, "3")
    capsys.readouterr()
    assert cli.main(["spend", "--ledger", str(runner.ledger_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["today"] == s["today"] and data["this_month"] == s["this_month"]
    assert data["limits"]["daily_limit"] == 3.0 and data["limits"]["daily_source"] == "env"
    assert cli.main(["spend", "--ledger", str(runner.ledger_path)]) == 0
    text = capsys.readouterr().out
    save_text(f"jobs/{runner.dir.name}/spend.txt", text)
    assert f"this month ({s['month']}): $2.25 in 5 runs, of which $0.25 reserved for runs under way" in text
    assert "  PixVerse v5 (pixverse:1@5): $1.50 in 3 runs" in text and "daily limit: $3.00 (environment)" in text
    assert cli.main(["spend", "--ledger", str(tmp_path / "none.sqlite3")]) == 1
    assert "no job ledger at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()


# -- the limit in the CLI ---------------------------------------------------------------------------------

def test_cli_refuses_the_third_run_before_any_upload(emu, tmp_path, monkeypatch, cli):
    from PIL import Image

    log = artifact_dir("jobs", f"cli-limit-{uuid.uuid4().hex[:8]}")
    out, ledger = log / "out", log / "ledger.sqlite3"
    _without_limits_in_env(monkeypatch)
    monkeypatch.setenv("RUNWARE_PIXVERSE_DAILY_LIMIT", "0.45")
    monkeypatch.setenv("RUNWARE_PIXVERSE_ALLOW_UNKNOWN_COST", "1")

    results = []
    for i in range(3):
        img = log / f"frame{i}.png"
        Image.fromarray((np.random.default_rng(i).random((360, 640, 3)) * 255).astype(np.uint8)).save(img)
        before = counts(emu)
        run = cli(emu, ["generate", "image-to-video", "--first-frame", str(img), "--prompt", f"a paper boat, take {i}",
                        "--model", "pixverse:1@5", "--resolution", "360p", "--duration", "5", "--fps", "16",
                        "--seed", "7", "--out", str(out), "--ledger", str(ledger), "--deadline", "60"],
                  log, f"run{i}")  # nodes.cli.main in this process (conftest)
        results.append((run, before, counts(emu)))
    for (code, _, stderr), _, _ in results[:2]:
        assert code == 0, stderr
    (code, stdout, stderr), before, after = results[2]
    assert code == 2, stdout + stderr
    assert "error: Daily spending limit reached: $0.40 spent today" in stderr
    assert "over the limit of $0.45 (RUNWARE_PIXVERSE_DAILY_LIMIT)" in stderr
    assert after == before  # 0 uploads, 0 submissions
    assert results[1][2][1] == results[1][1][1] + 1  # (the second run did upload its image: the count is live)


def _drafted(kind: str, values: dict) -> tuple[dict, bool, dict]:
    from nodes.workflows.draft import draft

    d = draft(kind, values, stand_in_bad_text=True)  # what the estimate route prices
    return d.task, d.exact, d.built.identity


def test_estimate_from_widget_values(emu, runner):
    from support.jobs import CHOICES
    from nodes.spec import load_spec

    label = load_spec().model(CHOICES.model).label
    values = {"model": label, "prompt": CHOICES.prompt, "negative_prompt": "", "aspect_ratio": "16:9",
              "resolution": "360p", "duration": 5, "fps": 16, "seed": 7, "style": "none", "motion_mode": "normal",
              "sound_effects": False, "sound_effect_content": ""}
    task, exact, identity = _drafted("text_to_video", values)
    node_choices = choices(settings={"motion_mode": "normal"})  # what the node sends for these widgets
    assert exact and task == {**build_text_to_video(node_choices).task, "taskUUID": task["taskUUID"]}
    done = runner.run(t2v(settings={"motion_mode": "normal"}))
    e = pricing.estimate(task, ledger=runner.ledger, endpoint=emu.base_url, exact=exact, identity=identity)
    assert (e.source, e.cost, e.task_uuid) == ("reused", 0.0, done.task_uuid)
    # a prompt still being typed (too short to send) is not this request, but the same kind of run
    task, exact, identity = _drafted("text_to_video", {**values, "prompt": "a"})
    e = pricing.estimate(task, ledger=runner.ledger, endpoint=emu.base_url, exact=exact)
    assert not exact and (e.source, e.cost) == ("ledger", done.video.cost)
    # image-to-video from widgets: the image is not known; "auto" still gives the resolution tier
    task, exact, identity = _drafted("image_to_video", {**values, "aspect_ratio": "auto"})
    assert not exact and json.loads(pricing.cost_class(task))["resolution"] == "360p"
    task, exact, identity = _drafted("lipsync", {"model": None, "speech_text": "Hi there", "voice": "Emily"})
    assert not exact and json.loads(pricing.cost_class(task))["speech"] == {"voice": "Emily"}
    spec = load_spec()
    modify = spec.default_model("modify")
    task, exact, identity = _drafted("modify", {"model": modify.label, "prompt": "make it snow"})
    assert not exact and json.loads(pricing.cost_class(task))["model"] == modify.air
    with pytest.raises(PixVerseInputError):
        _drafted("text_to_video", {**values, "duration": 7})  # a choice the node refuses


# -- claims that had no test (issue 23): a missing prompt id, the local day, a cancelled wait, a failed upload --

def test_a_per_prompt_limit_without_a_prompt_id_refuses_the_run(emu, runner):
    """No queued prompt to count against (ComfyUI gave no prompt id): the per-prompt limit refuses, never
    lets the run pass uncounted."""
    before = counts(emu)
    for source, names in (("env", "RUNWARE_PIXVERSE_PROMPT_LIMIT"), ("setting", "Spending limit per queued prompt")):
        policy = limits_set(prompt=5.0, allow=True, source=source)
        out = runner.attempt(t2v(prompt=f"no prompt id ({source})"), config=policy)  # and no prompt_id
        assert isinstance(out.error, PixVerseBudgetError), out.error
        assert out.error.scope == "prompt" and out.error.limit == 5.0
        assert "ComfyUI gave no prompt id" in out.text and "Nothing was uploaded or submitted" in out.text
        assert names in out.text and "$5.00" in out.text
    assert counts(emu) == before and runner.ledger.entries() == []
    # the same limit with a prompt id runs
    ok = limits_set(prompt=5.0, allow=True, source="env")
    assert runner.run(t2v(prompt="with a prompt id"), config=ok, prompt_id="prompt-C").origin == "new"


def test_the_daily_limit_counts_from_local_midnight(runner, monkeypatch):
    """A charge a minute before local midnight counts today until midnight and not after it. Where the zone
    can be set (POSIX: TZ + tzset), in a zone half an hour off UTC so that a UTC day would differ."""
    if hasattr(time, "tzset"):
        monkeypatch.setenv("TZ", "IST-5:30")  # India: UTC+5:30, no summer time
        time.tzset()
    try:
        midnight = limits.day_start(time.time())
        local = time.localtime(midnight)
        assert (local.tm_hour, local.tm_min, local.tm_sec) == (0, 0, 0)
        if hasattr(time, "tzset"):
            assert midnight % 86400 == (86400 - 5.5 * 3600) % 86400  # 18:30 UTC: local, not UTC, midnight
        led = runner.ledger
        led.claim(fingerprint="late", endpoint="e", task_uuid="late-run", guard=lambda _l: {"reserved": None})
        led.record_success("late-run", video_uuid="v", result_url="x", seed=1, cost=0.40, notices=[])
        with sqlite3.connect(runner.ledger_path) as conn:
            conn.execute("UPDATE jobs SET created_at = ? WHERE task_uuid = 'late-run'", (midnight - 60,))
        policy = limits.policy_of(limits_set(daily=0.50, source="env"))
        expected = pricing.Estimate(cost=0.20, source="ledger", text="$0.20", basis="a test figure")
        with pytest.raises(PixVerseBudgetError, match=r"\$0\.40 spent today"):
            limits.check_budget(led, policy, expected, now=midnight - 30)  # the same local day
        limits.check_budget(led, policy, expected, now=midnight + 30)  # the next local day: $0 spent
        assert limits.spend_summary(led, now=midnight + 30)["today"]["runs"] == 0
    finally:
        if hasattr(time, "tzset"):
            monkeypatch.undo()
            time.tzset()


def test_a_cancel_while_waiting_for_a_run_of_unknown_cost_sends_nothing(emu, runner):
    """Under a limit, a run of unknown cost under way (alive in this process) makes the next one wait; a
    cancel during that wait ends it: nothing uploaded or submitted, no row, no reservation."""
    led = runner.ledger
    led.claim(fingerprint="blocker", endpoint=emu.base_url, task_uuid="blocker-run",
              guard=lambda _l: {"reserved": None})
    waiting = []
    policy = limits_set(daily=100.0, allow=True, source="env")
    before = counts(emu)
    with L.working_on("blocker-run"):  # its owner is alive: the limit must wait for its cost
        out = runner.attempt(i2v(frame(7), prompt="waits, then is cancelled"), config=policy,
                             on_progress=lambda p: waiting.append(p.phase == "queued" and p.message == limits.WAIT_TEXT),
                             cancel_check=lambda: any(waiting))
    assert any(waiting), "the run never said it waits for the run of unknown cost"
    assert out.error is not None and type(out.error).__name__ == "RunwareInterrupted", out.error
    assert counts(emu) == before
    assert [e.task_uuid for e in led.entries()] == ["blocker-run"]
    assert led.spent_since(0) == 0


def test_a_run_failing_before_the_submit_releases_its_reservation(emu, runner):
    """A known cost is reserved when the row is claimed; an upload Runware refuses (400) ends the run before
    the submit: the row is settled, its reservation no longer counts, and nothing was submitted."""
    first = runner.run(i2v(frame(8), prompt="history"))  # the kind's cost becomes known (0.20)
    spent = runner.ledger.spent_since(0)
    before = video_submissions(emu)
    emu.inject("http_status", status=400, on="upload", times=5)
    out = runner.attempt(i2v(frame(9), prompt="its upload is refused"),
                         config=limits_set(daily=100.0, source="env"))
    assert out.error is not None, "the refused upload did not fail the run"
    assert video_submissions(emu) == before
    failed = [e for e in runner.ledger.entries() if e.task_uuid != first.task_uuid]
    assert len(failed) == 1 and failed[0].reserved == pytest.approx(5 * FAKE_COST_PER_SECOND_USD)
    assert failed[0].status == L.ABANDONED, failed[0].status
    assert runner.ledger.spent_since(0) == pytest.approx(spent)  # the reservation no longer counts
