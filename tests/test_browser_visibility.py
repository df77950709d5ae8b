"""A node shows only what its model takes, in a real browser on both frontends (see test_browser.py for
the fixtures and what the machine needs).

- switching v5 → v6 → v5 hides the settings the model does not take and shows them again; the fps
  widget of a model that makes its own frame rate is greyed out and says so;
- a hidden widget keeps its place: widgets_values keep every value at its position, a saved and
  reloaded workflow keeps the values and what is hidden, the queued prompt carries every input and
  ComfyUI's validation accepts it;
- a value chosen on one model and reset on a model without that setting comes back on switching back;
- the setting *Request layout* is a choice of the spec's layouts.

Screenshots: docs/screenshot-model-inputs-v5.png and -v6.png (PIXVERSE_UPDATE_DOCS=1, pinned frontend).
"""
from __future__ import annotations

import json
import time

import pytest

import workflow_tools as T
from test_browser import (SPEC, T2V, Page, artifacts, browser, comfy, emulator, frontend, gen_id, known_inputs,  # noqa: F401
                          load_routes, pytestmark, tab, to_docs)

SERVED = load_routes().web_spec()
V5, V6 = SPEC.model("pixverse:1@5"), SPEC.model("pixverse:1@8")
NAMES = [w.name for w in T.pack_nodes()[T2V].widgets]

# the node's own widgets that are drawn (not the frontend's own "$$…" ones: 1.58 adds "$$node-text-preview")
SHOWN = """([id]) => { const n = app.graph.getNodeById(id);
  return n.widgets.filter((w) => w.name && !w.name.startsWith('$$') && w.name !== 'pixverse_notes' && n.isWidgetVisible(w))
    .map((w) => w.name); }"""
WIDGET = """([id, name]) => { const w = app.graph.getNodeById(id).widgets.find((w) => w.name === name);
  return {value: w.value, label: w.label ?? null, disabled: !!w.disabled, hidden: !!w.hidden}; }"""


def hidden_on(model) -> list[str]:
    """The settings the model does not take: hidden (fps stays, greyed out)."""
    ignores = SERVED["nodes"]["text_to_video"]["models"][model.label]["ignores"]
    return [n for n in NAMES if n in ignores and n in SERVED["settings"]]


def shown(tab, gen) -> list[str]:
    return tab.page.evaluate(SHOWN, [gen])


def widget(tab, gen, name) -> dict:
    return tab.page.evaluate(WIDGET, [gen, name])


def toggle(tab, gen, name, want: bool):
    if widget(tab, gen, name)["value"] != want:
        tab.settle(gen)
        x, y = tab.page.evaluate("([id, w]) => __pvt.widgetPoint(id, w)", [gen, name])
        tab.page.mouse.click(x, y)
        tab.page.wait_for_function("([id, w, v]) => __pvt.value(id, w) === v", arg=[gen, name, want])


def saved_values(tab, gen) -> list:
    wf = tab.page.evaluate("JSON.parse(JSON.stringify(app.graph.serialize()))")
    return wf, next(n for n in wf["nodes"] if n["id"] == gen)["widgets_values"]


