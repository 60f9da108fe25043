import { useEffect, useRef, useState } from "preact/hooks";
import { get, q } from "./api.js";
import { Explain } from "./explain.js";
import { Failure, html, shown, time, useLoad } from "./util.js";

const part = (collection, address, name, params = {}) =>
  get(`/profiles/${collection}/${name}${q({ address, ...params })}`);

// A paged list of one part of the profile: `render` draws the items, "Next page" follows the cursor.
function Paged({ collection, address, name, params = {}, render, title }) {
  const [cursors, setCursors] = useState([""]);
  const cursor = cursors[cursors.length - 1];
  const key = JSON.stringify(params);
  useEffect(() => setCursors([""]), [collection, address, key]);
  const { data, error } = useLoad(() => part(collection, address, name, { ...params, next: cursor }),
    [collection, address, key, cursor]);
  return html`
    <section class="part" aria-label=${title}>
      <${Failure} error=${error} />
      ${data && (data.items.length ? render(data.items) : html`<p class="muted">None.</p>`)}
      <div class="pager">
        ${cursors.length > 1 && html`<button type="button" onClick=${() => setCursors(cursors.slice(0, -1))}>Previous page</button>`}
        ${data && data.next && html`<button type="button" onClick=${() => setCursors([...cursors, data.next])}>Next page</button>`}
      </div>
    </section>`;
}

function Traits({ collection, address }) {
  const [only, setOnly] = useState("");
  return html`
    <h2>Traits</h2>
    <label for="trait-class">Class</label>
    <select id="trait-class" value=${only} onChange=${(e) => setOnly(e.target.value)}>
      <option value="">All</option><option value="custom">Custom</option>
      <option value="computed_trait">Computed</option><option value="audience">Audience</option></select>
    <${Paged} collection=${collection} address=${address} name="traits" params=${{ class: only, limit: 50 }} title="Traits"
      render=${(items) => html`<div class="table-wrap"><table><thead><tr><th scope="col">Key</th><th scope="col">Value</th>
        <th scope="col">Class</th><th scope="col">Updated</th></tr></thead><tbody>${items.map((t) => html`
        <tr><th scope="row" class="mono">${t.key}</th><td class="mono">${shown(t.value)}</td><td>${t.class.replace("_", " ")}</td>
          <td>${time(t.updated)}</td></tr>`)}</tbody></table></div>`} />`;
}

// The day after a `YYYY-MM-DD` (UTC, as the server reads dates): the API's `end` is exclusive,
// and "Until" includes the day chosen. Until the last day there is (9999-12-31), no end: the day
// after it is in year 10000, which no time reaches and the API refuses.
const LAST_DAY = Date.parse("9999-12-31T00:00:00Z");
const dayAfter = (day) => (day && Date.parse(`${day}T00:00:00Z`) < LAST_DAY
  ? new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10) : "");

function Events({ collection, address }) {
  const [draft, setDraft] = useState({ include: "", exclude: "", start: "", end: "", sort: "desc" });
  const [filters, setFilters] = useState(draft);
  const set = (name) => (e) => setDraft({ ...draft, [name]: e.target.value });
  return html`
    <h2>Events</h2>
    <form class="filters-form" onSubmit=${(e) => { e.preventDefault(); setFilters(draft); }}>
      <label>Only events <input value=${draft.include} onInput=${set("include")} placeholder="Signed Up, Order Completed" /></label>
      <label>Except <input value=${draft.exclude} onInput=${set("exclude")} /></label>
      <label>From (UTC) <input type="date" value=${draft.start} onInput=${set("start")} /></label>
      <label>Until (UTC, that day included) <input type="date" value=${draft.end} onInput=${set("end")} /></label>
      <label>Order <select value=${draft.sort} onChange=${set("sort")}><option value="desc">Newest first</option>
        <option value="asc">Oldest first</option></select></label>
      <button type="submit">Filter events</button>
    </form>
    <${Paged} collection=${collection} address=${address} name="events" params=${{ ...filters, end: dayAfter(filters.end), limit: 20 }} title="Events"
      render=${(items) => html`<ol class="events">${items.map((e) => html`<li>
        <b>${e.event || e.type}</b> <span class="muted">${e.type} · ${time(e.timestamp)} · ${e.message_id}</span>
        <details><summary>Properties and context</summary><pre class="mono">${e.properties}</pre><pre class="mono">${e.context}</pre></details>
      </li>`)}</ol>`} />`;
}

// An address as typed, read as the server reads it: a `type:value`'s type ends at the first colon
// and is trimmed, its value is exactly as typed (an id may begin or end with spaces); a `prf_…`
// id, which has no colon, is trimmed whole (it never holds a space).
function addressOf(text) {
  const colon = text.indexOf(":");
  return colon < 0 ? text.trim() : `${text.slice(0, colon).trim()}${text.slice(colon)}`;
}

