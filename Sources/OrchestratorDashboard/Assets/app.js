// The orchestrator dashboard: polls the daemon's JSON API (/api/v1) while the page is visible, and stops
// polling while it is hidden, so a forgotten tab costs the daemon nothing. No framework, no build step.
"use strict";

const TOKEN_COOKIE = "orchestrator_token";
const WAITING_STATES = ["queued", "retry_wait", "breaker_wait", "paused"];
const FAST_MS = 1000;
const CHART_MS = 15000;

let fastTimer = null;
let chartTimer = null;
let lastStatus = null;
let chartFinished = null;
let chartFetchedAt = 0;

// ---------- API ----------

function token() {
  const match = document.cookie.split("; ").find((c) => c.startsWith(TOKEN_COOKIE + "="));
  return match ? decodeURIComponent(match.slice(TOKEN_COOKIE.length + 1)) : null;
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = "Bearer " + bearer;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: "no-store",
  });
  if (response.status === 401) throw new Unauthorized();
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: text }; }
  if (!response.ok) throw new Error((body && body.error) || response.status + " " + response.statusText);
  return body;
}

// ---------- formatting ----------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (value < 1) return Math.round(value * 1000) + " ms";
  if (value < 90) return value.toFixed(value < 10 ? 2 : 1) + " s";
  if (value < 5400) return Math.round(value / 60) + " min";
  if (value < 172800) return (value / 3600).toFixed(1) + " h";
  return Math.round(value / 86400) + " d";
}

function since(iso) {
  if (!iso) return null;
  const time = Date.parse(iso);
  return Number.isNaN(time) ? null : Math.max(0, (Date.now() - time) / 1000);
}

function clock(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
}

function jobName(job) {
  return job.name || job.task || job.file || "job " + (job.job ?? job.id);
}

function jobID(job) {
  return job.job ?? job.id;
}

function owner(job) {
  if (job.task) return "task " + job.task;
  if (job.handler) return "handler " + job.handler;
  return job.kind || "";
}

function fill(tableID, rows, emptyText, columns) {
  const body = document.querySelector("#" + tableID + " tbody");
  body.replaceChildren();
  if (!rows.length) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: columns }, emptyText)));
    return;
  }
  for (const row of rows) body.append(row);
}

function toast(message, bad = false) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.style.background = bad ? "var(--bad)" : "";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

async function act(button, path, body, done) {
  button.disabled = true;
  try {
    const result = await api(path, { method: "POST", body: body === undefined ? {} : body });
    toast(done || (result && result.message) || "done");
    refreshFast();
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin();
    toast(error.message, true);
    button.disabled = false;
  }
}

// ---------- sections ----------

