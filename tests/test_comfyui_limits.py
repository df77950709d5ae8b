"""The spending limit per queued prompt and the balance floor, through a real ComfyUI (COMFYUI_PATH) against
the emulator: set through ComfyUI's own settings route (what the settings dialog does), a run over either is
refused before anything is uploaded or submitted, with a message that names the limit and says nothing was
charged; a run within it goes ahead. Runs on conftest's shared ComfyUI; its settings are put back after
each test.
"""
from __future__ import annotations

import re

import json

import pytest

from nodes.emulator import FAKE_COST_PER_SECOND_USD
from nodes.emulator import account as emu_account
from support.comfy import generator_values

T2V = "RunwarePixVerseTextToVideo"
EACH = 5 * FAKE_COST_PER_SECOND_USD  # the emulator's price of a 5 s video: $0.20


@pytest.fixture
def comfy(money_comfy):
    """conftest's ComfyUI for the money tests (their own ledger: the floor and the limits read what it holds)."""
    return money_comfy


def graph(prompt: str, seed: int, count: int = 1) -> dict:
    return {"1": {"class_type": T2V, "inputs": generator_values(prompt=prompt, seed=seed, count=count)},
            "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}}}


def infos(entry: dict) -> list[dict]:
    return [json.loads(t) for t in entry["outputs"]["2"]["text"]]


def succeeded(entry: dict) -> dict:
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:3000]
    return entry


def refusal(entry: dict) -> str:
    assert entry["status"]["status_str"] == "error", json.dumps(entry["status"], indent=1)[:3000]
    errors = [d for e, d in entry["status"]["messages"] if e == "execution_error"]
    assert errors, entry["status"]
    assert errors[0]["exception_type"].endswith("PixVerseBudgetError"), errors[0]
    return errors[0]["exception_message"]


def sent(emulator) -> tuple[int, int]:
    s = emulator.stats()
    return s["uploads"], s["video_submit_attempts"]


def known_cost(comfy, emulator, tag: str) -> None:
    """One run of the kind the test queues, so the job ledger knows what it costs (a limit or a floor
    refuses a run of unknown cost unless allowed)."""
    emulator.job_seconds = 0.3
    entry = succeeded(comfy.wait(comfy.queue(graph(f"{tag}: the run that tells the price", 500)), 120))
    assert infos(entry)[0]["cost"] == pytest.approx(EACH)


def test_prompt_limit_refuses_a_prompt_over_it_and_each_prompt_has_its_own(comfy, emulator):
    known_cost(comfy, emulator, "prompt limit")
    comfy.set_setting("Runware.PixVerse.PromptLimit", 2.5 * EACH)  # room for two takes per queued prompt

    before = sent(emulator)
    message = refusal(comfy.wait(comfy.queue(graph("three cranes over a prompt limit", 501, count=3)), 120))
    assert "Spending limit per queued prompt" in message and "Nothing was uploaded or submitted" in message, message
    assert "$0.50" in message and "(ComfyUI setting)" in message, message  # the limit and where it was set
    assert sent(emulator) == before  # all or none: not one of the three takes was sent

    # two takes fit; and the next queued prompt has a limit of its own (the first one's spending is not its)
    for seed, prompt in ((502, "two cranes under a prompt limit"), (504, "two more cranes in the next prompt")):
        entry = succeeded(comfy.wait(comfy.queue(graph(prompt, seed, count=2)), 120))
        assert [i["source"] for i in infos(entry)] == ["new", "new"]
    assert sent(emulator)[1] == before[1] + 4


def test_balance_floor_refuses_a_run_that_would_go_below_it(comfy, emulator):
    known_cost(comfy, emulator, "balance floor")
    emu_account.set_balance(emulator, 1.00)  # the account now holds $1.00; a run costs $0.20
    comfy.set_setting("Runware.PixVerse.MinBalance", 0.90)
    # the shared server may hold a reading from an earlier test: read the $1.00 now (the jobs tab's refresh)
    assert comfy.http.get("/runware/pixverse/balance?refresh=1").json()["balance"] == 1.0

    before = sent(emulator)
    message = refusal(comfy.wait(comfy.queue(graph("a lantern below the floor", 510)), 120))
    assert message.startswith("Balance floor: your Runware balance is $1.00"), message
    # the shared server's ledger may hold rows of earlier tests still under way: the floor counts them as spent
    # since the reading (it never refuses too late), so what would be left is at most $0.80
    left = re.search(r"which would leave \$(\d+\.\d\d), below the floor of \$0\.90 \(ComfyUI setting\)", message)
    assert left and float(left.group(1)) <= 0.80, message
    assert "Nothing was uploaded or submitted" in message, message
    assert sent(emulator) == before

    comfy.set_setting("Runware.PixVerse.MinBalance", 0.70)  # $0.80 left after the run: above this floor
    entry = succeeded(comfy.wait(comfy.queue(graph("a lantern below the floor", 510)), 120))
    assert infos(entry)[0]["source"] == "new" and sent(emulator)[1] == before[1] + 1
    assert emu_account.remaining(emulator) == pytest.approx(0.80)
