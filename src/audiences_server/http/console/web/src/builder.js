import { useEffect, useRef, useState } from "preact/hooks";
import { get, patch, post, token } from "./api.js";
import { SizeChart } from "./chart.js";
import { Failure, Notice, describe, duration, html, shown, time, useDebounced, useLoad } from "./util.js";

const EXAMPLE = "event('Order Completed').within(30 days).count() >= 1";
// The options as the API stores them; a saved definition's missing ones have these values.
const DEFAULT_OPTIONS = { include_anonymous_users: false, include_historical_data: true, backfill_days: 0 };
const FIELDS = ["name", "description", "definition"];

// The form's fields of a saved definition.
const formOf = (c) => ({ kind: c.kind, collection: c.collection, key: c.key, name: c.name, description: c.description,
  definition: c.definition, options: { ...DEFAULT_OPTIONS, ...c.options }, enabled: c.enabled });

// What the form changes in `saved`: the fields that differ, and of the options only those that differ.
function edits(form, saved) {
  const changed = {};
  for (const name of FIELDS) if (form[name] !== saved[name]) changed[name] = form[name];
  const stored = { ...DEFAULT_OPTIONS, ...saved.options };
  const options = Object.fromEntries(Object.entries(form.options).filter(([name, value]) => value !== stored[name]));
  if (Object.keys(options).length) changed.options = options;
  return changed;
}

// The unsaved edits of a builder the page signed out of (a token expired or revoked mid-edit):
// given back when the same definition of the same space is opened again after signing in. Of a
// saved definition, only what the form changed, with the etag it was loaded with: a save then
// refuses them (409) if someone saved since, as it would have before signing out.
const DRAFT = "audiences.console.draft";

function keepDraft(draft) {
  sessionStorage.setItem(DRAFT, JSON.stringify(draft));
}

// The draft kept for `target` of `space`, if any (taken: it is given back once).
function takeDraft(space, target) {
  let draft = null;
  try { draft = JSON.parse(sessionStorage.getItem(DRAFT) || "null"); } catch { draft = null; }
  if (!draft || draft.space !== space || draft.target !== target) return null;
  sessionStorage.removeItem(DRAFT);
  return draft;
}

// Whether a version has the current text and options (rolling back to it would change nothing).
const sameAs = (version, current) => version.definition === current.definition
  && JSON.stringify({ ...DEFAULT_OPTIONS, ...version.options }) === JSON.stringify({ ...DEFAULT_OPTIONS, ...current.options });

function Summary({ summary }) {
  if (!summary) return null;
  const rows = [["Events", summary.events], ["Properties", summary.properties], ["Context", summary.context_paths],
    ["Traits", summary.traits]];
  const back = summary.lookback_unbounded ? "all history" : summary.lookback_ms ? duration(summary.lookback_ms) : "none";
  return html`
    <dl class="summary" aria-label="Dependency summary">
      ${rows.map(([label, items]) => html`<dt>${label}</dt><dd>${items.length ? items.join(", ") : "—"}</dd>`)}
      <dt>Looks back</dt><dd>${back}</dd>
    </dl>`;
}

function Problem({ problem }) {
  const [message] = problem.message.split("; did you mean");
  return html`
    <div class="problem" role="alert" aria-live="assertive">
      <p><b>${problem.reason}</b>${problem.line ? ` at line ${problem.line}, column ${problem.column}` : ""}: ${message}</p>
      ${problem.caret_display && html`<pre class="caret" aria-label="Where the error is">${problem.caret_display}</pre>`}
      ${problem.hint && html`<p class="hint">Hint: ${problem.hint}</p>`}
    </div>`;
}

const profileName = (p) => (p ? (p.identifiers[0] || p.id) : "(gone)");

