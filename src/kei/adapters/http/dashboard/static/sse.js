// Server-Sent Events read with fetch(): EventSource cannot send an Authorization
// header, so the page parses the stream itself (the WHATWG "event stream
// interpretation") and reconnects after a drop with `Last-Event-ID`, the position of
// the last event it was given, so nothing is missed and nothing is shown twice.

import { Unauthorized, authHeaders } from "./api.js";

/** Turns text chunks into events {id, type, data}; lines may split across chunks. */
export class SseParser {
  constructor(onEvent, onRetry = () => {}) {
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.buffer = "";
    this.reset();
    this.lastId = undefined;
  }

  reset() {
    this.data = [];
    this.type = "";
    this.id = undefined;
  }

  push(chunk) {
    this.buffer += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      // a lone CR at the end may be the first half of a CRLF: wait for the next chunk
      if (!m || (m[0] === "\r" && m.index === this.buffer.length - 1)) return;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.type = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.onRetry(Number(value));
  }

  dispatch() {
    if (this.id !== undefined) this.lastId = this.id;
    if (this.data.length) {
      this.onEvent({ id: this.lastId, type: this.type || "message", data: this.data.join("\n") });
    }
    this.reset();
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });

/**
 * Follow `urlFor(lastId)` until `signal` aborts: each event goes to onEvent, each change
 * of connection to onState("live" | "reconnecting"). Rejects with Unauthorized when the
 * server refuses the token (reconnecting could not help).
 */
export async function follow({ urlFor, lastId, onEvent, onState, signal }) {
  let delay = 1000;
  let retry = 1000;
  while (!signal.aborted) {
    try {
      const headers = authHeaders({ Accept: "text/event-stream" });
      if (lastId !== undefined) headers["Last-Event-ID"] = lastId;
      const res = await fetch(urlFor(lastId), { headers, cache: "no-store", signal });
      if (res.status === 401 || res.status === 403) throw new Unauthorized();
      if (!res.ok || !res.body) throw new Error(`the stream answered ${res.status}`);
      onState("live");
      delay = retry;
      const parser = new SseParser(
        (ev) => { lastId = ev.id ?? lastId; onEvent(ev); },
        (ms) => { retry = ms; delay = ms; },
      );
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      if (signal.aborted) return;
      delay = Math.min(delay * 2, 30000);
    }
    if (signal.aborted) return;
    onState("reconnecting");
    await sleep(delay, signal);
  }
}
