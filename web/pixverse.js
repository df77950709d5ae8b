// PixVerse (Runware) web extension for ComfyUI.
//
// - Dropdowns follow the chosen model: each offers only what that model supports. A value that
//   became invalid is replaced by the model's default, with a note on the node and a toast.
// - Warns on the node when `fast` motion will run as `normal`, and flags an Effect/Camera node
//   wired into a model that does not take it.
// - After a run, shows the last taskUUID and cost (the node's `pixverse_info` ui payload).
// - Before a run, shows the expected cost (POST /runware/pixverse/estimate, debounced on widget changes).
// - Settings → Runware → Spending: the spending limits (read by the server from ComfyUI's settings file)
//   and what was spent (GET /runware/pixverse/spend).
// - Settings → Runware: the API key, sent once to the pack's server route; never stored in a
//   setting, a widget, a workflow or a prompt.
//
// Every list comes from the capability spec the pack serves (GET /runware/pixverse/spec), and so do the
// node kinds, the settings the server reads and the cost format; this file holds none. Uses only public extension APIs: app.registerExtension, beforeRegisterNodeDef,
// node callbacks, addDOMWidget, settings entries, api.fetchApi.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import * as R from "./lib/rules.js";
import * as V from "./lib/visibility.js";

const SPEC_ROUTE = "/runware/pixverse/spec";
const KEY_ROUTE = "/runware/pixverse/key";
const ESTIMATE_ROUTE = "/runware/pixverse/estimate";
const SPEND_ROUTE = "/runware/pixverse/spend";
const ESTIMATE_DELAY = 400; // ms after the last widget change before the estimate is asked for
const NOTES_WIDGET = "pixverse_notes";
const PANEL_MARGIN = 6; // px around the notes panel inside the node (the frontend's DOM widget margin)
const LINE = 15; // px per line of notes (see .pixverse-notes below)

let SPEC = null;
const specReady = api
  .fetchApi(SPEC_ROUTE)
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
  .then((spec) => (SPEC = spec))
  .catch((err) => {
    console.warn(`[PixVerse] could not load ${SPEC_ROUTE}; dropdowns are not filtered per model`, err);
    return null;
  });

// -- small helpers --------------------------------------------------------------------------

const widget = (node, name) => node.widgets?.find((w) => w.name === name);

function linkById(graph, id) {
  if (id === null || id === undefined || !graph?.links) return null;
  return typeof graph.links.get === "function" ? graph.links.get(id) : graph.links[id];
}

function toast(severity, detail) {
  try {
    app.extensionManager?.toast?.add({ severity, summary: "PixVerse", detail, life: 7000 });
  } catch (err) {
    console.debug("[PixVerse] toast not shown", err);
  }
}

function state(node) {
  node.__pixverse ??= { kind: null, changes: [], warnings: [], motion: [], last: null, summary: "" };
  return node.__pixverse;
}

// -- the notes panel on each PixVerse node ----------------------------------------------------

let measureCtx = null;
/** How many lines `text` takes when wrapped at word boundaries in `width` px (the panel's font). */
function wrappedLines(text, width, bold) {
  measureCtx ??= document.createElement("canvas").getContext("2d");
  measureCtx.font = `${bold ? "bold " : ""}11px sans-serif`;
  const space = measureCtx.measureText(" ").width;
  let lines = 1;
  let used = 0;
  for (const word of text.split(/\s+/)) {
    const w = measureCtx.measureText(word).width;
    if (w > width) {  // a word longer than a line (a UUID) breaks anywhere
      lines += used > 0 ? 1 : 0;
      lines += Math.ceil(w / width) - 1;
      used = w % width;
    } else if (used > 0 && used + space + w > width) {
      lines += 1;
      used = w;
    } else {
      used += (used > 0 ? space : 0) + w;
    }
  }
  return lines;
}

/** The panel's height, fixed by render(): the frontend lays the node out around it. */
function panelHeight(el) {
  return el.__pixverseHeight ?? 0;
}

function ensureNotes(node) {
  const existing = widget(node, NOTES_WIDGET);
  if (existing) return existing;
  const el = document.createElement("div");
  el.className = "pixverse-notes";
  const w = node.addDOMWidget(NOTES_WIDGET, "pixverse-notes", el, {
    serialize: false,
    hideOnZoom: false,
    margin: PANEL_MARGIN,
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () => panelHeight(el),
    getMaxHeight: () => panelHeight(el),
  });
  w.serialize = false; // not in widgets_values, so saved workflows keep their shape
  return w;
}

