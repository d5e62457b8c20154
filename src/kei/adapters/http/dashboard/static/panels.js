// The page's panels, each built from one /v1 answer (docs/http.md).

import { count, h, moment } from "./dom.js";
import { PALETTE } from "./chart.js";
import { dollars, microCents, sum } from "./money.js";

/** The header line of /v1/verify: verified up to a position, or the findings. */
export function verifyLine(v) {
  if (v.ok) {
    return {
      ok: true,
      nodes: [h("span", { class: "mark", "aria-hidden": "true" }, "✓"), " Log verified up to position ",
        h("strong", { class: "pos" }, count(v.verified_up_to)), " at ", moment(v.verified_at)],
    };
  }
  const n = v.findings.length;
  return {
    ok: false,
    nodes: [
      h("span", { class: "mark", "aria-hidden": "true" }, "⚠"),
      ` Verification found ${n} problem${n === 1 ? "" : "s"}`,
      v.verified_up_to ? ` (verified up to position ${count(v.verified_up_to)})` : "",
      h("ul", { class: "findings" }, v.findings.map((f) => h("li", { class: "finding" },
        h("code", {}, f.kind), " ",
        f.position === null || f.position === undefined ? "log-wide" : `at position ${count(f.position)}`,
        `: ${f.detail}`))),
    ],
  };
}

/** The legend of the chart: one swatch per stacked key, one per budget line. */
export function legend(keys, lines) {
  return h("ul", { class: "legend" },
    keys.map((k, i) => h("li", {}, h("span", { class: `swatch s${i % PALETTE}`, "aria-hidden": "true" }), k)),
    lines.map((l, i) => h("li", {},
      h("span", { class: `swatch line b${i % 4}${l.dashed ? " dashed" : ""}`, "aria-hidden": "true" }),
      `budget ${l.name}: ${l.label}`)));
}

/** The chart's numbers as a table (the same data, for a screen reader or a copy). */
export function costTable(answer, keys) {
  return h("table", { class: "data" },
    h("caption", {}, `Cost per ${answer.bucket} by ${answer.split}, in dollars`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, answer.bucket),
      keys.map((k) => h("th", { scope: "col" }, k)), h("th", { scope: "col" }, "total"))),
    h("tbody", {}, answer.series.map((p) => h("tr", {},
      h("th", { scope: "row" }, p.bucket),
      keys.map((k) => h("td", { class: "num" }, p.values[k] ? dollars(p.values[k].usd) : "–")),
      h("td", { class: "num" }, dollars(sum(Object.values(p.values).map((v) => v.usd))))))));
}

function pct(part, whole) {
  if (part === null || whole === null || whole <= 0n) return 0;
  return Math.min(100, Number((part * 10000n) / whole) / 100);
}

function budgetBar(b) {
  const limit = microCents(b.limit_usd);
  const spent = pct(microCents(b.spent_usd), limit);
  const forecast = pct(microCents(b.forecast_usd), limit);
  const label = `spent ${b.percent}% of the limit` +
    (b.forecast_usd === null ? "" : `, forecast ${dollars(b.forecast_usd)}`);
  const bar = h("div", { class: "bar", role: "img", "aria-label": label },
    h("div", { class: "forecast" }), h("div", { class: "spent" }));
  bar.querySelector(".forecast").style.width = `${forecast}%`;
  bar.querySelector(".spent").style.width = `${spent}%`;
  if (microCents(b.spent_usd) >= limit) bar.classList.add("over");
  return bar;
}

/** /v1/budgets as a table: spent, limit, forecast and a bar of each against the limit. */
export function budgetTable(budgets) {
  if (!budgets.length) return h("p", { class: "empty" }, "No budget is set (kei budget set).");
  return h("table", { class: "data budgets" },
    h("thead", {}, h("tr", {}, ["budget", "scope", "period", "spent", "limit", "forecast", "of the limit"]
      .map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, budgets.map((b) => h("tr", { dataset: { budget: b.budget } },
      h("th", { scope: "row" }, b.budget),
      h("td", {}, h("code", {}, b.scope)),
      h("td", {}, b.period_key ?? b.period),
      h("td", { class: "num" }, dollars(b.spent_usd)),
      h("td", { class: "num" }, dollars(b.limit_usd)),
      h("td", { class: "num" }, b.forecast_usd === null ? "–" : dollars(b.forecast_usd)),
      h("td", { class: "meter" }, budgetBar(b), h("span", { class: "pct" }, `${b.percent}%`))))));
}

const fixed = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(3));

/** /v1/posteriors grouped by task class, best lower bound first within each. */
export function posteriorTable(rows) {
  if (!rows.length) return h("p", { class: "empty" }, "No routed outcome is recorded yet.");
  const classes = new Map();
  for (const r of rows) {
    if (!classes.has(r.task_class)) classes.set(r.task_class, []);
    classes.get(r.task_class).push(r);
  }
  const groups = [...classes.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  return h("table", { class: "data posteriors" },
    h("thead", {}, h("tr", {}, ["model", "α", "β", "n", "mean", "lower bound", "mean and bound"]
      .map((c) => h("th", { scope: "col" }, c)))),
    groups.map(([cls, list]) => h("tbody", { dataset: { taskClass: cls } },
      h("tr", {}, h("th", { scope: "rowgroup", colspan: 7, class: "group" }, `task class ${cls}`)),
      list.sort((a, b) => (b.lower_bound ?? 0) - (a.lower_bound ?? 0)).map((r) => {
        const bar = h("div", { class: "bar beta", role: "img",
          "aria-label": `mean ${fixed(r.mean)}, lower bound ${fixed(r.lower_bound)}` },
        h("div", { class: "mean" }), h("div", { class: "lower" }));
        bar.querySelector(".mean").style.width = `${Math.max(0, Math.min(1, r.mean ?? 0)) * 100}%`;
        bar.querySelector(".lower").style.width = `${Math.max(0, Math.min(1, r.lower_bound ?? 0)) * 100}%`;
        return h("tr", { dataset: { model: r.model } },
          h("th", { scope: "row" }, r.model),
          h("td", { class: "num" }, String(r.alpha)),
          h("td", { class: "num" }, String(r.beta)),
          h("td", { class: "num" }, String(r.n)),
          h("td", { class: "num" }, fixed(r.mean)),
          h("td", { class: "num" }, fixed(r.lower_bound)),
          h("td", { class: "meter" }, bar));
      }))));
}

const short = (hash) => (hash ? `${hash.slice(0, 14)}…` : "–");

/** One row of the live table; `linked` says whether prev_hash is the previous hash. */
export function eventRow(e, linked) {
  return h("tr", { dataset: { position: e.position }, class: linked === false ? "unlinked" : null },
    h("td", { class: "num" }, count(e.position)),
    h("td", {}, moment(e.time)),
    h("td", {}, h("code", {}, e.type)),
    h("td", {}, e.stream),
    h("td", {}, h("code", { title: e.hash }, short(e.hash)),
      linked === false ? h("span", { class: "warn" }, " does not chain to the event before") : ""));
}
