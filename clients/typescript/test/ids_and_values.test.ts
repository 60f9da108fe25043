/**
 * What a second outside review found: calls sent without a usable `messageId` (by `enqueue`,
 * `sendBatch` and `streamCalls`) were stored again when resent, and NaN, infinities and Invalid
 * Dates slipped through as `null` (or a bare RangeError). Against a real server.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AudiencesError, Client, status } from "../src/index.js";
import { MessageStatus } from "../src/gen/audiences/v1/ingest.js";
import { type RunningServer, rejection, startServer, thrown } from "./server.js";

let server: RunningServer;
let counter = 0;
const unique = (prefix: string): string => `${prefix}_${process.pid}_${++counter}`;

function connect(options: ConstructorParameters<typeof Client>[0] = {}): Client {
  return new Client({ address: server.address, credentialsFile: server.credentialsFile, flushIntervalMs: 20, ...options });
}

/** The events stored for a user (0 when the server has no such profile). */
async function countEvents(client: Client, user: string): Promise<number> {
  let count = 0;
  try {
    for await (const _ of client.iterEvents(`user_id:${user}`)) count += 1;
  } catch (error) {
    if (error instanceof AudiencesError && error.code === status.NOT_FOUND) return 0;
    throw error;
  }
  return count;
}

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

describe("message ids", () => {
  test("enqueue gives a call whose messageId is missing, undefined, null or empty a generated one", async () => {
    const client = connect();
    const user = unique("enqueue");
    const given = unique("given");
    const ids = [
      client.enqueue({ type: "track", userId: user, event: "E", properties: { i: 0 } }),
      client.enqueue({ type: "track", userId: user, event: "E", messageId: undefined, properties: { i: 1 } }),
      client.enqueue({ type: "track", userId: user, event: "E", messageId: null, properties: { i: 2 } }),
      client.enqueue({ type: "track", userId: user, event: "E", messageId: "", properties: { i: 3 } }),
      client.enqueue({ type: "track", userId: user, event: "E", messageId: given, properties: { i: 4 } }),
    ];
    for (const id of ids.slice(0, 4)) assert.match(id, /^node-[0-9a-f-]{36}$/);
    assert.equal(new Set(ids).size, 5);
    assert.equal(ids[4], given);
    await client.flush();
    assert.equal(client.stats.accepted, 5);
    // The calls were stored under the ids enqueue returned: the same ids again are duplicates.
    const again = await client.sendBatch(ids.map((messageId) => ({ type: "track", userId: user, event: "E", messageId })));
    assert.deepEqual(again.results.map((r) => r.status), Array(5).fill(MessageStatus.MESSAGE_STATUS_DUPLICATE));
    assert.equal(await countEvents(client, user), 5);
    await client.close();
  });

  test("sendBatch gives each call lacking a messageId a new one, the caller's objects left as they are", async () => {
    const client = connect();
    const user = unique("batch");
    const template: Record<string, unknown> = { type: "track", userId: user, event: "E", messageId: null };
    const calls: Array<Record<string, unknown>> = [
      { type: "track", userId: user, event: "E", properties: { i: 0 } },
      { type: "track", userId: user, event: "E", messageId: undefined, properties: { i: 1 } },
      template,
      template, // one object sent twice is two calls
      { type: "identify", userId: user, messageId: "", traits: { plan: "pro" } },
    ];
    const first = await client.sendBatch(calls);
    assert.equal(first.acceptedCount, 5);
    for (const result of first.results) assert.match(result.messageId, /^node-[0-9a-f-]{36}$/);
    assert.equal(new Set(first.results.map((r) => r.messageId)).size, 5);
    assert.equal(template.messageId, null);
    assert.ok(!("messageId" in calls[0]!));
    assert.equal(await countEvents(client, user), 4);
    await client.close();
  });

  test("streamCalls gives each call lacking a messageId a new one, the caller's objects left as they are", async () => {
    const client = connect();
    const user = unique("stream");
    const template: Record<string, unknown> = { type: "track", userId: user, event: "E", messageId: "" };
    function* lazily(): Generator<Record<string, unknown>> {
      for (let i = 0; i < 30; i++) yield i % 2 ? template : { type: "track", userId: user, event: "E", properties: { i } };
    }
    const first = await client.streamCalls(lazily());
    assert.deepEqual([first.acceptedCount, first.duplicateCount], [30, 0]);
    assert.equal(template.messageId, "");
    assert.equal(await countEvents(client, user), 30);
    await client.close();
  });

  test("a frozen call without messageId is still sent, with a generated id", async () => {
    const client = connect();
    const user = unique("frozen");
    const call = Object.freeze({ type: "track", userId: user, event: "E" });
    const reply = await client.sendBatch([call]);
    assert.equal(reply.acceptedCount, 1);
    assert.match(reply.results[0]!.messageId, /^node-/);
    assert.equal((await client.streamCalls([call])).acceptedCount, 1);
    await client.close();
  });
});

