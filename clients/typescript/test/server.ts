/**
 * The real Audiences server for the tests: `audiences-server serve` from the repository's
 * virtualenv (or `AUDIENCES_SERVER`), in a child process, on free ports, over a fresh database.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { AudiencesError } from "../src/index.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const SERVER = process.env.AUDIENCES_SERVER ?? join(REPO, ".venv", "bin", "audiences-server");

export interface RunningServer {
  address: string;
  httpAddress: string;
  credentialsFile: string;
  tokens: { write: string; read: string; admin: string; operator: string };
  stop(): Promise<void>;
}

/** Starts a manual-clock server (its clock at 2027-01-15T08:00:00Z) and waits for its `server_started` line. */
export async function startServer(): Promise<RunningServer> {
  const folder = mkdtempSync(join(tmpdir(), "audiences-ts-"));
  const db = join(folder, "audiences.db");
  const child = spawn(
    SERVER,
    ["serve", "--db", db, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--log-format", "json",
      "--manual-clock", "--clock-start", "2027-01-15T08:00:00Z"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const started = await waitForStart(child);
  const credentialsFile = join(folder, "credentials.json");
  return {
    address: started.address,
    httpAddress: started.http_address,
    credentialsFile,
    tokens: JSON.parse(readFileSync(credentialsFile, "utf8")).tokens,
    stop: () => stop(child, folder),
  };
}

function waitForStart(child: ChildProcess): Promise<{ address: string; http_address: string }> {
  return new Promise((resolvePromise, reject) => {
    const lines: string[] = [];
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${lines.join("\n")}`)), 30_000);
    child.once("exit", (code) => reject(new Error(`the server exited with ${code}:\n${lines.join("\n")}`)));
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (lines.length < 200) lines.push(line); // keep reading (a full pipe would stall the server), keep only the start
      try {
        const entry = JSON.parse(line);
        if (entry.event === "server_started") {
          clearTimeout(timer);
          resolvePromise(entry);
        }
      } catch {
        // not a JSON log line
      }
    });
  });
}

async function stop(child: ChildProcess, folder: string): Promise<void> {
  if (child.exitCode === null) {
    const exited = new Promise((resolvePromise) => child.once("exit", resolvePromise));
    child.kill("SIGTERM");
    await exited;
  }
  rmSync(folder, { recursive: true, force: true });
}

/** The AudiencesError a call fails with; fails the test if it succeeds or fails otherwise. */
export async function rejection(promise: Promise<unknown>): Promise<AudiencesError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof AudiencesError, `not an AudiencesError: ${String(error)}`);
    return error;
  }
  assert.fail("the call did not fail");
}

/** The AudiencesError a call throws at once; fails the test if it returns or throws otherwise. */
export function thrown(run: () => unknown): AudiencesError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof AudiencesError, `not an AudiencesError: ${String(error)}`);
    return error;
  }
  assert.fail("nothing was thrown");
}