function renderHeader(status) {
  const daemon = document.getElementById("daemon");
  daemon.textContent = status.daemon.running ? "daemon running (pid " + status.daemon.pid + ")" : "daemon not running";
  daemon.className = "pill " + (status.daemon.running ? "ok" : "bad");
  const health = document.getElementById("health");
  health.textContent = status.healthy ? "healthy" : "unhealthy";
  health.className = "pill " + (status.healthy ? "ok" : "bad");
  document.getElementById("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
  const banner = document.getElementById("banner");
  const warnings = [];
  if (status.paused) warnings.push(status.paused + ": nothing new starts until " + (status.paused.startsWith("paused: no space") ? "space returns" : "that changes"));
  for (const problem of status.cannot_read || []) warnings.push(problem);
  banner.hidden = warnings.length === 0;
  banner.replaceChildren(...warnings.map((w) => el("div", {}, w)));
}

function renderCounts(status) {
  const jobs = status.jobs || {};
  const items = [
    ["in Inbox", status.inbox_waiting], ["queued", jobs.queued], ["running", jobs.running],
    ["retry wait", jobs.retry_wait], ["breaker wait", jobs.breaker_wait], ["paused", jobs.paused],
    ["done", jobs.done], ["failed", jobs.failed],
  ];
  document.getElementById("counts").replaceChildren(
    ...items.map(([label, value]) => el("div", { class: "count", "data-count": label }, el("b", {}, value ?? 0), el("span", {}, label))));
}

function renderRunning(status) {
  const rows = (status.running || []).map((job) => el("tr", { "data-job": jobID(job) },
    el("td", {}, jobID(job)),
    el("td", { class: "name" }, jobName(job)),
    el("td", {}, job.attempt),
    el("td", {}, job.pid ?? "–"),
    el("td", {}, seconds(job.running_seconds)),
    el("td", {}, el("button", {
      class: "danger", "data-action": "cancel",
      onclick: (event) => act(event.target, "/api/v1/jobs/" + jobID(job) + "/cancel", { reason: "from the dashboard" }, "cancel sent"),
    }, "cancel"))));
  fill("running", rows, "nothing running", 6);
}

function renderQueue(status, waiting) {
  const starvation = status.starvation_after_seconds;
  document.getElementById("queue-reason").textContent = status.queue_waits_because ? "Waiting because " + status.queue_waits_because : "";
  const rows = waiting.map((job) => {
    const waited = since(job.created_at);
    const starving = starvation && waited !== null && waited > starvation;
    return el("tr", { "data-job": jobID(job), class: starving ? "starving" : "" },
      el("td", {}, jobID(job)),
      el("td", { class: "name" }, jobName(job), el("div", { class: "muted" }, owner(job))),
      el("td", {}, job.state.replace("_", " ")),
      el("td", {}, job.priority ?? "–"),
      el("td", {}, seconds(waited), starving ? el("span", { class: "pill warn", title: "waiting longer than starvation_after" }, " starving") : null),
      el("td", {}, job.waiting_because || job.reason || job.detail || why(job, status)),
      el("td", {}, el("button", {
        class: "danger", "data-action": "cancel",
        onclick: (event) => act(event.target, "/api/v1/jobs/" + jobID(job) + "/cancel", { reason: "from the dashboard" }, "cancelled"),
      }, "cancel")));
  });
  fill("queue", rows, "nothing waiting", 7);
}

function why(job, status) {
  switch (job.state) {
    case "retry_wait": return job.not_before ? "retrying at " + clock(job.not_before) : "backing off before its next attempt";
    case "breaker_wait": return "its breaker is open";
    case "paused": return "its handler is paused";
    default: return status.queue_waits_because || "waiting for a free slot";
  }
}

function renderRecent(jobs) {
  const rows = jobs.map((job) => el("tr", { "data-job": jobID(job), "data-state": job.state },
    el("td", {}, jobID(job)),
    el("td", { class: "name" }, jobName(job), el("div", { class: "muted" }, owner(job))),
    el("td", {}, el("span", { class: "pill " + (job.state === "done" ? "ok" : "bad") }, job.state)),
    el("td", {}, job.attempts_used ?? job.attempts ?? "–"),
    el("td", {}, seconds(job.duration_seconds ?? job.last_duration_seconds)),
    el("td", {}, clock(job.finished_at)),
    el("td", {}, job.reason || "")));
  fill("recent", rows, "no runs yet", 7);
}

function replayPath(job) {
  return job.location || job.final_path || "Failed/" + jobName(job);
}

function renderFailed(jobs) {
  // Newest first: a file failed, replayed and failed again is listed once, as its latest job.
  const seen = new Set();
  const files = jobs.filter((job) => {
    const key = job.location || jobName(job);
    if (job.kind === "task" || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const rows = files.map((job) => el("tr", { "data-job": jobID(job) },
    el("td", {}, jobID(job)),
    el("td", { class: "name" }, jobName(job)),
    el("td", {}, job.attempts_used ?? job.attempts ?? "–"),
    el("td", {}, job.reason || ""),
    el("td", {}, clock(job.finished_at)),
    el("td", {}, el("button", {
      "data-action": "replay",
      onclick: (event) => act(event.target, "/api/v1/replay", { paths: [replayPath(job)] }, "replayed " + jobName(job)),
    }, "replay"))));
  fill("failed", rows, "no failed files", 6);
}

function renderTasks(list) {
  const rows = (list.tasks || []).map((task) => {
    const enabled = task.enabled !== false;
    const waitingFor = task.waiting_for && task.waiting_for.length ? "waiting for " + task.waiting_for.join(", ") : null;
    const after = (task.after || []).join(", ");
    return el("tr", { "data-task": task.name },
      el("td", {}, task.name, enabled ? null : el("span", { class: "pill warn" }, " disabled")),
      el("td", {}, task.trigger || ""),
      el("td", {}, task.next_fire ? clock(task.next_fire) : "–"),
      el("td", {}, task.last_result || "–"),
      el("td", {}, waitingFor || after || "–"),
      el("td", {}, (task.executions ?? 0) + " / " + (task.failures ?? 0)),
      el("td", {},
        el("button", { "data-action": "run", onclick: (event) => act(event.target, "/api/v1/tasks/" + encodeURIComponent(task.name) + "/run", {}, "task " + task.name + " queued") }, "run now"),
        " ",
        el("button", {
          "data-action": enabled ? "disable" : "enable",
          onclick: (event) => act(event.target, "/api/v1/tasks/" + encodeURIComponent(task.name) + (enabled ? "/disable" : "/enable"), {}, "task " + task.name + (enabled ? " disabled" : " enabled")),
        }, enabled ? "disable" : "enable")));
  });
  fill("tasks", rows, "no tasks configured", 7);
}

function renderHandlers(list, status) {
  const paused = new Set(status.paused_handlers || []);
  const rows = (list.handlers || []).map((handler) => {
    const isPaused = paused.has(handler.name);
    return el("tr", { "data-handler": handler.name },
      el("td", {}, handler.name),
      el("td", {}, el("span", { class: "pill " + (isPaused ? "warn" : "ok") }, isPaused ? "paused" : "active")),
      el("td", {}, (handler.executions ?? 0) + " / " + (handler.failures ?? 0)),
      el("td", {}, seconds(handler.average_seconds)),
      el("td", {}, el("button", {
        "data-action": isPaused ? "resume" : "pause",
        onclick: (event) => act(event.target, "/api/v1/handlers/" + encodeURIComponent(handler.name) + (isPaused ? "/resume" : "/pause"), {}, "handler " + handler.name + (isPaused ? " resumed" : " paused")),
      }, isPaused ? "resume" : "pause")));
  });
  fill("handlers", rows, "no handlers", 5);
}

function renderBreakers(status) {
  const rows = (status.breakers || []).map((breaker) => el("tr", {},
    el("td", {}, breaker.owner),
    el("td", {}, el("span", { class: "pill " + (breaker.state === "closed" ? "ok" : "bad") }, breaker.state.replace("_", "-"))),
    el("td", {}, breaker.consecutive_failures),
    el("td", {}, breaker.open_until ? clock(breaker.open_until) : "–")));
  fill("breakers", rows, "no breakers yet", 4);
}

function renderHealth(status) {
  const items = [];
  const health = status.health;
  if (health) {
    items.push(el("li", {}, (health.healthy ? "healthy" : "UNHEALTHY") + ", checked " + clock(health.at) + " by the " + health.by));
    for (const problem of health.problems || []) items.push(el("li", { class: "bad-text" }, problem));
    for (const note of health.notes || []) items.push(el("li", {}, note));
  }
  if (status.config_loaded_at) items.push(el("li", {}, "config in force since " + clock(status.config_loaded_at)));
  for (const [sweep, result] of Object.entries(status.sweeps || {})) {
    items.push(el("li", {}, "sweep " + sweep + " at " + clock(result.at) + ": " + result.result));
  }
  const uploads = status.uploads;
  if (uploads && (uploads.pending || uploads.ok || uploads.failed)) {
    items.push(el("li", {}, "uploads: " + uploads.pending + " pending, " + uploads.ok + " ok, " + uploads.failed + " failed"));
  }
  document.getElementById("health-notes").replaceChildren(...items);
}

// ---------- chart ----------

function drawChart(activity) {
  const canvas = document.getElementById("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 960;
  const height = canvas.clientHeight || 180;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const minutes = activity.minutes || [];
  canvas.dataset.finished = String(minutes.reduce((sum, m) => sum + m.done + m.failed, 0));
  if (!minutes.length) return;
  const left = 40, right = 50, top = 10, bottom = 20;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const most = Math.max(1, ...minutes.map((m) => m.done + m.failed));
  const longest = Math.max(0.001, ...minutes.map((m) => m.average_seconds || 0));
  const barWidth = plotWidth / minutes.length;
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#66707a";
  g.fillText(String(most), 4, top + 8);
  g.fillText("0", 4, top + plotHeight);
  g.fillText(seconds(longest), width - right + 4, top + 8);
  g.fillText("-60 min", left, height - 4);
  g.fillText("now", width - right - 22, height - 4);
  minutes.forEach((m, i) => {
    const x = left + i * barWidth;
    const doneHeight = (m.done / most) * plotHeight;
    const failedHeight = (m.failed / most) * plotHeight;
    g.fillStyle = "#4caf50";
    g.fillRect(x, top + plotHeight - doneHeight, Math.max(1, barWidth - 1), doneHeight);
    g.fillStyle = "#e57373";
    g.fillRect(x, top + plotHeight - doneHeight - failedHeight, Math.max(1, barWidth - 1), failedHeight);
  });
  g.strokeStyle = "#0b5cad";
  g.lineWidth = 1.5;
  g.beginPath();
  let started = false;
  minutes.forEach((m, i) => {
    if (m.average_seconds === null || m.average_seconds === undefined) { started = false; return; }
    const x = left + (i + 0.5) * barWidth;
    const y = top + plotHeight - (m.average_seconds / longest) * plotHeight;
    if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
  });
  g.stroke();
}

// ---------- polling ----------

async function refreshFast() {
  try {
    const status = await api("/api/v1/status");
    lastStatus = status;
    const [waitingLists, recent, failed, tasks] = await Promise.all([
      Promise.all(WAITING_STATES.map((state) => api("/api/v1/jobs?state=" + state + "&limit=50"))),
      api("/api/v1/jobs?limit=40"),
      api("/api/v1/jobs?state=failed&limit=50"),
      api("/api/v1/tasks"),
    ]);
    const waiting = waitingLists.flatMap((list) => list.jobs || [])
      .sort((a, b) => (b.priority ?? 0) - (a.priority ?? 0) || jobID(a) - jobID(b));
    showDashboard();
    renderHeader(status);
    renderCounts(status);
    renderRunning(status);
    renderQueue(status, waiting);
    renderRecent((recent.jobs || []).filter((job) => job.state === "done" || job.state === "failed").slice(0, 20));
    renderFailed(failed.jobs || []);
    renderTasks(tasks);
    renderHandlers(tasks, status);
    renderBreakers(status);
    renderHealth(status);
    // The chart follows what finishes, at most every few seconds.
    const finished = (status.jobs.done || 0) + (status.jobs.failed || 0);
    if (finished !== chartFinished && Date.now() - chartFetchedAt > 5000) refreshChart();
    document.getElementById("connection").hidden = true;
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin();
    document.getElementById("connection").hidden = false;
    document.getElementById("connection").title = error.message;
  }
}

async function refreshChart() {
  chartFetchedAt = Date.now();
  chartFinished = lastStatus ? (lastStatus.jobs.done || 0) + (lastStatus.jobs.failed || 0) : null;
  try {
    drawChart(await api("/api/v1/activity?window=3600"));
  } catch (error) {
    if (error instanceof Unauthorized) showLogin();
  }
}

function startPolling() {
  stopPolling();
  refreshFast();
  refreshChart();
  fastTimer = setInterval(refreshFast, FAST_MS);
  chartTimer = setInterval(refreshChart, CHART_MS);
}

function stopPolling() {
  clearInterval(fastTimer);
  clearInterval(chartTimer);
  fastTimer = chartTimer = null;
}

// ---------- login ----------

function showLogin() {
  stopPolling();
  document.getElementById("dashboard").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("token").focus();
}

function showDashboard() {
  document.getElementById("login").hidden = true;
  document.getElementById("dashboard").hidden = false;
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = document.getElementById("token").value.trim();
  // Strict same-site: the browser never sends it with a request another site starts. Scripts read it to
  // send the Authorization header; the server itself never takes a cookie as a credential for the API.
  document.cookie = TOKEN_COOKIE + "=" + encodeURIComponent(value) + "; Path=/; SameSite=Strict";
  try {
    await api("/api/v1/status");
    document.getElementById("login-error").textContent = "";
    startPolling();
  } catch (error) {
    document.getElementById("login-error").textContent = error instanceof Unauthorized ? "wrong token" : error.message;
  }
});

document.addEventListener("visibilitychange", () => {
  if (document.hidden) stopPolling(); else if (document.getElementById("login").hidden) startPolling();
});

startPolling();