function Samples({ items, value = true }) {
  if (!items.length) return html`<p class="muted">No sample.</p>`;
  return html`<ul class="samples">${items.map((s) => html`
    <li><a href=${`#/profiles/${s.profile?.collection || "users"}/${encodeURIComponent(s.profile?.id || "")}`}>${profileName(s.profile)}</a>
      ${value && s.value !== true && html` <span class="mono">${shown(s.value)}</span>`}
      ${"old" in s && html` <span class="mono muted">${shown(s.old)} → ${shown(s.new)}</span>`}</li>`)}</ul>`;
}

function Diff({ diff }) {
  return html`
    <section class="diff" aria-labelledby="diff-title">
      <h3 id="diff-title">If saved, against ${diff.compare_key} as stored</h3>
      <div class="columns">
        ${["entering", "exiting", "staying"].map((outcome) => html`
          <div class=${`outcome ${outcome}`} data-outcome=${outcome}>
            <h4>${outcome[0].toUpperCase() + outcome.slice(1)}: <span class="count">${diff[outcome]}</span></h4>
            <${Samples} items=${diff.samples[outcome] || []} value=${false} />
          </div>`)}
      </div>
      ${diff.changed > 0 && html`<p>${diff.changed} staying profiles would change value.</p>`}
    </section>`;
}

function Versions({ target, version, onRolledBack, setNotice }) {
  // Read again whenever the saved definition's version moves (a save or a rollback).
  const { data, error } = useLoad(() => get(`${target}/versions`), [target, version]);
  const current = data && data.versions.find((v) => v.current);
  const rollback = async (number) => {
    try {
      const { computation: c, changed } = await post(`${target}/rollback`, { version: number });
      setNotice({ kind: "ok", text: changed.length
        ? `Rolled back to version ${number}: saved as version ${c.version}; it is ${c.status}.`
        : `Version ${number} has the current text and options: nothing changed (still version ${c.version}, ${c.status}).` });
      onRolledBack();
    } catch (failed) {
      setNotice({ kind: "error", text: `Rollback failed. ${describe(failed)}` });
    }
  };
  return html`
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <${Failure} error=${error} />
      ${data && html`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th>
          <th scope="col">Size after backfill</th><th scope="col">Definition</th><th scope="col"></th></tr></thead>
        <tbody>${data.versions.map((v) => html`<tr>
          <th scope="row">${v.version}${v.current ? " (current)" : ""}</th><td>${time(v.created)}</td><td>${v.actor || "—"}</td>
          <td class="num">${v.size_after_backfill ?? "—"}</td><td><code>${v.definition}</code></td>
          <td>${v.current ? "" : current && sameAs(v, current) ? html`<span class="muted">Same as current</span>`
            : html`<button type="button" onClick=${() => rollback(v.version)}>Roll back to version ${v.version}</button>`}</td>
        </tr>`)}</tbody></table></div>`}
    </section>`;
}

// The saved definition's size per hour (last 48) or per day (last 30), with entries and exits.
function Sizes({ target, version }) {
  const [interval, setSpan] = useState("hourly");
  const { data, error } = useLoad(() => get(`${target}/sizes?interval=${interval}`), [target, interval, version]);
  const moved = data ? data.points.reduce((sum, p) => sum + p.entered + p.exited, 0) : 0;
  return html`
    <section aria-labelledby="sizes-title">
      <h2 id="sizes-title">Size over time</h2>
      <label for="size-interval">Interval</label>
      <select id="size-interval" value=${interval} onChange=${(e) => setSpan(e.target.value)}>
        <option value="hourly">Hourly, last 48 hours</option><option value="daily">Daily, last 30 days</option></select>
      <${Failure} error=${error} />
      ${data && html`<p>Size now <b>${data.size}</b>; ${moved} entries and exits in the range shown.</p>
        <${SizeChart} points=${data.points} label=${`${data.key} size, ${interval}`} width=${640} height=${160} />`}
    </section>`;
}

