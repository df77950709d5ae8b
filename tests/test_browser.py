"""The pack as a ComfyUI user meets it, in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real ComfyUI (COMFYUI_PATH) with this pack and the local Runware emulator.

- each example opens from ComfyUI's template browser with no missing node or widget error, and queues
  exactly its API-format twin;
- switching models offers, in every dropdown, what the spec allows for that model (also for a different
  spec served to the page: the extension holds no list of its own); an invalid value is replaced with a
  visible note; a Camera node wired into v5 is flagged; fast motion that will revert is warned about;
- the API key goes in through Settings → Runware, is checked against the emulator, stored 0600 in the user
  directory and shown only masked; it is in no saved workflow, setting, queued prompt, PNG/MP4 metadata,
  browser storage, history or log;
- after a run, the node shows the taskUUID and cost.

Screenshots go to test-artifacts/browser/. With PIXVERSE_UPDATE_DOCS=1 the test also refreshes
docs/screenshot-*.png and the template thumbnails example_workflows/*.jpg.

Needs: COMFYUI_PATH, /usr/bin/chromium (apt-get install -y chromium) and Playwright's Python package
(pip install -r requirements-browser.txt; never `playwright install`). Skipped, with the reason, without.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from pathlib import Path

import pytest

import workflow_tools as T
from support import keysafety
from support.emulators import BROWSER_KEY, COMFY_JOB_SECONDS, reset_emulator
from support.comfy import ServerKind, comfyui_path, frontend_roots, pack_env
from nodes.spec.kinds import NODE_IDS
from nodes.spec import load_spec
from web_expect import expected_options, load_routes, synthetic_spec

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
UPDATE_DOCS = os.environ.get("PIXVERSE_UPDATE_DOCS") == "1"
SENTINEL_KEY = BROWSER_KEY  # the user enters it; it is stored in the key file, so not the session's
WRONG_KEY = "rw-wrong-key-browser-000000000"
SPEC = load_spec()
PACK_MODULE = "ComfyUI-PixVerse-Runware"  # the harness links the pack into custom_nodes under this name
T2V, I2V, LIP = (NODE_IDS[k] for k in ("text_to_video", "image_to_video", "lipsync"))

try:
    import playwright.sync_api as pw
except ImportError:  # pragma: no cover - depends on the machine
    pw = None

pytestmark = [
    pytest.mark.skipif(comfyui_path() is None, reason="COMFYUI_PATH is not set: no ComfyUI checkout to test in"),
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="/usr/bin/chromium is missing: install Debian's chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(pw is None, reason="playwright is not installed: pip install -r requirements-browser.txt"),
]

# Small helpers evaluated in the page. They read state; every change a test makes goes through the UI.
HELPERS = """
window.__pvt = {
  node(id) { return app.graph.getNodeById(id); },
  widgetPoint(id, name) {
    const node = app.graph.getNodeById(id);
    const w = node.widgets.find((w) => w.name === name);
    const rect = app.canvas.canvas.getBoundingClientRect();
    const h = globalThis.LiteGraph.NODE_WIDGET_HEIGHT || 20;
    const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + node.size[0] / 2, node.pos[1] + w.y + h / 2]);
    const dpr = window.devicePixelRatio || 1;
    return [rect.left + cx / dpr, rect.top + cy / dpr];
  },
  value(id, name) { return app.graph.getNodeById(id).widgets.find((w) => w.name === name).value; },
  options(id, name) { return [...app.graph.getNodeById(id).widgets.find((w) => w.name === name).options.values]; },
  notes(id) {
    const el = app.graph.getNodeById(id).widgets?.find((w) => w.name === "pixverse_notes")?.element;
    return el ? [...el.children].map((c) => [c.className.replace("pixverse-line pixverse-", ""), c.textContent]) : null;
  },
  nodesOk() {
    return app.graph._nodes.map((n) => ({ id: n.id, type: n.type, errors: !!n.has_errors,
      registered: !!globalThis.LiteGraph.registered_node_types[n.type],
      badCombos: (n.widgets || []).filter((w) => w.type === "combo" && Array.isArray(w.options?.values)
        && !w.options.values.includes(w.value)).map((w) => [w.name, w.value]) }));
  },
};
"""


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        try:
            if old.stat().st_mtime < keysafety.STARTED:  # an earlier session's (another worker's are this session's)
                old.unlink()
        except FileNotFoundError:  # the other frontend's worker dropped it first
            pass
    return ARTIFACTS



@pytest.fixture(scope="module", params=frontend_roots(), ids=lambda f: f[0])
def frontend(request):
    """Every test runs against the frontend ComfyUI pins and against the newest one on PyPI."""
    name, root, why = request.param
    if why:
        pytest.skip(f"frontend '{name}': {why}")
    return name, root


def _fresh_user(base) -> None:
    """As a returning user's fresh ComfyUI: an EMPTY input folder (the pack writes the templates' samples) and
    no first-visit tutorial (newer frontends open a getting-started workflow over ours)."""
    (base / "input").mkdir(parents=True, exist_ok=True)
    (base / "user" / "default").mkdir(parents=True, exist_ok=True)
    (base / "user" / "default" / "comfy.settings.json").write_text(json.dumps({"Comfy.TutorialCompleted": True}))


@pytest.fixture
def emulator(browser_emulator):
    """The browser servers' emulator, reset before the test."""
    reset_emulator(browser_emulator, COMFY_JOB_SECONDS)
    return browser_emulator


