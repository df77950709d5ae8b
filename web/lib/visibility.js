// Which of a PixVerse node's widgets the chosen model takes. Everything comes from the route
// /runware/pixverse/spec: per node kind and model, `ignores` lists the inputs the model does not take
// (nodes/spec/options.py ignored_inputs). This file holds no list of inputs or models.
//
// - A setting the model does not take (a name in spec.settings: audio, multi_clip, thinking on v5;
//   motion_mode, sound_effects … on v6) is hidden, and shown again when the model changes.
// - Any other input the model does not take (fps on the models that make videos at their own rate)
//   stays in place, greyed out, its label saying so, its value blank.
// - A hidden widget is still a widget: it keeps its value, serializes it in its place in
//   widgets_values and is still in the queued prompt (the server validates every input).
// - A widget whose input is wired to a link is never hidden (the link would dangle out of sight).
//
// `plan` is pure (tested in Node); `apply` touches only the widget fields both frontends read
// (widget.hidden, widget.disabled, widget.label; LGraphNode.isWidgetVisible honours `hidden` on
// 1.27 and, through its legacy setter, on 1.58) and the node's size.

/** The label of an input a model does not take but the node still shows (e.g. "fps: model's own rate"). */
export function ownLabel(name) {
  const what = name === "fps" ? "rate" : "value";  // wording only; which inputs: the served `ignores`
  return `${name.replace(/_/g, " ")}: model's own ${what}`;
}

/**
 * What to do with a node's widgets for the model `label` on a node of `kind`.
 * names: the node's widget names; linked: names whose input slot has a link.
 * Returns {hidden: [names], own: {name: label}, shown: [names]} (shown: the others, in order),
 * or null when the model is unknown (then nothing is hidden).
 */
export function plan(spec, kind, label, names, linked = []) {
  const entry = spec?.nodes?.[kind]?.models?.[label];
  if (!entry || !Array.isArray(entry.ignores)) return null;
  const settings = spec.settings ?? {};
  const hidden = [];
  const own = {};
  for (const name of names) {
    if (!entry.ignores.includes(name)) continue;
    if (name in settings && !linked.includes(name)) hidden.push(name);
    else own[name] = ownLabel(name);
  }
  const shown = names.filter((n) => !hidden.includes(n));
  return { hidden, own, shown };
}

/** The tooltip line of a widget marked as the model's own. */
export function ownTooltip(modelName, name) {
  return `${modelName} takes no ${name.replace(/_/g, " ")}: it makes its videos at its own ` +
    `${name === "fps" ? "frame rate" : "setting"}; this value is kept in the workflow but not sent.`;
}

const noRoom = () => [0, -4];

/**
 * Apply a plan to a node's widgets (null: show everything as the node defines it). Remembers each
 * widget's own label, tooltip and disabled state the first time, and restores them. Returns whether
 * anything changed (the caller then lets the node re-lay itself out).
 */
export function apply(node, result, modelName = "") {
  let changed = false;
  for (const w of node.widgets ?? []) {
    if (!w.name) continue;
    const hide = !!result && result.hidden.includes(w.name);
    const own = result?.own?.[w.name];
    if (!w.__pixverseOrig && (hide || own)) {
      const size = Object.prototype.hasOwnProperty.call(w, "computeSize") ? w.computeSize : undefined;
      w.__pixverseOrig = { label: w.label, disabled: !!w.disabled, tooltip: w.tooltip, computeSize: size };
    }
    const orig = w.__pixverseOrig;
    if (!orig) continue;
    if (!!w.hidden !== hide) {
      w.hidden = hide;
      changed = true;
    }
    // 1.27 lays out every widget, hidden or not, by its computeSize (+4 px): a hidden one takes no room
    if (hide) w.computeSize = noRoom;
    else if (w.computeSize === noRoom) {
      if (orig.computeSize) w.computeSize = orig.computeSize;
      else delete w.computeSize;
    }
    const label = own ?? orig.label;
    if (w.label !== label) {
      w.label = label;
      changed = true;
    }
    const disabled = own ? true : orig.disabled;
    if (!!w.disabled !== disabled) {
      w.disabled = disabled;
      changed = true;
    }
    w.tooltip = own ? ownTooltip(modelName, w.name) : orig.tooltip;
    if (!hide && !own) delete w.__pixverseOrig;
  }
  if (changed) fit(node);
  return changed;
}

/** Let the node take the height its visible widgets need (never narrower than it is). */
export function fit(node) {
  if (typeof node.computeSize !== "function" || !Array.isArray(node.size)) return;
  const [w, h] = node.computeSize();
  const width = Math.max(node.size[0], w);
  if (typeof node.setSize === "function") node.setSize([width, h]);
  else node.size = [width, h];
  node.setDirtyCanvas?.(true, true);
}

/** Plan and apply for a node: its widget names and wired widget inputs are read from the node. */
export function follow(spec, node, kind, label, modelName) {
  const names = (node.widgets ?? []).map((w) => w.name).filter(Boolean);
  const linked = (node.inputs ?? []).filter((i) => i.widget?.name && i.link != null).map((i) => i.widget.name);
  return apply(node, plan(spec, kind, label, names, linked), modelName);
}

// -- values kept while hidden -------------------------------------------------------------------
// A model that does not take a setting gets it at its resting value (the server refuses anything
// else), so switching v6 → v5 sets `audio` back to false. The value the user chose is kept here
// (per node, in memory) and comes back when the node is switched to a model that takes it again;
// since the widget is hidden meanwhile, its reset is not announced as a change.

/** Changes to announce, after stashing in `kept` the values of inputs the model does not take. */
export function keep(spec, kind, label, changes, kept) {
  const ignores = spec?.nodes?.[kind]?.models?.[label]?.ignores ?? [];
  return changes.filter((c) => {
    if (!ignores.includes(c.name)) return true;
    kept[c.name] = c.from;
    return false;
  });
}

/** {input: value} to put back (and remove from `kept`): the stashed inputs the model takes again. */
export function restore(spec, kind, label, kept) {
  const entry = spec?.nodes?.[kind]?.models?.[label];
  const out = {};
  if (!entry) return out;
  for (const name of Object.keys(kept)) {
    if (entry.ignores?.includes(name)) continue;
    out[name] = kept[name];
    delete kept[name];
  }
  return out;
}
