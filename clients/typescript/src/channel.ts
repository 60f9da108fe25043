/**
 * Calling the server: one grpc-js channel shared by the five service clients, the token of each
 * scope in the call's metadata, and the channel's service config.
 *
 * The service config retries idempotent reads (every unary `Get*`, `List*`, `Validate*` and
 * `Preview*` RPC) that fail with UNAVAILABLE, with exponential backoff; writes are never
 * retried there (a tracking batch is retried by the send queue, safely, since every call
 * carries a `messageId`). With `waitForReady`, calls wait for the server to be reachable
 * (until their deadline) instead of failing at once with UNAVAILABLE: grpc-js reads that from
 * each call's metadata options, not from the service config.
 */

import {
  type CallOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ClientWritableStream,
  Metadata,
  type ServiceError,
  status as Status,
} from "@grpc/grpc-js";
import type { Scope, Tokens } from "./config.js";
import { AudiencesError, asAudiencesError, invalidArgument } from "./errors.js";
import { AudienceAdminServiceService } from "./gen/audiences/v1/admin.js";
import { IngestServiceService } from "./gen/audiences/v1/ingest.js";
import { OperatorServiceService } from "./gen/audiences/v1/operator.js";
import { ProfilesServiceService } from "./gen/audiences/v1/profiles.js";
import { SyncServiceService } from "./gen/audiences/v1/sync.js";

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
/** A generated unary method, in its fullest overload. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: Callback<Res>,
) => ClientUnaryCall;
/** A generated server-streaming method. */
export type StreamMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
) => ClientReadableStream<Res>;
/** A generated client-streaming method. */
export type UploadMethod<Req, Res> = (
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: Callback<Res>,
) => ClientWritableStream<Req>;

const SERVICES = {
  "audiences.v1.IngestService": IngestServiceService,
  "audiences.v1.ProfilesService": ProfilesServiceService,
  "audiences.v1.AudienceAdminService": AudienceAdminServiceService,
  "audiences.v1.SyncService": SyncServiceService,
  "audiences.v1.OperatorService": OperatorServiceService,
};
const IDEMPOTENT = /^(Get|List|Validate|Preview)/;

/** The fully qualified names of the RPCs the service config retries, as `[service, method]`. */
export function idempotentMethods(): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const [service, definition] of Object.entries(SERVICES)) {
    for (const method of Object.values(definition)) {
      const name = method.path.split("/")[2]!;
      if (!method.requestStream && !method.responseStream && IDEMPOTENT.test(name)) {
        found.push([service, name]);
      }
    }
  }
  return found;
}

/** The channel's service config (gRPC's JSON form): retries of the idempotent reads. */
export function serviceConfig(): Record<string, unknown> {
  return {
    methodConfig: [
      {
        name: idempotentMethods().map(([service, method]) => ({ service, method })),
        retryPolicy: {
          maxAttempts: 5,
          initialBackoff: "0.1s",
          maxBackoff: "2s",
          backoffMultiplier: 2,
          retryableStatusCodes: ["UNAVAILABLE"],
        },
      },
    ],
  };
}

/** A call in flight, which `Caller.close()` cancels. */
interface Cancellable {
  cancel(): void;
}

/** The most an int32 field (a page size, …) holds. */
const MAX_INT32 = 2 ** 31 - 1;

/** What a call on a closed client rejects with (as a tracking call queued after `close()`). */
export function closedError(): AudiencesError {
  return new AudiencesError(Status.FAILED_PRECONDITION, "the client is closed", { reason: "CLIENT_CLOSED" });
}

/**
 * Refuses a request grpc-js could not serialize, naming the field, before calling: an Invalid
 * Date anywhere (`TIME_INVALID`), a list request's `pageSize` that is not a whole number an int32
 * holds (`PAGE_SIZE_INVALID`). Else grpc-js would fail the call with INTERNAL "Request message
 * serialization failure", as if the server had failed.
 */
