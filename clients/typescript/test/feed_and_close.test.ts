/**
 * The change feed's exact values, `close()` ending open streams and refusing later calls,
 * timeouts the caller chose, option words, PostgreSQL destinations, `diffDefinition` and
 * `rollbackDefinition`, and arguments grpc-js cannot serialize. Against a real server, or one
 * that takes connections and never answers.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { AudiencesError, Client, status } from "../src/index.js";
import { type RunningServer, rejection, startServer } from "./server.js";

let server: RunningServer;
let counter = 0;
const unique = (prefix: string): string => `${prefix}_${process.pid}_${++counter}`;
const AT = "2027-01-15T07:00:00Z";
const BIG = 2n ** 53n + 1n; // the first integer a double does not hold

function connect(options: ConstructorParameters<typeof Client>[0] = {}): Client {
  return new Client({ address: server.address, credentialsFile: server.credentialsFile, flushIntervalMs: 20, ...options });
}

/** A TCP server that accepts connections and never answers (like a server stopped with SIGSTOP). */
async function silent(): Promise<{ address: string; close(): void }> {
  const sockets: Socket[] = [];
  const listener: Server = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const port = (listener.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      listener.close();
    },
  };
}

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

describe("the change feed", () => {
  test("listChanges and watchChanges read values from their JSON text: 2^53 + 1 exact, 120 an integer", async () => {
    const client = connect();
    const [big, small, event, key, dest] = [unique("big"), unique("small"), unique("Paid"), unique("revenue"), unique("feed")];
    await client.sendBatch([
      { type: "track", userId: big, event, properties: { revenue: BIG }, timestamp: AT },
      { type: "track", userId: small, event, properties: { revenue: 120 }, timestamp: AT },
    ]);
    await client.createComputedTrait(key, `event('${event}').sum(property('revenue'))`);
    await client.createDestination(dest, { grpcFeed: {} });
    await client.connectDestination(dest, key, { kind: "computed_trait" });
    await client.waitUntilLive({ timeoutMs: 60_000 });
    const user = (ids: Array<{ type: string; value: string }>): string => ids.find((id) => id.type === "user_id")!.value;
    const page = await client.listChanges(dest);
    const values = Object.fromEntries(page.changes.map((change) => [user(change.externalIds), change.newValue]));
    assert.deepEqual(values, { [big]: BIG, [small]: 120 });
    assert.ok(page.changes.every((change) => change.oldValue === undefined));
    for await (const item of client.watchChanges(dest)) {
      if (!item.change) continue;
      assert.equal(item.change.newValue, user(item.change.externalIds) === big ? BIG : 120);
      break;
    }
    await client.close();
  });
});

describe("close()", () => {
  test("ends an open watchChanges stream at once, with CANCELLED CLIENT_CLOSED", async () => {
    const client = connect();
    const dest = unique("closing");
    await client.createDestination(dest, { grpcFeed: {} });
    let beat!: () => void;
    const beating = new Promise<void>((resolve) => (beat = resolve));
    const watching = (async (): Promise<unknown> => {
      try {
        for await (const item of client.watchChanges(dest, { heartbeatIntervalMs: 1000 })) {
          if (item.heartbeat) beat();
        }
        return "ended without an error";
      } catch (error) {
        return error;
      }
    })();
    await beating;
    const closing = Date.now();
    await client.close();
    const ended = await watching;
    assert.ok(Date.now() - closing < 2_000);
    assert.ok(ended instanceof AudiencesError, String(ended));
    assert.deepEqual([ended.code, ended.reason], [status.CANCELLED, "CLIENT_CLOSED"]);
  });

  test("lets a process with an open watchChanges stream exit", async () => {
    const dest = unique("exiting");
    const setup = connect();
    await setup.createDestination(dest, { grpcFeed: {} });
    await setup.close();
    const index = new URL("../src/index.js", import.meta.url).href;
    const script = `import { Client } from ${JSON.stringify(index)};
const client = new Client();
const watching = (async () => { try { for await (const item of client.watchChanges(${JSON.stringify(dest)})) {} } catch (error) { console.log(error.reason); } })();
await new Promise((resolve) => setTimeout(resolve, 500));
await client.close();
await watching;`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, AUDIENCES_ADDRESS: server.address, AUDIENCES_CREDENTIALS_FILE: server.credentialsFile },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => void (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const timer = setTimeout(() => child.kill(), 15_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, "the process did not exit by itself (killed after 15 s)");
    assert.equal(out.trim(), "CLIENT_CLOSED");
  });

  test("a call after close() rejects with FAILED_PRECONDITION CLIENT_CLOSED", async () => {
    const client = connect();
    await client.close();
    const calls: Array<Promise<unknown>> = [
      client.getEvaluatorStatus(),
      client.listAudiences(),
      client.streamCalls([{ type: "track", userId: "u", event: "E" }]),
      client.watchChanges("feed").next(),
    ];
    for (const call of calls) {
      const error = await rejection(call);
      assert.deepEqual([error.code, error.reason], [status.FAILED_PRECONDITION, "CLIENT_CLOSED"]);
    }
  });
});

