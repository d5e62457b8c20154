// Building the page from data with text nodes only: nothing the API answers (agent
// ids, summaries, event payloads) is ever parsed as HTML.

/** h("td", {class: "num"}, "1.5", child…): an element; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** "2026-12-08T00:12:51.486304Z" -> "2026-12-08 00:12:51 UTC" (the API's moments are UTC). */
export const utc = (rfc3339) => `${rfc3339.slice(0, 10)} ${rfc3339.slice(11, 19)} UTC`;

/** A moment as a <time> element reading as `utc` does. */
export function moment(rfc3339) {
  if (!rfc3339) return h("span", {}, "–");
  return h("time", { datetime: rfc3339 }, utc(rfc3339));
}

export const count = (n) => Number(n).toLocaleString("en-US");

/** Replace the children of the element `id`. */
export function fill(id, ...children) {
  document.getElementById(id).replaceChildren(...children.flat());
}
