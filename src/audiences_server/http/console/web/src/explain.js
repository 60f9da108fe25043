import { useEffect, useRef } from "preact/hooks";
import { get, q } from "./api.js";
import { Failure, html, shown, time, useLoad } from "./util.js";

function Stream({ stream }) {
  return html`
    <div class="stream">
      <p><b>${stream.event}</b>: ${stream.seen} seen, ${stream.count} kept</p>
      ${stream.filters.length > 0 && html`<ol class="filters">${stream.filters.map((f) => html`
        <li><code>${f.filter}</code> leaves ${f.remaining}</li>`)}</ol>`}
      ${stream.events.length > 0 && html`<div class="table-wrap"><table class="evidence">
        <thead><tr><th scope="col">Time</th><th scope="col">Message</th><th scope="col">Value</th><th scope="col">Read</th></tr></thead>
        <tbody>${stream.events.map((e) => html`<tr>
          <td>${time(e.timestamp)}</td><td class="mono">${e.message_id}</td><td class="mono">${shown(e.value)}</td>
          <td class="mono">${Object.entries(e.read).map(([k, v]) => `${k} = ${shown(v)}`).join("; ")}</td></tr>`)}
        </tbody></table></div>`}
    </div>`;
}

function Node({ node }) {
  const holds = node.value === true ? "holds" : node.value === false ? "fails" : "value";
  return html`
    <li class=${`node ${holds}`}>
      <span class="verdict">${node.value === true ? "✓" : node.value === false ? "✗" : "="}</span>
      <code>${node.text}</code> <span class="mono value">${shown(node.value)}</span>
      ${node.trait && html` <span class="muted">(${node.trait.class.replace("_", " ")} ${node.trait.key})</span>`}
      ${node.stream && html`<${Stream} stream=${node.stream} />`}
      ${node.users && html`<p class="muted">${node.users_satisfying} of ${node.users_total} linked users satisfy it</p>
        <ul>${node.users.map((u) => html`<li>${u.profile?.identifiers[0] || u.profile?.id}: ${u.satisfied ? "yes" : "no"}
          <ul class="tree"><${Node} node=${u.node} /></ul></li>`)}</ul>`}
      ${node.children.length > 0 && html`<ul class="tree">${node.children.map((c) => html`<${Node} node=${c} />`)}</ul>`}
    </li>`;
}

// Why a profile has its value for a definition: explain's tree, its evidence, and what changes it next.
export function Explain({ collection, definitionKey, address, onClose }) {
  // Opened from a button further down the page: the keyboard's focus moves to the explanation.
  const panel = useRef(null);
  useEffect(() => panel.current?.focus(), [definitionKey, address]);
  const { data, error } = useLoad(
    () => get(`/explain/${encodeURIComponent(collection)}/${encodeURIComponent(definitionKey)}${q({ profile: address })}`),
    [collection, definitionKey, address]);
  return html`
    <section class="explain" aria-labelledby="explain-title" tabindex="-1" ref=${panel}>
      <div class="title-row">
        <h2 id="explain-title">Why: ${definitionKey}</h2>
        <button type="button" onClick=${onClose}>Close</button>
      </div>
      <${Failure} error=${error} />
      ${data && html`
        <p>Value <b class="mono">${shown(data.value)}</b> at ${time(data.at)}; stored <span class="mono">${shown(data.stored)}</span>
          ${data.pending ? " (waiting for a tick)" : ""}${data.anonymous_excluded ? "; anonymous users are left out" : ""}</p>
        <pre class="definition">${data.definition.text}</pre>
        <ul class="tree root"><${Node} node=${data.root} /></ul>
        <p class="next">${data.next_change.summary}</p>`}
    </section>`;
}
