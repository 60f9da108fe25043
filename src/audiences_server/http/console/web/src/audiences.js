import { useState } from "preact/hooks";
import { del, get, patch } from "./api.js";
import { SizeChart } from "./chart.js";
import { Failure, Notice, describe, html, time, useLoad } from "./util.js";

const path = (c) => `/computations/${encodeURIComponent(c.collection)}/${encodeURIComponent(c.key)}`;

function Progress({ c }) {
  const { done, total } = c.backfill;
  if (c.status !== "BACKFILLING") return html`<span class="muted">${total ? `${done} / ${total}` : "—"}</span>`;
  return html`<progress max=${total || 1} value=${done} aria-label=${`${c.key} backfill`}>${done} / ${total}</progress>
    <span> ${done} / ${total}</span>`;
}

function Row({ c, onChanged, setNotice }) {
  const [confirming, setConfirming] = useState(false);
  const act = async (verb, done, action) => {
    try {
      await action();
      setNotice({ kind: "ok", text: `${c.key}: ${done}.` });
    } catch (error) {
      setNotice({ kind: "error", text: `${c.key}: could not ${verb}. ${describe(error)}` });
    }
    setConfirming(false);
    onChanged();
  };
  const toggle = () => (c.enabled ? act("disable", "disabled", () => patch(path(c), { enabled: false }))
    : act("enable", "enabled", () => patch(path(c), { enabled: true })));
  const remove = () => act("delete", "deleted", () => del(path(c)));
  return html`
    <tr data-key=${c.key}>
      <th scope="row"><a href=${`#/builder/${c.collection}/${encodeURIComponent(c.key)}`}>${c.name}</a>
        <div class="muted mono">${c.key}</div></th>
      <td>${c.kind === "audience" ? "audience" : "computed trait"}<div class="muted">${c.collection}</div></td>
      <td><span class=${`status s-${c.status.toLowerCase()}`}>${c.status}</span>
        ${c.error && html`<div class="error-text">${c.error}</div>`}</td>
      <td class="num size">${c.size}</td>
      <td><${Progress} c=${c} /></td>
      <td>${time(c.last_computed)}</td>
      <td class="chart-cell"><${SizeChart} points=${c.sizes} label=${`${c.key} size, last 48 hours`} /></td>
      <td class="actions">
        <button type="button" onClick=${toggle}>${c.enabled ? "Disable" : "Enable"}<span class="sr"> ${c.key}</span></button>
        ${confirming
          ? html`<button type="button" class="danger" onClick=${remove}>Confirm delete<span class="sr"> ${c.key}</span></button>
                 <button type="button" onClick=${() => setConfirming(false)}>Keep</button>`
          : html`<button type="button" onClick=${() => setConfirming(true)}>Delete<span class="sr"> ${c.key}</span></button>`}
      </td>
    </tr>`;
}

export function Audiences() {
  const [notice, setNotice] = useState(null);
  // Read again every 2 s: a backfill's progress and a size change show without a reload.
  const { data, error, reload } = useLoad(() => get("/computations?sizes=hourly"), [], 2000);
  const rows = data ? data.computations : [];
  return html`
    <section aria-labelledby="list-title">
      <div class="title-row">
        <h1 id="list-title">Audiences and computed traits</h1>
        <a class="button" href="#/builder/new">New definition</a>
      </div>
      ${data && html`<p class="muted">Evaluator clock: ${time(data.clock.now)}${data.clock.manual ? " (manual)" : ""}</p>`}
      <${Notice} notice=${notice} />
      <${Failure} error=${error} />
      ${data && !rows.length && html`<p>No definitions yet. <a href="#/builder/new">Write the first one</a>.</p>`}
      ${rows.length > 0 && html`
        <div class="table-wrap">
          <table class="computations">
            <caption class="sr">Each definition's status, size, backfill and size over time</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Status</th>
              <th scope="col">Size</th><th scope="col">Backfill</th><th scope="col">Last computed</th>
              <th scope="col">Size, 48 h</th><th scope="col">Actions</th></tr></thead>
            <tbody>${rows.map((c) => html`<${Row} key=${c.id} c=${c} onChanged=${reload} setNotice=${setNotice} />`)}</tbody>
          </table>
        </div>`}
    </section>`;
}
