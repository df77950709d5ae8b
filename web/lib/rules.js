// What each PixVerse node may offer for the model it is set to. Everything comes from the route
// /runware/pixverse/spec, which serves, per node kind and model, the options, defaults, sizes and
// rules that nodes/spec/options.py computes from the capability spec. This file holds no list and
// knows no setting or rule: it narrows the served options by the served rules exactly as the Python
// `evaluate` does (tests compare the two), and says what changed. Pure functions, no ComfyUI import.

const same = (a, b) => String(a) === String(b);

/** The node kind ("text_to_video", "effect", …: the served table of kinds) of a ComfyUI node type, or null. */
export function nodeKind(spec, nodeType) {
  return Object.values(spec.kinds).find((k) => k.node_id === nodeType)?.kind ?? null;
}

/** Whether nodes of `kind` send a task (the generators: they have a workflow, hence an estimate). */
export function sendsTask(spec, kind) {
  return Boolean(spec.kinds[kind]?.workflow);
}

/** The setting a motion node of `kind` picks (Effect: "effect", …), or null for other kinds. */
export function motionSettingOf(spec, kind) {
  return spec.kinds[kind]?.motion_setting ?? null;
}

/**
 * The values a node's rules are matched against (in Python: nodes/spec/paths.rule_context): its widget
 * values, and for each input socket that is not a widget whether it is connected (so "last_frame" is
 * true when a last frame is connected, as a task with a last frame image). widgets: {name: value};
 * sockets: {name: connected?}, the motion socket left out (its choice arrives as a setting).
 */
export function ruleContext(widgets, sockets) {
  return { ...sockets, ...widgets };
}

/** The served entry of a model-widget label on a node kind, or null. */
export function modelEntry(spec, kind, label) {
  return spec.nodes?.[kind]?.models?.[label] ?? null;
}

function isSet(spec, value) {
  if (value === null || value === undefined || value === false) return false;
  if (typeof value === "string") return !["", spec.ui.none].includes(value.trim().toLowerCase());
  return true;
}

/** Whether `value` is one of a rule's values (the "any set value" marker matches any set value). */
function valueIn(spec, value, listed) {
  return listed.some((v) => {
    if (v === spec.ui.set) return isSet(spec, value);
    if (typeof v === "boolean" || typeof value === "boolean") return v === value;
    return same(v, value);
  });
}

function matches(spec, rule, values) {
  return Object.entries(rule.when).every(([name, listed]) => valueIn(spec, values[name], listed));
}

// null in an options map: free text. Only "set / not set" can be ruled on.
function restrict(spec, current, listed, keep) {
  if (current === null) return keep || !listed.includes(spec.ui.set) ? current : [""];
  return current.filter((v) => valueIn(spec, v, listed) === keep);
}

/** Whether a value is among the allowed options (null: any text; an unset value always is). */
export function offered(spec, allowed, value) {
  if (allowed === null || allowed === undefined || !isSet(spec, value)) return true;
  return valueIn(spec, value, allowed);
}

/** {allowed, reasons, notices} for a model (by label) given the node's values: nodes/spec/options.evaluate. */
export function evaluate(spec, kind, label, values) {
  const entry = modelEntry(spec, kind, label);
  if (!entry) return null;
  const allowed = {};
  for (const [name, options] of Object.entries(entry.options)) allowed[name] = options === null ? null : [...options];
  if (entry.aspect_ratios?.[values.resolution]) allowed.aspect_ratio = [...entry.aspect_ratios[values.resolution]];
  const reasons = {};
  const notices = [];
  for (const rule of entry.rules) {
    if (!matches(spec, rule, values)) continue;
    if (rule.tells) { // a rule that may not refuse (unsure sources, or Runware's schema decides): told when broken
      if (rule.notice) notices.push(rule.notice);
      const broken = [
        ...Object.entries(rule.allow ?? {}).filter(([n, listed]) => n in values && !offered(spec, listed, values[n])),
        ...Object.entries(rule.forbid ?? {}).filter(([n, listed]) => isSet(spec, values[n]) && valueIn(spec, values[n], listed)),
      ].map(([n]) => n);
      if (broken.length) notices.push(`${broken.join(", ")}: ${rule.tells}`);
      continue;
    }
    for (const [name, listed] of Object.entries(rule.allow ?? {})) {
      if (name in allowed) {
        allowed[name] = restrict(spec, allowed[name], listed, true);
        reasons[name] = rule.why;
      }
    }
    for (const [name, listed] of Object.entries(rule.forbid ?? {})) {
      if (name in allowed || name in values) {
        allowed[name] = restrict(spec, name in allowed ? allowed[name] : null, listed, false);
        reasons[name] = rule.why;
      }
    }
    if (rule.notice) notices.push(rule.notice);
  }
  return { allowed, reasons, notices };
}

/** The value a widget falls back to: the node's own default when allowed, else the model's, else the first. */
function fallback(entry, name, allowed, nodeDefaults) {
  if (allowed === null) return "";
  for (const c of [nodeDefaults?.[name], entry.defaults[name]]) {
    if (c !== undefined && c !== null && allowed.some((v) => same(v, c))) return allowed.find((v) => same(v, c));
  }
  return allowed[0];
}

function fmtSize([w, h]) {
  return `${w}×${h}`;
}

/** The frame rate a model makes: the fps widget's, or the model's own (served `ignores`). */
function fpsText(entry, values) {
  return entry.ignores?.includes("fps") ? "the model's own frame rate" : `${values.fps} fps`;
}

