// Cost per day as stacked bars, drawn as inline SVG: one <rect> per (day, key) with a
// <title> tooltip, a y axis in dollars, an x axis of days, and the daily budget lines.
// Heights are geometry (Number); every amount shown is an exact API string.

import { dollars, microCents, sum, toCents } from "./money.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 960;
const H = 280;
const OFF_SCALE = 3; // a budget line above 3× the tallest bar is marked, not scaled to
const M = { top: 16, right: 16, bottom: 44, left: 76 };
export const PALETTE = 8; // CSS classes .s0 … .s7 colour the stacks

function el(name, attrs = {}, text = undefined) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function titled(node, text) {
  node.append(el("title", {}, text));
  return node;
}

/** The keys (models or agents) of a series, largest total first, ties by name. */
export function keysOf(series) {
  const totals = new Map();
  for (const point of series) {
    for (const [key, v] of Object.entries(point.values)) {
      totals.set(key, (totals.get(key) ?? 0n) + microCents(v.usd));
    }
  }
  return [...totals.entries()]
    .sort((a, b) => (a[1] === b[1] ? a[0].localeCompare(b[0]) : a[1] > b[1] ? -1 : 1))
    .map(([key]) => key);
}

/** A 1-2-5 step in micro-cents so that about four ticks cover `max`. */
function niceStep(max) {
  const rough = Math.max(max / 4, 1);
  const power = 10 ** Math.floor(Math.log10(rough));
  const unit = [1, 2, 5, 10].find((f) => f * power >= rough);
  return unit * power;
}

function daysInMonth(key) {
  const [y, m] = key.split("-").map(Number);
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/**
 * The budget lines a day's bar can be held against: a day budget at its limit, a month
 * budget at its even daily share (limit ÷ days of its month). A total budget has no
 * daily line (the budgets panel shows it).
 */
export function dailyLines(budgets) {
  const lines = [];
  for (const b of budgets) {
    const limit = microCents(b.limit_usd);
    if (b.period === "day") {
      lines.push({ name: b.budget, scope: b.scope, mc: limit, label: `${dollars(b.limit_usd)}/day` });
    } else if (b.period === "month" && b.period_key) {
      const days = BigInt(daysInMonth(b.period_key));
      lines.push({
        name: b.budget, scope: b.scope, mc: limit / days, dashed: true,
        label: `${dollars(b.limit_usd)}/month ÷ ${days} days ≈ ${dollars(toCents(limit / days))}/day`,
      });
    }
  }
  return lines;
}

function yAxis(svg, top, y) {
  const step = niceStep(top);
  const axis = el("g", { class: "axis y" });
  for (let tick = 0; tick <= top; tick += step) {
    const py = y(tick);
    axis.append(el("line", { x1: M.left, x2: W - M.right, y1: py, y2: py, class: "grid" }));
    axis.append(el("text", { x: M.left - 8, y: py + 4, "text-anchor": "end" },
      dollars(BigInt(Math.round(tick)))));
  }
  axis.append(el("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "domain" }));
  svg.append(axis);
}

function bars(svg, series, keys, x, band, y) {
  const every = Math.ceil(series.length / 14); // at most ~14 day labels
  series.forEach((point, i) => {
    const group = el("g", { class: "bar", "data-day": point.bucket });
    let base = 0;
    for (const key of keys) {
      const v = point.values[key];
      if (v === undefined) continue;
      const mc = Number(microCents(v.usd));
      const rect = el("rect", {
        x: x(i), width: band, y: y(base + mc), height: Math.max(0, y(base) - y(base + mc)),
        class: `seg s${keys.indexOf(key) % PALETTE}`, "data-key": key, "data-usd": v.usd,
      });
      group.append(titled(rect, `${point.bucket} · ${key}: ${dollars(v.usd)}`));
      base += mc;
    }
    const total = sum(Object.values(point.values).map((v) => v.usd));
    const label = el("text", { x: x(i) + band / 2, y: H - M.bottom + 16, "text-anchor": "middle",
      class: "day" }, i % every === 0 ? point.bucket.slice(5) : "");
    group.append(titled(label, `${point.bucket}: ${dollars(total)} in all`));
    svg.append(group);
  });
}

function budgetLines(svg, lines, y, top) {
  let above = 0;
  lines.forEach((line, i) => {
    const off = Number(line.mc) > top;
    const py = off ? M.top + 12 * above++ : y(Number(line.mc));
    const g = el("g", { class: `budget b${i % 4}${line.dashed ? " dashed" : ""}${off ? " off" : ""}`,
      "data-budget": line.name });
    if (!off) g.append(el("line", { x1: M.left, x2: W - M.right, y1: py, y2: py }));
    const at = off ? { x: M.left + 6, y: py + 8, "text-anchor": "start" }
      : { x: W - M.right - 4, y: py - 4, "text-anchor": "end" };
    g.append(el("text", at,
      off ? `↑ budget ${line.name} (${line.label}), above the scale` : `budget ${line.name}`));
    svg.append(titled(g, `budget ${line.name} (${line.scope}): ${line.label}`));
  });
}

/** The chart of `answer` (a /v1/costs/series answer) as an <svg> element. */
export function stackedBars(answer, caption) {
  const series = answer.series;
  const keys = keysOf(series);
  const lines = dailyLines(answer.budgets ?? []);
  const totals = series.map((p) => Number(sum(Object.values(p.values).map((v) => v.usd))));
  const tallest = Math.max(1000000, ...totals); // a scale of at least one cent
  const shown = lines.map((l) => Number(l.mc)).filter((mc) => mc <= tallest * OFF_SCALE);
  const top = Math.max(tallest, ...shown) * 1.08;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart",
    "aria-label": caption, preserveAspectRatio: "xMidYMid meet" });
  svg.append(el("title", {}, caption));
  const plotW = W - M.left - M.right;
  const slot = plotW / Math.max(series.length, 1);
  const band = Math.max(2, slot * 0.7);
  const x = (i) => M.left + i * slot + (slot - band) / 2;
  const y = (mc) => H - M.bottom - (mc / top) * (H - M.top - M.bottom);
  yAxis(svg, top, y);
  bars(svg, series, keys, x, band, y);
  budgetLines(svg, lines, y, top);
  svg.append(el("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom,
    class: "domain" }));
  return { svg, keys, lines };
}
