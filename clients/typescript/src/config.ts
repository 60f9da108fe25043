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

function fileTokens(path: string): Tokens {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return {};
  }
  const tokens = (data as { tokens?: unknown } | null)?.tokens;
  if (typeof tokens !== "object" || tokens === null) {
    return {};
  }
  return Object.fromEntries(Object.entries(tokens).filter(([, v]) => typeof v === "string")) as Tokens;
}

/** Works out the address and a token per scope. */
export function resolve(options: ConnectionOptions = {}, env: Environment = process.env): Resolved {
  const fromFile = fileTokens(credentialsPath(options.credentialsFile, env));
  const explicit: Tokens = {
    write: options.writeToken,
    read: options.readToken,
    admin: options.adminToken,
    operator: options.operatorToken,
  };
  const tokens: Tokens = {};
  for (const scope of SCOPES) {
    const shared = typeof options.token === "string" ? options.token : options.token?.[scope];
    const found = [
      explicit[scope],
      shared,
      env[`AUDIENCES_${scope.toUpperCase()}_TOKEN`],
      env.AUDIENCES_TOKEN,
      fromFile[scope],
    ].find((candidate) => candidate);
    if (found) {
      tokens[scope] = found;
    }
  }
  return { address: options.address || env.AUDIENCES_ADDRESS || DEFAULT_ADDRESS, tokens };
}
