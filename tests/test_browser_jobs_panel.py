"""The PixVerse sidebar tab in a real browser, on the pinned and the newest frontend: the job ledger's jobs
(running with phase and elapsed time, finished with a player, size, length, cost, file and a copyable
taskUUID, failed and lost with the reason and how to recover), today's spend and the Runware balance at the
top; Settings → Runware shows the balance and the floor setting reaches the server.

The ledger is filled through the ledger's own API (one finished job with a real MP4 in ComfyUI's output
folder, one running, one failed, one lost); the balance comes from the local emulator over HTTP.
With PIXVERSE_UPDATE_DOCS=1 the pinned frontend's screenshot goes to docs/screenshot-jobs-panel.png.
Needs what tests/test_browser.py needs; skipped, with the reason, without.
"""
from __future__ import annotations

import shutil
import time
import uuid

import pytest

from support.comfy import comfyui_path
from nodes.money import ledger as L
from nodes.emulator import account as emu_account
from test_browser import (ARTIFACTS, CHROMIUM, SENTINEL_KEY, Page, artifacts, browser, comfy,  # noqa: F401
                          emulator, frontend, pw, to_docs)


pytestmark = [
    pytest.mark.skipif(comfyui_path() is None, reason="COMFYUI_PATH is not set: no ComfyUI checkout to test in"),
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="/usr/bin/chromium is missing: install Debian's chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(pw is None, reason="playwright is not installed: pip install -r requirements-browser.txt"),
]


def seed_ledger(comfy) -> dict[str, str]:
    """Four jobs in ComfyUI's job ledger, written through the ledger's API."""
    path = comfy.user_dir / "runware" / L.LEDGER_FILENAME
    ids = {k: str(uuid.uuid4()) for k in ("finished", "running", "failed", "lost")}
    sample = comfy.input_dir / "pixverse_sample_talk.mp4"  # written by the pack when it loaded
    deadline = time.monotonic() + 60
    while not sample.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    with L.Ledger(path) as led:
        for i, (kind, task_uuid) in enumerate(ids.items()):
            request = {"taskType": "videoInference", "model": "pixverse:1@5", "positivePrompt": f"a {kind} paper boat",
                       "width": 640, "height": 360, "duration": 5}
            led.claim(fingerprint=f"fp-{task_uuid}", endpoint="http://127.0.0.1:1/v1", task_uuid=task_uuid,
                      model="pixverse:1@5", request=request, guard=lambda conn: {"reserved": 0.2})
            if kind == "running":
                led.advance(task_uuid, L.SUBMITTED, submitted_at=time.time())
                continue
            led.advance(task_uuid, L.SUBMITTED, submitted_at=time.time())
            if kind == "finished":
                led.record_success(task_uuid, video_uuid=str(uuid.uuid4()), result_url="https://example.invalid/v.mp4",
                                   seed=7, cost=0.2, notices=[])
                dest = comfy.output_dir / "pixverse" / f"pixverse_{task_uuid}.mp4"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sample, dest)
                led.record_file(task_uuid, dest, dest.stat().st_size)
            elif kind == "failed":
                led.settle(task_uuid, L.FAILED, "taskFailed: PixVerse could not render this prompt")
            else:
                led.settle(task_uuid, L.LOST, "Runware does not know this taskUUID (it expired)")
    return ids


def open_panel(tab):
    button = tab.page.locator(".pixverse-jobs-tab-button")
    if button.count():
        button.first.click()
    else:  # a frontend that names the button otherwise: the command every sidebar tab gets
        tab.page.evaluate("app.extensionManager.command.execute('Workspace.ToggleSidebarTab.pixverse-jobs')")
    tab.page.wait_for_selector(".pixverse-jobs .pixverse-job", timeout=30_000)