@pytest.fixture(scope="module")
def comfy(frontend, comfy_pool, browser_emulator):
    """One ComfyUI per frontend for the session, shared by the browser modules. A server apart from the
    real-ComfyUI tests' one: no key in its environment (the user enters it in the settings dialog, and an
    environment key would win over it)."""
    name, root = frontend
    kind = ServerKind(f"browser-{name}", pack_env(browser_emulator.base_url, None),
                      extra_args=["--front-end-root", str(root)] if root else [], prepare=_fresh_user)
    server = comfy_pool.get(kind)
    server.frontend = name
    return server


def short_tmp() -> Path:
    """Chromium's temporary folder: a short link to a folder in the session's temporary folder. Chromium puts
    a Unix socket there, whose path may be at most 107 bytes; the session's folder under a deep checkout (a
    fresh clone under /tmp/tmp.XXXX/) is longer, and Chromium aborts ("Socket path too long"). What Chromium
    writes still lands under the artifacts, which the key search reads."""
    real = keysafety.TMP / "chromium"
    real.mkdir(parents=True, exist_ok=True)
    link = Path("/tmp") / f"pixverse-chromium-{os.getpid()}"  # the browser tests run on Linux (Debian's Chromium)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(real, target_is_directory=True)
    return link


@pytest.fixture(scope="module")
def browser():
    tmp = short_tmp()
    try:
        with pw.sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                  args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                                  env={**os.environ, "TMPDIR": str(tmp)})
            yield b
            b.close()
    finally:
        tmp.unlink(missing_ok=True)


