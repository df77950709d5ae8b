// What each PixVerse node may offer for the model it is set to, computed from the capability spec
// that the pack serves at /runware/pixverse/spec. No option list is written down here: every value,
// default and limit comes from that spec. Pure functions, no ComfyUI import, so they run in Node too.

const same = (a, b) => String(a) === String(b);
const has = (list, value) => list.some((v) => same(v, value));
const pick = (list, value) => list.find((v) => same(v, value));

/** The model behind a model-widget label (the label the node offers), or null. */
export function modelForLabel(spec, label) {
  const air = spec.ui.model_labels[label];
  return spec.models.find((m) => m.air === air) ?? null;
}

export function labelForModel(spec, model) {
  return Object.keys(spec.ui.model_labels).find((l) => spec.ui.model_labels[l] === model.air);
}

/** Which node a ComfyUI node type is: "text_to_video", "image_to_video", "lipsync", "effect", "camera" or null. */
export function nodeKind(spec, nodeType) {
  const ids = spec.ui.node_ids;
  return Object.keys(ids).find((k) => ids[k] === nodeType) ?? null;
}

const WORKFLOW = { text_to_video: "text-to-video", image_to_video: "image-to-video", lipsync: "video-to-video" };

export function modelsFor(spec, kind) {
  return spec.models.filter((m) => m.workflows.includes(WORKFLOW[kind]));
}

const supports = (model, setting) => (model.provider_settings ?? []).includes(setting);

/** The input name of a provider setting (e.g. cameraMovement → camera_movement), in words. */
function settingWords(spec, setting) {
  return (spec.ui.setting_inputs[setting] ?? setting).replace(/_/g, " ");
}

/** Names of the generator models that take a provider setting, e.g. "PixVerse v4, PixVerse v4.5". */
export function modelsTaking(spec, setting) {
  return spec.models.filter((m) => supports(m, setting)).map((m) => m.name);
}

function fmtSize([w, h]) {
  return `${w}×${h}`;
}

/**
 * The options each widget may show for `model`, given the current values (aspect ratios depend on the
 * resolution). Returns {name: [allowed values]} for the widgets this node kind has.
 */
export function allowedOptions(spec, kind, model, values) {
  const ui = spec.ui;
  if (kind === "lipsync") {
    const speech = (model.inputs ?? []).includes("speech");
    const voice = spec.enums.voice;
    return {
      model: modelsFor(spec, kind).map((m) => labelForModel(spec, m)),
      voice: speech ? [...voice.values] : [voice.default],
    };
  }
  const resolutions = Object.keys(model.sizes);
  const resolution = has(resolutions, values.resolution) ? values.resolution : null;
  const aspects = Object.keys(model.sizes[resolution ?? resolutions[0]] ?? {});
  const motion = spec.enums.motionMode;
  return {
    model: modelsFor(spec, kind).map((m) => labelForModel(spec, m)),
    resolution: resolutions,
    aspect_ratio: kind === "image_to_video" ? [ui.auto, ...aspects] : aspects,
    duration: [...model.duration.values],
    fps: [...model.fps.values],
    style: supports(model, "style") ? [ui.none, ...spec.enums.style.values] : [ui.none],
    motion_mode: supports(model, "motionMode") ? [...motion.values] : [motion.default],
    sound_effects: supports(model, "soundEffectSwitch") ? [false, true] : [false],
  };
}

/** The value a widget falls back to for `model`: the node's own default when the model allows it, else the model's. */
function fallback(spec, kind, model, name, allowed, nodeDefaults) {
  const candidates = [nodeDefaults?.[name]];
  const gd = spec.generation_defaults;
  if (name === "resolution") candidates.push(gd.resolution_default);
  if (name === "aspect_ratio") candidates.push(kind === "image_to_video" ? spec.ui.auto : gd.aspect_ratio_default);
  if (name === "duration") candidates.push(model.duration?.default);
  if (name === "fps") candidates.push(model.fps?.default);
  if (name === "motion_mode") candidates.push(spec.enums.motionMode.default);
  if (name === "voice") candidates.push(spec.enums.voice.default);
  if (name === "model") candidates.push(...allowed.slice(-1));
  for (const c of candidates) if (c !== undefined && c !== null && has(allowed, c)) return pick(allowed, c);
  return allowed[0];
}

/** True when PixVerse will run `fast` motion as `normal` for these choices (spec.fast_motion_revert). */
export function fastMotionReverts(spec, values) {
  const rule = spec.fast_motion_revert;
  return same(values.motion_mode, rule.mode) &&
    (has(rule.when_duration, values.duration) || has(rule.when_resolution, values.resolution));
}

export function fastMotionWarning(spec) {
  const rule = spec.fast_motion_revert;
  const when = [...rule.when_duration.map((d) => `${d} s`), ...rule.when_resolution].join(" or ");
  return `${rule.mode} motion will run as ${rule.reverts_to}: PixVerse does that at ${when}.`;
}

