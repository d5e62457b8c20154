// The agent tree of /v1/agents: each agent under the agent it was forked from, as
// nested lists of native <details> (keyboard: Tab to a node, Enter or Space folds it),
// each node with its status (a word and a colour) and its cost, own and with its
// descendants, summed exactly.

import { h, utc } from "./dom.js";
import { dollars, microCents } from "./money.js";

/** {roots, children}: agents grouped under their parents; an agent whose parent is not
 * in the list (or that sits in a cycle) is a root, so every agent is shown once. */
export function grow(agents) {
  const byId = new Map(agents.map((a) => [a.agent_id, a]));
  const children = new Map();
  const roots = [];
  for (const a of agents) {
    const parent = a.parent_agent_id;
    if (parent !== null && parent !== undefined && byId.has(parent) && parent !== a.agent_id) {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(a);
    } else {
      roots.push(a);
    }
  }
  const seen = new Set();
  const walk = (a) => {
    if (seen.has(a.agent_id)) return;
    seen.add(a.agent_id);
    (children.get(a.agent_id) ?? []).forEach(walk);
  };
  roots.forEach(walk);
  for (const a of agents) if (!seen.has(a.agent_id)) { roots.push(a); walk(a); }
  return { roots, children };
}

function subtreeCost(agent, children, seen = new Set()) {
  if (seen.has(agent.agent_id)) return 0n;
  seen.add(agent.agent_id);
  let total = microCents(agent.cost_usd) ?? 0n;
  for (const c of children.get(agent.agent_id) ?? []) total += subtreeCost(c, children, seen);
  return total;
}

function lifetime(agent) {
  const forked = agent.forked_at ? `forked ${utc(agent.forked_at)}` : "";
  return agent.ended_at ? `${forked}, ended ${utc(agent.ended_at)}` : forked;
}

function line(agent, kids, children) {
  const parts = [
    h("span", { class: "agent-id", title: lifetime(agent) }, agent.agent_id),
    h("span", { class: `status status-${agent.status}` }, agent.status),
    h("span", { class: "cost", title: "this agent's own cost" }, dollars(agent.cost_usd)),
  ];
  if (kids.length) {
    parts.push(h("span", { class: "cost subtree", title: "with its descendants" },
      `${dollars(subtreeCost(agent, children))} with ${kids.length} below`));
  }
  if (agent.branch) parts.push(h("code", { class: "branch" }, agent.branch));
  if (agent.summary) parts.push(h("span", { class: "summary" }, agent.summary));
  return parts;
}

function node(agent, children, depth, path) {
  const kids = path.has(agent.agent_id) ? [] : children.get(agent.agent_id) ?? [];
  const attrs = { class: "node", dataset: { agent: agent.agent_id, status: agent.status } };
  if (!kids.length) return h("li", attrs, h("div", { class: "leaf" }, line(agent, kids, children)));
  const inner = new Set(path).add(agent.agent_id);
  return h("li", attrs,
    h("details", { open: depth < 2 },
      h("summary", {}, line(agent, kids, children)),
      h("ul", {}, kids.map((k) => node(k, children, depth + 1, inner)))));
}

/** The tree as a <ul>, or a sentence when there is no agent yet. */
export function agentTree(agents) {
  if (!agents.length) return h("p", { class: "empty" }, "No agent has been forked yet.");
  const { roots, children } = grow(agents);
  return h("ul", { class: "tree" }, roots.map((a) => node(a, children, 0, new Set())));
}
