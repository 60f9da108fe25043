import "./console.css";
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { get, token, tokenProblem, whenSignedOut } from "./api.js";
import { Audiences } from "./audiences.js";
import { Builder } from "./builder.js";
import { Destinations } from "./destinations.js";
import { Profiles } from "./profiles.js";
import { describe, html } from "./util.js";

// The page the location's hash names: #/audiences, #/builder/new, #/builder/users/KEY,
// #/profiles/users/ADDRESS, #/destinations.
function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { page: parts[0] || "audiences", args: parts.slice(1) };
}

function SignIn({ onSession, reason }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(reason || "");
  const submit = async (event) => {
    event.preventDefault();
    const typed = value.trim();
    const problem = tokenProblem(typed);
    if (problem) {
      setError(problem);
      return;
    }
    token.set(typed);
    try {
      onSession(await get("/session"));
    } catch (failed) {
      token.clear();
      setError(describe(failed));
    }
  };
  return html`
    <main class="signin">
      <h1>Audiences console</h1>
      <form onSubmit=${submit}>
        <label for="token">Token (admin, or read for read-only pages)</label>
        <input id="token" name="token" type="password" autocomplete="off" required value=${value}
               onInput=${(e) => setValue(e.target.value)} />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The token stays in this tab (sessionStorage) and is sent only to this server.</p>
      ${error && html`<p class="notice error" role="alert">${error}</p>`}
    </main>`;
}

// "Skip to content" moves the keyboard's focus to the page's content without following its
// `#main`, which the router would read as a page named main.
function skipToContent(event) {
  event.preventDefault();
  document.getElementById("main")?.focus();
}

const PAGES = [
  ["audiences", "Audiences & traits"], ["builder", "Builder"], ["profiles", "Profiles"],
  ["destinations", "Destinations"],
];

function Shell({ session, onSignOut }) {
  const [where, setWhere] = useState(route());
  useEffect(() => {
    const moved = () => setWhere(route());
    addEventListener("hashchange", moved);
    return () => removeEventListener("hashchange", moved);
  }, []);
  const { page, args } = where;
  // Each page names itself in the tab's title, and a move to another page puts the keyboard's
  // focus at the start of its content (as a page load would), not on a link that is gone.
  const first = useRef(true);
  useEffect(() => {
    const label = (PAGES.find(([name]) => name === page) || [page, page])[1];
    document.title = `${label} · Audiences console`;
    if (first.current) { first.current = false; return; }
    document.getElementById("main")?.focus();
  }, [page, args.join("/")]);
  const body = {
    audiences: () => html`<${Audiences} session=${session} />`,
    builder: () => html`<${Builder} session=${session} args=${args} key=${args.join("/")} />`,
    profiles: () => html`<${Profiles} session=${session} args=${args} />`,
    destinations: () => html`<${Destinations} session=${session} />`,
  }[page];
  return html`
    <header class="top">
      <a class="skip" href="#main" onClick=${skipToContent}>Skip to content</a>
      <strong class="brand">Audiences</strong>
      <nav aria-label="Pages">
        ${PAGES.map(([name, label]) => html`
          <a href=${`#/${name === "builder" ? "builder/new" : name}`} aria-current=${page === name ? "page" : undefined}>${label}</a>`)}
      </nav>
      <span class="who">Space <b>${session.space}</b> · <span class="scope">${session.scope}</span> token</span>
      <button type="button" class="link" onClick=${onSignOut}>Sign out</button>
    </header>
    ${!session.can_write && html`
      <p class="banner" role="note">Signed in with a read token: these pages are read-only, and the server refuses any change.</p>`}
    <main id="main" tabindex="-1">${body ? body() : html`<p role="alert">No page ${page}.</p>`}</main>`;
}

function App() {
  const [session, setSession] = useState(null);
  const [checking, setChecking] = useState(Boolean(token.get()));
  const [reason, setReason] = useState("");
  useEffect(() => {
    whenSignedOut((error) => { token.clear(); setSession(null); setReason(describe(error)); });
    if (!token.get()) return;
    get("/session").then(setSession, (error) => setReason(describe(error))).finally(() => setChecking(false));
  }, []);
  const signOut = () => { token.clear(); setSession(null); setReason(""); };
  if (checking) return html`<p>Checking the session…</p>`;
  if (!session) return html`<${SignIn} onSession=${setSession} reason=${reason} />`;
  return html`<${Shell} session=${session} onSignOut=${signOut} />`;
}

const root = document.getElementById("app");
root.textContent = "";  // the static "Loading…" text, which render() would leave in place
render(html`<${App} />`, root);