function line(cls, text) {
  const div = document.createElement("div");
  div.className = `pixverse-line pixverse-${cls}`;
  div.textContent = text;
  return div;
}

function render(node) {
  const s = state(node);
  const w = ensureNotes(node);
  const lines = [];
  if (s.summary) lines.push(["summary", s.summary]);
  if (s.estimate) lines.push(["estimate", `Estimated cost: ${s.estimate}`]);
  for (const c of s.changes) lines.push(["changed", `Changed: ${c.note}`]);
  for (const text of s.warnings) lines.push(["warning", `Warning: ${text}`]);
  for (const text of s.motion) lines.push(["error", `Not supported: ${text}`]);
  if (s.last) {
    lines.push(["last", `Last run: ${R.runSummary(SPEC, s.last)}`]);
    for (const n of s.last.notices ?? []) lines.push(["last-notice", `Note: ${n}`]);
  }
  w.element.replaceChildren(...lines.map(([cls, text]) => line(cls, text)));
  // the node's width less the widget's margins, the panel's padding (2 × 6 px) and a little slack
  const width = Math.max(80, (node.size?.[0] ?? 300) - 2 * PANEL_MARGIN - 12 - 4);
  const rows = lines.reduce((n, [cls, text]) => n + wrappedLines(text, width, cls === "error"), 0);
  // the frontend gives the element the widget's height less its margins; the panel pads 4 px top and bottom
  w.element.__pixverseHeight = rows ? rows * LINE + 8 + 2 * PANEL_MARGIN + 2 : 0;
  w.element.style.display = rows ? "" : "none";
  w.element.dataset.kinds = lines.map(([cls]) => cls).join(" ");
  node.setDirtyCanvas?.(true, true);
}

// -- the cost before Run (POST /runware/pixverse/estimate; the server computes it from the ledger) --

/** The linked Effect/Camera node's choice, as the generator's motion input carries it. */
function motionOf(node) {
  try {
    const input = node.inputs?.find((i) => i.name === "motion");
    const link = linkById(node.graph, input?.link);
    const origin = link && node.graph.getNodeById(link.origin_id);
    const name = origin && motionSetting(origin); // the setting's input name, also the motion node's widget
    const value = name && widget(origin, name)?.value;
    return value ? { [name]: value } : {};
  } catch {
    return {};
  }
}

async function fetchEstimate(node) {
  const s = state(node);
  const body = { node: node.type ?? node.comfyClass, values: values(node), motion: motionOf(node) };
  const asked = (s.estimateAsked = (s.estimateAsked ?? 0) + 1);
  try {
    const r = await api.fetchApi(ESTIMATE_ROUTE, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), cache: "no-store",
    });
    const data = await r.json();
    if (asked !== s.estimateAsked) return; // a newer request is on its way
    s.estimate = data.text ?? (data.error ? `no estimate (${data.error})` : "");
  } catch (err) {
    s.estimate = "";
    console.debug("[PixVerse] estimate not available", err);
  }
  render(node);
}

/** Ask for the estimate once the widgets have been still for ESTIMATE_DELAY ms. */
function scheduleEstimate(node) {
  const s = state(node);
  if (!SPEC || !R.sendsTask(SPEC, s.kind)) return;
  clearTimeout(s.estimateTimer);
  s.estimateTimer = setTimeout(() => fetchEstimate(node), ESTIMATE_DELAY);
}

// -- generators and LipSync: options per model ------------------------------------------------

function values(node) {
  const widgets = {};
  for (const w of node.widgets ?? []) {
    if (w.name && w.name !== NOTES_WIDGET && w.name !== "control_after_generate") widgets[w.name] = w.value;
  }
  // rules may depend on whether an optional input (a last frame) is connected
  const sockets = {};
  for (const input of node.inputs ?? []) {
    if (input.type !== SPEC?.ui.motion_type) sockets[input.name] = input.link != null;
  }
  return R.ruleContext(widgets, sockets);
}

