// The PixVerse sidebar tab (the job ledger's jobs, today's spend, the Runware balance) and the
// Settings → Runware balance display (the floor setting "Keep at least" is served with the others: pixverse.js).
//
// Loaded by ComfyUI itself (it loads every .js under the pack's web folder); registered in init(): registering the
// tab in setup() made the model-switch browser test click stale widget positions (seen on both frontends).
// Reads GET /runware/pixverse/jobs (paged, newest first) and GET /runware/pixverse/balance (the server
// reads Runware at most once a minute). Uses only public extension APIs: app.registerExtension,
// app.extensionManager.registerSidebarTab (frontend 1.27 and later), settings entries, api.fetchApi.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const JOBS_ROUTE = "/runware/pixverse/jobs";
const BALANCE_ROUTE = "/runware/pixverse/balance";
const PAGE = 20;
const FAST_MS = 3000; // refresh while a job runs; nothing runs: no timer (a run's events and the buttons load)
const TAB_ID = "pixverse-jobs";

const el = (tag, cls, text) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
};

export function usd(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "unknown";
  const text = Number(value).toFixed(4).replace(/0+$/, "");
  const [whole, frac = ""] = text.split(".");
  return `$${whole}.${frac.padEnd(2, "0")}`;
}

export function elapsed(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const m = Math.floor(s / 60);
  return m ? `${m} min ${s % 60} s` : `${s} s`;
}

