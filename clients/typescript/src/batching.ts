/**
 * The in-process send queue: tracking calls are batched and sent in the background.
 *
 * Each call is encoded to JSON when it is queued (so a value JSON cannot hold fails in the
 * caller's code) and carries a `messageId`, which makes retries safe: the server stores a
 * `messageId` once. The queue sends up to `batchSize` calls, or what arrived within
 * `flushIntervalMs`, with one `BatchJson` call (kept under the server's 500 KB and 2,500-call
 * limits). A batch that fails with UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED is
 * retried with exponential backoff; after `maxRetries` its calls are reported as undelivered.
 *
 * Memory is bounded: at most `maxQueueSize` calls of at most 32 KB each. When it is full,
 * `onOverflow` decides: `"drop_newest"` (default) drops the new call, counts it in
 * `stats.dropped` and reports it to `onError`; `"throw"` throws `QueueFull`. (A Node caller
 * cannot be blocked without blocking the event loop that sends the queue, so there is no
 * `block` policy: `await client.flush()` where back-pressure is wanted.)
 */

import { status as Status } from "@grpc/grpc-js";
import { AudiencesError, QueueFull, invalidArgument } from "./errors.js";
import { MessageStatus, type BatchJsonResponse } from "./gen/audiences/v1/ingest.js";

export const MAX_MESSAGE_BYTES = 32 * 1024;
// The server refuses batches over 500 KB; leave room for the `{"batch": [...], "sentAt": ...}` frame.
export const MAX_BATCH_BYTES = 480 * 1024;
export const MAX_BATCH_CALLS = 2500;
const RETRYABLE = new Set([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED, Status.RESOURCE_EXHAUSTED]);

export type OverflowPolicy = "drop_newest" | "throw";

/** A queued call the server did not store. */
export interface Undelivered {
  /** The call as it was queued (tracking-API JSON shape). */
  message: Record<string, unknown>;
  /** The server's rejection code (`no_user_anon_id`, …), the failed batch's reason or code name, or `dropped`. */
  reason: string;
  /** A sentence saying what went wrong. */
  detail: string;
  /** For a batch that failed as a whole, the error. */
  error?: AudiencesError;
}

/** Running counts of the queue. */
export interface BatchStats {
  queued: number;
  accepted: number;
  duplicate: number;
  rejected: number;
  failed: number;
  dropped: number;
  batches: number;
  retries: number;
  lastError?: AudiencesError;
}

export interface BatchOptions {
  /** The most calls per batch (at most 2,500); default 500. */
  batchSize?: number;
  /** The longest a call waits for its batch to fill, in milliseconds; default 500. */
  flushIntervalMs?: number;
  /** The most calls held in memory; default 10,000. */
  maxQueueSize?: number;
  /** When the queue is full; default `drop_newest`. */
  onOverflow?: OverflowPolicy;
  /**
   * Retries of a batch that failed with a transient code; default 6. With the default backoff a
   * batch rides out about 6 to 11 s of downtime (`retryBudgetMs`) before its calls go to
   * `onError`; a server restart may take longer, so raise it (each more retry adds up to
   * `maxBackoffMs`) where calls should wait out a restart.
   */
  maxRetries?: number;
  /** The first wait before a retry, doubled at each next one; default 200 ms. */
  backoffMs?: number;
  /** The longest wait between two tries; default 5 s. */
  maxBackoffMs?: number;
  /** Called for each call the server did not store; default: a warning on the console. One that throws is logged; the queue goes on. */
  onError?: (undelivered: Undelivered) => void;
}

/** Sends one `BatchJson` body; rejects with an AudiencesError when the call fails. */
export type Sender = (body: Buffer) => Promise<BatchJsonResponse>;

/** A bounded queue of encoded calls, sent in batches, one batch at a time. */
export class Batcher {
  readonly stats: BatchStats = {
    queued: 0, accepted: 0, duplicate: 0, rejected: 0, failed: 0, dropped: 0, batches: 0, retries: 0,
  };
  private readonly queue: Buffer[] = [];
  private readonly options: Required<Omit<BatchOptions, "onError">>;
  private readonly onError: (undelivered: Undelivered) => void;
  private pending = 0; // queued or in flight
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private urgent = false;
  private idle: Array<() => void> = [];

