// The dashboard: asks for a read token once per tab, then shows what the /v1 API
// answers (docs/http.md) and follows the log live. Panels refresh when an event arrives
// (debounced) and on a slow timer; the verify header more often, since tampering with a
// store appends nothing that the stream could announce.

import { Unauthorized, forgetToken, getJSON, setToken, token, apiUrl } from "./api.js";
import { stackedBars } from "./chart.js";
import { count, fill, h } from "./dom.js";
import { budgetTable, costTable, eventRow, legend, posteriorTable, verifyLine } from "./panels.js";
import { follow } from "./sse.js";
import { agentTree } from "./tree.js";

const VERIFY_MS = 5000;
const REFRESH_MS = 30000;
const SETTLE_MS = 400; // events arriving together refresh the panels once
const BACKLOG = 50; // events shown from before the page opened
const MAX_ROWS = 200;

const $ = (id) => document.getElementById(id);

/** One signed-in session of the page: its timers, its stream, and what it last drew. */
class Board {
  constructor(onRefused) {
    this.onRefused = onRefused;
    this.abort = new AbortController();
    this.timers = [];
    this.drawn = new Map();
    this.head = 0; // the log's head when the page opened: older events refresh nothing
    this.lastPosition = null;
    this.lastHash = null;
    this.received = 0;
    this.settle = null;
  }

  async start() {
    const first = await this.guard("verify", () => this.verify());
    await this.refresh(false);
    this.head = first?.at ?? 0;
    this.stream(Math.max(0, this.head - BACKLOG));
    this.timers.push(setInterval(() => document.hidden || this.guard("verify", () => this.verify()), VERIFY_MS));
    this.timers.push(setInterval(() => document.hidden || this.refresh(), REFRESH_MS));
  }

  stop() {
    this.abort.abort();
    this.timers.forEach(clearInterval);
    clearTimeout(this.settle);
  }

  /** Run one panel's load; a refused token ends the session, other errors show in place. */
  async guard(panel, load) {
    if (this.abort.signal.aborted) return null;
    try {
      const answer = await load();
      fill(`${panel}-error`);
      return answer;
    } catch (err) {
      if (this.abort.signal.aborted) return null;
      if (err instanceof Unauthorized) {
        this.stop();
        this.onRefused(err.message);
      } else {
        fill(`${panel}-error`, `Could not load: ${err.message}`);
      }
      return null;
    }
  }

  refresh(verify = true) {
    return Promise.all([
      verify ? this.guard("verify", () => this.verify()) : null,
      this.guard("agents", () => this.agents()),
      this.guard("costs", () => this.costs()),
      this.guard("budgets", () => this.budgets()),
      this.guard("posteriors", () => this.posteriors()),
    ]);
  }

  /** Whether `answer` differs from what `panel` shows (redrawing would lose focus). */
  changed(panel, answer) {
    const text = JSON.stringify(answer);
    if (this.drawn.get(panel) === text) return false;
    this.drawn.set(panel, text);
    return true;
  }

  get(path, params) {
    return getJSON(path, params, this.abort.signal);
  }

  async verify() {
    const v = await this.get("v1/verify");
    $("at").textContent = count(v.at);
    // the header is a live region: redraw (and so announce) it only when it says more
    if (this.changed("verify", { ...v, at: null, head_hash: null })) {
      const line = verifyLine(v);
      const header = $("verify");
      header.classList.toggle("ok", line.ok);
      header.classList.toggle("finding", !line.ok);
      header.classList.remove("pending");
      header.replaceChildren(...line.nodes);
    }
    return v;
  }

  async agents() {
    const a = await this.get("v1/agents");
    if (this.changed("agents", a)) {
      const closed = [...document.querySelectorAll("#tree details:not([open])")]
        .map((d) => d.parentElement.dataset.agent);
      const focused = document.activeElement?.closest?.("#tree li")?.dataset.agent;
      fill("tree", agentTree(a.agents));
      for (const li of document.querySelectorAll("#tree li[data-agent]")) {
        const details = li.querySelector(":scope > details");
        if (details && closed.includes(li.dataset.agent)) details.open = false;
        if (li.dataset.agent === focused) li.querySelector("summary")?.focus();
      }
      $("agents-count").textContent = `${count(a.agents.length)} agents`;
    }
    return a;
  }

  async costs() {
    const split = $("split").value;
    const c = await this.get("v1/costs/series", { bucket: "day", split });
    if (!this.changed("costs", c)) return c;
    if (!c.series.length) {
      fill("chart", h("p", { class: "empty" }, "No cost is recorded in this period."));
      fill("legend");
      fill("cost-table");
    } else {
      const caption = `Cost per day by ${split}, stacked, with the daily budget lines`;
      const chart = stackedBars(c, caption);
      fill("chart", chart.svg);
      fill("legend", legend(chart.keys, chart.lines));
      fill("cost-table", costTable(c, chart.keys));
    }
    return c;
  }

  async budgets() {
    const b = await this.get("v1/budgets");
    if (this.changed("budgets", b)) fill("budget-table", budgetTable(b.budgets));
    return b;
  }

  async posteriors() {
    const p = await this.get("v1/posteriors");
    if (this.changed("posteriors", p)) fill("posterior-table", posteriorTable(p.posteriors));
    return p;
  }

  stream(after) {
    const state = $("stream-state");
    follow({
      urlFor: (lastId) => apiUrl("v1/events/stream", { after: lastId ?? after }),
      lastId: undefined,
      signal: this.abort.signal,
      onState: (s) => {
        state.textContent = s === "live" ? "Live: following the log." : "Connection lost: reconnecting…";
        state.className = `stream-state ${s}`;
      },
      onEvent: (ev) => this.event(ev),
    }).catch((err) => {
      if (err instanceof Unauthorized) { this.stop(); this.onRefused(err.message); }
    });
  }

  event(ev) {
    if (ev.type !== "kei.event") return;
    const e = JSON.parse(ev.data);
    if (this.lastPosition !== null && e.position <= this.lastPosition) return; // seen
    const linked = this.lastPosition === null || e.position !== this.lastPosition + 1
      ? null : e.prev_hash === this.lastHash;
    this.lastPosition = e.position;
    this.lastHash = e.hash;
    this.received += 1;
    const body = $("events-body");
    body.prepend(eventRow(e, linked));
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
    $("events-count").textContent =
      `${count(this.received)} events received; the last at position ${count(e.position)}.`;
    if (e.position <= this.head) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.refresh(), SETTLE_MS);
  }
}

let board = null;

function showLogin(message) {
  $("board").hidden = true;
  $("login").hidden = false;
  $("login-msg").textContent = message ?? "";
  $("token").value = "";
  $("token").focus();
}

function open() {
  $("login").hidden = true;
  $("board").hidden = false;
  board?.stop();
  board = new Board((detail) => {
    forgetToken();
    showLogin(`The server refused the token (${detail}). Enter a token with the read scope.`);
  });
  board.start();
}

function wire() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    setToken(value);
    open();
    $("main").focus(); // the focused field is gone: start the reader at the board
  });
  $("refresh").addEventListener("click", () => board?.refresh());
  $("forget").addEventListener("click", () => {
    board?.stop();
    board = null;
    forgetToken();
    showLogin("The token is forgotten in this tab.");
  });
  $("split").addEventListener("change", () => board?.guard("costs", () => board.costs()));
  if (token()) open(); else showLogin();
}

wire();
