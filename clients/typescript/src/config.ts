/**
 * Where the client finds the server's address and its tokens, so a newcomer passes nothing.
 *
 * Precedence, for the address and for each scope's token: what the caller passes, then the
 * environment, then the credentials file the server writes on its first start (the same rules
 * as the Python client's `audiences.config`).
 *
 * | what | environment | default |
 * | --- | --- | --- |
 * | address | `AUDIENCES_ADDRESS` | `127.0.0.1:50051` |
 * | one token for every scope | `AUDIENCES_TOKEN` | |
 * | a scope's token | `AUDIENCES_WRITE_TOKEN`, `AUDIENCES_READ_TOKEN`, `AUDIENCES_ADMIN_TOKEN`, `AUDIENCES_OPERATOR_TOKEN` | |
 * | credentials file | `AUDIENCES_CREDENTIALS_FILE` | beside `AUDIENCES_DB`, else `var/credentials.json` |
 */

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { invalidArgument } from "./errors.js";

export const DEFAULT_ADDRESS = "127.0.0.1:50051";
export const SCOPES = ["write", "read", "admin", "operator"] as const;
export type Scope = (typeof SCOPES)[number];
export type Tokens = Partial<Record<Scope, string>>;
type Environment = Record<string, string | undefined>;

/** What the caller may pass; every field is optional. */
export interface ConnectionOptions {
  /** `host:port`; default `AUDIENCES_ADDRESS`, else `127.0.0.1:50051`. */
  address?: string;
  /** One token for every scope, or one per scope. */
  token?: string | Tokens;
  /** The `write` token (tracking calls); wins over `token`. */
  writeToken?: string;
  /** The `read` token (profile reads); wins over `token`. */
  readToken?: string;
  /** The `admin` token (audiences, traits, destinations); wins over `token`. */
  adminToken?: string;
  /** The `operator` token (spaces, tokens, profile deletions, suppressions); wins over `token`. */
  operatorToken?: string;
  /** The server's `credentials.json`; read only for scopes still missing. */
  credentialsFile?: string;
}

/** The address and tokens a client will use. */
export interface Resolved {
  address: string;
  tokens: Tokens;
  /**
   * Why the credentials file gave no tokens, when it was named (option or environment) or is
   * the default file and is there; "" otherwise (an absent default file is no problem).
   */
  credentialsProblem: string;
}

/** The credentials file to read: the one given, else the environment's, else the default. */
export function credentialsPath(explicit?: string, env: Environment = process.env): string {
  if (explicit) {
    return explicit;
  }
  if (env.AUDIENCES_CREDENTIALS_FILE) {
    return env.AUDIENCES_CREDENTIALS_FILE;
  }
  if (env.AUDIENCES_DB) {
    return join(dirname(env.AUDIENCES_DB), "credentials.json");
  }
  return join("var", "credentials.json");
}

/** The file's tokens, and why there are none when it cannot be read or is not one. */
function fileTokens(path: string): { tokens: Tokens; problem: string; absent: boolean } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = (error as Error).message;
    return { tokens: {}, problem: `cannot read the credentials file ${path}: ${why}`, absent: code === "ENOENT" || code === "EISDIR" };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { tokens: {}, problem: `the credentials file ${path} is not JSON: ${(error as Error).message}`, absent: false };
  }
  const tokens = (data as { tokens?: unknown } | null)?.tokens;
  if (typeof tokens !== "object" || tokens === null || Array.isArray(tokens)) {
    return {
      tokens: {},
      problem: `the credentials file ${path} holds no "tokens" object, so it is not one the server wrote`,
      absent: false,
    };
  }
  const found = Object.fromEntries(Object.entries(tokens).filter(([, v]) => typeof v === "string")) as Tokens;
  return { tokens: found, problem: "", absent: false };
}

/** Works out the address and a token per scope. */
export function resolve(options: ConnectionOptions = {}, env: Environment = process.env): Resolved {
  const explicit: Tokens = {
    write: options.writeToken,
    read: options.readToken,
    admin: options.adminToken,
    operator: options.operatorToken,
  };
  const tokens: Tokens = {};
  for (const scope of SCOPES) {
    const shared = typeof options.token === "string" ? options.token : options.token?.[scope];
    const found = [explicit[scope], shared, env[`AUDIENCES_${scope.toUpperCase()}_TOKEN`], env.AUDIENCES_TOKEN].find(
      (candidate) => candidate,
    );
    if (found) {
      tokens[scope] = found;
    }
  }
  // The file is read only for the scopes still missing, as the Python client does.
  let credentialsProblem = "";
  if (SCOPES.some((scope) => !tokens[scope])) {
    const named = Boolean(options.credentialsFile || env.AUDIENCES_CREDENTIALS_FILE);
    const fromFile = fileTokens(credentialsPath(options.credentialsFile, env));
    for (const scope of SCOPES) {
      if (!tokens[scope] && fromFile.tokens[scope]) {
        tokens[scope] = fromFile.tokens[scope];
      }
    }
    // The default file may be absent, on a machine that only calls the server.
    credentialsProblem = named || !fromFile.absent ? fromFile.problem : "";
  }
  return { address: checkAddress(options.address || env.AUDIENCES_ADDRESS || DEFAULT_ADDRESS), tokens, credentialsProblem };
}

// `host:port`, `[v6]:port`, or either after `dns:///`, `ipv4:` or `ipv6:` (gRPC's name forms).
const PORT = /^(?:dns:(?:\/\/[^/]*)?\/|ipv4:|ipv6:)?(?:\[[^\]]*\]|[^:[\]/]*):(\d+)$/;

/** The address, refused when its port is not 1 to 65535 (every call would time out). */
export function checkAddress(address: string): string {
  const found = PORT.exec(address.trim());
  if (found && !(Number(found[1]) >= 1 && Number(found[1]) <= 65535)) {
    throw invalidArgument(`'${address}' has port ${Number(found[1])}; ports are 1 to 65535`, "ADDRESS_INVALID",
      { address, port: found[1] });
  }
  return address;
}