  constructor(private readonly send: Sender, options: BatchOptions = {}) {
    this.options = {
      batchSize: options.batchSize ?? 500,
      flushIntervalMs: options.flushIntervalMs ?? 500,
      maxQueueSize: options.maxQueueSize ?? 10_000,
      onOverflow: options.onOverflow ?? "drop_newest",
      maxRetries: options.maxRetries ?? 6,
      backoffMs: options.backoffMs ?? 200,
      maxBackoffMs: options.maxBackoffMs ?? 5_000,
    };
    if (!["drop_newest", "throw"].includes(this.options.onOverflow)) {
      throw invalidArgument(`onOverflow must be drop_newest or throw, not ${this.options.onOverflow}`, "QUEUE_OPTION_INVALID", { option: "onOverflow" });
    }
    if (!(Number.isInteger(this.options.maxQueueSize) && this.options.maxQueueSize >= 1)) {
      // 0 or less dropped every call; NaN left the queue unbounded.
      throw invalidArgument(`maxQueueSize must be a whole number of 1 or more, not ${this.options.maxQueueSize}`, "QUEUE_OPTION_INVALID", { option: "maxQueueSize" });
    }
    if (!(this.options.batchSize >= 1 && this.options.batchSize <= MAX_BATCH_CALLS)) {
      throw invalidArgument(`batchSize must be 1 to ${MAX_BATCH_CALLS}`, "QUEUE_OPTION_INVALID", { option: "batchSize" });
    }
    if (!(this.options.maxRetries >= 0 && this.options.backoffMs >= 0 && this.options.maxBackoffMs >= this.options.backoffMs)) {
      throw invalidArgument("maxRetries must be 0 or more, backoffMs from 0 to maxBackoffMs", "QUEUE_OPTION_INVALID", { option: "maxRetries" });
    }
    this.onError = options.onError ?? logUndelivered;
  }

  /** Calls queued or in flight. */
  get size(): number {
    return this.pending;
  }

  /**
   * Queues one call; returns false when it was dropped on overflow.
   * Throws AudiencesError MESSAGE_TOO_LARGE over 32 KB, QueueFull with the `throw` policy.
   */
  put(message: Record<string, unknown>): boolean {
    const encoded = encode(message);
    if (this.queue.length >= this.options.maxQueueSize) {
      if (this.options.onOverflow === "throw") {
        throw new QueueFull(this.options.maxQueueSize);
      }
      this.stats.dropped += 1;
      this.onError({ message, reason: "dropped", detail: "the send queue was full" });
      return false;
    }
    this.queue.push(encoded);
    this.pending += 1;
    this.stats.queued += 1;
    this.schedule();
    return true;
  }

  /** Sends everything queued so far without waiting for batches to fill; resolves once all is settled. */
  async flush(): Promise<void> {
    if (this.pending === 0) {
      return;
    }
    this.urgent = true;
    const settled = new Promise<void>((resolve) => this.idle.push(resolve));
    this.schedule();
    await settled;
  }