class Page:
    """One browser tab on ComfyUI, with what it logged and posted."""

    def __init__(self, browser, comfy, spec_override: dict | None = None):
        self.comfy = comfy
        self.context = browser.new_context(viewport={"width": 1600, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.posted_prompts: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" and "Failed to load resource" not in m.text else None)
        self.page.on("request", self._on_request)
        if spec_override is not None:
            body = json.dumps(spec_override)
            self.page.route("**/runware/pixverse/spec",
                            lambda route: route.fulfill(status=200, content_type="application/json", body=body))

    def _on_request(self, request):
        if request.method == "POST" and request.url.endswith("/api/prompt"):
            self.posted_prompts.append(request.post_data or "")

    def open(self):
        p = self.page
        p.goto(self.comfy.url + "/")
        p.wait_for_function(f"!!(window.app && app.graph && globalThis.LiteGraph?.registered_node_types?.['{T2V}'])",
                            timeout=90_000)
        p.wait_for_timeout(1500)  # a first visit opens the template browser; let it settle
        p.evaluate(HELPERS)
        return self

    def close(self):
        self.context.close()

    # UI steps
    def command(self, name: str):
        # not awaited: some commands (save) wait for the dialog they open
        self.page.evaluate("name => { app.extensionManager.command.execute(name); }", name)

    def open_template(self, name: str):
        p = self.page
        if not p.locator(f'[data-testid="template-workflow-{name}"]').is_visible():
            if not p.get_by_text(PACK_MODULE, exact=True).is_visible():
                self.command("Comfy.BrowseTemplates")
            p.get_by_text(PACK_MODULE, exact=True).click()
        p.locator(f'[data-testid="template-workflow-{name}"]').click()
        self.wait_for_graph(T.load_examples()[name])

    def load(self, workflow: dict):
        self.page.evaluate("wf => app.loadGraphData(wf)", workflow)
        self.wait_for_graph(workflow)

    def wait_for_graph(self, workflow: dict):
        want = sorted([n["id"], n["type"]] for n in workflow["nodes"])
        self.page.wait_for_function(
            "want => JSON.stringify(app.graph._nodes.map((n) => [Number(n.id), n.type]).sort((a, b) => a[0] - b[0]))"
            " === JSON.stringify(want)", arg=want)
        self.page.wait_for_timeout(800)

    def close_menus(self):
        self.page.evaluate("globalThis.LiteGraph.closeAllContextMenus?.(window)")
        self.page.wait_for_function("!document.querySelector('.litecontextmenu')")

    def settle(self, node_id: int):
        """Wait until the node's widgets hold still: they move when the model hides some (the node
        shrinks) or the notes panel gets a line (the estimate arrives after a change)."""
        self.page.evaluate("""async (id) => {
          const ys = () => JSON.stringify([app.graph.getNodeById(id).size, app.graph.getNodeById(id).widgets.map((w) => w.y)]);
          const pause = () => new Promise((r) => setTimeout(r, 100));
          let last = ys(), still = 0;
          for (let i = 0; i < 60 && still < 3; i++) {
            app.canvas.setDirty(true, true);
            await pause();
            const now = ys();
            still = now === last ? still + 1 : 0;
            last = now;
          }
        }""", node_id)

    def open_combo(self, node_id: int, widget: str, tries: int = 3) -> list[str]:
        """Click the widget as a user does and return the menu's entries. The node can still move after it
        held still (an estimate that arrives late on a loaded machine adds a note line), and the click then
        opens the neighbour's menu: when the menu is not this widget's list, it is closed and clicked again."""
        for attempt in range(tries):
            self.settle(node_id)
            x, y = self.page.evaluate("([id, w]) => __pvt.widgetPoint(id, w)", [node_id, widget])
            self.page.mouse.click(x, y)
            try:
                self.page.wait_for_selector(".litecontextmenu .litemenu-entry", timeout=10_000)
            except pw.TimeoutError:
                self.shot(f"failed-to-open-{widget}")
                raise
            entries = self.page.locator(".litecontextmenu .litemenu-entry").all_inner_texts()
            listed = self.page.evaluate("""([id, w]) => {
              const v = app.graph.getNodeById(id).widgets.find((x) => x.name === w)?.options?.values;
              return Array.isArray(v) ? v.map(String) : null; }""", [node_id, widget])
            if listed is None or entries == listed or attempt == tries - 1:
                return entries
            self.close_menus()  # another widget's menu: the node moved under the click
        return entries

    def offered(self, node_id: int, widget: str) -> list[str]:
        """What the dropdown shows when the user opens it."""
        entries = self.open_combo(node_id, widget)
        self.close_menus()
        return entries

    def pick(self, node_id: int, widget: str, value):
        entries = self.open_combo(node_id, widget)
        assert str(value) in entries, (widget, value, entries)
        self.page.locator(".litecontextmenu .litemenu-entry").nth(entries.index(str(value))).click()
        self.page.wait_for_function("([id, w, v]) => String(__pvt.value(id, w)) === v", arg=[node_id, widget, str(value)])
        self.page.wait_for_timeout(150)

    def notes(self, node_id: int) -> list[list[str]]:
        return self.page.evaluate("id => __pvt.notes(id)", node_id)

    def shot(self, name: str) -> Path:
        prefix = "" if getattr(self.comfy, "frontend", "pinned") == "pinned" else f"{self.comfy.frontend}-"
        path = ARTIFACTS / f"{prefix}{name}.png"  # docs and thumbnails come from the pinned frontend only
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def tab(browser, comfy, artifacts):
    t = Page(browser, comfy).open()
    # keep screenshots free of the minimap (a display setting; nothing secret)
    t.page.evaluate("app.extensionManager.setting.set('Comfy.Minimap.Visible', false)")
    yield t
    t.close()
    assert not [e for e in t.errors if "pixverse" in e.lower()], t.errors


def gen_id(workflow: dict) -> int:
    return next(n["id"] for n in workflow["nodes"] if n["type"] in (T2V, I2V, LIP, NODE_IDS["modify"]))


def node_id(workflow: dict, node_type: str) -> int:
    return next(n["id"] for n in workflow["nodes"] if n["type"] == node_type)


def to_docs(src: Path, name: str) -> None:
    if UPDATE_DOCS and not src.name.startswith("latest-"):
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(src, ROOT / "docs" / name)


def thumbnail(src: Path, name: str) -> None:
    """The template browser shows example_workflows/<name>.jpg on the example's card."""
    if not UPDATE_DOCS or src.name.startswith("latest-"):
        return
    from PIL import Image

    with Image.open(src) as im:
        im = im.convert("RGB").crop((64, 80, 1600, 900))  # the canvas, without ComfyUI's bars and controls
        im.thumbnail((640, 400))
        im.save(T.EXAMPLES_DIR / f"{name}.jpg", quality=82, optimize=True)


def known_inputs(comfy) -> dict[str, set[str]]:
    info = comfy.object_info()
    return {t: set(info[t]["input"].get("required", {})) | set(info[t]["input"].get("optional", {}))
            for t in info}


# -- tests -------------------------------------------------------------------------------------

def test_spec_route_is_what_the_extension_reads(comfy):
    r = comfy.http.get("/runware/pixverse/spec")
    assert r.status_code == 200
    assert r.json() == json.loads(json.dumps(load_routes().web_spec()))
    assert "/extensions/" + PACK_MODULE + "/pixverse.js" in comfy.http.get("/extensions").json()


def test_examples_open_from_the_template_browser_and_queue_their_api_twins(tab, comfy):
    templates = comfy.http.get("/workflow_templates").json()
    assert sorted(templates[PACK_MODULE]) == sorted(T.load_examples())
    declared = known_inputs(comfy)
    twins = T.load_api_twins()
    tab.command("Comfy.BrowseTemplates")
    tab.page.get_by_text(PACK_MODULE, exact=True).click()
    tab.page.wait_for_selector('[data-testid^="template-workflow-"]')
    try:  # the cards show example_workflows/<name>.jpg once loaded
        tab.page.wait_for_function(
            "[...document.querySelectorAll('[data-testid^=\"template-workflow-\"] img')]"
            ".every((i) => i.complete && i.naturalWidth > 0)", timeout=10_000)
    except pw.TimeoutError:
        pass
    tab.page.wait_for_timeout(1000)
    dialog = tab.shot("templates-dialog")
    to_docs(dialog, "screenshot-templates.png")
    for name, workflow in T.load_examples().items():
        tab.open_template(name)
        state = tab.page.evaluate("__pvt.nodesOk()")
        for n in state:
            assert n["registered"] and not n["errors"], (name, n)
            assert not n["badCombos"], (name, n)
        assert not tab.page.locator(".p-dialog:visible").count(), (name, tab.page.locator(".p-dialog").all_inner_texts())
        assert not tab.page.locator(".p-toast-message-error").count(), name
        saved = tab.page.evaluate("JSON.parse(JSON.stringify(app.graph.serialize()))")
        by_id = {n["id"]: n for n in saved["nodes"]}
        for n in workflow["nodes"]:
            # a widget-less node: [] in the template; the newest frontend leaves the key out
            assert (by_id[n["id"]].get("widgets_values") or []) == (n["widgets_values"] or []), (name, n["type"])
        assert saved["links"] == workflow["links"], name
        prompt = tab.page.evaluate("(async () => (await app.graphToPrompt()).output)()")
        queued = {k: {"class_type": v["class_type"],
                      "inputs": {i: x for i, x in v["inputs"].items() if i in declared[v["class_type"]]}}
                  for k, v in prompt.items()}
        assert queued == twins[name], name
        notes = tab.notes(gen_id(workflow))
        assert notes and notes[0][0] == "summary", (name, notes)
        assert not [n for n in notes if n[0] in ("changed", "error", "warning")], (name, notes)
        thumbnail(tab.shot(f"template-{name}"), name)


def test_model_switch_offers_what_each_model_supports(tab):
    wf = T.load_examples()["text_to_video_camera"]
    tab.open_template("text_to_video_camera")
    gen, cam = gen_id(wf), node_id(wf, NODE_IDS["camera"])
    assert tab.offered(gen, "model") == [m.label for m in SPEC.models if "text-to-video" in m.workflows]
    for model in [m for m in SPEC.models if "text-to-video" in m.workflows]:
        tab.pick(gen, "model", model.label)
        res = tab.page.evaluate("([id]) => __pvt.value(id, 'resolution')", [gen])
        want = expected_options(SPEC, "text_to_video", model, node_values(tab, gen))
        ignores = load_routes().web_spec()["nodes"]["text_to_video"]["models"][model.label]["ignores"]
        for widget in ("resolution", "aspect_ratio", "duration", "fps", "style", "motion_mode"):
            if widget in ignores:  # hidden, or greyed out as the model's own (test_browser_visibility.py)
                assert tab.page.evaluate("([id, w]) => { const x = app.graph.getNodeById(id).widgets"
                                         ".find((x) => x.name === w); return !!(x.hidden || x.disabled); }",
                                         [gen, widget]), (model.key, widget)
                continue
            assert tab.offered(gen, widget) == [str(v) for v in want[widget]], (model.key, widget)
        notes = dict(tab.notes(gen))
        w, h = model.size(res, tab.page.evaluate("([id]) => __pvt.value(id, 'aspect_ratio')", [gen]))
        assert f"{w}×{h}" in notes["summary"], notes
        camera_notes = [text for kind, text in tab.notes(cam) if kind == "error"]
        if model.supports("camera_movement"):
            assert not camera_notes and "error" not in notes, model.key
        else:
            assert camera_notes and model.name in camera_notes[0] and "error" in notes, (model.key, camera_notes)
            if model.key == "v5":
                to_docs(tab.shot("camera-flagged-on-v5"), "screenshot-camera-flag.png")
    tab.pick(gen, "model", SPEC.model("pixverse:1@3").label)
    assert not [k for k, _ in tab.notes(cam) if k == "error"]

    wf = T.load_examples()["image_to_video"]
    tab.open_template("image_to_video")
    gen = gen_id(wf)
    for model in [m for m in SPEC.models if "image-to-video" in m.workflows]:
        tab.pick(gen, "model", model.label)
        want = expected_options(SPEC, "image_to_video", model, node_values(tab, gen))
        assert tab.offered(gen, "aspect_ratio") == want["aspect_ratio"]
        assert tab.offered(gen, "resolution") == want["resolution"]

    wf = T.load_examples()["lipsync_speech"]
    tab.open_template("lipsync_speech")
    gen = gen_id(wf)
    assert tab.offered(gen, "model") == [m.label for m in SPEC.lipsync_models]
    assert tab.offered(gen, "voice") == expected_options(SPEC, "lipsync", SPEC.lipsync_models[0], {})["voice"]


def test_a_value_the_model_does_not_offer_is_replaced_with_a_note(tab):
    wf = json.loads(json.dumps(T.load_examples()["text_to_video"]))
    gen = next(n for n in wf["nodes"] if n["type"] == T2V)
    names = [w.name for w in T.pack_nodes()[T2V].widgets]
    gen["widgets_values"][names.index("aspect_ratio")] = "21:9"  # e.g. a workflow from another pack version
    tab.load(wf)
    changed = [text for kind, text in tab.notes(gen["id"]) if kind == "changed"]
    assert tab.page.evaluate("([id]) => __pvt.value(id, 'aspect_ratio')", [gen["id"]]) == \
        SPEC.default_model("text-to-video").aspect_ratio_default
    assert len(changed) == 1 and "21:9" in changed[0] and "PixVerse v5" in changed[0], changed
    if tab.comfy.frontend == "pinned":  # the newest frontend's toast markup differs; its panel note is checked above
        assert tab.page.locator(".p-toast-message", has_text="21:9").count() >= 1


def test_the_extension_follows_the_spec_it_is_served(browser, comfy, artifacts):
    """A cut-down spec served to the page (v3.5 without 1080p, 24 fps only, no style, no motion mode):
    the dropdowns follow it, and switching to v3.5 replaces what it lacks, with notes and toasts."""
    cut = synthetic_spec()
    tab = Page(browser, comfy, spec_override=load_routes().web_spec(cut)).open()
    try:
        tab.page.evaluate("app.extensionManager.setting.set('Comfy.Minimap.Visible', false)")
        wf = T.load_examples()["text_to_video"]
        tab.load(wf)
        gen = gen_id(wf)
        tab.pick(gen, "resolution", "1080p")
        tab.pick(gen, "style", "anime")
        tab.pick(gen, "motion_mode", "fast")
        v35 = cut.model("pixverse:1@1")
        tab.pick(gen, "model", v35.label)
        values = {w: tab.page.evaluate("([id, w]) => __pvt.value(id, w)", [gen, w])
                  for w in ("resolution", "fps", "style", "motion_mode")}
        assert values == {"resolution": "720p", "fps": 24, "style": "none", "motion_mode": "normal"}
        changed = [text for kind, text in tab.notes(gen) if kind == "changed"]
        # style and motion mode, which this v3.5 does not take, are hidden: their reset is not announced
        assert len(changed) == 2 and all(v35.name in c for c in changed), changed
        assert tab.page.evaluate("([id]) => app.graph.getNodeById(id).widgets.filter((w) => w.hidden)"
                                 ".map((w) => w.name)", [gen]) == ["style", "motion_mode", "audio", "multi_clip", "thinking"]
        if tab.comfy.frontend == "pinned":  # toast markup: see above
            assert tab.page.locator(".p-toast-message", has_text="1080p").count() >= 1
        to_docs(tab.shot("values-replaced-on-model-switch"), "screenshot-model-switch.png")
        want = expected_options(cut, "text_to_video", v35, node_values(tab, gen))
        for widget in ("resolution", "aspect_ratio", "fps"):
            assert tab.offered(gen, widget) == [str(v) for v in want[widget]], widget
        tab.pick(gen, "resolution", "360p")
        assert tab.offered(gen, "aspect_ratio") == expected_options(cut, "text_to_video", v35,
                                                                    node_values(tab, gen))["aspect_ratio"]
        assert "9:16" not in tab.offered(gen, "aspect_ratio")
    finally:
        tab.close()


def test_fast_motion_that_will_revert_is_warned_on_the_node(tab):
    wf = T.load_examples()["text_to_video"]
    tab.load(wf)
    gen = gen_id(wf)
    notices = [r for r in SPEC.rules if r.notice and "motion_mode" in r.when]  # fast motion's reverts
    at_duration = next(r for r in notices if "duration" in r.when)
    at_resolution = next(r for r in notices if "resolution" in r.when)
    fast = at_duration.when["motion_mode"][0]
    warnings = lambda: [text for kind, text in tab.notes(gen) if kind == "warning"]  # noqa: E731
    tab.pick(gen, "motion_mode", fast)
    assert warnings() == []  # 5 s at 540p: fast stays fast
    tab.pick(gen, "duration", at_duration.when["duration"][0])
    assert warnings() == [f"Warning: {at_duration.notice}"]
    to_docs(tab.shot("fast-motion-warning"), "screenshot-fast-motion.png")
    tab.pick(gen, "duration", SPEC.model(wf_model(wf)).durations.default)
    assert warnings() == []
    tab.pick(gen, "resolution", at_resolution.when["resolution"][0])
    assert warnings() == [f"Warning: {at_resolution.notice}"]
    tab.pick(gen, "motion_mode", SPEC.setting("motion_mode").default)
    assert warnings() == []


def wf_model(wf) -> str:
    gen = next(n for n in wf["nodes"] if n["type"] == T2V)
    return gen["widgets_values"][0]


def node_values(tab, node_id) -> dict:
    """The node's widget values as the page holds them (what the extension's rules see)."""
    return tab.page.evaluate("([id]) => Object.fromEntries(app.graph.getNodeById(id).widgets"
                             ".filter((w) => w.name).map((w) => [w.name, w.value]))", [node_id])


def open_key_settings(tab):
    tab.command("Comfy.ShowSettingsDialog")
    # the settings dialog's category list: options in 1.27, buttons in newer frontends
    tab.page.get_by_role("option", name="Runware").or_(tab.page.get_by_role("button", name="Runware", exact=True)).click()
    tab.page.wait_for_selector('[data-testid="pixverse-key-status"]')
    tab.page.wait_for_function("document.querySelector('[data-testid=\"pixverse-key-status\"]').textContent.length > 0")


def test_api_key_through_the_settings_dialog(tab, comfy, emulator):
    key_file = comfy.user_dir / "runware" / "api_key"
    if key_file.exists():
        key_file.unlink()
    assert comfy.http.get("/runware/pixverse/key").json() == {"configured": False, "masked": "", "source": None}
    open_key_settings(tab)
    p = tab.page
    status = p.locator('[data-testid="pixverse-key-status"]')
    message = p.locator('[data-testid="pixverse-key-message"]')
    assert "No key set" in status.inner_text()
    box = p.locator('[data-testid="pixverse-key-input"]')
    assert box.get_attribute("type") == "password"
    box.fill(WRONG_KEY)
    p.locator('[data-testid="pixverse-key-save"]').click()
    p.wait_for_function("document.querySelector('[data-testid=\"pixverse-key-message\"]').textContent.includes('not')")
    assert "did not accept" in message.inner_text() and not key_file.exists()
    box.fill(SENTINEL_KEY)
    p.locator('[data-testid="pixverse-key-save"]').click()
    p.wait_for_function("document.querySelector('[data-testid=\"pixverse-key-message\"]').textContent.includes('accepted')")
    assert box.input_value() == ""
    assert status.inner_text().endswith(SENTINEL_KEY[-4:]) and SENTINEL_KEY not in status.inner_text()
    assert SENTINEL_KEY not in p.content()
    to_docs(tab.shot("settings-api-key"), "screenshot-settings.png")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and key_file.read_text() == SENTINEL_KEY
    got = comfy.http.get("/runware/pixverse/key").json()
    assert got == {"configured": True, "masked": "••••••••" + SENTINEL_KEY[-4:], "source": "file"}
    auth = [t for r in emulator.requests if isinstance(r.get("body"), list) for t in r["body"]
            if isinstance(t, dict) and t.get("taskType") == "authentication"]
    assert len(auth) >= 2
    settings = comfy.user_dir / "default" / "comfy.settings.json"
    text = settings.read_text() if settings.exists() else ""
    assert SENTINEL_KEY not in text and "Runware.PixVerse.APIKey" not in text
    p.keyboard.press("Escape")


@pytest.fixture
def key_stored(comfy):
    """The key as the previous test left it (set here through the same route when run alone)."""
    if not comfy.http.get("/runware/pixverse/key").json()["configured"]:
        assert comfy.http.post("/runware/pixverse/key", json={"key": SENTINEL_KEY}).status_code == 200


def test_run_shows_task_and_cost_and_the_key_is_nowhere(tab, comfy, emulator, key_stored):
    comfy.clear_history()  # the server is shared by the browser modules: only this test's run is read below
    wf = T.load_examples()["text_to_video"]
    tab.open_template("text_to_video")
    gen = gen_id(wf)
    tab.page.get_by_role("button", name="Run", exact=True).click()
    tab.page.wait_for_function("id => __pvt.node(id).__pixverse?.last", arg=gen, timeout=300_000)
    tab.page.wait_for_function("id => (__pvt.node(id).imgs || []).length > 0",  # the frame previews drew
                               arg=node_id(wf, "PreviewImage"), timeout=120_000)
    tab.page.wait_for_timeout(1000)
    last = [text for kind, text in tab.notes(gen) if kind == "last"]
    assert len(last) == 1
    deadline = time.monotonic() + 120
    while True:  # the node shows its info as soon as it ran; the prompt finishes after the previews
        history = comfy.http.get("/history").json()
        done = [h for h in history.values() if h.get("status", {}).get("completed") is not None]
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    (entry,) = done
    assert entry["status"]["status_str"] == "success", entry["status"]
    shown = entry["outputs"][str(gen)]["pixverse_info"][0]
    info = json.loads(entry["outputs"][str(node_id(wf, "PreviewAny"))]["text"][0])
    assert shown["taskUUID"] == info["taskUUID"] and info["taskUUID"] in last[0]
    cost = re.search(r"cost \$([0-9.]+)", last[0])
    assert info["cost"] is not None and cost and abs(float(cost.group(1)) - info["cost"]) < 1e-4, last[0]
    run_shot = tab.shot("run-finished")
    to_docs(run_shot, "screenshot-run.png")

    # save the workflow the way a user does (Workflow → Save), then look everywhere for the key
    saved = comfy.user_dir / "default" / "workflows" / "pixverse-key-check.json"
    if comfy.frontend == "pinned":
        tab.command("Comfy.SaveWorkflow")
        dialog_input = tab.page.locator(".p-dialog input")
        dialog_input.fill("pixverse-key-check")
        tab.page.get_by_role("button", name="Confirm").click()
    else:  # the newest frontend's save dialog differs: store what it would save, through the same route
        graph = tab.page.evaluate("JSON.stringify(app.graph.serialize())")
        assert comfy.http.post("/userdata/workflows%2Fpixverse-key-check.json", content=graph).status_code == 200
    tab.page.wait_for_timeout(1000)
    assert saved.exists()
    places = {"saved workflow": saved.read_text(),
              "queued prompts (incl. extra_pnginfo)": "\n".join(tab.posted_prompts),
              "browser storage": tab.page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})"),
              "page": tab.page.content(),
              "history": json.dumps(history),
              "ComfyUI log": comfy.log()}
    assert tab.posted_prompts and all("extra_pnginfo" in p for p in tab.posted_prompts)
    settings = comfy.user_dir / "default" / "comfy.settings.json"
    if settings.exists():
        places["comfy.settings.json"] = settings.read_text()
    for where, text in places.items():
        assert SENTINEL_KEY not in text, where
    for path in list(comfy.output_dir.rglob("*")) + list((comfy.base_dir / "temp").rglob("*")):
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path
    for path in (comfy.user_dir / "default").rglob("*"):
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path
    assert re.search(r"\bpixverse\b", saved.read_text())  # it is the workflow we ran