/** Re-read the model and make every widget offer (and hold) what it supports. */
function reconcileNode(node, { announce }) {
  const s = state(node);
  if (!SPEC || !s.kind || !SPEC.nodes[s.kind]) return;
  s.kept ??= {}; // values of hidden inputs, back when the model takes them again (visibility.js)
  for (const [name, value] of Object.entries(V.restore(SPEC, s.kind, widget(node, "model")?.value, s.kept))) {
    if (widget(node, name)) widget(node, name).value = value;
  }
  const result = R.reconcile(SPEC, s.kind, values(node), s.defaults);
  for (const [name, allowed] of Object.entries(result.allowed)) {
    const w = widget(node, name);
    if (w && Array.isArray(allowed) && Array.isArray(w.options?.values)) w.options.values = [...allowed];
  }
  for (const change of result.changes) {
    const w = widget(node, change.name);
    if (w) w.value = change.to;
  }
  const shown = V.keep(SPEC, s.kind, result.values.model, result.changes, s.kept); // hidden ones: kept
  if (announce || shown.length) s.changes = shown;
  for (const change of shown) toast("warn", `${node.title}: ${change.note}`);
  s.warnings = result.warnings;
  s.summary = result.summary;
  s.model = result.model;
  V.follow(SPEC, node, s.kind, result.values.model, result.model.name); // hide what the model does not take
}

// -- Effect / Camera wired into a generator whose model does not take it -----------------------

function motionSetting(node) {
  if (!SPEC) return null;
  return R.motionSettingOf(SPEC, node.__pixverse?.kind ?? R.nodeKind(SPEC, node.type));
}

function refreshMotion(graph) {
  // graph.nodes is the public list (frontends ≥ 1.2x); _nodes is the older, private field behind it
  const nodes = graph?.nodes ?? graph?._nodes;
  if (!SPEC || !Array.isArray(nodes)) return;
  for (const node of nodes) if (node.__pixverse) state(node).motion = [];
  for (const node of nodes) {
    const setting = motionSetting(node);
    if (!setting) continue;
    for (const id of node.outputs?.[0]?.links ?? []) {
      const link = linkById(graph, id);
      const target = link && graph.getNodeById(link.target_id);
      if (!target?.__pixverse) continue;
      const problem = R.motionProblem(SPEC, setting, target.__pixverse.kind, widget(target, "model")?.value);
      if (problem) {
        state(node).motion.push(`${target.title}: ${problem}`);
        state(target).motion.push(`${node.title}: ${problem}`);
      }
    }
  }
  for (const node of nodes) if (node.__pixverse) render(node);
}

const refreshQueued = new Set();
function scheduleRefresh(graph) {
  graph ??= app.graph;
  if (!graph || refreshQueued.has(graph)) return;
  refreshQueued.add(graph);
  queueMicrotask(() => {
    refreshQueued.delete(graph);
    refreshMotion(graph);
  });
}

// -- wiring ---------------------------------------------------------------------------------

function nodeDefaults(nodeData) {
  const out = {};
  for (const section of ["required", "optional"]) {
    for (const [name, spec] of Object.entries(nodeData.input?.[section] ?? {})) {
      if (Array.isArray(spec) && spec[1] && "default" in spec[1]) out[name] = spec[1].default;
    }
  }
  return out;
}

function setUp(node, kind, defaults) {
  const s = state(node);
  s.kind = kind;
  s.defaults = defaults;
  ensureNotes(node);
  for (const w of node.widgets ?? []) {
    if (w.name === NOTES_WIDGET || w.__pixverseWrapped) continue;
    const callback = w.callback;
    w.callback = function (...args) {
      const r = callback?.apply(this, args);
      reconcileNode(node, { announce: true });
      render(node);
      scheduleRefresh(node.graph);
      scheduleEstimate(node);
      return r;
    };
    w.__pixverseWrapped = true;
  }
  const setting = motionSetting(node);
  if (SPEC && setting) s.summary = R.motionSummary(SPEC, setting);
  reconcileNode(node, { announce: false });
  render(node);
  scheduleEstimate(node);
}

function chain(proto, name, after) {
  const before = proto[name];
  proto[name] = function (...args) {
    const r = before?.apply(this, args);
    after.apply(this, args);
    return r;
  };
}

function drawFlag(ctx) {
  if (!this.__pixverse?.motion?.length) return;
  const title = globalThis.LiteGraph?.NODE_TITLE_HEIGHT ?? 30;
  ctx.save();
  ctx.strokeStyle = "#ff4d4f";
  ctx.lineWidth = 3;
  ctx.setLineDash([8, 4]);
  ctx.strokeRect(-4, -title - 4, this.size[0] + 8, this.size[1] + title + 8);
  ctx.restore();
}

// -- the API key in Settings → Runware ---------------------------------------------------------