describe("close() and options", () => {
  test("a tracking call made while close() drains the queue throws CLIENT_CLOSED; what was queued is sent", async () => {
    const client = connect({ flushIntervalMs: 10_000 });
    const user = unique("closing");
    client.track({ userId: user, event: "Queued", timestamp: AT });
    const closing = client.close();
    const late = (() => {
      try {
        client.track({ userId: user, event: "Late", timestamp: AT });
        return "accepted";
      } catch (error) {
        return (error as AudiencesError).reason;
      }
    })();
    await Promise.all([closing, client.close()]); // a second close() waits for the same drain
    assert.equal(late, "CLIENT_CLOSED");
    assert.deepEqual([client.stats.accepted, client.stats.failed, client.stats.dropped], [1, 0, 0]);
  });

  test("options that would drop every call or fail it at once are INVALID_ARGUMENT", () => {
    const reason = (options: ConstructorParameters<typeof Client>[0]): string => {
      try {
        new Client({ address: server.address, credentialsFile: server.credentialsFile, ...options });
        return "accepted";
      } catch (error) {
        return (error as AudiencesError).reason;
      }
    };
    for (const maxQueueSize of [0, -1, Number.NaN, 1.5]) {
      assert.equal(reason({ maxQueueSize }), "QUEUE_OPTION_INVALID", String(maxQueueSize));
    }
    for (const timeoutMs of [0, -5, Number.NaN]) {
      assert.equal(reason({ timeoutMs }), "TIMEOUT_INVALID", String(timeoutMs));
    }
    for (const address of ["127.0.0.1:0", "127.0.0.1:99999", "dns:///localhost:70000"]) {
      assert.equal(reason({ address }), "ADDRESS_INVALID", address);
    }
  });
});

describe("timeouts", () => {
  test("runTick and exportAudience keep to a timeoutMs the caller chose", async () => {
    const quiet = await silent();
    const client = new Client({ address: quiet.address, token: "aud_admin_x", timeoutMs: 1_000 });
    try {
      const calls = [
        () => client.runTick({ untilIdle: true }),
        async () => {
          for await (const _ of client.exportAudience("k")) break;
        },
      ];
      for (const call of calls) {
        const began = Date.now();
        const error = await rejection(call());
        assert.equal(error.code, status.DEADLINE_EXCEEDED);
        assert.ok(Date.now() - began < 8_000, `${Date.now() - began} ms`);
      }
    } finally {
      await client.close();
      quiet.close();
    }
  });
});

describe("option words", () => {
  test("getSizeHistory reads hourly points by default, as the Python client; unknown words are refused", async () => {
    const client = connect();
    const [user, key] = [unique("sized"), unique("sized")];
    await client.sendBatch([{ type: "identify", userId: user, traits: { tag: key }, timestamp: AT }]);
    await client.createAudience(key, `trait('tag') = '${key}'`);
    await client.waitUntilLive({ timeoutMs: 60_000 });
    const times = (reply: { points: Array<{ startTime?: Date }> }): string[] => reply.points.map((p) => p.startTime!.toISOString());
    assert.deepEqual(times(await client.getSizeHistory(key)), times(await client.getSizeHistory(key, { interval: "hourly" })));
    assert.notDeepEqual(times(await client.getSizeHistory(key)), times(await client.getSizeHistory(key, { interval: "daily" })));
    const interval = await rejection(client.getSizeHistory(key, { interval: "weekly" as "daily" }));
    assert.deepEqual([interval.code, interval.reason, interval.metadata.value], [status.INVALID_ARGUMENT, "INTERVAL_INVALID", "weekly"]);
    const sort = await rejection(client.listEvents(`user_id:${user}`, { sort: "ascending" as "asc" }));
    assert.deepEqual([sort.code, sort.reason], [status.INVALID_ARGUMENT, "SORT_INVALID"]);
    await client.close();
  });
});