/**
 * Bring a node's values in line with its model. values: {input name: value} (plus last_frame: connected?);
 * nodeDefaults: {input name: default} from the node definition.
 * Returns {model, allowed, values, changes: [{name, from, to, note}], warnings: [text], summary: text}.
 */
export function reconcile(spec, kind, values, nodeDefaults = {}) {
  const out = { ...values };
  const changes = [];
  const node = spec.nodes[kind];
  let entry = modelEntry(spec, kind, out.model);
  if (!entry) {
    const labels = Object.keys(node.models);
    const to = labels.includes(nodeDefaults.model) ? nodeDefaults.model : node.default_model;
    changes.push({ name: "model", from: out.model, to, note: `model "${out.model}" is not offered; using ${to}` });
    out.model = to;
    entry = node.models[to];
  }
  let ev = evaluate(spec, kind, out.model, out);
  // One input at a time, resolution first: the other options depend on it.
  const names = Object.keys(ev.allowed).filter((n) => n !== "model" && n in out);
  names.sort((a, b) => (b === "resolution") - (a === "resolution"));
  for (let pass = 0; pass < names.length + 1; pass += 1) {
    const name = names.find((n) => !offered(spec, ev.allowed[n], out[n]));
    if (!name) break;
    const to = fallback(entry, name, ev.allowed[name], nodeDefaults);
    const why = ev.reasons[name] ?? `is not offered by ${entry.name}`;
    changes.push({ name, from: out[name], to,
      note: `${name.replace(/_/g, " ")}: ${JSON.stringify(out[name])} ${why}; set to ${JSON.stringify(to)}` });
    out[name] = to;
    ev = evaluate(spec, kind, out.model, out);
  }
  for (const name of names) {  // keep the widget's own value type (8 vs "8")
    const allowed = ev.allowed[name];
    if (allowed) out[name] = allowed.find((v) => same(v, out[name]) && typeof v === typeof out[name]) ??
      allowed.find((v) => same(v, out[name])) ?? out[name];
  }
  let summary;
  if (!("duration" in entry.defaults)) {  // a model that keeps its source's length (Modify) or lipsync
    const lim = spec.lipsync_limits;
    summary = "resolution" in out
      ? `${entry.name}: the source video's shape and length (≤ ${lim.video_max_seconds} s) at ${out.resolution}`
      : `reference video ≤ ${lim.video_max_seconds} s; audio ≤ ${lim.audio_max_seconds} s ` +
        `or speech text ≤ ${spec.text_limits.speech_text.max} characters`;
  } else if (same(out.aspect_ratio, spec.ui.auto)) {
    summary = `${entry.name}: size follows the first frame (nearest listed ${out.resolution} size), ` +
      `${out.duration} s` + ("fps" in entry.defaults ? `, ${fpsText(entry, out)}` : "");
  } else {
    const size = entry.sizes[out.resolution]?.[out.aspect_ratio];
    summary = `${entry.name}: ${size ? fmtSize(size) : "?"} (${out.aspect_ratio}, ${out.resolution}), ` +
      `${out.duration} s, ${fpsText(entry, out)}`;
  }
  return { model: entry, allowed: ev.allowed, values: out, changes, warnings: ev.notices, summary };
}

/** Names of the models that take a setting (by input name), e.g. "PixVerse v4, PixVerse v4.5". */
function takers(spec, setting) {
  return spec.ui.models_taking[setting] ?? [];
}

/**
 * Whether a motion node (its setting: "effect", "camera_movement") may feed a generator set to the
 * model `label`. Returns null when it may, else the message to show.
 */
export function motionProblem(spec, setting, kind, label) {
  const entry = modelEntry(spec, kind, label);
  if (!entry || entry.settings.includes(setting)) return null;
  const names = takers(spec, setting);
  return `${entry.name} takes no ${setting.replace(/_/g, " ")}` +
    (names.length ? ` (only ${names.join(", ")})` : "") + "; queueing will be refused.";
}

/** What a motion node says about where it may go. */
export function motionSummary(spec, setting) {
  const names = takers(spec, setting);
  return names.length ? `for ${names.join(", ")}` : `no model takes a ${setting.replace(/_/g, " ")}`;
}

/** A cost in US dollars as the server writes it (the served cost format: min to max decimals). */
export function fmtCost(spec, cost) {
  const f = spec.ui.cost_format;
  const [whole, frac = ""] = Number(cost).toFixed(f.max_decimals).split(".");
  const kept = frac.replace(/0+$/, "").padEnd(f.min_decimals, "0");
  return `${f.symbol}${whole}${kept ? `.${kept}` : ""}`;
}

/** One line for a finished run, from the node's ui payload (pixverse_info). */
export function runSummary(spec, info) {
  const parts = [`taskUUID ${info.taskUUID}`];
  if (info.cost !== null && info.cost !== undefined) parts.push(`cost ${fmtCost(spec, info.cost)}`);
  if (info.width && info.height) parts.push(`${info.width}×${info.height}`);
  if (info.duration) parts.push(`${info.duration} s`);
  if (info.fps) parts.push(`${Math.round(info.fps * 100) / 100} fps`);
  if (info.seed !== null && info.seed !== undefined) parts.push(`seed ${info.seed}`);
  if (info.layout) parts.push(`${info.layout} layout`);
  return parts.join(" · ");
}