/**
 * Bring a node's values in line with its model.
 * kind: "text_to_video" | "image_to_video" | "lipsync"; values: {widget name: value};
 * nodeDefaults: {widget name: default} from the node definition.
 * Returns {model, allowed, values, changes: [{name, from, to, note}], warnings: [text], summary: text}.
 */
export function reconcile(spec, kind, values, nodeDefaults = {}) {
  const out = { ...values };
  const changes = [];
  const models = modelsFor(spec, kind);
  let model = modelForLabel(spec, out.model);
  if (!model || !models.includes(model)) {
    const labels = models.map((m) => labelForModel(spec, m));
    const to = fallback(spec, kind, models[0], "model", labels, nodeDefaults);
    changes.push({ name: "model", from: out.model, to, note: `model "${out.model}" is not offered; using ${to}` });
    out.model = to;
    model = modelForLabel(spec, to);
  }
  const replace = (name, allowed, why) => {
    if (!(name in out) || has(allowed, out[name])) {
      if (name in out) out[name] = pick(allowed, out[name]);
      return;
    }
    const to = fallback(spec, kind, model, name, allowed, nodeDefaults);
    changes.push({ name, from: out[name], to,
      note: `${name.replace(/_/g, " ")}: ${JSON.stringify(out[name])} ${why}; set to ${JSON.stringify(to)}` });
    out[name] = to;
  };
  const notOffered = `is not offered by ${model.name}`;
  // resolution first: the aspect ratios offered depend on it
  let allowed = allowedOptions(spec, kind, model, out);
  if (kind !== "lipsync") {
    replace("resolution", allowed.resolution, notOffered);
    allowed = allowedOptions(spec, kind, model, out);
  }
  for (const name of Object.keys(allowed)) {
    if (name !== "model" && name !== "resolution") replace(name, allowed[name], notOffered);
  }
  const warnings = [];
  if (kind === "lipsync") {
    if (!(model.inputs ?? []).includes("speech") && out.speech_text) {
      changes.push({ name: "speech_text", from: out.speech_text, to: "",
        note: `speech text: ${model.name} takes no text-to-speech; cleared` });
      out.speech_text = "";
    }
    const lim = spec.lipsync_limits;
    const summary = `reference video ≤ ${lim.video_max_seconds} s; audio ≤ ${lim.audio_max_seconds} s ` +
      `or speech text ≤ ${spec.text_limits.speech_text.max} characters`;
    return { model, allowed, values: out, changes, warnings, summary };
  }
  if ("sound_effect_content" in out && out.sound_effect_content && !supports(model, "soundEffectContent")) {
    changes.push({ name: "sound_effect_content", from: out.sound_effect_content, to: "",
      note: `sound effect content: ${model.name} takes none; cleared` });
    out.sound_effect_content = "";
  }
  if (fastMotionReverts(spec, out)) warnings.push(fastMotionWarning(spec));
  let summary;
  if (kind === "image_to_video" && same(out.aspect_ratio, spec.ui.auto)) {
    summary = `${model.name}: size follows the first frame (nearest listed ${out.resolution} size), ` +
      `${out.duration} s, ${out.fps} fps`;
  } else {
    const size = model.sizes[out.resolution]?.[out.aspect_ratio];
    summary = `${model.name}: ${size ? fmtSize(size) : "?"} (${out.aspect_ratio}, ${out.resolution}), ` +
      `${out.duration} s, ${out.fps} fps`;
  }
  return { model, allowed, values: out, changes, warnings, summary };
}

/**
 * Whether a motion node (Effect: "effect", Camera: "cameraMovement") may feed a generator set to `model`.
 * Returns null when it may, else the message to show.
 */
export function motionProblem(spec, setting, model) {
  if (!model || supports(model, setting)) return null;
  const takers = modelsTaking(spec, setting);
  return `${model.name} takes no ${settingWords(spec, setting)}` +
    (takers.length ? ` (only ${takers.join(", ")})` : "") + "; queueing will be refused.";
}

/** Runware reports cost in USD: at least 2 decimals, at most 4. */
export function fmtCost(cost) {
  const text = Number(cost).toFixed(4).replace(/(\.\d\d\d*?)0+$/, "$1");
  return `$${text}`;
}

/** What a motion node (Effect: "effect", Camera: "cameraMovement") says about where it may go. */
export function motionSummary(spec, setting) {
  const takers = modelsTaking(spec, setting);
  return takers.length ? `for ${takers.join(", ")}` : `no model takes a ${settingWords(spec, setting)}`;
}

/** One line for a finished run, from the node's ui payload (pixverse_info). */
export function runSummary(info) {
  const parts = [`taskUUID ${info.taskUUID}`];
  if (info.cost !== null && info.cost !== undefined) parts.push(`cost ${fmtCost(info.cost)}`);
  if (info.width && info.height) parts.push(`${info.width}×${info.height}`);
  if (info.duration) parts.push(`${info.duration} s`);
  if (info.fps) parts.push(`${Math.round(info.fps * 100) / 100} fps`);
  if (info.seed !== null && info.seed !== undefined) parts.push(`seed ${info.seed}`);
  return parts.join(" · ");
}