  private schedule(): void {
    if (this.sending) {
      return; // the running loop takes what is queued
    }
    if (this.urgent || this.queue.length >= this.options.batchSize) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.sending = this.drain().finally(() => {
        this.sending = undefined;
        if (this.queue.length) {
          this.schedule();
        }
      });
    } else if (!this.timer && this.queue.length) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.urgent = true;
        this.schedule();
      }, this.options.flushIntervalMs);
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length && (this.urgent || this.queue.length >= this.options.batchSize)) {
      await this.deliver(this.take());
    }
    if (!this.queue.length) {
      this.urgent = false;
    }
  }

  private take(): Buffer[] {
    const batch: Buffer[] = [];
    let bytes = 0;
    while (this.queue.length && batch.length < this.options.batchSize) {
      const next = this.queue[0]!;
      if (batch.length && bytes + next.length + 1 > MAX_BATCH_BYTES) {
        break;
      }
      batch.push(this.queue.shift()!);
      bytes += next.length + 1;
    }
    return batch;
  }

  private async deliver(batch: Buffer[]): Promise<void> {
    try {
      this.count(await this.sendWithRetries(batch), batch);
    } catch (caught) {
      const error = caught instanceof AudiencesError ? caught : new AudiencesError(Status.UNKNOWN, String(caught));
      this.stats.failed += batch.length;
      this.stats.lastError = error;
      for (const item of batch) {
        this.report({ message: JSON.parse(item.toString()), reason: error.reason || error.codeName, detail: error.message, error });
      }
    } finally {
      this.stats.batches += 1;
      this.finished(batch.length);
    }
  }

  private async sendWithRetries(batch: Buffer[]): Promise<BatchJsonResponse> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        // `sentAt` is the time of this attempt: the server corrects each call's `originalTimestamp`
        // with it, so the first attempt's would move the events later by the whole wait.
        return await this.send(batchBody(batch));
      } catch (error) {
        if (!(error instanceof AudiencesError) || !RETRYABLE.has(error.code) || attempt >= this.options.maxRetries) {
          throw error;
        }
        const wait = Math.min(this.options.maxBackoffMs, this.options.backoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
        this.stats.retries += 1;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  private count(reply: BatchJsonResponse, batch: Buffer[]): void {
    this.stats.accepted += reply.acceptedCount;
    this.stats.duplicate += reply.duplicateCount;
    this.stats.rejected += reply.rejectedCount;
    for (const result of reply.results) {
      if (result.status === MessageStatus.MESSAGE_STATUS_REJECTED) {
        this.report({ message: JSON.parse(batch[result.index]!.toString()), reason: result.reason, detail: result.detail });
      }
    }
  }

  private report(undelivered: Undelivered): void {
    try {
      this.onError(undelivered);
    } catch (error) {
      console.error("audiences: onError threw", error); // a faulty callback must not stop the queue
    }
  }

  private finished(count: number): void {
    this.pending -= count;
    if (this.pending === 0) {
      this.urgent = false;
      for (const resolve of this.idle.splice(0)) {
        resolve();
      }
    }
  }
}

/** The `BatchJson` body of encoded calls, with `sentAt` now. */
export function batchBody(batch: Buffer[]): Buffer {
  return Buffer.concat([
    Buffer.from('{"batch":['),
    ...batch.flatMap((item, i) => (i ? [Buffer.from(","), item] : [item])),
    Buffer.from(`],"sentAt":"${new Date().toISOString()}"}`),
  ]);
}

/**
 * The least and most milliseconds a batch waits between its tries before it is given up: the
 * downtime the queue rides out (with the defaults about 5.6 to 11.2 s, besides the tries).
 */
export function retryBudgetMs(maxRetries = 6, backoffMs = 200, maxBackoffMs = 5_000): [number, number] {
  let total = 0;
  for (let attempt = 0; attempt < maxRetries; attempt += 1) total += Math.min(maxBackoffMs, backoffMs * 2 ** attempt);
  return [total / 2, total];
}

/**
 * JSON text of a value, as `JSON.stringify` writes it, except that a BigInt is written as the
 * integer it is (JSON numbers have no size limit; the server keeps integers beyond 64 bits), and,
 * with `strict`, NaN and infinities (which JSON cannot hold, and `JSON.stringify` silently
 * writes as `null`) throw AudiencesError INVALID_ARGUMENT `VALUE_NOT_JSON`, as does anything else
 * `JSON.stringify` cannot write (a cycle). An Invalid Date (which `JSON.stringify` writes as
 * `null` too) throws INVALID_ARGUMENT `TIME_INVALID`. Both name the value's place in metadata
 * `field`, as a dotted path (`properties.items.0.price`).
 */
export function toJson(value: unknown, strict = true): string {
  let mark: string | undefined;
  let text: string;
  const places = new WeakMap<object, string>(); // each object or array written, with its path
  try {
    text = JSON.stringify(value, function (this: unknown, key: string, item: unknown) {
      const parent = places.get(this as object);
      const field = parent ? `${parent}.${key}` : key;
      // `item` is what the value's toJSON made of it: a Date's is already a string, or null.
      const original = (this as Record<string, unknown>)[key];
      if (original instanceof Date && Number.isNaN(original.getTime())) {
        throw invalidArgument(`${field || "the value"} is an Invalid Date`, "TIME_INVALID", { field });
      }
      if (typeof item === "bigint") {
        mark ??= `\u0000bigint${Math.random().toString(36).slice(2)}:`;
        return `${mark}${item.toString()}`;
      }
      if (strict && typeof item === "number" && !Number.isFinite(item)) {
        throw invalidArgument(`${field ? `\`${field}\` is` : "the value is"} ${item}, which JSON cannot hold`, "VALUE_NOT_JSON", { field });
      }
      if (item !== null && typeof item === "object") places.set(item, field);
      return item;
    });
  } catch (error) {
    if (error instanceof AudiencesError) throw error;
    throw invalidArgument(`the call cannot be sent as JSON: ${error instanceof Error ? error.message : String(error)}`, "VALUE_NOT_JSON");
  }
  if (mark === undefined) return text;
  // JSON.stringify writes the mark's NUL as `\u0000`, which no text of the caller's can make unescaped.
  const written = JSON.stringify(mark).slice(1, -1);
  return text.split(`"${written}`).map((part, i) => (i ? part.replace(/^(-?\d+)"/, "$1") : part)).join("");
}

/**
 * One call as compact JSON (UTF-8); throws AudiencesError INVALID_ARGUMENT `MESSAGE_TOO_LARGE`
 * over 32 KB, `VALUE_NOT_JSON` for NaN, an infinity or a cycle, `TIME_INVALID` for an Invalid Date
 * (a BigInt is sent as its integer).
 */
export function encode(message: Record<string, unknown>): Buffer {
  const encoded = Buffer.from(toJson(message));
  if (encoded.length > MAX_MESSAGE_BYTES) {
    throw new AudiencesError(
      Status.INVALID_ARGUMENT,
      `the call is ${encoded.length} bytes of JSON; the most is ${MAX_MESSAGE_BYTES}`,
      { reason: "MESSAGE_TOO_LARGE", metadata: { code: "message_too_large" } },
    );
  }
  return encoded;
}

function logUndelivered(undelivered: Undelivered): void {
  console.warn(
    `audiences call not stored (${undelivered.reason}): ${undelivered.detail}; messageId ${String(undelivered.message.messageId)}`,
  );
}
