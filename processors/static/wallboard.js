// The wallboard's client: applies the worker's Server-Sent Events (a snapshot, then patches)
// to its copy of the board and draws it. No framework, no build step.
"use strict";

const LABELS = {
  vi: {
    title: "Bảng theo dõi tổng đài", connecting: "Đang kết nối…", live_ok: "Trực tiếp",
    reconnecting: "Mất kết nối, đang nối lại…", loading: "Đang đọc dữ liệu…",
    live: "Cuộc gọi đang diễn ra", phase: "Trạng thái", direction: "Hướng",
    customer: "Khách hàng", hotline: "Hotline", agent: "Máy nhánh", ring: "Đổ chuông",
    talk: "Đàm thoại", no_calls: "Không có cuộc gọi nào.",
    chart: "Cuộc gọi mỗi phút, 60 phút qua", offered: "Cuộc gọi đến", answered: "Đã trả lời",
    hotlines: "Hotline", agents: "Nhân viên", centre: "Toàn tổng đài",
    ringing: "Đang đổ chuông", answered_phase: "Đang nói chuyện", talking: "Đang nói chuyện",
    inbound: "Gọi vào", outbound: "Gọi ra", local: "Nội bộ", unknown: "—",
    hour: "Giờ này", day: "Hôm nay", answer_rate: "Tỷ lệ trả lời",
    abandon_rate: "Tỷ lệ bỏ máy", service_level: "Mức phục vụ (≤ {s} giây)",
    avg_speed_of_answer_s: "Thời gian chờ TB", avg_handle_time_s: "Thời gian xử lý TB",
  },
  en: {
    title: "Call centre wallboard", connecting: "Connecting…", live_ok: "Live",
    reconnecting: "Connection lost, reconnecting…", loading: "Reading the data…",
    live: "Calls in progress", phase: "State", direction: "Direction",
    customer: "Customer", hotline: "Hotline", agent: "Extension", ring: "Ringing",
    talk: "Talking", no_calls: "No calls.",
    chart: "Calls per minute, last 60 minutes", offered: "Offered", answered: "Answered",
    hotlines: "Hotlines", agents: "Agents", centre: "Whole call centre",
    ringing: "Ringing", answered_phase: "In conversation", talking: "In conversation",
    inbound: "Inbound", outbound: "Outbound", local: "Internal", unknown: "—",
    hour: "This hour", day: "Today", answer_rate: "Answer rate",
    abandon_rate: "Abandon rate", service_level: "Service level (≤ {s} s)",
    avg_speed_of_answer_s: "Avg speed of answer", avg_handle_time_s: "Avg handle time",
  },
};
const ROWS = ["offered", "answer_rate", "abandon_rate", "service_level",
  "avg_speed_of_answer_s", "avg_handle_time_s"];
const LOCALE = "vi-VN"; // numbers and times, whatever the labels' language
const COUNT = new Intl.NumberFormat(LOCALE);
const RATE = new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 1 });
const SVG = "http://www.w3.org/2000/svg";

let lang = localStorage.getItem("wallboard.lang") === "en" ? "en" : "vi";
let board = { meta: {}, calls: {}, tiles: {}, chart: {} };
let skewMs = 0; // the worker's clock minus ours
let timeFormat = null;
let dateFormat = null;

const t = (key) => LABELS[lang][key] ?? key;
const now = () => Date.now() + skewMs;
const $ = (id) => document.getElementById(id);