export function checkRequest(request: unknown, path = ""): void {
  if (request instanceof Date) {
    if (Number.isNaN(request.getTime())) {
      throw invalidArgument(`${path || "a time"} is an Invalid Date`, "TIME_INVALID", { field: path });
    }
    return;
  }
  if (request === null || typeof request !== "object" || ArrayBuffer.isView(request)) return;
  for (const [key, value] of Object.entries(request)) {
    const field = path ? `${path}.${key}` : key;
    if (!path && key === "pageSize" && value !== undefined && !(Number.isInteger(value) && Math.abs(value as number) <= MAX_INT32)) {
      throw invalidArgument(`pageSize must be a whole number from 0 to ${MAX_INT32.toLocaleString("en")}, not ${String(value)}`, "PAGE_SIZE_INVALID", {
        field,
        value: String(value),
      });
    }
    if (value !== null && typeof value === "object") checkRequest(value, field);
  }
}

/**
 * A failure of a call as an AudiencesError. grpc-js reports a request it could not serialize (a
 * value a field cannot hold, such as a fraction for an integer) as INTERNAL: that is the
 * client's refusal of an argument, INVALID_ARGUMENT `REQUEST_NOT_ENCODABLE`.
 */
function failure(error: unknown): AudiencesError {
  const failed = asAudiencesError(error);
  if (failed.code === Status.INTERNAL && !failed.reason && failed.message.startsWith("Request message serialization failure")) {
    return invalidArgument(`the request cannot be sent: ${failed.message}`, "REQUEST_NOT_ENCODABLE");
  }
  return failed;
}

/** What every part of the client shares: the tokens, the default deadline, how to call. */
export class Caller {
  /** Set by `close()`: later calls reject with CLIENT_CLOSED. */
  private closed = false;
  /** The calls in flight, which `close()` cancels (grpc-js's channel close leaves them running). */
  private readonly open = new Set<Cancellable>();

  constructor(
    readonly tokens: Tokens,
    readonly timeoutMs: number | undefined,
    readonly waitForReady = false,
    /** Why the credentials file gave no tokens (`Resolved.credentialsProblem`), said when a token is missing. */
    readonly credentialsProblem = "",
    /** Whether the caller chose `timeoutMs` (else it is the default, which a long call may exceed). */
    readonly timeoutChosen = false,
  ) {}

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The deadline of a call that may rightly run long (a tick until idle, an export, a stream of
   * calls): the client's `timeoutMs` when the caller chose one, else `ms` or the default,
   * whichever is longer.
   */
  longTimeout(ms: number): number | undefined {
    if (this.timeoutChosen) return this.timeoutMs;
    return Math.max(this.timeoutMs ?? 0, ms);
  }

  /**
   * Refuses calls from now on (CLIENT_CLOSED) and cancels those in flight: an open
   * `watchChanges` stream ends with CANCELLED `CLIENT_CLOSED`, so nothing keeps the process alive.
   */
  close(): void {
    this.closed = true;
    for (const call of [...this.open]) call.cancel();
    this.open.clear();
  }

  private track<C extends Cancellable>(call: C): C {
    this.open.add(call);
    return call;
  }

  /** A failure, said as the client's close() when that is what ended the call. */
  private failed(error: unknown): AudiencesError {
    const found = failure(error);
    if (this.closed && found.code === Status.CANCELLED && !found.reason) {
      return new AudiencesError(Status.CANCELLED, `the client was closed (${found.message})`, {
        reason: "CLIENT_CLOSED",
        requestId: found.requestId,
      });
    }
    return found;
  }