async function keyRequest(method, body) {
  // The custom header makes a browser ask before any cross-site request; the server insists on it.
  const init = {
    method,
    headers: { "Content-Type": "application/json", "X-PixVerse-Request": "1" },
    cache: "no-store",
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await api.fetchApi(KEY_ROUTE, init);
  let data = {};
  try {
    data = await r.json();
  } catch {
    data = { error: `HTTP ${r.status}` };
  }
  return { ok: r.ok, data };
}

function describeKey(status) {
  if (!status?.configured) return "No key set. Paste your Runware API key and press Save.";
  if (status.source === "env") return `Using RUNWARE_API_KEY from ComfyUI's environment: ${status.masked}`;
  return `Stored on the ComfyUI server: ${status.masked}`;
}

function renderKeyEditor() {
  const root = document.createElement("div");
  root.className = "pixverse-key";
  const status = document.createElement("div");
  status.className = "pixverse-key-status";
  status.dataset.testid = "pixverse-key-status";
  const row = document.createElement("div");
  row.className = "pixverse-key-row";
  const input = document.createElement("input");
  Object.assign(input, { type: "password", placeholder: "Runware API key", autocomplete: "off", spellcheck: false });
  input.setAttribute("autocomplete", "new-password"); // no autofill; the browser keeps nothing
  input.dataset.testid = "pixverse-key-input";
  input.className = "p-inputtext";
  const save = document.createElement("button");
  save.textContent = "Check and save";
  save.dataset.testid = "pixverse-key-save";
  const remove = document.createElement("button");
  remove.textContent = "Remove";
  remove.dataset.testid = "pixverse-key-remove";
  const message = document.createElement("div");
  message.className = "pixverse-key-message";
  message.dataset.testid = "pixverse-key-message";
  row.append(input, save, remove);
  root.append(status, row, message);

  const show = (data, text, bad = false) => {
    status.textContent = describeKey(data);
    remove.disabled = !(data?.configured && data.source === "file");
    message.textContent = text ?? data?.note ?? "";
    message.classList.toggle("pixverse-bad", bad);
  };
  const busy = (on) => {
    for (const el of [input, save, remove]) el.disabled = on;
  };
  keyRequest("GET").then(({ data }) => show(data)).catch((err) => show(null, String(err), true));

  const submit = async () => {
    const key = input.value.trim();
    if (!key) return show(null, "Paste a key first.", true);
    busy(true);
    message.textContent = "Checking the key with Runware…";
    try {
      const { ok, data } = await keyRequest("POST", { key });
      if (ok) input.value = "";
      show(data, ok ? data.note ?? "Runware accepted the key; it is stored on the server." : data.error, !ok);
    } catch (err) {
      show(null, String(err), true);
    } finally {
      busy(false);
    }
  };
  save.addEventListener("click", submit);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") submit();
  });
  remove.addEventListener("click", async () => {
    busy(true);
    try {
      const { data } = await keyRequest("DELETE");
      show(data, data.removed ? "The stored key was removed." : "No stored key to remove.");
    } finally {
      busy(false);
    }
  });
  return root;
}

// -- Settings → Runware: spending limits and what was spent ------------------------------------

function renderSpend() {
  const root = document.createElement("div");
  root.className = "pixverse-spend";
  root.dataset.testid = "pixverse-spend";
  const text = document.createElement("pre");
  const refresh = document.createElement("button");
  refresh.textContent = "Refresh";
  const load = async () => {
    try {
      const r = await api.fetchApi(SPEND_ROUTE, { cache: "no-store" });
      const data = await r.json();
      text.textContent = data.text ?? data.error ?? `HTTP ${r.status}`;
    } catch (err) {
      text.textContent = String(err);
    }
  };
  refresh.addEventListener("click", load);
  root.append(text, refresh);
  load();
  return root;
}

// The settings the server reads (their ids, places, names, tooltips, types, defaults and ranges) come from the
// spec route, declared once in nodes/config.py. ComfyUI takes an extension's settings when it registers, so this
// module waits for the spec first; without it those settings are not offered (the server then reads none, and
// the environment still works).
const SERVED_SETTINGS = (await specReady)?.ui.settings ?? null;
if (!SERVED_SETTINGS) console.warn("[PixVerse] no spec: the spending and layout settings are not shown");

/** A served setting as ComfyUI's settings entry: a choice offers the served values (an empty value, from before
 * it was a choice, means the default). */
function settingEntry(served) {
  const { key, options, ...entry } = served;
  if (entry.type === "combo") {
    entry.options = () => options;
    entry.migrateDeprecatedValue = (value) =>
      (typeof value === "string" && value.trim() === "" ? served.defaultValue : value);
  }
  return entry;
}

