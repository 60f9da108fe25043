import { useEffect, useState } from "preact/hooks";
import { get, post, q } from "./api.js";
import { Failure, Notice, describe, duration, html, shown, time, useLoad } from "./util.js";

const PAGE = 50;

// A dead letter's change: entered, exited, or a computed trait's old → new value.
function change(d) {
  if (d.change.type === "changed") return html`changed <span class="mono">${shown(d.change.old)} → ${shown(d.change.new)}</span>`;
  return d.change.type;
}

// A URL as the page prints it: its query's values shown as … (an API key there is a credential,
// as a header's value is), without its fragment.
function withoutQueryValues(url) {
  const [head, query] = url.split("#")[0].split(/\?(.*)/s);
  if (query === undefined) return head;
  return `${head}?${query.split("&").filter((part) => part.includes("=")).map((part) => `${part.split("=")[0]}=…`).join("&")}`;
}

// Where a destination's changes go, by its kind.
function address(d) {
  const c = d.config;
  if (d.kind === "webhook") return withoutQueryValues(c.url || "");
  if (d.kind === "segment") return withoutQueryValues(c.base_url || "");
  if (d.kind === "csv") return c.directory;
  if (d.kind === "postgres") return `tables ${c.schema}.${c.table_prefix}<collection>_<key>`;
  if (d.kind === "grpc_feed") return "a change feed, read with ListChanges and WatchChanges";
  return d.key;
}

function Connections({ items }) {
  if (!items.length) return html`<p class="muted">Nothing connected.</p>`;
  return html`<div class="table-wrap"><table class="connections">
    <thead><tr><th scope="col">Definition</th><th scope="col">Phase</th><th scope="col">Pending</th>
      <th scope="col">Delivered</th><th scope="col">Retrying</th><th scope="col">Dead</th><th scope="col">Lag</th>
      <th scope="col">Last delivery</th><th scope="col">Last failure</th></tr></thead>
    <tbody>${items.map((c) => html`<tr>
      <th scope="row">${c.computation.key} <span class="muted">${c.computation.collection}</span></th>
      <td>${c.phase}</td><td class="num">${c.pending}</td><td class="num">${c.delivered}</td>
      <td class="num">${c.retrying}</td><td class="num">${c.dead}</td><td>${duration(c.lag_ms)}</td>
      <td>${time(c.last_delivery)}</td>
      <td>${c.last_error ? html`<span class="error-text">${c.last_error}</span> <span class="muted">${time(c.last_error_at)}</span>` : "—"}</td>
    </tr>`)}</tbody></table></div>`;
}

function DeadLetters({ destination, onRedriven, setNotice }) {
  // The first page comes with the destination (read again every 3 s); the pages after it are
  // read on request from `/dead-letters` and kept until the first page changes.
  const [more, setMore] = useState({ letters: [], next: "" });
  const [failure, setFailure] = useState(null);
  const firstIds = destination.dead_letters.map((d) => d.id).join(",");
  useEffect(() => { setMore({ letters: [], next: "" }); }, [destination.key, firstIds]);
  const letters = [...destination.dead_letters, ...more.letters];
  const next = more.letters.length ? more.next : destination.dead_letters_next;
  const total = destination.dead_letters_total;
  const showMore = async () => {
    try {
      const page = await get(`/destinations/${encodeURIComponent(destination.key)}/dead-letters${q({ after: next, limit: PAGE })}`);
      setMore({ letters: [...more.letters, ...page.dead_letters], next: page.next });
      setFailure(null);
    } catch (failed) { setFailure(failed); }
  };
  // The rows read with "Show more" are not read again with the first page: those the server no
  // longer lists (redriven now, or already) are dropped here, so that none is shown, or redriven, twice.
  const drop = (ids) => setMore((shown) => ({ ...shown,
    letters: ids.length ? shown.letters.filter((d) => !ids.includes(d.id)) : [] }));
  const redrive = async (ids) => {
    try {
      const { redriven } = await post(`/destinations/${encodeURIComponent(destination.key)}/redrive`, { ids });
      setNotice({ kind: "ok", text: `${destination.key}: ${redriven} dead letter${redriven === 1 ? "" : "s"} put back in the queue.` });
      drop(ids);
    } catch (error) {
      setNotice({ kind: "error", text: `${destination.key}: redrive failed. ${describe(error)}` });
      if (error.error && error.error.reason === "DEAD_LETTER_NOT_FOUND") drop(ids);
    }
    onRedriven();
  };
  return html`
    <h3>Dead letters (${total})</h3>
    ${!letters.length && html`<p class="muted">None.</p>`}
    ${letters.length > 0 && letters.length < total && html`<p class="muted">Showing the oldest ${letters.length} of ${total}.</p>`}
    ${letters.length > 0 && html`
      <button type="button" onClick=${() => redrive([])}>Redrive all<span class="sr"> of ${destination.key}</span></button>
      <div class="table-wrap"><table class="dead-letters">
        <thead><tr><th scope="col">Id</th><th scope="col">Definition</th><th scope="col">Change</th><th scope="col">Profile</th>
          <th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Parked</th><th scope="col"></th></tr></thead>
        <tbody>${letters.map((d) => html`<tr data-id=${d.id}>
          <th scope="row" class="mono">${d.id}</th><td>${d.computation.key}</td><td class="change">${change(d)}</td>
          <td><a href=${`#/profiles/${d.computation.collection}/${encodeURIComponent(d.profile_id)}`}>${d.profile_id}</a></td>
          <td class="num">${d.attempts}</td><td class="error-text">${d.last_error}</td><td>${time(d.dead_at)}</td>
          <td><button type="button" onClick=${() => redrive([d.id])}>Redrive<span class="sr"> ${d.id}</span></button></td>
        </tr>`)}</tbody></table></div>
      ${next && html`<button type="button" class="more" onClick=${showMore}>Show more<span class="sr"> dead letters of ${destination.key}</span></button>`}
      <${Failure} error=${failure} />`}`;
}

export function Destinations() {
  const [notice, setNotice] = useState(null);
  // Read again every 3 s: deliveries, retries and dead letters move on their own.
  const { data, error, reload } = useLoad(() => get("/destinations"), [], 3000);
  const items = data ? data.destinations : [];
  return html`
    <section aria-labelledby="destinations-title">
      <div class="title-row">
        <h1 id="destinations-title">Destinations</h1>
        <button type="button" onClick=${reload}>Refresh</button>
      </div>
      <${Notice} notice=${notice} />
      <${Failure} error=${error} />
      ${data && !items.length && html`<p>No destinations. Create one with <code>audiences destinations create</code>.</p>`}
      ${items.map((d) => html`
        <article class="destination" data-key=${d.key} aria-labelledby=${`d-${d.key}`}>
          <h2 id=${`d-${d.key}`}>${d.name || d.key} <span class="muted">${d.kind}${d.enabled ? "" : " · disabled"}</span></h2>
          <p class="muted mono address">${address(d)}</p>
          <h3>Connections</h3>
          <${Connections} items=${d.connections} />
          <${DeadLetters} destination=${d} onRedriven=${reload} setNotice=${setNotice} />
        </article>`)}
    </section>`;
}
