import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api.js";

export { html };

// A value as the pages show it: JSON, so a string is quoted and a number is what was computed.
export const shown = (value) => (value === undefined ? "" : JSON.stringify(value));

export function time(iso) {
  if (!iso) return "—";
  return iso.replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function duration(ms) {
  if (ms == null) return "—";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export const describe = (error) => (error instanceof ApiError ? error.describe() : String(error));

// A message for the page: role=alert for failures (read out at once), role=status otherwise.
export function Notice({ notice }) {
  if (!notice) return null;
  const failed = notice.kind === "error";
  return html`<p class=${`notice ${failed ? "error" : "ok"}`} role=${failed ? "alert" : "status"}>${notice.text}</p>`;
}

// Reads `load()` now, again whenever `deps` change, and every `every` ms while `every` is set.
// What was read belongs to the `deps` it was read for: once they change (another profile,
// definition or filter) it is no longer shown, and a failed read shows the refusal alone. A
// failed read for the same deps (a poll while the server is away) keeps what was read before.
export function useLoad(load, deps, every = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: true, deps: null });
  const latest = useRef(0);
  const current = JSON.stringify(deps);
  const reload = async () => {
    const mine = ++latest.current;
    try {
      const data = await load();
      if (mine === latest.current) setState({ data, error: null, loading: false, deps: current });
    } catch (error) {
      if (mine === latest.current) {
        setState((s) => ({ data: s.deps === current ? s.data : null, error, loading: false, deps: current }));
      }
    }
  };
  useEffect(() => { setState((s) => ({ ...s, loading: true })); reload(); }, deps);
  useEffect(() => {
    if (!every) return undefined;
    // A tab in the background reads nothing; it catches up when shown again.
    const timer = setInterval(() => { if (!document.hidden) reload(); }, every);
    return () => clearInterval(timer);
  }, [...deps, every]);
  const mine = state.deps === current;
  return { data: mine ? state.data : null, error: mine ? state.error : null, loading: !mine || state.loading, reload };
}

// Runs `action()` once `delay` ms have passed without a new call (validation as you type).
export function useDebounced(action, deps, delay) {
  useEffect(() => {
    const timer = setTimeout(action, delay);
    return () => clearTimeout(timer);
  }, deps);
}

export function Failure({ error }) {
  if (!error) return null;
  return html`<p class="notice error" role="alert">${describe(error)}</p>`;
}