export function Builder({ args, session }) {
  const editing = args.length === 2;
  const [collectionArg, keyArg] = editing ? args : ["users", ""];
  const target = `/computations/${encodeURIComponent(collectionArg)}/${encodeURIComponent(keyArg)}`;
  const [form, setForm] = useState({ kind: "audience", collection: "users", key: "", name: "", description: "",
    definition: editing ? "" : EXAMPLE, options: DEFAULT_OPTIONS, enabled: true });
  // The definition as last loaded or saved, and its etag: a save sends back the etag, and the
  // server refuses it (409 EDIT_CONFLICT) when someone else saved meanwhile.
  const [saved, setSaved] = useState(null);
  const [etag, setEtag] = useState("");
  const [check, setCheck] = useState(null);
  const [preview, setPreview] = useState(null);
  const [previewing, setPreviewing] = useState(false);
  const [notice, setNotice] = useState(null);
  const [loadError, setLoadError] = useState(null);
  // Validations and previews are numbered as they are sent: only the latest one's answer is shown,
  // so a slow answer to an older text never replaces a newer text's.
  const checks = useRef(0);
  const previews = useRef(0);
  const set = (name) => (e) => setForm({ ...form, [name]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  const setOption = (name) => (e) => setForm({ ...form, options: { ...form.options,
    [name]: e.target.type === "checkbox" ? e.target.checked : parseInt(e.target.value, 10) || 0 } });

  // `keep`: the form's edits to carry over onto what is loaded (after a conflict, or a draft kept
  // when the page signed out), else none; `keptEtag`: the etag those edits were made against.
  // Whether it loaded.
  const load = async (keep = null, keptEtag = "") => {
    try {
      const { computation: c, etag: tag } = await get(target);
      setSaved(c);
      setEtag(keptEtag || tag);
      const loaded = formOf(c);
      setForm(keep ? { ...loaded, ...keep, options: { ...loaded.options, ...(keep.options || {}) } } : loaded);
      return true;
    } catch (failed) { setLoadError(failed); return false; }
  };
  const KEPT = "Your edits from before you were signed out are back in the form; they are not saved yet.";
  useEffect(() => {
    checks.current += 1;
    previews.current += 1;
    setPreview(null); setPreviewing(false); setCheck(null); setNotice(null);
    const draft = takeDraft(session.space, target);
    if (!editing) {
      if (draft) { setForm(draft.form); setNotice({ kind: "ok", text: KEPT }); }
      return;
    }
    load(draft && draft.changed, draft ? draft.etag : "").then((loaded) => {
      if (loaded && draft) setNotice({ kind: "ok", text: KEPT });
      if (!loaded && draft) {
        // Deleted (or not readable) since: the edits cannot go back into it, and are shown instead.
        keepDraft(draft);
        setNotice({ kind: "error", text: `Your unsaved edits from before you were signed out could not be put back: ${
          Object.entries(draft.changed).map(([name, value]) => `${name}: ${typeof value === "string" ? value : JSON.stringify(value)}`).join("; ")}` });
      }
    });
  }, [target]);
  // Signed out with unsaved edits (the page leaves the builder as the token goes): they are kept
  // for when this definition is opened again.
  const latest = useRef(null);
  latest.current = { form, saved, etag };
  useEffect(() => () => {
    const { form: left, saved: stored, etag: tag } = latest.current;
    if (token.get()) return;
    const changed = editing && stored ? edits(left, stored) : {};
    if (editing && Object.keys(changed).length) keepDraft({ space: session.space, target, changed, etag: tag });
    if (!editing && (left.key !== "" || left.definition !== EXAMPLE)) keepDraft({ space: session.space, target, form: left });
  }, [target]);

  // Validation as you type: the server checks the text 300 ms after the last key.
  useDebounced(async () => {
    const mine = ++checks.current;
    if (!form.definition.trim()) {
      // No text, no preview: the one shown was the text before's (and one in flight is dropped).
      setCheck(null);
      previews.current += 1;
      setPreview(null);
      setPreviewing(false);
      return;
    }
    let found;
    try {
      found = await post("/validate", { kind: form.kind, collection: form.collection, key: form.key, definition: form.definition });
    } catch (failed) { found = { valid: false, failure: failed }; }
    if (mine !== checks.current) return;
    setCheck(found);
    if (!found.valid) {
      // The preview shown is the last valid text's, not this one's: it goes (and one in flight is dropped).
      previews.current += 1;
      setPreview(null);
      setPreviewing(false);
    }
  }, [form.definition, form.kind, form.collection, form.key], 300);

  // `compare`: against the saved definition (when editing one): with its diff unless `quiet`
  // (just saved: the form is what is stored, and the diff would say nothing).
  const runPreview = async (compare = editing, quiet = false) => {
    const mine = ++previews.current;
    setPreviewing(true);
    let found;
    try {
      // The diff uses the edited options too, as the save would store them.
      found = await post("/preview", { kind: form.kind, collection: form.collection, definition: form.definition,
        options: form.options, sample_size: 10, compare_key: compare ? keyArg : "" });
    } catch (failed) { found = { failure: failed }; }
    if (mine !== previews.current) return;  // a newer preview was asked for since
    setPreview(quiet && found.diff ? { ...found, diff: null } : found);
    setPreviewing(false);
  };
  // A live preview once the text is valid, a little after validation.
  useDebounced(() => { if (check && check.valid) runPreview(); }, [check, JSON.stringify(form.options)], 400);
  // Asked for again once the form holds what was just loaded (after a conflict): the diff then
  // compares with what is stored now.
  const [again, setAgain] = useState(0);
  useEffect(() => { if (again && check && check.valid) runPreview(); }, [again]);

  const save = async (event) => {
    event.preventDefault();
    // What this editor changed since loading: only those fields are sent, so a field another
    // editor saved meanwhile is not put back as it was loaded.
    const changed = editing && saved ? edits(form, saved) : {};
    try {
      if (editing) {
        if (!Object.keys(changed).length) {
          setNotice({ kind: "ok", text: "Nothing changed: not saved." });
          return;
        }
        const { computation, etag: tag } = await patch(target, { ...changed, etag });
        setSaved(computation);
        setEtag(tag);
        setNotice({ kind: "ok", text: `Saved ${computation.key} as version ${computation.version}; it is ${computation.status}.` });
        // What is stored is now the form's text and options: the diff shown was what saving would
        // change, and no longer holds. The preview is read again against what is stored (which
        // also counts from the definition's own start, as its window and backfill days do).
        setPreview((shown) => (shown && shown.diff ? { ...shown, diff: null } : shown));
        runPreview(true, true);
      } else {
        const { computation } = await post("/computations", { kind: form.kind, collection: form.collection, key: form.key,
          name: form.name, description: form.description, definition: form.definition, enabled: form.enabled,
          options: form.options });
        // The list shows it backfilling, then live with its size.
        location.hash = `#/audiences/${encodeURIComponent(computation.key)}`;
      }
    } catch (failed) {
      if (failed.status === 409 && failed.error.reason === "EDIT_CONFLICT") {
        // Someone saved it since it was loaded: load what is stored now, keep this editor's
        // edits over it, and let them look at the diff again before saving.
        setPreview(null);  // its diff was against the version just overwritten
        await load(changed);
        setAgain((n) => n + 1);
        setNotice({ kind: "error", text: `Not saved: ${keyArg} was saved by someone else since you loaded it. `
          + "The saved definition has been loaded again with your edits kept in the form; check the diff, then save again." });
        return;
      }
      setNotice({ kind: "error", text: `Not saved. ${describe(failed)}` });
      if (failed.error && failed.error.definition) setCheck({ valid: false, error: failed.error.definition });
    }
  };

  return html`
    <section aria-labelledby="builder-title">
      <h1 id="builder-title">${editing ? `Edit ${keyArg}` : "New audience or computed trait"}</h1>
      <${Failure} error=${loadError} />
      <form class="builder" onSubmit=${save}>
        <div class="fields">
          <label for="f-kind">Kind</label>
          <select id="f-kind" value=${form.kind} onChange=${set("kind")} disabled=${editing}>
            <option value="audience">Audience</option><option value="computed_trait">Computed trait</option></select>
          <label for="f-collection">Collection</label>
          <select id="f-collection" value=${form.collection} onChange=${set("collection")} disabled=${editing}>
            <option value="users">Users</option><option value="accounts">Accounts</option></select>
          <label for="f-key">Key</label>
          <input id="f-key" value=${form.key} onInput=${set("key")} readOnly=${editing} required pattern="[a-z][a-z0-9_]*"
                 aria-describedby="f-key-help" />
          <span id="f-key-help" class="help">snake_case: a–z, 0–9 and _, starting with a letter; fixed once saved.</span>
          <label for="f-name">Name</label>
          <input id="f-name" value=${form.name} onInput=${set("name")} />
          <label for="f-description">Description</label>
          <input id="f-description" value=${form.description} onInput=${set("description")} />
          <label class="check"><input type="checkbox" checked=${form.options.include_anonymous_users}
            onChange=${setOption("include_anonymous_users")} /> Include anonymous users</label>
          <label class="check"><input type="checkbox" checked=${form.options.include_historical_data}
            onChange=${setOption("include_historical_data")} /> Include historical data</label>
          <label for="f-backfill-days">Backfill days</label>
          <input id="f-backfill-days" type="number" min="0" step="1" value=${form.options.backfill_days}
                 onInput=${setOption("backfill_days")} aria-describedby="f-backfill-help" />
          <span id="f-backfill-help" class="help">With historical data: only events from this many days before creation on (0: all).</span>
          ${!editing && html`<label class="check"><input type="checkbox" checked=${form.enabled} onChange=${set("enabled")} /> Enabled</label>`}
        </div>
        <label for="f-definition">Definition</label>
        <textarea id="f-definition" class="mono" rows="6" spellcheck=${false} value=${form.definition}
                  onInput=${set("definition")} aria-describedby="validation"></textarea>
        <div id="validation" class="validation" aria-live="polite">
          ${check && check.valid && html`<p class="valid">Valid.</p>`}
          ${check && check.error && html`<${Problem} problem=${check.error} />`}
          ${check && check.failure && html`<${Failure} error=${check.failure} />`}
          ${check && check.summary && html`<h2>Reads</h2><${Summary} summary=${check.summary} />`}
        </div>
        <div class="buttons">
          <button type="button" onClick=${() => runPreview()} disabled=${previewing}>Preview</button>
          <button type="submit" class="primary">${editing ? "Save changes" : "Save"}</button>
          ${editing && html`<a href="#/builder/new">New definition</a>`}
        </div>
        <${Notice} notice=${notice} />
      </form>
      <section class="preview" aria-labelledby="preview-title" aria-live="polite" aria-busy=${previewing}>
        <h2 id="preview-title">Preview</h2>
        ${!preview && html`<p class="muted">A valid definition is previewed over every profile as it stands now.</p>`}
        ${preview && preview.failure && html`<${Failure} error=${preview.failure} />`}
        ${preview && !preview.failure && html`
          <p class="preview-count"><b class="count">${preview.count}</b> ${form.kind === "audience" ? "profiles match" : "profiles have a value"} (evaluated ${time(preview.evaluated)})</p>
          <${Samples} items=${preview.samples} />
          ${preview.diff && html`<${Diff} diff=${preview.diff} />`}`}
      </section>
      ${editing && saved && html`<${Sizes} target=${target} version=${saved.version} />`}
      ${editing && saved && html`<${Versions} target=${target} version=${saved.version} onRolledBack=${load} setNotice=${setNotice} />`}
    </section>`;
}