function bytes(n) {
  if (!n && n !== 0) return "";
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(n / 1e3))} kB`;
}

function clock(unix) {
  if (!unix) return "";
  return new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

async function getJson(route) {
  const r = await api.fetchApi(route, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body?.error || `HTTP ${r.status}`);
  return body;
}

async function copy(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (err) {
    const area = el("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    area.remove();
  }
  button.textContent = ok ? "copied" : "copy failed";
  setTimeout(() => (button.textContent = "copy"), 1500);
}

export function balanceText(b) {
  if (!b) return "Balance: …";
  if (b.balance === null || b.balance === undefined) {
    return `Balance: could not be read (${b.error || "no answer"})`;
  }
  const dry = b.dry_run ? " · dry-run endpoint: nothing is billed" : "";
  return `Balance: ${usd(b.balance)} ${b.currency || "USD"} (checked ${clock(b.checked_at)})${dry}`;
}

function header(data, bal) {
  const box = el("div", "pixverse-jobs-head");
  box.append(el("div", "pixverse-jobs-balance", balanceText(bal)));
  if (bal?.floor?.amount) {
    const note = bal.balance === null || bal.balance === undefined
      ? `Keep at least ${usd(bal.floor.amount)}: the floor could not be checked (the balance could not be read); runs go ahead`
      : `Keep at least ${usd(bal.floor.amount)} (${bal.floor.where || "setting"})`;
    box.append(el("div", "pixverse-jobs-floor", note));
  }
  const t = data?.today || { total: 0, runs: 0 };
  const pending = t.pending ? ` (${usd(t.pending)} of it set aside for runs under way)` : "";
  box.append(el("div", "pixverse-jobs-today",
    `Today: ${usd(t.total)} billed in ${t.runs} run${t.runs === 1 ? "" : "s"}${pending}`));
  const nb = data?.not_billed_today;
  if (nb?.runs) {
    box.append(el("div", "pixverse-jobs-notbilled",
      `${nb.runs} dry run${nb.runs === 1 ? "" : "s"} today: not billed`));
  }
  return box;
}

function uuidRow(job) {
  const row = el("div", "pixverse-job-uuid");
  row.append(el("code", null, job.task_uuid));
  const b = el("button", "pixverse-copy", "copy");
  b.title = "Copy the taskUUID (for the PixVerse Recover node or Runware's support)";
  b.addEventListener("click", () => copy(job.task_uuid, b));
  row.append(b);
  return row;
}

export function jobCard(job) {
  const card = el("div", `pixverse-job pixverse-job-${job.kind}`);
  card.dataset.taskUuid = job.task_uuid;
  const title = el("div", "pixverse-job-title");
  title.append(el("b", null, job.model_name), el("span", "pixverse-job-when", ` ${clock(job.created_at)}`));
  if (job.started_early) {
    const tag = el("span", "pixverse-job-early", " · started early");
    tag.title = "Started when its prompt was queued (Start queued prompts early), before the prompt's turn";
    title.append(tag);
  }
  card.append(title);
  if (job.prompt) card.append(el("div", "pixverse-job-prompt", job.prompt));
  if (job.kind === "running") {
    card.append(el("div", "pixverse-job-phase", `${job.phase} · ${elapsed(job.elapsed)}`));
  } else if (job.kind === "finished") {
    if (job.url) {
      const v = el("video", "pixverse-job-thumb");
      v.src = job.url;
      v.preload = "metadata";
      v.muted = true;
      v.controls = true;
      card.append(v);
    }
    const facts = [job.size, job.duration ? `${job.duration} s` : "",
      job.billed ? (job.cost !== null && job.cost !== undefined ? usd(job.cost) : "cost not reported")
        : "not billed (dry run)", bytes(job.file_bytes)].filter(Boolean);
    card.append(el("div", "pixverse-job-facts", facts.join(" · ")));
    const file = el(job.url ? "a" : "span", "pixverse-job-file", job.file_name || job.file || "");
    if (job.url) {
      file.href = job.url;
      file.target = "_blank";
    }
    file.title = job.file || "";
    card.append(file);
    if (job.recover) card.append(el("div", "pixverse-job-recover", `File gone: ${job.recover}`));
  } else if (job.kind === "stopped") {
    card.append(el("div", "pixverse-job-reason", `ended: ${job.reason}`));
    if (job.recover) card.append(el("div", "pixverse-job-recover", job.recover));
  } else {
    card.append(el("div", "pixverse-job-reason", `${job.status}: ${job.reason}`));
    if (job.recover) card.append(el("div", "pixverse-job-recover", job.recover));
  }
  card.append(uuidRow(job));
  return card;
}

function renderPanel(root) {
  root.classList.add("pixverse-jobs");
  const top = el("div");
  const list = el("div", "pixverse-jobs-list");
  const pager = el("div", "pixverse-jobs-pager");
  const newer = el("button", null, "newer");
  const older = el("button", null, "older");
  const refresh = el("button", null, "refresh");
  pager.append(newer, older, refresh);
  root.append(el("h3", "pixverse-jobs-title", "PixVerse jobs"), top, pager, list);
  let offset = 0;
  let timer = null;
  let balance = null;
  let alive = true;

  const load = async (freshBalance) => {
    if (!alive) return;
    clearTimeout(timer);
    let data = null;
    try {
      data = await getJson(`${JOBS_ROUTE}?limit=${PAGE}&offset=${offset}`);
    } catch (err) {
      list.replaceChildren(el("div", "pixverse-jobs-error", `Could not load the jobs: ${err.message}`));
    }
    try {
      balance = await getJson(BALANCE_ROUTE + (freshBalance ? "?refresh=1" : ""));
    } catch (err) {
      balance = { balance: null, error: err.message };
    }
    top.replaceChildren(header(data, balance));
    if (data) {
      const jobs = data.jobs || [];
      list.replaceChildren(...(jobs.length ? jobs.map(jobCard)
        : [el("div", "pixverse-jobs-empty", "No PixVerse jobs yet: they appear here once a generator runs.")]));
      newer.disabled = offset === 0;
      older.disabled = offset + PAGE >= (data.total || 0);
    }
    const running = (data?.jobs || []).some((j) => j.kind === "running");
    root.dataset.refreshing = running ? "yes" : "no";
    if (alive && running) timer = setTimeout(() => load(false), FAST_MS);
  };
  newer.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(false); });
  older.addEventListener("click", () => { offset += PAGE; load(false); });
  refresh.addEventListener("click", () => load(true));
  // a finished run: show it (and the balance the server re-reads after a task)
  const onDone = () => load(false);
  // and a run that starts (or a prompt queued, which start-ahead may start at once): refresh until it ends
  const EVENTS = ["execution_success", "execution_error", "execution_interrupted", "execution_start", "promptQueued"];
  for (const name of EVENTS) api.addEventListener(name, onDone);
  load(false);
  return () => {
    alive = false;
    clearTimeout(timer);
    for (const name of EVENTS) api.removeEventListener(name, onDone);
  };
}

function renderBalanceSetting() {
  const root = el("div", "pixverse-balance-setting");
  const text = el("span", null, "Balance: …");
  const b = el("button", null, "refresh");
  const load = async (fresh) => {
    try {
      text.textContent = balanceText(await getJson(BALANCE_ROUTE + (fresh ? "?refresh=1" : "")));
    } catch (err) {
      text.textContent = `Balance: could not be read (${err.message})`;
    }
  };
  b.addEventListener("click", () => load(true));
  root.append(text, b);
  load(false);
  return root;
}

const STYLE = `
.pixverse-jobs { padding: 8px; font: 12px/1.4 sans-serif; overflow-y: auto; height: 100%; box-sizing: border-box; }
.pixverse-jobs-title { margin: 0 0 6px 0; font-size: 14px; }
.pixverse-jobs-head { padding: 6px; margin-bottom: 6px; border-radius: 6px; background: var(--comfy-input-bg, #222); }
.pixverse-jobs-floor, .pixverse-jobs-notbilled { color: var(--descrip-text, #999); }
.pixverse-jobs-pager { display: flex; gap: 6px; margin-bottom: 6px; }
.pixverse-jobs button { padding: 2px 8px; cursor: pointer; border-radius: 4px; border: 1px solid var(--border-color, #555);
  background: var(--comfy-input-bg, #333); color: var(--input-text, #ddd); }
.pixverse-jobs button:disabled { opacity: 0.5; cursor: default; }
.pixverse-job { border: 1px solid var(--border-color, #444); border-radius: 6px; padding: 6px; margin-bottom: 6px; }
.pixverse-job-running { border-left: 4px solid #8ab4f8; }
.pixverse-job-finished { border-left: 4px solid #6fcf97; }
.pixverse-job-failed, .pixverse-job-lost { border-left: 4px solid #ff6b6b; }
.pixverse-job-stopped { border-left: 4px solid #f5b942; }
.pixverse-job-early { color: #8ab4f8; }
.pixverse-job-prompt { color: var(--descrip-text, #aaa); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.pixverse-job-thumb { width: 100%; max-height: 160px; background: #000; border-radius: 4px; margin: 4px 0; }
.pixverse-job-reason { color: #ff6b6b; overflow-wrap: anywhere; }
.pixverse-job-recover { color: #f5b942; overflow-wrap: anywhere; }
.pixverse-job-file { display: block; overflow-wrap: anywhere; }
.pixverse-job-uuid { display: flex; gap: 6px; align-items: center; margin-top: 4px; }
.pixverse-job-uuid code { font-size: 10px; overflow-wrap: anywhere; }
.pixverse-balance-setting { display: flex; gap: 8px; align-items: center; }
`;

app.registerExtension({
  name: "Runware.PixVerse.Jobs",
  settings: [
    {
      id: "Runware.PixVerse.Balance",
      category: ["Runware", "PixVerse", "Balance"],
      name: "Runware balance",
      defaultValue: "",
      telemetry: { trackChanges: false },
      type: () => renderBalanceSetting(),
    },
  ],
  async init() {
    const style = el("style");
    style.textContent = STYLE;
    document.head.append(style);
    const manager = app.extensionManager;
    if (typeof manager?.registerSidebarTab !== "function") {
      console.warn("[PixVerse] this frontend has no sidebar tabs; the jobs panel is not shown");
      return;
    }
    let cleanup = null;
    manager.registerSidebarTab({
      id: TAB_ID,
      icon: "pi pi-video",
      title: "PixVerse",
      tooltip: "PixVerse jobs: running, finished, failed; today's spend and your Runware balance",
      type: "custom",
      render: (container) => {
        if (cleanup) cleanup();
        container.replaceChildren();
        cleanup = renderPanel(container);
      },
      destroy: () => {
        if (cleanup) cleanup();
        cleanup = null;
      },
    });
  },
});