def test_jobs_panel_lists_the_ledger_with_spend_and_balance(browser, comfy, artifacts, emulator):  # noqa: F811
    assert comfy.http.post("/runware/pixverse/key", json={"key": SENTINEL_KEY},
                           headers={"X-PixVerse-Request": "1"}).status_code == 200
    ids = seed_ledger(comfy)
    # the server is shared by the browser modules: the balance it read for an earlier test (its cache keeps a
    # reading for a minute) is read again from the emulator, reset for this test; today's spending is what
    # the spend route counts in its ledger (the four jobs above and earlier tests' runs)
    assert comfy.http.get("/runware/pixverse/balance?refresh=1").json()["balance"] == emu_account.DEFAULT_BALANCE
    today = comfy.http.get("/runware/pixverse/spend").json()["today"]
    assert today["total"] >= 0.2 and today["runs"] >= 1  # the finished job above at least
    tab = Page(browser, comfy).open()
    try:
        tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=comfy.url)
        tab.page.evaluate("app.extensionManager.setting.set('Comfy.Minimap.Visible', false)")
        open_panel(tab)
        page = tab.page
        page.wait_for_function("(document.querySelector('.pixverse-jobs-balance')?.textContent || '').includes('$')")
        head = page.locator(".pixverse-jobs-head").inner_text()
        assert f"Balance: ${emu_account.DEFAULT_BALANCE:.2f} USD" in head, head
        runs = f"{today['runs']} run" + ("s" if today["runs"] != 1 else "")
        assert f"Today: ${today['total']:.2f} billed in {runs}" in head, (head, today)
        cards = page.locator(".pixverse-job")
        order = [cards.nth(i).get_attribute("data-task-uuid") for i in range(cards.count())]
        seeded = [task for task in order if task in ids.values()]  # the shared server also ran test_browser's job
        assert seeded == [ids["lost"], ids["failed"], ids["running"], ids["finished"]]  # newest first
        running = page.locator(f'[data-task-uuid="{ids["running"]}"]').inner_text()
        assert "generating at Runware" in running and " s" in running
        finished = page.locator(f'[data-task-uuid="{ids["finished"]}"]')
        text = finished.inner_text()
        assert "640×360" in text and "5 s" in text and "$0.20" in text and f"pixverse_{ids['finished']}.mp4" in text
        assert ids["finished"] in text
        src = finished.locator("video").get_attribute("src")
        assert src.startswith("/view?") and comfy.http.get(src).status_code == 200
        page.wait_for_function(
            "id => document.querySelector(`[data-task-uuid=\"${id}\"] video`)?.readyState >= 1", arg=ids["finished"],
            timeout=30_000)
        failed = page.locator(f'[data-task-uuid="{ids["failed"]}"]').inner_text()
        assert "PixVerse could not render this prompt" in failed and "run again" in failed
        lost = page.locator(f'[data-task-uuid="{ids["lost"]}"]').inner_text()
        assert "it expired" in lost and f"python -m nodes recover {ids['lost']}" in lost and "Recover" in lost
        copy = finished.locator("button.pixverse-copy")
        copy.click()
        page.wait_for_function("id => document.querySelector(`[data-task-uuid=\"${id}\"] button.pixverse-copy`)"
                               ".textContent === 'copied'", arg=ids["finished"])
        assert page.evaluate("navigator.clipboard.readText()") == ids["finished"]
        page.wait_for_timeout(1800)  # the button says "copy" again
        page.evaluate("document.querySelector('.pixverse-jobs').scrollTop = 0")
        shot = tab.shot("jobs-panel")
        to_docs(shot, "screenshot-jobs-panel.png")

        # nothing running any more: the tab ends that job and stops refreshing (before: every 3 s, forever)
        assert page.evaluate("document.querySelector('.pixverse-jobs').dataset.refreshing") == "yes"
        with L.Ledger(comfy.user_dir / "runware" / L.LEDGER_FILENAME) as led:
            led.settle(ids["running"], L.LOST, "Runware does not know this taskUUID (it expired)")
            # the shared server's ledger also holds what test_browser left under way (rows this test process
            # claimed stay "running" while it lives): ended too, so that nothing at all is running
            for entry in led.entries():
                if entry.status in (L.PREPARING, L.SUBMITTING, L.SUBMITTED, L.SUCCEEDED):
                    led.settle(entry.task_uuid, L.LOST, "ended by the test: nothing may run")
        page.locator(".pixverse-jobs-pager button", has_text="refresh").click()
        page.wait_for_function("document.querySelector('.pixverse-jobs').dataset.refreshing === 'no'")
        calls: list[str] = []
        page.on("request", lambda r: calls.append(r.url) if "/runware/pixverse/jobs" in r.url else None)
        page.wait_for_timeout(4000)  # longer than the 3 s refresh: an absence has no event to await
        assert calls == [], calls
        assert "recover" in page.locator(f'[data-task-uuid="{ids["running"]}"]').inner_text()

        # the floor setting reaches the server, and Settings → Runware shows the balance
        page.evaluate("app.extensionManager.setting.set('Runware.PixVerse.MinBalance', 2000)")
        page.wait_for_function("app.extensionManager.setting.get('Runware.PixVerse.MinBalance') === 2000")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            reply = comfy.http.get("/runware/pixverse/balance").json()
            if reply["floor"]["amount"] == 2000:
                break
            time.sleep(0.5)
        assert reply["floor"] == {"amount": 2000.0, "source": "setting", "where": "setting"}, reply
        assert set(reply) >= {"balance", "currency", "checked_at"} and "team" not in reply
        tab.command("Comfy.ShowSettingsDialog")
        page.get_by_role("option", name="Runware").or_(page.get_by_role("button", name="Runware", exact=True)).click()
        page.wait_for_function("[...document.querySelectorAll('.pixverse-balance-setting')]"
                               ".some((e) => e.textContent.includes('Balance: $'))")
        assert page.get_by_text("Keep at least (US dollars of Runware balance; 0 = no floor)").count() >= 1
        tab.shot("settings-balance")
        page.keyboard.press("Escape")
        page.evaluate("app.extensionManager.setting.set('Runware.PixVerse.MinBalance', 0)")
    finally:
        tab.close()
    assert not [e for e in tab.errors if "pixverse" in e.lower()], tab.errors
