/** The send queue on its own, with a sender the test controls: overflow, retries, batching. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { AudiencesError, Batcher, QueueFull, type Undelivered, status } from "../src/index.js";
import { BatchJsonResponse } from "../src/gen/audiences/v1/ingest.js";

function ok(body: Buffer): Promise<BatchJsonResponse> {
  const count = JSON.parse(body.toString()).batch.length;
  return Promise.resolve(BatchJsonResponse.fromPartial({ acceptedCount: count }));
}

/** A sender held at a gate until the test opens it. */
function gated(): { open: () => void; send: (body: Buffer) => Promise<BatchJsonResponse> } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return { open, send: async (body) => { await gate; return ok(body); } };
}

test("drop_newest: a call beyond maxQueueSize is dropped, counted and reported; the rest are sent", async () => {
  const { open, send } = gated();
  const seen: Undelivered[] = [];
  const batcher = new Batcher(send, { batchSize: 1, maxQueueSize: 2, flushIntervalMs: 0, onError: (u) => seen.push(u) });
  batcher.put({ n: 0 });
  await new Promise((resolve) => setTimeout(resolve, 20)); // taken by the sender, held at the gate
  assert.equal(batcher.put({ n: 1 }), true);
  assert.equal(batcher.put({ n: 2 }), true);
  assert.equal(batcher.put({ n: 3 }), false);
  assert.deepEqual(seen.map((u) => [u.reason, u.message]), [["dropped", { n: 3 }]]);
  open();
  await batcher.flush();
  assert.deepEqual([batcher.stats.accepted, batcher.stats.dropped], [3, 1]);
});

test("throw: a call beyond maxQueueSize throws QueueFull, an AudiencesError RESOURCE_EXHAUSTED", async () => {
  const { open, send } = gated();
  const batcher = new Batcher(send, { batchSize: 1, maxQueueSize: 1, flushIntervalMs: 0, onOverflow: "throw" });
  batcher.put({ n: 0 });
  await new Promise((resolve) => setTimeout(resolve, 20));
  batcher.put({ n: 1 });
  assert.throws(() => batcher.put({ n: 2 }), (e: unknown) =>
    e instanceof QueueFull && e instanceof AudiencesError && e.code === status.RESOURCE_EXHAUSTED && e.reason === "QUEUE_FULL");
  open();
  await batcher.flush();
  assert.equal(batcher.stats.accepted, 2);
});

test("a batch that fails with UNAVAILABLE is retried with backoff until it goes through", async () => {
  let failures = 2;
  const flaky = (body: Buffer): Promise<BatchJsonResponse> =>
    failures-- > 0 ? Promise.reject(new AudiencesError(status.UNAVAILABLE, "connection refused")) : ok(body);
  const batcher = new Batcher(flaky, { backoffMs: 1, flushIntervalMs: 0 });
  batcher.put({ n: 1 });
  await batcher.flush();
  assert.deepEqual([batcher.stats.accepted, batcher.stats.retries, batcher.stats.failed], [1, 2, 0]);
});

test("a batch still failing after maxRetries is reported undelivered with the error", async () => {
  const seen: Undelivered[] = [];
  const down = (): Promise<BatchJsonResponse> => Promise.reject(new AudiencesError(status.UNAVAILABLE, "down"));
  const batcher = new Batcher(down, { backoffMs: 1, maxRetries: 2, flushIntervalMs: 0, onError: (u) => seen.push(u) });
  batcher.put({ n: 1 });
  await batcher.flush();
  assert.deepEqual([batcher.stats.failed, batcher.stats.retries], [1, 2]);
  assert.deepEqual([seen[0]?.reason, seen[0]?.error?.code], ["UNAVAILABLE", status.UNAVAILABLE]);
});

test("batches hold at most batchSize calls and stay under the server's 500 KB", async () => {
  const sizes: Array<[number, number]> = [];
  const record = (body: Buffer): Promise<BatchJsonResponse> => {
    sizes.push([JSON.parse(body.toString()).batch.length, body.length]);
    return ok(body);
  };
  const batcher = new Batcher(record, { batchSize: 40, flushIntervalMs: 10_000 });
  for (let i = 0; i < 100; i += 1) batcher.put({ n: i, blob: "x".repeat(20_000) });
  await batcher.flush();
  assert.equal(batcher.stats.accepted, 100);
  assert.ok(sizes.every(([count, bytes]) => count <= 40 && bytes <= 500 * 1024), JSON.stringify(sizes));
  assert.ok(sizes.length >= 5);
});