  /** Call metadata with the scope's token; throws UNAUTHENTICATED / TOKEN_MISSING without one. */
  metadata(scope: Scope): Metadata {
    const token = this.tokens[scope];
    if (!token) {
      throw new AudiencesError(
        Status.UNAUTHENTICATED,
        `no \`${scope}\` token: pass ${scope}Token (or token), set AUDIENCES_${scope.toUpperCase()}_TOKEN, ` +
          "or point AUDIENCES_CREDENTIALS_FILE at the server's credentials.json" +
          (this.credentialsProblem ? ` (${this.credentialsProblem})` : ""),
        { reason: "TOKEN_MISSING", metadata: { required_scope: scope } },
      );
    }
    const bad = [...token].findIndex((char) => !(char >= "!" && char <= "~"));
    if (bad >= 0) {
      // grpc-js would fail deep inside (UNKNOWN, "not a valid header value"); the token is never shown.
      const character = JSON.stringify([...token][bad]);
      throw new AudiencesError(
        Status.INVALID_ARGUMENT,
        `the \`${scope}\` token is malformed: a token is printable ASCII without spaces, but this one has ${character} ` +
          `at position ${bad}; check ${scope}Token (or token), AUDIENCES_${scope.toUpperCase()}_TOKEN, AUDIENCES_TOKEN or the credentials file`,
        { reason: "TOKEN_MALFORMED", metadata: { scope, position: String(bad), character } },
      );
    }
    const metadata = new Metadata({ waitForReady: this.waitForReady });
    metadata.set("authorization", `Bearer ${token}`);
    return metadata;
  }

  options(timeoutMs: number | undefined = this.timeoutMs): Partial<CallOptions> {
    return timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
  }

  /** Calls a unary RPC with the scope's token; failures reject with AudiencesError. */
  unary<Req, Res>(scope: Scope, method: UnaryMethod<Req, Res>, request: Req, timeoutMs?: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      try {
        if (this.closed) throw closedError();
        checkRequest(request);
        let call: ClientUnaryCall | undefined;
        let done = false;
        call = method(request, this.metadata(scope), this.options(timeoutMs), (error, response) => {
          done = true;
          if (call) this.open.delete(call);
          if (error) reject(this.failed(error));
          else resolve(response);
        });
        if (!done) this.track(call);
      } catch (error) {
        reject(this.failed(error));
      }
    });
  }

  /** Calls a server-streaming RPC; failures (also midway) throw AudiencesError. */
  async *stream<Req, Res>(scope: Scope, method: StreamMethod<Req, Res>, request: Req, timeoutMs?: number): AsyncGenerator<Res> {
    if (this.closed) throw closedError();
    checkRequest(request);
    const call = this.track(method(request, this.metadata(scope), this.options(timeoutMs)));
    try {
      for await (const message of call) {
        yield message as Res;
      }
    } catch (error) {
      throw this.failed(error);
    } finally {
      this.open.delete(call);
      call.cancel(); // the caller stopped early: end the stream on the server too
    }
  }

  /**
   * Calls a client-streaming RPC, writing each request (waiting when the stream is full). The
   * server may end the call early (a refused token, a deadline): then writing stops and the
   * returned promise rejects with that AudiencesError. A request that cannot be built (an
   * iterator that throws) cancels the call and rejects with its error.
   */
  async upload<Req, Res>(scope: Scope, method: UploadMethod<Req, Res>, requests: AsyncIterable<Req> | Iterable<Req>, timeoutMs?: number): Promise<Res> {
    if (this.closed) throw closedError();
    const metadata = this.metadata(scope);
    let stream: ClientWritableStream<Req> | undefined;
    let ended = false;
    const reply = new Promise<Res>((resolve, reject) => {
      stream = this.track(
        method(metadata, this.options(timeoutMs), (error, response) => {
          ended = true;
          this.open.delete(stream!);
          if (error) reject(this.failed(error));
          else resolve(response);
        }),
      );
    });
    // The reply may fail while requests are still being written; it is awaited below, so mark it
    // handled now (else Node would end the process on an "unhandled rejection").
    reply.catch(() => undefined);
    const settled = reply.then(() => undefined, () => undefined);
    stream!.on("error", () => undefined); // the same failure reaches the callback above
    try {
      for await (const request of requests) {
        if (ended) break;
        if (!stream!.write(request)) {
          await Promise.race([new Promise((resolve) => stream!.once("drain", resolve)), settled]);
        }
      }
    } catch (error) {
      this.open.delete(stream!);
      stream!.cancel();
      throw this.failed(error);
    }
    if (!ended) stream!.end();
    return reply;
  }
}