const SERVER_SETTINGS = (SERVED_SETTINGS ?? []).map(settingEntry);

const SPENT_SETTING = {
  id: "Runware.PixVerse.Spent",
  category: ["Runware", "Spending", "Spent"],
  name: "Spent (from the job ledger)",
  defaultValue: "",
  telemetry: { trackChanges: false },
  type: () => renderSpend(),
};

const STYLE = `
.pixverse-notes { font: 11px/15px sans-serif; padding: 4px 6px; overflow: hidden; box-sizing: border-box;
  color: var(--descrip-text, #999); background: var(--comfy-input-bg, #222); border-radius: 6px; }
.pixverse-line { overflow-wrap: anywhere; }
.pixverse-summary { color: var(--descrip-text, #aaa); }
.pixverse-changed, .pixverse-warning { color: #f5b942; }
.pixverse-error { color: #ff6b6b; font-weight: bold; }
.pixverse-last { color: #6fcf97; }
.pixverse-estimate { color: #c9a0ff; }
.pixverse-spend pre { font-size: 0.85em; white-space: pre-wrap; margin: 0 0 4px 0; }
.pixverse-last-notice { color: #8ab4f8; }
.pixverse-key { display: flex; flex-direction: column; gap: 6px; min-width: 22rem; max-width: 34rem; }
.pixverse-key-row { display: flex; gap: 6px; align-items: center; }
.pixverse-key-row input { flex: 1; min-width: 10rem; padding: 4px 8px; }
.pixverse-key-row button { padding: 4px 10px; cursor: pointer; border-radius: 4px;
  border: 1px solid var(--border-color, #555); background: var(--comfy-input-bg, #333); color: var(--input-text, #ddd); }
.pixverse-key-row button:disabled { opacity: 0.5; cursor: default; }
.pixverse-key-status { font-size: 0.9em; }
.pixverse-key-message { font-size: 0.9em; color: #6fcf97; min-height: 1.2em; }
.pixverse-key-message.pixverse-bad { color: #ff6b6b; }
`;

app.registerExtension({
  name: "Runware.PixVerse",

  settings: [
    {
      id: "Runware.PixVerse.APIKey",
      category: ["Runware", "PixVerse", "API key"],
      name: "Runware API key",
      tooltip:
        "Checked with Runware, then stored on the ComfyUI server in its user directory (file mode 0600). " +
        "Never saved in a workflow, a prompt, PNG metadata or these settings. RUNWARE_API_KEY in ComfyUI's " +
        "environment takes precedence.",
      defaultValue: "",
      telemetry: { trackChanges: false },
      // A custom renderer: the key goes to the pack's route, never into this setting's value.
      type: () => renderKeyEditor(),
    },
    ...SERVER_SETTINGS,
    SPENT_SETTING,
  ],

  async init() {
    const style = document.createElement("style");
    style.textContent = STYLE;
    document.head.append(style);
    await specReady;
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    const spec = await specReady;
    if (!spec) return;
    const kind = R.nodeKind(spec, nodeData.name);
    if (!kind) return;
    const defaults = nodeDefaults(nodeData);
    const proto = nodeType.prototype;
    chain(proto, "onNodeCreated", function () {
      setUp(this, kind, defaults);
    });
    chain(proto, "onConfigure", function () {
      // values were just loaded from a workflow: hold them to the model, say what changed
      reconcileNode(this, { announce: true });
      render(this);
      scheduleRefresh(this.graph);
      scheduleEstimate(this);
    });
    chain(proto, "onResize", function () {
      if (this.__pixverse && widget(this, NOTES_WIDGET)) render(this); // lines re-wrap to the new width
    });
    chain(proto, "onConnectionsChange", function () {
      if (this.__pixverse?.kind && SPEC?.nodes[this.__pixverse.kind]) {
        reconcileNode(this, { announce: true }); // rules may depend on a connected input
        render(this);
      }
      scheduleRefresh(this.graph);
      if (this.__pixverse) scheduleEstimate(this);
    });
    chain(proto, "onExecuted", function (output) {
      const info = output?.pixverse_info?.[0];
      if (!info) return;
      state(this).last = info;
      render(this);
      scheduleEstimate(this); // the same settings again now re-use this task: free
    });
    if (R.motionSettingOf(spec, kind)) chain(proto, "onDrawForeground", drawFlag);
  },

  async afterConfigureGraph() {
    scheduleRefresh(app.graph);
  },
});