describe("what the Python client has", () => {
  test("createDestination makes a postgres destination", async () => {
    const client = connect();
    const key = unique("pg");
    const created = await client.createDestination(key, { postgres: { dsn: "postgresql://u@127.0.0.1:1/db", includeTraits: ["email"] } });
    assert.equal(created.key, key);
    assert.deepEqual(created.postgres?.includeTraits, ["email"]);
    const two = await rejection(client.createDestination(unique("pg"), { postgres: { dsn: "postgresql://u@127.0.0.1:1/db" }, csv: { directory: "/tmp" } }));
    assert.match(two.message, /webhook, segment, grpcFeed, csv, postgres/);
    await client.close();
  });

  test("diffDefinition, rollbackDefinition and the iter* of history, versions and audit", async () => {
    const client = connect();
    const [pro, free, key] = [unique("pro"), unique("free"), unique("plans")];
    await client.sendBatch([
      { type: "identify", userId: pro, traits: { plan: "pro", group: key }, timestamp: AT },
      { type: "identify", userId: free, traits: { plan: "free", group: key }, timestamp: AT },
    ]);
    const first = `trait('plan') = 'pro' AND trait('group') = '${key}'`;
    const second = `trait('plan') = 'free' AND trait('group') = '${key}'`;
    await client.createAudience(key, first);
    await client.waitUntilLive({ timeoutMs: 60_000 });
    const diff = await client.diffDefinition(key, second, { sampleSize: 5 });
    assert.deepEqual([diff.compareKey, diff.enteringCount, diff.exitingCount, diff.stayingCount], [key, 1, 1, 0]);
    const edited = await client.diffDefinition(key, first, { includeAnonymousUsers: true });
    assert.deepEqual([edited.enteringCount, edited.exitingCount, edited.stayingCount], [0, 0, 1]);
    await client.updateAudience(key, { definition: second });
    await client.waitUntilLive({ timeoutMs: 60_000 });
    const rolled = await client.rollbackDefinition(key, 1);
    assert.equal(rolled.definition, first);
    assert.equal((await client.getDefinitionVersion(key, 0)).version, 3);
    await client.rollbackDefinition(key, 1); // the current text and options already: nothing changes
    assert.equal((await client.getDefinitionVersion(key, 0)).version, 3);
    for (const version of [0, -1, 1.5, 2 ** 31]) {
      const error = await rejection(client.rollbackDefinition(key, version));
      assert.deepEqual([error.code, error.reason], [status.INVALID_ARGUMENT, "VERSION_INVALID"]);
    }
    const versions = [];
    for await (const version of client.iterDefinitionVersions(key)) versions.push(version.version);
    assert.deepEqual(versions, [3, 2, 1]);
    const audited = [];
    for await (const entry of client.iterAuditEntries({ target: key })) audited.push(entry.action);
    assert.deepEqual(audited, ["update", "update", "create"]);
    await client.waitUntilLive({ timeoutMs: 60_000 });
    const history = [];
    for await (const change of client.iterMembershipHistory({ key })) history.push(change.profile?.profileId);
    assert.ok(history.length >= 3, JSON.stringify(history));
    await client.close();
  });
});

describe("arguments grpc-js cannot serialize", () => {
  test("are refused with INVALID_ARGUMENT and a reason, not INTERNAL", async () => {
    const client = connect();
    const cases: Array<[Promise<unknown>, string]> = [
      [client.createToken("write", { ttlMs: Number.NaN }), "DURATION_INVALID"],
      [client.createToken("write", { ttlMs: Number.POSITIVE_INFINITY }), "DURATION_INVALID"],
      [client.setEventRetention("", Number.NaN), "DURATION_INVALID"],
      [client.createSpace(unique("space"), { eventRetentionMs: 1e30 }), "DURATION_INVALID"],
      [client.setClock({ advanceMs: Number.NaN }), "DURATION_INVALID"],
      [client.listEvents("user_id:u", { startTime: new Date(Number.NaN) }), "TIME_INVALID"],
      [client.createToken("write", { expireTime: new Date("not a time") }), "TIME_INVALID"],
      [client.listAudiences({ pageSize: 1.5 }), "PAGE_SIZE_INVALID"],
      [client.listAudiences({ pageSize: Number.NaN }), "PAGE_SIZE_INVALID"],
      [client.getDefinitionVersion("k", 1.5), "REQUEST_NOT_ENCODABLE"],
    ];
    for (const [call, reason] of cases) {
      const error = await rejection(call);
      assert.deepEqual([error.codeName, error.reason], ["INVALID_ARGUMENT", reason], error.message);
    }
    // A property that happens to be called pageSize is no page size.
    const sent = await client.send({ track: { userId: unique("u"), event: "E", messageId: unique("m"), properties: { pageSize: 1.5 } } });
    assert.ok(sent.messageId);
    await client.close();
  });
});