def test_switching_models_hides_and_shows_inputs_and_keeps_their_values(tab, comfy):
    wf = T.load_examples()["text_to_video"]
    tab.load(wf)
    gen = gen_id(wf)
    assert widget(tab, gen, "model")["value"] == V5.label
    # v5: no audio, multi_clip or thinking (v6 settings); fps is v5's own choice
    assert hidden_on(V5) == ["audio", "multi_clip", "thinking"]
    assert shown(tab, gen) == [n for n in NAMES if n not in hidden_on(V5)]
    assert widget(tab, gen, "fps")["disabled"] is False
    tab.pick(gen, "motion_mode", "fast")
    tab.pick(gen, "style", "anime")
    to_docs(tab.shot("model-inputs-v5"), "screenshot-model-inputs-v5.png")
    tab.pick(gen, "fps", 24)

    tab.pick(gen, "model", V6.label)
    assert set(hidden_on(V6)) == {"motion_mode", "sound_effects", "sound_effect_content"}
    assert shown(tab, gen) == [n for n in NAMES if n not in hidden_on(V6)]
    fps = widget(tab, gen, "fps")
    assert fps["disabled"] and fps["label"] == "fps: model's own rate", fps
    notes = tab.notes(gen)
    assert "the model's own frame rate" in dict(notes)["summary"] and "24 fps" not in dict(notes)["summary"]
    # the reset of hidden inputs is not announced (they come back); style is kept (v6 takes it)
    assert not [t for k, t in notes if k == "changed"], notes
    assert widget(tab, gen, "style")["value"] == "anime"
    assert widget(tab, gen, "motion_mode")["value"] == "normal"  # v6's resting value, hidden, never sent
    toggle(tab, gen, "audio", True)
    toggle(tab, gen, "multi_clip", True)
    tab.pick(gen, "thinking", "enabled")
    to_docs(tab.shot("model-inputs-v6"), "screenshot-model-inputs-v6.png")

    # saved: every widget keeps its place in widgets_values, hidden ones too
    saved, values = saved_values(tab, gen)
    assert len(values) == len(NAMES)
    at = dict(zip(NAMES, values))
    assert at["model"] == V6.label and at["audio"] is True and at["multi_clip"] is True and at["thinking"] == "enabled"
    assert at["motion_mode"] == "normal" and at["sound_effects"] is False and at["style"] == "anime"

    # the queued prompt carries every input and ComfyUI's validation takes it
    prompt = tab.page.evaluate("(async () => (await app.graphToPrompt()).output)()")
    inputs = prompt[str(gen)]["inputs"]
    declared = known_inputs(comfy)[T2V]
    assert {n for n in NAMES if n in declared} <= set(inputs), sorted(set(declared) - set(inputs))
    assert inputs["motion_mode"] == "normal" and inputs["audio"] is True
    r = comfy.http.post("/prompt", json={"prompt": prompt, "client_id": "visibility-test"})
    assert r.status_code == 200 and not r.json().get("node_errors"), r.text
    comfy.http.post("/queue", json={"clear": True})
    comfy.http.post("/interrupt", json={})

    # reloaded: the same values, the same inputs hidden
    tab.page.evaluate("app.graph.clear()")  # else the same node ids would pass for the reloaded graph at once
    tab.page.wait_for_function("app.graph._nodes.length === 0")
    tab.load(json.loads(json.dumps(saved)))
    # the frontend may still be settling the reloaded node's widgets (seen once in CI: two trailing None): wait
    # until its saved values stop changing, then they must be the same as before
    last, deadline = None, time.monotonic() + 15
    while time.monotonic() < deadline:
        now = saved_values(tab, gen)[1]
        if now == last:
            break
        last = now
        tab.page.wait_for_timeout(300)
    assert saved_values(tab, gen)[1] == values
    assert shown(tab, gen) == [n for n in NAMES if n not in hidden_on(V6)]
    assert widget(tab, gen, "fps")["label"] == "fps: model's own rate"

    # back to v5 on the reloaded node: v6's settings hidden and at rest, v5's shown again
    tab.pick(gen, "model", V5.label)
    assert shown(tab, gen) == [n for n in NAMES if n not in hidden_on(V5)]
    fps = widget(tab, gen, "fps")
    assert not fps["disabled"] and fps["label"] in (None, "fps"), fps
    at = dict(zip(NAMES, saved_values(tab, gen)[1]))
    assert at["audio"] is False and at["multi_clip"] is False and at["thinking"] == "none"
    assert not [t for k, t in tab.notes(gen) if k == "changed"]
    # … and to v6 again: what was chosen there comes back
    tab.pick(gen, "model", V6.label)
    at = dict(zip(NAMES, saved_values(tab, gen)[1]))
    assert at["audio"] is True and at["multi_clip"] is True and at["thinking"] == "enabled"


def test_values_chosen_on_v5_come_back_after_a_trip_to_v6(tab):
    wf = T.load_examples()["text_to_video"]
    tab.load(wf)
    gen = gen_id(wf)
    tab.pick(gen, "fps", 24)
    tab.pick(gen, "motion_mode", "fast")
    tab.pick(gen, "model", V6.label)
    assert widget(tab, gen, "fps")["value"] == 16 and widget(tab, gen, "motion_mode")["hidden"]
    tab.pick(gen, "model", V5.label)
    assert widget(tab, gen, "fps")["value"] == 24 and widget(tab, gen, "motion_mode")["value"] == "fast"
    assert not widget(tab, gen, "motion_mode")["hidden"]


def test_request_layout_setting_is_a_choice_of_the_spec_layouts(tab):
    setting = tab.page.evaluate("""(() => {
      const s = app.extensionManager.setting;
      return {value: s.get('Runware.PixVerse.Layout')};
    })()""")
    assert setting["value"] == "auto"
    tab.command("Comfy.ShowSettingsDialog")
    p = tab.page
    p.get_by_role("option", name="Runware").or_(p.get_by_role("button", name="Runware", exact=True)).click()
    row = p.locator("[data-setting-id='Runware.PixVerse.Layout'], #Runware\\.PixVerse\\.Layout").first
    row = row if row.count() else p.get_by_text("Request layout", exact=True).locator("xpath=ancestor::*[.//*[@role='combobox']][1]")
    row.get_by_role("combobox").click()
    options = p.get_by_role("option").all_inner_texts()
    assert [o.strip() for o in options if o.strip() in SERVED["ui"]["layouts"]] == SERVED["ui"]["layouts"], options
    p.get_by_role("option", name="seed", exact=True).click()
    p.wait_for_function("app.extensionManager.setting.get('Runware.PixVerse.Layout') === 'seed'")
    tab.page.evaluate("app.extensionManager.setting.set('Runware.PixVerse.Layout', 'auto')")