def test_the_panel_shows_the_cost_before_run_and_settings_show_the_spending(tab, comfy):
    """The estimate line follows the widgets (debounced; from the server's estimate route); the daily
    limit set in the frontend reaches the server (comfy.settings.json); Settings → Runware shows the spend."""
    tab.page.evaluate("app.extensionManager.setting.set('Runware.PixVerse.DailyLimit', 2)")
    tab.page.wait_for_function("app.extensionManager.setting.get('Runware.PixVerse.DailyLimit') === 2")
    wf = T.load_examples()["text_to_video"]
    tab.open_template("text_to_video")
    gen = gen_id(wf)
    estimate = lambda: [text for kind, text in tab.notes(gen) if kind == "estimate"]  # noqa: E731

    def wait_estimate(pred_js: str):
        tab.page.wait_for_function(
            "([id, s]) => (__pvt.notes(id) || []).some(([k, t]) => k === 'estimate' && t.includes(s))",
            arg=[gen, pred_js], timeout=30_000)
        return estimate()[0]

    first = wait_estimate("Estimated cost: ")
    # after the run test, this very request is in the ledger: free; run alone, nothing like it ran yet
    assert "free: re-uses finished task" in first or "unknown: no run of this kind yet" in first, first
    to_docs(tab.shot("estimate-before-run"), "screenshot-estimate.png")
    now = tab.page.evaluate("id => __pvt.value(id, 'duration')", gen)
    other = [d for d in tab.page.evaluate("id => __pvt.options(id, 'duration')", gen) if str(d) != str(now)][0]
    tab.pick(gen, "duration", other)
    changed = wait_estimate("unknown: no run of this kind yet")
    assert changed.endswith("of $2.00 a day"), changed  # the limit set in the frontend reached the server
    tab.shot("estimate-after-change")

    tab.command("Comfy.ShowSettingsDialog")
    tab.page.get_by_role("option", name="Runware").or_(tab.page.get_by_role("button", name="Runware", exact=True)).click()
    spend = tab.page.locator('[data-testid="pixverse-spend"] pre')
    spend.scroll_into_view_if_needed()
    tab.page.wait_for_function("(document.querySelector('[data-testid=\"pixverse-spend\"] pre')?.textContent || '')"
                               ".includes('daily limit: $2.00 (setting)')")
    assert spend.inner_text().startswith("today (")
    to_docs(tab.shot("settings-spending"), "screenshot-settings-spending.png")
    tab.page.keyboard.press("Escape")