export function Profiles({ args }) {
  const [collectionArg = "users", addressArg = ""] = args;
  const [draft, setDraft] = useState({ collection: collectionArg, address: addressArg });
  const [why, setWhy] = useState(null);
  // The form follows the address in the page's URL when that changes, not when the page is first
  // drawn: effects run after the first paint, and a reset then wiped what was typed meanwhile
  // (Find then sent nothing, the field being required).
  const lastArgs = useRef(`${collectionArg}/${addressArg}`);
  useEffect(() => {
    if (lastArgs.current === `${collectionArg}/${addressArg}`) return;
    lastArgs.current = `${collectionArg}/${addressArg}`;
    setDraft({ collection: collectionArg, address: addressArg });
    setWhy(null);
  }, [collectionArg, addressArg]);
  const find = (e) => {
    e.preventDefault();
    location.hash = `#/profiles/${draft.collection}/${encodeURIComponent(addressOf(draft.address))}`;
  };
  const found = addressArg !== "";
  const meta = useLoad(() => (found ? part(collectionArg, addressArg, "metadata") : Promise.resolve(null)),
    [collectionArg, addressArg]);
  const definitions = useLoad(() => get("/computations"), []);
  const same = (definitions.data?.computations || []).filter((c) => c.collection === collectionArg);
  const props = { collection: collectionArg, address: addressArg };
  return html`
    <section aria-labelledby="profiles-title">
      <h1 id="profiles-title">Profile explorer</h1>
      <form class="lookup" onSubmit=${find} role="search">
        <label for="p-collection">Collection</label>
        <select id="p-collection" value=${draft.collection} onChange=${(e) => setDraft({ ...draft, collection: e.target.value })}>
          <option value="users">Users</option><option value="accounts">Accounts</option></select>
        <label for="p-address">Profile (type:value or prf_…)</label>
        <input id="p-address" value=${draft.address} required placeholder="email:ada@example.com"
               onInput=${(e) => setDraft({ ...draft, address: e.target.value })} />
        <button type="submit">Find</button>
      </form>
      ${found && html`
        <${Failure} error=${meta.error} />
        ${meta.data && html`
          <p class="profile-head">Profile <b class="mono">${meta.data.profile_id}</b> · created ${time(meta.data.created)} ·
            last message ${time(meta.data.last_message)}${meta.data.merged.length ? ` · merged from ${meta.data.merged.join(", ")}` : ""}</p>
          ${why && html`<${Explain} collection=${collectionArg} definitionKey=${why} address=${addressArg} onClose=${() => setWhy(null)} />`}
          <div class="grid">
            <div>
              <h2>Audiences</h2>
              <${Paged} ...${props} name="memberships" params=${{ limit: 50 }} title="Audience memberships"
                render=${(items) => html`<ul class="memberships">${items.map((m) => html`<li data-key=${m.key}>
                  <b>${m.name}</b> <span class="muted mono">${m.key}</span> · since ${time(m.entered)}
                  <button type="button" onClick=${() => setWhy(m.key)}>Why<span class="sr"> is this profile in ${m.key}</span></button></li>`)}</ul>`} />
              <form class="why-other" onSubmit=${(e) => { e.preventDefault(); setWhy(e.target.elements.other.value); }}>
                <label for="why-other">Explain any definition</label>
                <select id="why-other" name="other">${same.map((c) => html`<option value=${c.key}>${c.key}</option>`)}</select>
                <button type="submit" disabled=${!same.length}>Explain</button>
              </form>
              <h2>Membership history</h2>
              <${Paged} ...${props} name="history" params=${{ limit: 20 }} title="Membership history"
                render=${(items) => html`<ol class="history">${items.map((h) => html`<li>
                  ${time(h.at)} · <b>${h.change}</b> ${h.key} <span class="mono muted">${shown(h.old)} → ${shown(h.new)}</span></li>`)}</ol>`} />
              <h2>Identifiers</h2>
              <${Paged} ...${props} name="identifiers" params=${{ limit: 50 }} title="Identifiers"
                render=${(items) => html`<ul>${items.map((i) => html`<li class="mono">${i.type}:${i.value}
                  <span class="muted"> · ${time(i.added)}</span></li>`)}</ul>`} />
              <h2>Links</h2>
              <${Paged} ...${props} name="links" params=${{ limit: 50 }} title="Linked profiles"
                render=${(items) => html`<ul>${items.map((l) => html`<li>
                  <a href=${`#/profiles/${l.collection}/${encodeURIComponent(l.id)}`}>${l.identifiers[0] || l.id}</a>
                  <span class="muted"> · ${l.collection} · linked ${time(l.linked)}</span></li>`)}</ul>`} />
            </div>
            <div>
              <${Traits} ...${props} />
              <${Events} ...${props} />
            </div>
          </div>`}`}
    </section>`;
}
