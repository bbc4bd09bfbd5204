// The operator's dashboard: headline figures and charts of the analytics API, for admins. Chart.js
// (the UMD build, served beside this file) draws; the typed client (`vericode/client`) talks to the API.
import { createClient, describeError, VericodeApiError, webStorageTokenStore } from "/client.js";

const api = createClient({ tokens: webStorageTokenStore(sessionStorage, "vericode.dashboard.tokens") });
const $ = (selector) => document.querySelector(selector);
const charts = new Map();
const COLORS = { sent: "#0b6bcb", verified: "#1f7a3f", failed: "#b3261e", refused: "#c98a00", other: "#8a96a3" };

const int = new Intl.NumberFormat("en");
const percent = (rate) => `${(rate * 100).toFixed(1)}%`;
const usd = (value) => `$${value.toFixed(value < 10 ? 3 : 2)}`;
const seconds = (value) => (value === null ? "–" : value < 120 ? `${value} s` : `${(value / 60).toFixed(1)} min`);

function notify(text) {
  const box = $("#notice");
  box.hidden = text === null;
  box.textContent = text ?? "";
}

/** The report's parameters: from the form, which the page's query string fills first. */
function params() {
  const form = $("#filters");
  const data = new FormData(form);
  const out = {};
  const since = String(data.get("since"));
  if (since === "custom") {
    if (data.get("from")) out.from = String(data.get("from"));
    if (data.get("to")) out.to = String(data.get("to"));
  } else out.since = since;
  for (const name of ["purpose", "service", "channel", "country"]) {
    const value = String(data.get(name) ?? "").trim();
    if (value !== "") out[name] = name === "country" ? value.toUpperCase() : value;
  }
  const days = out.since === "24h" ? 1 : out.from && out.to ? (Date.parse(out.to) - Date.parse(out.from)) / 86_400_000 : 7;
  out.group_by = days < 2 ? "hour" : "day";
  return out;
}

function fillFormFromUrl() {
  const query = new URLSearchParams(location.search);
  const form = $("#filters");
  if (query.has("from") || query.has("to")) {
    form.elements.since.value = "custom";
    form.elements.from.value = query.get("from") ?? "";
    form.elements.to.value = query.get("to") ?? "";
  } else if (query.has("since")) form.elements.since.value = query.get("since");
  for (const name of ["purpose", "service", "channel", "country"]) if (query.has(name)) form.elements[name].value = query.get(name);
  form.dataset.custom = String(form.elements.since.value === "custom");
}

/**
 * Draws a chart, or when it would show nothing (bare axes), says so in its place: `empty` is that
 * sentence, or null when there is something to draw.
 */
function draw(id, config, empty = null) {
  charts.get(id)?.destroy();
  charts.delete(id);
  const canvas = document.getElementById(id);
  const box = canvas.parentElement;
  box.dataset.empty = String(empty !== null);
  canvas.hidden = empty !== null;
  box.querySelector(".empty")?.remove();
  if (empty !== null) {
    const note = document.createElement("p");
    note.className = "empty";
    note.textContent = empty;
    box.append(note);
    return;
  }
  const chart = new window.Chart(canvas, {
    ...config,
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { position: "bottom" } },
      ...config.options,
    },
  });
  charts.set(id, chart);
}

const NO_DATA = "No data yet for this range.";

function conversionBars(id, rows, label, empty) {
  draw(
    id,
    {
      type: "bar",
      data: {
        labels: rows.map(label),
        datasets: [
          {
            label: "conversion %",
            data: rows.map((r) => Math.round(r.conversion_rate * 1000) / 10),
            backgroundColor: COLORS.verified,
            yAxisID: "rate",
          },
          { label: "sent", data: rows.map((r) => r.sent), backgroundColor: COLORS.sent, yAxisID: "count" },
        ],
      },
      options: {
        scales: {
          rate: { position: "left", min: 0, max: 100, title: { display: true, text: "%" } },
          count: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } },
        },
      },
    },
    rows.length === 0 ? empty : null,
  );
}

