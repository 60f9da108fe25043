/**
 * What an outside review found: `streamCalls` refused by the server, the `beforeExit` safety net,
 * exact trait values, values JSON cannot hold, argument mistakes as AudiencesError, `sentAt` at
 * each retry and the retry budget. Against a real server where the server matters.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AudiencesError, Batcher, Client, parseJson, retryBudgetMs, status, toJson } from "../src/index.js";
import { BatchJsonResponse } from "../src/gen/audiences/v1/ingest.js";
import { type RunningServer, rejection, startServer, thrown } from "./server.js";

let server: RunningServer;
let counter = 0;
const unique = (prefix: string): string => `${prefix}_${process.pid}_${++counter}`;

function connect(options: ConstructorParameters<typeof Client>[0] = {}): Client {
  return new Client({ address: server.address, credentialsFile: server.credentialsFile, flushIntervalMs: 20, ...options });
}

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

describe("review", () => {
  test("streamCalls refused by the server (unknown token) rejects its promise; the process goes on", async () => {
    const client = connect({ writeToken: "aud_write_nope" });
    function* calls(): Generator<Record<string, unknown>> {
      for (let i = 0; i < 20_000; i += 1) {
        yield { type: "track", userId: "stream", event: "S", messageId: `s-${i}`, properties: { pad: "x".repeat(500) } };
      }
    }
    const unhandled: unknown[] = [];
    const note = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", note);
    try {
      const error = await rejection(client.streamCalls(calls()));
      assert.equal(error.reason, "TOKEN_UNKNOWN");
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(unhandled, []);
    } finally {
      process.removeListener("unhandledRejection", note);
      await client.close();
    }
  });

  test("streamCalls with a call that cannot be encoded rejects with that AudiencesError", async () => {
    const client = connect();
    const error = await rejection(client.streamCalls([{ type: "track", userId: "u", event: "E", properties: { x: Number.NaN } }]));
    assert.equal(error.reason, "VALUE_NOT_JSON");
    await client.close();
  });

  test("beforeExit is listened to once, however often the queue fills, and not after close()", async () => {
    const before = process.listenerCount("beforeExit");
    const client = connect();
    for (let i = 0; i < 15; i += 1) {
      client.track({ userId: unique("exit"), event: "Tick" });
      const deadline = Date.now() + 5_000;
      while (client.stats.accepted < i + 1 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(process.listenerCount("beforeExit") <= before + 1, `${process.listenerCount("beforeExit") - before} listeners`);
    }
    assert.equal(client.stats.accepted, 15);
    await client.close();
    assert.equal(process.listenerCount("beforeExit"), before);
  });

  test("getTraits keeps integers beyond 2^53 exact (BigInt), sent as BigInt too", async () => {
    const client = connect();
    const user = unique("big");
    const huge = 10n ** 400n;
    client.identify({ userId: user, traits: { big: 2n ** 64n + 1n, huge, negative: -(2n ** 70n), small: 120, half: 2.5, list: [1, 2n ** 60n] } });
    await client.flush();
    assert.equal(client.stats.accepted, 1);
    const traits = await client.getTraits(`user_id:${user}`);
    assert.equal(traits.big, 18446744073709551617n);
    assert.equal(traits.huge, huge);
    assert.equal(traits.negative, -(2n ** 70n));
    assert.equal(traits.small, 120);
    assert.equal(traits.half, 2.5);
    assert.deepEqual(traits.list, [1, 2n ** 60n]);
    await client.close();
  });

  test("parseJson: JSON.parse's answers, except integers beyond 2^53 as BigInt", () => {
    for (const text of ['{"a":[1,2.5,-3e2,"x\\"y",true,false,null,{}],"b":{"c":[]}}', '"é\\u00e9"', " [ 1 , 2 ] ", "4.0"]) {
      assert.deepEqual(parseJson(text), JSON.parse(text));
    }
    assert.equal(parseJson("9007199254740993"), 9007199254740993n);
    assert.equal(parseJson("1e400"), "1e400");
    assert.throws(() => parseJson("[1,]"), SyntaxError);
    assert.equal(toJson({ a: 2n ** 64n, s: "\u0000x" }), '{"a":18446744073709551616,"s":"\\u0000x"}');
  });

  test("NaN and infinities in a call are refused at the call (VALUE_NOT_JSON), not stored as null", () => {
    const client = connect();
    for (const x of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const error = thrown(() => client.track({ userId: "u", event: "E", properties: { nested: { x } } }));
      assert.deepEqual([error.code, error.reason], [status.INVALID_ARGUMENT, "VALUE_NOT_JSON"]);
    }
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assert.equal(thrown(() => client.track({ userId: "u", event: "E", properties: cycle })).reason, "VALUE_NOT_JSON");
    assert.equal(client.stats.queued, 0);
    void client.close();
  });

  test("argument mistakes are AudiencesError INVALID_ARGUMENT, not RangeError or a bare Node error", async () => {
    const client = connect();
    const collection = await rejection(client.getAudience("x", { collection: "usr" as "users" }));
    assert.deepEqual([collection.code, collection.reason], [status.INVALID_ARGUMENT, "COLLECTION_INVALID"]);
    const selection = await rejection(client.connectDestination("d", "k", { identifierSelection: "first" as "all" }));
    assert.equal(selection.reason, "IDENTIFIER_SELECTION_INVALID");
    const tls = thrown(() => new Client({ address: server.address, tlsCaFile: "/nonexistent/ca.pem" }));
    assert.deepEqual([tls.reason, tls.metadata.option], ["TLS_FILE_UNREADABLE", "tlsCaFile"]);
    assert.equal(thrown(() => new Client({ address: server.address, tlsCertFile: "/x.pem" })).reason, "TLS_FILE_UNREADABLE");
    assert.equal(thrown(() => new Client({ onOverflow: "wait" as "throw" })).reason, "QUEUE_OPTION_INVALID");
    const malformed = new Client({ address: server.address, token: "aud_admin_x\n" });
    const token = await rejection(malformed.getAudience("x"));
    assert.deepEqual([token.code, token.reason, token.metadata.position], [status.INVALID_ARGUMENT, "TOKEN_MALFORMED", "11"]);
    assert.ok(!token.message.includes("aud_admin_x"));
    await malformed.close();
    await client.close();
  });
});

describe("retries", () => {
  test("a retried batch carries the sentAt of each attempt, not the first one's", async () => {
    const sentAt: number[] = [];
    const flaky = (body: Buffer): Promise<BatchJsonResponse> => {
      sentAt.push(Date.parse(JSON.parse(body.toString()).sentAt));
      return sentAt.length <= 2
        ? Promise.reject(new AudiencesError(status.UNAVAILABLE, "down"))
        : Promise.resolve(BatchJsonResponse.fromPartial({ acceptedCount: 1 }));
    };
    const batcher = new Batcher(flaky, { backoffMs: 200, maxBackoffMs: 200, flushIntervalMs: 0 });
    batcher.put({ type: "track", userId: "u", event: "E" });
    await batcher.flush();
    assert.equal(batcher.stats.accepted, 1);
    assert.equal(sentAt.length, 3);
    assert.ok(sentAt[1]! - sentAt[0]! >= 90 && sentAt[2]! - sentAt[1]! >= 90, JSON.stringify(sentAt));
  });

  test("retryBudgetMs says how much downtime the queue rides out: about 5.6 to 11.2 s by default", () => {
    assert.deepEqual(retryBudgetMs(), [5_600, 11_200]);
    assert.deepEqual(retryBudgetMs(2, 100, 150), [125, 250]);
  });
});