describe("values JSON cannot hold", () => {
  test("sendBatch refuses NaN and infinities (VALUE_NOT_JSON), as track() does, instead of storing null", async () => {
    const client = connect();
    const user = unique("nan");
    for (const x of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const error = await rejection(client.sendBatch([{ type: "track", userId: user, event: "E", properties: { nested: { x } } }]));
      assert.deepEqual([error.code, error.reason, error.metadata.field], [status.INVALID_ARGUMENT, "VALUE_NOT_JSON", "batch.0.properties.nested.x"]);
      const context = await rejection(client.sendBatch([{ type: "track", userId: user, event: "E" }], { context: { x } }));
      assert.deepEqual([context.reason, context.metadata.field], ["VALUE_NOT_JSON", "context.x"]);
      const queued = thrown(() => client.track({ userId: user, event: "E", properties: { nested: { x } } }));
      assert.deepEqual([queued.reason, queued.metadata.field], ["VALUE_NOT_JSON", "properties.nested.x"]);
    }
    assert.equal(await countEvents(client, user), 0);
    await client.close();
  });

  test("an Invalid Date anywhere in a call is refused with TIME_INVALID naming the field, never stored as null", async () => {
    const client = connect();
    const user = unique("date");
    const invalid = new Date("not a date");
    const queued: Array<[() => unknown, string]> = [
      [() => client.track({ userId: user, event: "E", timestamp: invalid }), "timestamp"],
      [() => client.track({ userId: user, event: "E", properties: { revenue: 120, deliveredAt: invalid } }), "properties.deliveredAt"],
      [() => client.identify({ userId: user, traits: { seen: [new Date(0), invalid] } }), "traits.seen.1"],
      [() => client.page({ userId: user, name: "Home", context: { at: invalid } }), "context.at"],
      [() => client.enqueue({ type: "track", userId: user, event: "E", timestamp: invalid }), "timestamp"],
    ];
    for (const [call, field] of queued) {
      const error = thrown(call);
      assert.deepEqual([error.code, error.reason, error.metadata.field], [status.INVALID_ARGUMENT, "TIME_INVALID", field], error.message);
    }
    assert.equal(client.stats.queued, 0);
    const batch = await rejection(client.sendBatch([{ type: "track", userId: user, event: "E", properties: { when: invalid } }]));
    assert.deepEqual([batch.code, batch.reason, batch.metadata.field], [status.INVALID_ARGUMENT, "TIME_INVALID", "batch.0.properties.when"]);
    const stream = await rejection(client.streamCalls([{ type: "track", userId: user, event: "E", timestamp: invalid }]));
    assert.deepEqual([stream.reason, stream.metadata.field], ["TIME_INVALID", "timestamp"]);
    assert.equal(await countEvents(client, user), 0);
    // A valid Date is still sent as its ISO text.
    client.track({ userId: user, event: "E", timestamp: new Date("2027-01-15T07:00:00Z"), properties: { at: new Date("2027-01-15T07:00:00Z") } });
    await client.flush();
    const events = (await client.listEvents(`user_id:${user}`)).events;
    assert.equal(events.length, 1);
    assert.equal(JSON.parse(events[0]!.propertiesJson).at, "2027-01-15T07:00:00.000Z");
    await client.close();
  });
});
