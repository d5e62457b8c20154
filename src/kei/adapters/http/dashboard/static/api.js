// The /v1 API as the page reads it: a read token kept in this tab's sessionStorage
// (never in a URL, never in localStorage), sent as `Authorization: Bearer`.

const TOKEN_KEY = "kei.read-token";

export class Unauthorized extends Error {
  constructor(detail) {
    super(detail || "the server refused the token");
    this.name = "Unauthorized";
  }
}

export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (value) => sessionStorage.setItem(TOKEN_KEY, value);
export const forgetToken = () => sessionStorage.removeItem(TOKEN_KEY);

/** The API URL of `path` ("v1/agents"), relative to the page so a proxy prefix holds. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined) url.searchParams.set(k, String(v));
  }
  return url;
}

export function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${token()}`, ...extra };
}

/** The problem-details `detail` of a failed answer (RFC 9457), or its status line. */
async function problem(res) {
  try {
    const body = await res.json();
    if (body && typeof body.detail === "string") return body.detail;
    if (body && typeof body.title === "string") return body.title;
  } catch {
    // not JSON: the status says enough
  }
  return `${res.status} ${res.statusText}`.trim();
}

/** GET a JSON answer; Unauthorized on 401 and 403, Error(detail) on any other failure. */
export async function getJSON(path, params = {}, signal = undefined) {
  const res = await fetch(apiUrl(path, params), {
    headers: authHeaders({ Accept: "application/json" }),
    cache: "no-store",
    signal,
  });
  if (res.status === 401 || res.status === 403) throw new Unauthorized(await problem(res));
  if (!res.ok) throw new Error(await problem(res));
  return res.json();
}
