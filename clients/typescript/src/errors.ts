/**
 * The client's one error type: a failed call with its gRPC code and the server's details.
 *
 * The server encodes every error as a `google.rpc.Status` (sent in the `grpc-status-details-bin`
 * trailer) whose details hold an `ErrorInfo` (an UPPER_SNAKE `reason` and string `metadata`) and,
 * for bad fields, a `BadRequest` with field violations. `AudiencesError.fromServiceError` reads
 * them back so callers never handle a bare grpc-js `ServiceError`.
 */

import { Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { BadRequest, ErrorInfo } from "./gen/google/rpc/error_details.js";
import { Status as RpcStatus } from "./gen/google/rpc/status.js";

/** One bad field of a request, as the server's `BadRequest` detail names it. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** What an `AudiencesError` is built from. */
export interface AudiencesErrorInit {
  reason?: string;
  metadata?: Record<string, string>;
  violations?: FieldViolation[];
  requestId?: string;
}

const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

/** A call that failed, or a client-side refusal, with everything the server said about it. */
export class AudiencesError extends Error {
  /** The gRPC status code (`status.NOT_FOUND` of `@grpc/grpc-js`, …). */
  readonly code: Status;
  /** The `ErrorInfo` reason, UPPER_SNAKE (`SCOPE_MISSING`, `INVALID_DEFINITION`, …); empty when none was sent. */
  readonly reason: string;
  /** The `ErrorInfo` metadata (`required_scope`, `line`, `column`, …). */
  readonly metadata: Record<string, string>;
  /** The `BadRequest` field violations, in the order the server gave them. */
  readonly violations: FieldViolation[];
  /** The `x-request-id` the server answered with, for finding its log line. */
  readonly requestId: string;

  constructor(code: Status, message: string, init: AudiencesErrorInit = {}) {
    super(message);
    this.name = "AudiencesError";
    this.code = code;
    this.reason = init.reason ?? "";
    this.metadata = init.metadata ?? {};
    this.violations = init.violations ?? [];
    this.requestId = init.requestId ?? "";
  }

  /** The code's name: `NOT_FOUND`, `INVALID_ARGUMENT`, … */
  get codeName(): string {
    return Status[this.code] ?? "UNKNOWN";
  }

  /** For an invalid definition, the line of the error (from 1). */
  get line(): number | undefined {
    return intOrUndefined(this.metadata.line);
  }

  /** For an invalid definition, the column of the error (from 1). */
  get column(): number | undefined {
    return intOrUndefined(this.metadata.column);
  }

  override toString(): string {
    return `${this.codeName}${this.reason ? ` ${this.reason}` : ""}: ${this.message}`;
  }

  /** Builds the error from a failed call, reading its `google.rpc.Status` details. */
  static fromServiceError(error: ServiceError): AudiencesError {
    const init: AudiencesErrorInit = { requestId: requestId(error.metadata) };
    for (const detail of statusDetails(error.metadata)) {
      if (detail.typeUrl === ERROR_INFO) {
        const info = ErrorInfo.decode(detail.value);
        init.reason = info.reason;
        init.metadata = { ...info.metadata };
      } else if (detail.typeUrl === BAD_REQUEST) {
        const bad = BadRequest.decode(detail.value);
        init.violations = [
          ...(init.violations ?? []),
          ...bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })),
        ];
      }
    }
    return new AudiencesError(error.code ?? Status.UNKNOWN, error.details ?? error.message, init);
  }
}

/** The send queue is full and the overflow policy is `throw`. */
export class QueueFull extends AudiencesError {
  constructor(maxQueueSize: number) {
    super(
      Status.RESOURCE_EXHAUSTED,
      `the send queue holds ${maxQueueSize} messages already; the message was not queued`,
      { reason: "QUEUE_FULL", metadata: { max_queue_size: String(maxQueueSize) } },
    );
    this.name = "QueueFull";
  }
}

/**
 * A mistake the client refuses before calling (an option or argument it cannot use): an
 * AudiencesError INVALID_ARGUMENT with an UPPER_SNAKE reason, never a bare RangeError or TypeError.
 */
export function invalidArgument(message: string, reason: string, metadata: Record<string, string> = {}): AudiencesError {
  return new AudiencesError(Status.INVALID_ARGUMENT, message, { reason, metadata });
}

/** Turns anything a grpc-js call rejects with into an AudiencesError. */
export function asAudiencesError(error: unknown): AudiencesError {
  if (error instanceof AudiencesError) {
    return error;
  }
  if (isServiceError(error)) {
    return AudiencesError.fromServiceError(error);
  }
  return new AudiencesError(Status.UNKNOWN, error instanceof Error ? error.message : String(error));
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as ServiceError).code === "number";
}

function statusDetails(metadata: Metadata | undefined): RpcStatus["details"] {
  const raw = metadata?.get("grpc-status-details-bin")[0];
  if (!Buffer.isBuffer(raw)) {
    return [];
  }
  try {
    return RpcStatus.decode(raw).details;
  } catch {
    return []; // undecodable details: keep the plain code and message
  }
}

function requestId(metadata: Metadata | undefined): string {
  const value = metadata?.get("x-request-id")[0];
  return typeof value === "string" ? value : "";
}

function intOrUndefined(text: string | undefined): number | undefined {
  const value = text === undefined ? Number.NaN : Number.parseInt(text, 10);
  return Number.isNaN(value) ? undefined : value;
}
