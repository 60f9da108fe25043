// The console's one way to the server: its JSON API, with the session's token as a Bearer.
// The token lives in sessionStorage only (this tab, until it closes); no cookie is ever set,
// so another site cannot make the browser send it (no CSRF surface).

const KEY = "audiences.console.token";

export const token = {
  get: () => sessionStorage.getItem(KEY) || "",
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

// Why a token as typed cannot be one, or "" when it may be: a token is visible ASCII (no space),
// which an `Authorization` header carries as it is. One holding anything else (an invisible
// character copied with it, a line break) is said so here, without a request: fetch would refuse
// the header itself, which says nothing of the token.
export function tokenProblem(value) {
  let position = 0;
  for (const character of value) {
    position += 1;
    if (character < "!" || character > "~") {
      const code = character.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      const what = character === " " ? "a space" : `U+${code}`;
      return `This is not a valid token: character ${position} is ${what}, which no token holds `
        + "(a token is letters, digits and ASCII punctuation). Copy the token again.";
    }
  }
  return "";
}

// An answer the server refused: its status and its JSON error (code, reason, message, and for a
// definition error where it is and the "did you mean" hint).
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.error = error;
  }

  // One sentence for the page: what the server said, and a word on what to do.
  describe() {
    const { reason = "", message = this.message } = this.error;
    if (this.status === 403) return `Refused by the server (403 ${reason}): ${message}`;
    if (this.status === 401) return `Not signed in (401 ${reason}): ${message}`;
    return `${message} (${reason ? `${this.status} ${reason}` : this.status})`;
  }
}

let onSignedOut = () => {};
export function whenSignedOut(callback) { onSignedOut = callback; }

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/console/api${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit",
      cache: "no-store",
    });
  } catch (failed) {
    throw new ApiError(0, { reason: "UNREACHABLE", message: `the server could not be reached: ${failed.message}` });
  }
  const text = await response.text();
  let parsed = {};
  try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = { error: { message: text } }; }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed.error || {});
    if (response.status === 401) onSignedOut(error);
    throw error;
  }
  return parsed;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const patch = (path, body) => call("PATCH", path, body);
export const del = (path) => call("DELETE", path);

export const q = (params) => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== "" && value != null) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : "";
};