// An element with attributes and children (strings become text: nothing is parsed as HTML).
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const whole = Math.max(0, Math.round(seconds));
  const hours = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hours > 0 ? `${hours}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

function figure(name, value) {
  if (value === null || value === undefined) return "–";
  if (name.endsWith("_rate") || name === "service_level") return RATE.format(value);
  if (name.endsWith("_s")) return duration(value);
  return COUNT.format(value);
}

function setZone(zone) {
  if (!zone || (timeFormat && timeFormat.resolvedOptions().timeZone === zone)) return;
  timeFormat = new Intl.DateTimeFormat(LOCALE, {
    timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  dateFormat = new Intl.DateTimeFormat(LOCALE, {
    timeZone: zone, day: "2-digit", month: "2-digit", year: "numeric" });
  $("zone").textContent = zone;
}

function hhmm(ms) {
  return timeFormat.formatToParts(new Date(ms))
    .filter((p) => p.type === "hour" || p.type === "minute").map((p) => p.value).join(":");
}

function tileNode(tile) {
  const name = tile.dimension === "all" ? t("centre") : tile.value;
  const head = h("h3", {}, h("span", {}, name), tile.label ? h("small", {}, tile.label) : null);
  const liveNow = h("div", { class: "now" },
    h("span", { class: "ring", "data-figure": "ringing", "data-value": tile.ringing },
      `${t("ringing")}: ${COUNT.format(tile.ringing)}`),
    h("span", { class: "talk", "data-figure": "talking", "data-value": tile.talking },
      `${t("talking")}: ${COUNT.format(tile.talking)}`));
  const rows = ROWS.map((row) => {
    const label = t(row === "offered" ? "offered" : row)
      .replace("{s}", COUNT.format(board.meta.service_level_s ?? 20));
    const cells = ["hour", "day"].map((period) => {
      const value = tile[period] ? tile[period][row] : null;
      return h("td", { "data-period": period, "data-figure": row,
        "data-value": value === null ? "" : value }, figure(row, value));
    });
    return h("tr", {}, h("td", {}, label), ...cells);
  });
  const table = h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}), h("th", {}, t("hour")), h("th", {}, t("day")))),
    h("tbody", {}, ...rows));
  return h("div", { class: "tile", "data-key": `${tile.dimension}:${tile.value}` },
    head, liveNow, table);
}

function drawTiles() {
  const byValue = (a, b) => a.value.localeCompare(b.value, LOCALE, { numeric: true });
  const tiles = Object.values(board.tiles);
  for (const [id, dimension] of [["centre", "all"], ["hotlines", "hotline"], ["agents", "agent"]]) {
    $(id).replaceChildren(...tiles.filter((x) => x.dimension === dimension).sort(byValue)
      .map(tileNode));
  }
}

function callStart(call) {
  return call.ringing_at_ms ?? call.answered_at_ms ?? call.updated_at_ms;
}

function drawCalls() {
  const calls = Object.entries(board.calls).sort(
    ([ia, a], [ib, b]) => callStart(a) - callStart(b) || ia.localeCompare(ib));
  const rows = calls.map(([id, call]) => {
    const ringEnd = call.answered_at_ms;
    return h("tr", { class: call.phase, "data-call-id": id },
      h("td", {}, t(call.phase === "ringing" ? "ringing" : "answered_phase")),
      h("td", {}, t(call.direction ?? "unknown")),
      h("td", {}, call.customer ?? "—"),
      h("td", {}, call.hotline ?? "—"),
      h("td", {}, call.agent ?? "—"),
      h("td", { class: "timer ring", "data-since": call.ringing_at_ms ?? call.updated_at_ms,
        "data-until": ringEnd ?? "" }),
      h("td", { class: "timer talk", "data-since": call.answered_at_ms ?? "" }));
  });
  $("calls").tBodies[0].replaceChildren(...rows);
  $("live-count").textContent = `(${COUNT.format(calls.length)})`;
  $("live-count").dataset.value = calls.length;
  $("no-calls").hidden = calls.length > 0;
  tick();
}

function drawChart() {
  const meta = board.meta;
  if (meta.chart_from_ms === null || meta.chart_from_ms === undefined) {
    $("chart").replaceChildren();
    return;
  }
  const minutes = meta.chart_minutes, slot = 12, height = 150, top = 10, left = 34;
  const points = Array.from({ length: minutes }, (_, i) => {
    const start = meta.chart_from_ms + i * 60000;
    return { start, ...(board.chart[String(start)] ?? { offered: 0, answered: 0 }) };
  });
  const peak = Math.max(4, ...points.map((p) => p.offered));
  const y = (v) => top + height - (v / peak) * height;
  const nodes = [];
  for (const tickValue of [0, Math.round(peak / 2), peak]) {
    nodes.push(svg("line", { x1: left, x2: left + minutes * slot, y1: y(tickValue), y2: y(tickValue) }),
      svg("text", { x: left - 4, y: y(tickValue) + 4, "text-anchor": "end" }, COUNT.format(tickValue)));
  }
  points.forEach((p, i) => {
    const x = left + i * slot;
    const tip = `${hhmm(p.start)} · ${t("offered")}: ${COUNT.format(p.offered)} · ` +
      `${t("answered")}: ${COUNT.format(p.answered)}`;
    nodes.push(svg("g", { "data-minute": p.start, "data-offered": p.offered, "data-answered": p.answered },
      svg("title", {}, tip),
      svg("rect", { class: "offered", x: x + 1, width: slot - 2, y: y(p.offered), height: y(0) - y(p.offered) }),
      svg("rect", { class: "answered", x: x + 3, width: slot - 6, y: y(p.answered), height: y(0) - y(p.answered) })));
    if (hhmm(p.start).endsWith(":00") || hhmm(p.start).endsWith(":30") || i === minutes - 1) {
      nodes.push(svg("text", { x: x + slot / 2, y: top + height + 16, "text-anchor": "middle" }, hhmm(p.start)));
    }
  });
  $("chart").replaceChildren(svg("svg", {
    viewBox: `0 0 ${left + minutes * slot + 20} ${top + height + 24}`, role: "img",
    "aria-label": t("chart") }, ...nodes));
}

function drawMeta() {
  const meta = board.meta;
  setZone(meta.zone);
  document.body.dataset.hourStart = meta.hour ? meta.hour[0] : "";
  document.body.dataset.dayStart = meta.day ? meta.day[0] : "";
}

function showState(state) {
  document.body.dataset.state = state;
  $("status").textContent = t({ live: "live_ok" }[state] ?? state);
}

function draw(sections) {
  if (sections.has("meta")) drawMeta();
  if (sections.has("calls") || sections.has("meta")) drawCalls();
  if (sections.has("tiles") || sections.has("meta")) drawTiles();
  if (sections.has("chart") || sections.has("meta")) drawChart();
}

function translate() {
  document.documentElement.lang = lang;
  document.title = `callstream · ${t("title")}`;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("lang").textContent = lang === "vi" ? "EN" : "VI";
  showState(document.body.dataset.state);
  if (board.meta.zone) draw(new Set(["meta"]));
}

// The timers tick here, between events: ring time until answered (or now), talk time since.
function tick() {
  const at = now();
  if (timeFormat) {
    $("time").textContent = timeFormat.format(new Date(at));
    $("date").textContent = dateFormat.format(new Date(at));
  }
  for (const cell of document.querySelectorAll("td.timer")) {
    const since = Number(cell.dataset.since);
    if (!cell.dataset.since) { cell.textContent = "—"; continue; }
    const until = cell.dataset.until ? Number(cell.dataset.until) : at;
    cell.textContent = duration((until - since) / 1000);
  }
}

function received(event, apply) {
  const data = JSON.parse(event.data);
  skewMs = data.as_of_ms - Date.now();
  apply(data);
  showState(board.meta.live_ready && board.meta.metrics_ready ? "live" : "loading");
  document.body.dataset.eventId = event.lastEventId;
}

function connect() {
  const source = new EventSource("/wallboard/events");
  source.addEventListener("snapshot", (event) => received(event, (data) => {
    board = data.board;
    draw(new Set(["meta", "calls", "tiles", "chart"]));
  }));
  source.addEventListener("patch", (event) => received(event, (data) => {
    for (const [section, change] of Object.entries(data.patch)) {
      for (const key of change.del) delete board[section][key];
      Object.assign(board[section], change.set);
    }
    draw(new Set(Object.keys(data.patch)));
  }));
  // The browser reconnects by itself, sending the last event's id (Last-Event-ID).
  source.addEventListener("error", () => showState("reconnecting"));
}

$("lang").addEventListener("click", () => {
  lang = lang === "vi" ? "en" : "vi";
  localStorage.setItem("wallboard.lang", lang);
  translate();
});
translate();
connect();
setInterval(tick, 1000);