function render(summary, series) {
  const t = summary.totals;
  const set = (name, text) => {
    document.querySelector(`[data-figure="${name}"]`).textContent = text;
  };
  set("sent", int.format(t.sent));
  set("delivered", int.format(t.delivered));
  set("verified", int.format(t.verified));
  set("conversion", percent(t.conversion_rate));
  set("ttv", `${seconds(summary.time_to_verify.median_seconds)} / ${seconds(summary.time_to_verify.p95_seconds)}`);
  set("failed", int.format(t.failed));
  set("expired", `${int.format(t.expired)} / ${int.format(t.locked)}`);
  set("refused", int.format(t.refused));
  set("spend", usd(t.spend_usd));
  const filters = Object.entries(summary.filters)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ${v}`);
  $("#range").textContent = `${summary.from.slice(0, 16).replace("T", " ")} → ${summary.to.slice(0, 16).replace("T", " ")} UTC${
    filters.length > 0 ? ` · ${filters.join(" · ")}` : ""
  }`;

  const hourly = series.group_by === "hour";
  const quiet = series.points.every((p) => p.sent + p.verified + p.failed + p.refused === 0);
  draw(
    "chart-series",
    {
      type: "line",
      data: {
        labels: series.points.map((p) => (hourly ? `${p.t.slice(5, 13).replace("T", " ")}h` : p.t.slice(0, 10))),
        datasets: [
          { label: "sent", data: series.points.map((p) => p.sent), borderColor: COLORS.sent, backgroundColor: COLORS.sent, tension: 0.2 },
          {
            label: "verified",
            data: series.points.map((p) => p.verified),
            borderColor: COLORS.verified,
            backgroundColor: COLORS.verified,
            tension: 0.2,
          },
          {
            label: "failed",
            data: series.points.map((p) => p.failed),
            borderColor: COLORS.failed,
            backgroundColor: COLORS.failed,
            tension: 0.2,
          },
          {
            label: "refused",
            data: series.points.map((p) => p.refused),
            borderColor: COLORS.refused,
            backgroundColor: COLORS.refused,
            tension: 0.2,
          },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    },
    quiet ? NO_DATA : null,
  );
  // The email channel's codes have no country (their country is null): they are not a country of the
  // chart, but a line of their own under it.
  const email = summary.by_country.find((r) => r.country === null);
  conversionBars(
    "chart-country",
    summary.by_country.filter((r) => r.country !== null).slice(0, 12),
    (r) => r.country,
    email === undefined ? NO_DATA : "No SMS, WhatsApp or voice codes in this range.",
  );
  $("#country-email").hidden = email === undefined;
  $("#country-email").textContent =
    email === undefined
      ? ""
      : `Email codes (no country): ${int.format(email.sent)} sent, ${int.format(email.verified)} verified (${percent(email.conversion_rate)}).`;
  conversionBars("chart-purpose", summary.by_purpose, (r) => r.purpose, NO_DATA);
  const failures = summary.failures_by_error_code;
  draw(
    "chart-failures",
    {
      type: "bar",
      data: {
        labels: summary.failures_by_error_code.map((f) => f.error_code ?? "none"),
        datasets: [{ label: "failed sends", data: summary.failures_by_error_code.map((f) => f.count), backgroundColor: COLORS.failed }],
      },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    },
    failures.length > 0 ? null : t.sent + t.failed === 0 ? NO_DATA : "No failed deliveries in this range.",
  );
  const budget = summary.budget;
  draw(
    "chart-budget",
    {
      type: "bar",
      data: {
        labels: budget === null ? ["this range"] : [`this range`, `period ${budget.period}`],
        datasets: [
          { label: "spent (USD)", data: budget === null ? [t.spend_usd] : [t.spend_usd, budget.spent_usd], backgroundColor: COLORS.sent },
          ...(budget === null ? [] : [{ label: "budget (USD)", data: [null, budget.budget_usd], backgroundColor: COLORS.other }]),
        ],
      },
      options: { scales: { y: { beginAtZero: true } } },
    },
    budget === null && t.spend_usd === 0 ? NO_DATA : null,
  );
  $("#budget").textContent =
    budget === null
      ? "No budget is set (SMS_BUDGET_USD)."
      : `Period ${budget.period}: ${usd(budget.spent_usd)} spent and ${usd(budget.reserved_usd)} reserved of ${usd(budget.budget_usd)}.`;
  $("#refusals tbody").replaceChildren(
    ...(summary.refusals_by_rule.length === 0
      ? [row(["none", "0"])]
      : summary.refusals_by_rule.map((r) => row([r.rule, int.format(r.count)]))),
  );
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = cell;
    tr.append(td);
  }
  return tr;
}

async function load() {
  document.body.dataset.ready = "false";
  const query = params();
  try {
    const [summary, series] = await Promise.all([api.summary(query), api.timeseries(query)]);
    notify(null);
    render(summary, series);
  } catch (error) {
    if (error instanceof VericodeApiError && (error.code === "unauthorized" || error.code === "forbidden")) {
      api.logout();
      showSignIn(
        error.code === "forbidden" ? "This account is not an admin: `npx vericode user promote <username>`, then sign in again." : null,
      );
      return;
    }
    notify(`${describeError(error)} ${error instanceof VericodeApiError ? error.message : ""}`);
  }
  document.body.dataset.ready = "true";
}

function showSignIn(message) {
  $("#board").hidden = true;
  $("#signin").hidden = false;
  $("#who").textContent = "";
  notify(message);
  document.body.dataset.ready = "true";
}

async function showBoard() {
  $("#signin").hidden = true;
  $("#board").hidden = false;
  const me = await api.me().catch(() => null);
  $("#who").textContent = me === null ? "" : `Signed in as ${me.username ?? me.email}`;
  await load();
}

$("#signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(event.currentTarget);
  const login = String(data.get("login")).trim();
  const password = String(data.get("password"));
  try {
    await api.login(login.includes("@") ? { email: login, password } : { username: login, password });
    await showBoard();
  } catch (error) {
    notify(describeError(error));
  }
});

$("#filters").addEventListener("submit", (event) => {
  event.preventDefault();
  void load();
});
$("#filters").elements.since.addEventListener("change", (event) => {
  $("#filters").dataset.custom = String(event.currentTarget.value === "custom");
});
$("#signout").addEventListener("click", () => {
  api.logout();
  showSignIn(null);
});

window.vericodeCharts = charts;
fillFormFromUrl();
if (api.tokens === null) showSignIn(null);
else await showBoard();
