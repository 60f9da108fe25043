/**
 * `Client`: tracking calls through a bounded background queue, and every other RPC as a method
 * returning a Promise of the generated message.
 *
 *     import { Client } from "@audiences/client";
 *
 *     const client = new Client(); // address and tokens from AUDIENCES_* or var/credentials.json
 *     client.identify({ userId: "ada", traits: { email: "ada@example.com", plan: "pro" } });
 *     client.track({ userId: "ada", event: "Order Completed", properties: { revenue: 120 } });
 *     await client.flush();
 *     await client.createAudience("buyers", "event('Order Completed').within(30 days).count() >= 1");
 *     await client.close();
 */

import { type ChannelCredentials, type ChannelOptions, credentials as grpcCredentials, status as Status } from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { Batcher, type BatchOptions, type BatchStats, encode, toJson } from "./batching.js";
import { Caller, serviceConfig } from "./channel.js";
import { type ConnectionOptions, resolve } from "./config.js";
import { AudiencesError, invalidArgument } from "./errors.js";
import {
  type Audience,
  AudienceAdminServiceClient,
  ComputationOptions,
  type ComputedTrait,
  CreateAudienceRequest,
  CreateComputedTraitRequest,
  DeleteAudienceRequest,
  DeleteComputedTraitRequest,
  GetAudienceRequest,
  GetComputedTraitRequest,
  GetEvaluatorStatusRequest,
  type GetEvaluatorStatusResponse,
  GetIdentityRulesRequest,
  type IdentityRule,
  IdentityLimitPeriod,
  type IdentityRules,
  ListAudienceMembersRequest,
  type ListAudienceMembersResponse,
  ListAudiencesRequest,
  type ListAudiencesResponse,
  ListComputedTraitsRequest,
  type ListComputedTraitsResponse,
  ListIdentityRuleViolationsRequest,
  type ListIdentityRuleViolationsResponse,
  PreviewDefinitionRequest,
  type PreviewDefinitionResponse,
  RunTickRequest,
  type RunTickResponse,
  SetClockRequest,
  type SetClockResponse,
  UpdateAudienceRequest,
  UpdateComputedTraitRequest,
  UpdateIdentityRuleRequest,
  ValidateDefinitionRequest,
  type ValidateDefinitionResponse,
  ComputationStatus,
  type AudienceMember,
  type AuditEntry,
  type DefinitionDiff,
  type DefinitionVersion,
  ExplainMembershipRequest,
  type ExplainMembershipResponse,
  GetDefinitionVersionRequest,
  GetSizeHistoryRequest,
  type GetSizeHistoryResponse,
  ListAuditEntriesRequest,
  type ListAuditEntriesResponse,
  ListDefinitionVersionsRequest,
  type ListDefinitionVersionsResponse,
  ListMembershipHistoryRequest,
  type ListMembershipHistoryResponse,
  type MembershipChange,
  SizeInterval,
} from "./gen/audiences/v1/admin.js";
import { Collection, ComputationKind, type ComputationRef } from "./gen/audiences/v1/common.js";
import {
  BatchJsonRequest,
  type BatchJsonResponse,
  BatchRequest,
  type BatchResponse,
  IngestServiceClient,
  StreamCallsRequest,
  type StreamCallsResponse,
  type TrackResponse,
} from "./gen/audiences/v1/ingest.js";
import {
  type Event,
  GetMetadataRequest,
  ListAudienceMembershipsRequest,
  type ListAudienceMembershipsResponse,
  ListEventsRequest,
  type ListEventsResponse,
  ListExternalIdsRequest,
  type ListExternalIdsResponse,
  ListLinksRequest,
  type ListLinksResponse,
  ListTraitsRequest,
  type ListTraitsResponse,
  type ProfileMetadata,
  ProfilesServiceClient,
  SortOrder,
  type Trait,
  TraitClass,
} from "./gen/audiences/v1/profiles.js";
import {
  AckChangesRequest,
  type ChangeRecord,
  ConnectDestinationRequest,
  type Connection,
  CreateDestinationRequest,
  type CsvConfig,
  type DeliveryPolicy,
  DeleteDestinationRequest,
  type Destination,
  DisconnectDestinationRequest,
  ExportAudienceRequest,
  GetConnectionRequest,
  GetDestinationRequest,
  type GrpcFeedConfig,
  IdentifierSelection,
  ListChangesRequest,
  type ListChangesResponse,
  ListConnectionsRequest,
  type ListConnectionsResponse,
  ListDeadLettersRequest,
  type ListDeadLettersResponse,
  ListDestinationsRequest,
  type ListDestinationsResponse,
  type PostgresConfig,
  RedriveDeadLettersRequest,
  type SegmentConfig,
  SyncServiceClient,
  UpdateConnectionRequest,
  UpdateDestinationRequest,
  type WatchChangesResponse,
  WatchChangesRequest,
  type WebhookConfig,
} from "./gen/audiences/v1/sync.js";
import {
  CreateSpaceRequest,
  CreateTokenRequest,
  type CreateTokenResponse,
  DeleteProfileRequest,
  DeleteSuppressionRequest,
  GetProfileDeletionRequest,
  GetSpaceRequest,
  ListProfileDeletionsRequest,
  type ListProfileDeletionsResponse,
  ListSpacesRequest,
  type ListSpacesResponse,
  ListSuppressionsRequest,
  type ListSuppressionsResponse,
  ListTokensRequest,
  type ListTokensResponse,
  OperatorServiceClient,
  type ProfileDeletion,
  RevokeTokenRequest,
  type Space,
  type Suppression,
  type Token,
  TokenScope,
  UpdateSpaceRequest,
} from "./gen/audiences/v1/operator.js";
import { Alias, Group, Identify, Page, Screen, Track, type TrackingCall } from "./gen/audiences/v1/tracking.js";
import type { DeepPartial } from "./gen/audiences/v1/admin.js";
import * as messages from "./messages.js";

export type CollectionName = "users" | "accounts";
export type ScopeName = "write" | "read" | "admin" | "operator";
export type Scopeish = ScopeName | TokenScope;
export type KindName = "audience" | "computed_trait";
export type Collectionish = CollectionName | Collection;
export type Kindish = KindName | ComputationKind;

/** Everything `new Client()` takes; every field is optional. */
export interface ClientOptions extends ConnectionOptions, BatchOptions {
  /** Milliseconds each call may take; default 30 s. */
  timeoutMs?: number;
  /** TLS credentials; default a plain-text channel, unless a `tls*File` is given. */
  channelCredentials?: ChannelCredentials;
  /** Connect with TLS, trusting the CA certificates in this PEM file; default `AUDIENCES_TLS_CA_FILE`. */
  tlsCaFile?: string;
  /** With `tlsKeyFile`, the client certificate for mutual TLS; default `AUDIENCES_TLS_CERT_FILE`. */
  tlsCertFile?: string;
  /** The private key of `tlsCertFile`; default `AUDIENCES_TLS_KEY_FILE`. */
  tlsKeyFile?: string;
  /** Calls wait for the server to be reachable (until their deadline) instead of failing UNAVAILABLE at once. */
  waitForReady?: boolean;
  /** Extra grpc-js channel options. */
  channelOptions?: ChannelOptions;
}

export interface ComputationInput {
  collection?: Collectionish;
  name?: string;
  description?: string;
  enabled?: boolean;
  options?: DeepPartial<ComputationOptions>;
}

export interface ComputationChanges {
  collection?: Collectionish;
  name?: string;
  description?: string;
  definition?: string;
  enabled?: boolean;
  options?: DeepPartial<ComputationOptions>;
}

export interface PageOptions {
  pageSize?: number;
  pageToken?: string;
}

export interface DestinationConfigs {
  webhook?: DeepPartial<WebhookConfig>;
  segment?: DeepPartial<SegmentConfig>;
  grpcFeed?: DeepPartial<GrpcFeedConfig>;
  csv?: DeepPartial<CsvConfig>;
  postgres?: DeepPartial<PostgresConfig>;
}

/** The kinds of destination, as `DestinationConfigs` names them (one field of `Destination.config` each). */
export const DESTINATION_KINDS = ["webhook", "segment", "grpcFeed", "csv", "postgres"] as const;

export interface DestinationInput extends DestinationConfigs {
  name?: string;
  enabled?: boolean;
  deliveryPolicy?: DeepPartial<DeliveryPolicy>;
}

export type IdentifierSelectionName = "all" | "first_added" | "last_added";
export type IntervalName = "hourly" | "daily";
export type SortName = "asc" | "desc";

/** What `diffDefinition` takes besides the key and the text. */
export interface DiffOptions {
  kind?: Kindish;
  collection?: Collectionish;
  sampleSize?: number;
  /** Options the edit would change; the others keep their saved values (read first). */
  includeAnonymousUsers?: boolean;
  includeHistoricalData?: boolean;
  backfillDays?: number;
}

export interface ConnectionInput {
  kind?: Kindish;
  collection?: Collectionish;
  sendIdentify?: boolean;
  sendTrack?: boolean;
  sendGroup?: boolean;
  identifierSelection?: IdentifierSelectionName;
  externalIdTypes?: string[];
}

const COLLECTIONS: Record<string, Collection> = {
  users: Collection.COLLECTION_USERS,
  user: Collection.COLLECTION_USERS,
  accounts: Collection.COLLECTION_ACCOUNTS,
  account: Collection.COLLECTION_ACCOUNTS,
};
const KINDS: Record<string, ComputationKind> = {
  audience: ComputationKind.COMPUTATION_KIND_AUDIENCE,
  computed_trait: ComputationKind.COMPUTATION_KIND_COMPUTED_TRAIT,
  trait: ComputationKind.COMPUTATION_KIND_COMPUTED_TRAIT,
};
const SELECTIONS: Record<IdentifierSelectionName, IdentifierSelection> = {
  all: IdentifierSelection.IDENTIFIER_SELECTION_ALL,
  first_added: IdentifierSelection.IDENTIFIER_SELECTION_FIRST_ADDED,
  last_added: IdentifierSelection.IDENTIFIER_SELECTION_LAST_ADDED,
};
const LIMIT_PERIODS: Record<string, IdentityLimitPeriod> = {
  ever: IdentityLimitPeriod.IDENTITY_LIMIT_PERIOD_EVER,
  daily: IdentityLimitPeriod.IDENTITY_LIMIT_PERIOD_DAILY,
  weekly: IdentityLimitPeriod.IDENTITY_LIMIT_PERIOD_WEEKLY,
  monthly: IdentityLimitPeriod.IDENTITY_LIMIT_PERIOD_MONTHLY,
  annually: IdentityLimitPeriod.IDENTITY_LIMIT_PERIOD_ANNUALLY,
};
const TOKEN_SCOPES: Record<ScopeName, TokenScope> = {
  write: TokenScope.TOKEN_SCOPE_WRITE,
  read: TokenScope.TOKEN_SCOPE_READ,
  admin: TokenScope.TOKEN_SCOPE_ADMIN,
  operator: TokenScope.TOKEN_SCOPE_OPERATOR,
};
const INTERVALS: Record<IntervalName, SizeInterval> = {
  hourly: SizeInterval.SIZE_INTERVAL_HOURLY,
  daily: SizeInterval.SIZE_INTERVAL_DAILY,
};
const SORTS: Record<SortName, SortOrder> = {
  asc: SortOrder.SORT_ORDER_ASCENDING,
  desc: SortOrder.SORT_ORDER_DESCENDING,
};
// Version numbers are int32s; a rollback names a saved one, from 1 (0 is "the current one" to a read).
const MAX_VERSION = 2 ** 31 - 1;
// The longest timeout a client takes (the Python client's 1e9 s).
const MAX_TIMEOUT_MS = 1e12;
// The most a protobuf Duration holds: 10,000 years either way, in seconds.
const MAX_DURATION_SECONDS = 315_576_000_000;
const TRAIT_CLASSES: Record<string, TraitClass> = {
  audience: TraitClass.TRAIT_CLASS_AUDIENCE,
  computed_trait: TraitClass.TRAIT_CLASS_COMPUTED_TRAIT,
  custom: TraitClass.TRAIT_CLASS_CUSTOM,
};

/** `"users"`/`"accounts"` (or the enum) as the `Collection` enum; undefined is UNSPECIFIED. */
export function collectionValue(value: Collectionish | undefined): Collection {
  if (value === undefined) return Collection.COLLECTION_UNSPECIFIED;
  if (typeof value === "number") return value;
  const found = COLLECTIONS[value.toLowerCase()];
  if (found === undefined) throw invalidArgument(`collection must be users or accounts, not ${value}`, "COLLECTION_INVALID", { value: String(value) });
  return found;
}

/** `"audience"`/`"computed_trait"` (or the enum) as the `ComputationKind` enum. */
export function kindValue(value: Kindish): ComputationKind {
  if (typeof value === "number") return value;
  const found = KINDS[value.toLowerCase()];
  if (found === undefined) throw invalidArgument(`kind must be audience or computed_trait, not ${value}`, "KIND_INVALID", { value: String(value) });
  return found;
}

/** `"write"`, `"read"`, `"admin"`, `"operator"` (or the enum) as the `TokenScope` enum. */
export function scopeValue(value: Scopeish): TokenScope {
  if (typeof value === "number") return value;
  return pick(TOKEN_SCOPES, value.toLowerCase(), "scope");
}

function pick<T>(table: Record<string, T>, value: string, what: string): T {
  const found = table[value];
  if (found === undefined) {
    const reason = `${what.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_INVALID`;
    throw invalidArgument(`${what} must be one of ${Object.keys(table).join(", ")}, not ${value}`, reason, { option: what, value: String(value) });
  }
  return found;
}

/**
 * A trait's value as plain data, read from `valueJson` (else the Value). Numbers are exact where
 * JavaScript allows: an integer beyond `Number.MAX_SAFE_INTEGER` (2^53 − 1) is a `BigInt` (so
 * 2^64 + 1 and 10^400 come back exactly, not rounded or `Infinity`); other numbers are `number`s,
 * so a float such as `4.0` is `4` (read `valueJson` to tell it from the integer 4), and a
 * fraction too large for a double is kept as its JSON text.
 */
export function traitValue(trait: Trait): unknown {
  return trait.valueJson ? parseJson(trait.valueJson) : trait.value;
}

/**
 * A change record with its values read from `oldValueJson` / `newValueJson` when the server sent
 * them (numbers exact, as `traitValue` reads them: 120 is 120, 2^53 + 1 a `BigInt`), instead of
 * the `Value`s, which hold every number as a double. Changes the record in place.
 */
export function exactChange(record: ChangeRecord): ChangeRecord {
  if (record.oldValueJson) record.oldValue = parseJson(record.oldValueJson);
  if (record.newValueJson) record.newValue = parseJson(record.newValueJson);
  return record;
}

const TOKEN = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/** `JSON.parse` keeping integers beyond 2^53 − 1 exact, as BigInt (see `traitValue`). */
export function parseJson(text: string): unknown {
  let at = 0;
  const fail = (): never => {
    throw new SyntaxError(`not JSON at position ${at}: ${text.slice(at, at + 20)}`);
  };
  const space = (): void => {
    while (at < text.length && " \t\n\r".includes(text[at]!)) at += 1;
  };
  const value = (): unknown => {
    space();
    const char = text[at];
    if (char === "{") {
      const out: Record<string, unknown> = {};
      at += 1;
      space();
      if (text[at] === "}") { at += 1; return out; }
      for (;;) {
        space();
        const key = value();
        if (typeof key !== "string") fail();
        space();
        if (text[at] !== ":") fail();
        at += 1;
        Object.defineProperty(out, key as string, { value: value(), enumerable: true, writable: true, configurable: true });
        space();
        if (text[at] === ",") { at += 1; continue; }
        if (text[at] === "}") { at += 1; return out; }
        fail();
      }
    }
    if (char === "[") {
      const out: unknown[] = [];
      at += 1;
      space();
      if (text[at] === "]") { at += 1; return out; }
      for (;;) {
        out.push(value());
        space();
        if (text[at] === ",") { at += 1; continue; }
        if (text[at] === "]") { at += 1; return out; }
        fail();
      }
    }
    TOKEN.lastIndex = at;
    const token = TOKEN.exec(text);
    if (!token) return fail();
    at += token[0].length;
    const word = token[0];
    if (/^-?\d+$/.test(word)) {
      const number = Number(word);
      return Number.isSafeInteger(number) ? number : BigInt(word);
    }
    if (/^-?\d/.test(word)) {
      const number = Number(word);
      return Number.isFinite(number) ? number : word;
    }
    return JSON.parse(word);
  };
  const parsed = value();
  space();
  if (at !== text.length) fail();
  return parsed;
}

/** The fields given (not undefined), and the update mask naming them as the proto does. */
function changes<T extends object>(fields: T): { set: Partial<T>; paths: string[] } {
  const set: Record<string, unknown> = {};
  const paths: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) {
      set[key] = value;
      paths.push(key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
    }
  }
  return { set: set as Partial<T>, paths };
}

/**
 * The call with a `messageId`: one without (or with an undefined, null or empty one) is sent as a
 * copy with a new id, the caller's object left as it is (one object sent twice is two calls).
 */
function withMessageId(call: Record<string, unknown>): Record<string, unknown> {
  if (call === null || typeof call !== "object" || Array.isArray(call) || call.messageId) {
    return call; // not a call object: sent as it is, for the server to refuse
  }
  return { ...call, messageId: messages.newMessageId() };
}

function tlsCredentials(ca?: string, cert?: string, key?: string): ChannelCredentials {
  if ((cert === undefined) !== (key === undefined)) {
    throw invalidArgument("a client certificate needs both tlsCertFile and tlsKeyFile", "TLS_FILE_UNREADABLE", {
      option: cert === undefined ? "tlsCertFile" : "tlsKeyFile",
    });
  }
  try {
    return grpcCredentials.createSsl(readTls(ca, "tlsCaFile"), readTls(key, "tlsKeyFile"), readTls(cert, "tlsCertFile"));
  } catch (error) {
    if (error instanceof AudiencesError) throw error;
    throw invalidArgument(`the TLS files cannot be used: ${error instanceof Error ? error.message : String(error)}`, "TLS_FILE_UNREADABLE");
  }
}

/** A TLS file's bytes; AudiencesError INVALID_ARGUMENT `TLS_FILE_UNREADABLE` (metadata `file`, `option`) when it cannot be read. */
function readTls(file: string | undefined, option: string): Buffer | null {
  if (!file) return null;
  try {
    return readFileSync(file);
  } catch (error) {
    throw invalidArgument(`cannot read the TLS file ${file} (${option}): ${(error as Error).message}`, "TLS_FILE_UNREADABLE", { file, option });
  }
}

/**
 * A connection to an Audiences server.
 *
 * Tracking calls (`track`, `identify`, `page`, `screen`, `group`, `alias`) are queued and sent in
 * batches in the background (see `batching.ts` for the queue's policy); `await flush()` waits for
 * them and `await close()` ends the client. Everything else returns a Promise of the generated
 * message, or rejects with `AudiencesError`.
 */
export class Client {
  readonly address: string;
  readonly ingest: IngestServiceClient;
  readonly profiles: ProfilesServiceClient;
  readonly admin: AudienceAdminServiceClient;
  readonly sync: SyncServiceClient;
  readonly operator: OperatorServiceClient;
  private readonly caller: Caller;
  private readonly batcher: Batcher;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly beforeExit = (): void => void this.flush();
  private exitHook = false; // whether beforeExit is registered: once, however often the queue fills

  constructor(options: ClientOptions = {}) {
    const resolved = resolve(options);
    this.address = resolved.address;
    if (options.timeoutMs !== undefined && !(options.timeoutMs > 0 && options.timeoutMs <= MAX_TIMEOUT_MS)) {
      // Zero, a negative or NaN would fail every call at once with DEADLINE_EXCEEDED.
      throw invalidArgument(`timeoutMs must be above 0 and at most ${MAX_TIMEOUT_MS}, not ${options.timeoutMs}`,
        "TIMEOUT_INVALID", { timeout: String(options.timeoutMs) });
    }
    this.caller = new Caller(
      resolved.tokens,
      options.timeoutMs ?? 30_000,
      options.waitForReady ?? false,
      resolved.credentialsProblem,
      options.timeoutMs !== undefined,
    );
    const tls = [
      options.tlsCaFile ?? process.env.AUDIENCES_TLS_CA_FILE,
      options.tlsCertFile ?? process.env.AUDIENCES_TLS_CERT_FILE,
      options.tlsKeyFile ?? process.env.AUDIENCES_TLS_KEY_FILE,
    ].map((file) => file || undefined) as [string?, string?, string?];
    const channelCredentials =
      options.channelCredentials ?? (tls.some(Boolean) ? tlsCredentials(...tls) : grpcCredentials.createInsecure());
    const channelOptions: ChannelOptions = {
      "grpc.service_config": JSON.stringify(serviceConfig()),
      ...options.channelOptions,
    };
    this.ingest = new IngestServiceClient(this.address, channelCredentials, channelOptions);
    const shared = { ...channelOptions, channelOverride: this.ingest.getChannel() };
    this.profiles = new ProfilesServiceClient(this.address, channelCredentials, shared);
    this.admin = new AudienceAdminServiceClient(this.address, channelCredentials, shared);
    this.sync = new SyncServiceClient(this.address, channelCredentials, shared);
    this.operator = new OperatorServiceClient(this.address, channelCredentials, shared);
    this.batcher = new Batcher((body) => this.sendBody(body), options);
  }

  // -- tracking calls, queued ------------------------------------------------------------------

  /** Queues a track call; returns its `messageId`. */
  track(params: messages.TrackParams): string {
    return this.enqueue(messages.track(params));
  }

  /** Queues an identify call; returns its `messageId`. */
  identify(params: messages.IdentifyParams): string {
    return this.enqueue(messages.identify(params));
  }

  /** Queues a page call (the event `Page Viewed`); returns its `messageId`. */
  page(params: messages.PageParams): string {
    return this.enqueue(messages.page(params));
  }

  /** Queues a screen call (the event `Screen Viewed`); returns its `messageId`. */
  screen(params: messages.ScreenParams): string {
    return this.enqueue(messages.screen(params));
  }

  /** Queues a group call (links the user to account `groupId`); returns its `messageId`. */
  group(params: messages.GroupParams): string {
    return this.enqueue(messages.group(params));
  }

  /** Queues an alias call; returns its `messageId`. */
  alias(params: messages.AliasParams): string {
    return this.enqueue(messages.alias(params));
  }

  /**
   * Queues a call already in the tracking API's JSON shape; returns its `messageId` (empty when
   * it was dropped on overflow). A call without `messageId`, or whose `messageId` is undefined,
   * null or empty, gets one (in the queued copy: the caller's object is left as it is).
   */
  enqueue(message: Record<string, unknown>): string {
    if (this.closed) {
      throw new AudiencesError(Status.FAILED_PRECONDITION, "the client is closed", { reason: "CLIENT_CLOSED" });
    }
    const call = { ...message };
    if (!call.messageId) {
      call.messageId = messages.newMessageId(); // after the spread: an undefined, null or "" of the caller's must not win
    }
    if (!this.batcher.put(call)) {
      return "";
    }
    if (!this.exitHook) {
      this.exitHook = true;
      process.on("beforeExit", this.beforeExit); // a forgotten flush still sends the queue
    }
    return String(call.messageId);
  }

  /** Resolves once every queued call is settled (stored, rejected or given up). */
  async flush(): Promise<void> {
    await this.batcher.flush();
    if (this.exitHook && this.batcher.size === 0) {
      this.exitHook = false;
      process.removeListener("beforeExit", this.beforeExit);
    }
  }

  /**
   * Flushes the queue and closes the channel. Tracking calls made from the moment `close()` is
   * called throw `AudiencesError` FAILED_PRECONDITION `CLIENT_CLOSED` (one accepted while the
   * queue drained was never sent); once the queue is flushed, other methods reject with it, and
   * calls still open, such as a `watchChanges` stream, end with CANCELLED `CLIENT_CLOSED`, so the
   * process can exit. Every `close()` resolves when that is done.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true; // no new tracking call: the queue only drains (else it may never)
      this.closing = (async () => {
        await this.flush();
        this.caller.close();
        this.ingest.close();
      })();
    }
    return this.closing;
  }

  /** Counts of the queue: queued, accepted, duplicate, rejected, failed, dropped, batches, retries. */
  get stats(): Readonly<BatchStats> {
    return this.batcher.stats;
  }

  private sendBody(body: Buffer): Promise<BatchJsonResponse> {
    return this.caller.unary("write", this.ingest.batchJson.bind(this.ingest), BatchJsonRequest.fromPartial({ body }));
  }

  // -- tracking calls, sent now ----------------------------------------------------------------

  /**
   * Sends calls (tracking-API JSON shape) now, in one `BatchJson` call, bypassing the queue;
   * resolves to a result per call. A call without a `messageId` (or with an empty one) is sent
   * with a new id, the caller's object left as it is: give calls ids of their own to send them
   * again safely after a failure. Rejects with AudiencesError INVALID_ARGUMENT before calling for
   * NaN or an infinity (`VALUE_NOT_JSON`) or an Invalid Date (`TIME_INVALID`) anywhere, as
   * `track()` throws.
   */
  sendBatch(calls: Array<Record<string, unknown>>, options: { context?: messages.Json; sentAt?: string } = {}): Promise<BatchJsonResponse> {
    try {
      const body: Record<string, unknown> = { batch: calls.map(withMessageId) };
      if (options.context) body.context = options.context;
      if (options.sentAt) body.sentAt = options.sentAt;
      return this.sendBody(Buffer.from(toJson(body)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Sends one typed call with its unary RPC (`Track`, `Identify`, …); resolves to `messageId` and `status`. */
  send(call: DeepPartial<TrackingCall>): Promise<TrackResponse> {
    const { track, identify, page, screen, group, alias } = call;
    const ingest = this.ingest;
    if (track) return this.caller.unary("write", ingest.track.bind(ingest), { track: Track.fromPartial(track) });
    if (identify) return this.caller.unary("write", ingest.identify.bind(ingest), { identify: Identify.fromPartial(identify) });
    if (page) return this.caller.unary("write", ingest.page.bind(ingest), { page: Page.fromPartial(page) });
    if (screen) return this.caller.unary("write", ingest.screen.bind(ingest), { screen: Screen.fromPartial(screen) });
    if (group) return this.caller.unary("write", ingest.group.bind(ingest), { group: Group.fromPartial(group) });
    if (alias) return this.caller.unary("write", ingest.alias.bind(ingest), { alias: Alias.fromPartial(alias) });
    return Promise.reject(invalidArgument("send takes one of track, identify, page, screen, group, alias", "CALL_INVALID"));
  }

  /** Sends typed calls with the `Batch` RPC; resolves to a result per call. */
  sendTypedBatch(calls: Array<DeepPartial<TrackingCall>>): Promise<BatchResponse> {
    return this.caller.unary("write", this.ingest.batch.bind(this.ingest), BatchRequest.fromPartial({ batch: calls }));
  }

  /**
   * Sends any number of calls (tracking-API JSON shape) over one `StreamCalls` stream. A call
   * without a `messageId` (or with an empty one) is sent with a new id, the caller's object left
   * as it is: give calls ids of their own to send them again safely after a stream failed midway.
   * A call that cannot be encoded (as `track()` would throw) ends the stream, which
   * rejects with that AudiencesError.
   */
  streamCalls(calls: Iterable<Record<string, unknown>> | AsyncIterable<Record<string, unknown>>): Promise<StreamCallsResponse> {
    async function* requests(): AsyncGenerator<StreamCallsRequest> {
      for await (const call of calls) {
        yield StreamCallsRequest.fromPartial({ call: { json: encode(withMessageId(call)) } });
      }
    }
    return this.caller.upload("write", this.ingest.streamCalls.bind(this.ingest), requests(), this.caller.longTimeout(3_600_000));
  }

  // -- audiences -------------------------------------------------------------------------------

  /** Creates an audience; it starts BACKFILLING, then turns LIVE. */
  async createAudience(key: string, definition: string, input: ComputationInput = {}): Promise<Audience> {
    const audience = { key, definition, ...computation(input) };
    const request = CreateAudienceRequest.fromPartial({ audience });
    return (await this.caller.unary("admin", this.admin.createAudience.bind(this.admin), request)).audience!;
  }

  /** One audience with its status, size and backfill progress. */
  async getAudience(key: string, options: { collection?: Collectionish } = {}): Promise<Audience> {
    const request = GetAudienceRequest.fromPartial({ key, collection: collectionValue(options.collection ?? "users") });
    return (await this.caller.unary("admin", this.admin.getAudience.bind(this.admin), request)).audience!;
  }

  /** One page of audiences (both collections unless one is given). */
  listAudiences(options: { collection?: Collectionish } & PageOptions = {}): Promise<ListAudiencesResponse> {
    const request = ListAudiencesRequest.fromPartial({ ...options, collection: collectionValue(options.collection) });
    return this.caller.unary("admin", this.admin.listAudiences.bind(this.admin), request);
  }

  /** Every audience, following the pages. */
  iterAudiences(options: { collection?: Collectionish } = {}): AsyncGenerator<Audience> {
    return pages((pageToken) => this.listAudiences({ ...options, pageSize: 1000, pageToken }), (page) => page.audiences);
  }

  /** Changes the given fields (only those); a new definition or options restarts the backfill. */
  async updateAudience(key: string, update: ComputationChanges): Promise<Audience> {
    const { collection, ...fields } = update;
    const { set, paths } = changes(fields);
    const request = UpdateAudienceRequest.fromPartial({
      audience: { ...set, key, collection: collectionValue(collection ?? "users") },
      updateMask: paths,
    });
    return (await this.caller.unary("admin", this.admin.updateAudience.bind(this.admin), request)).audience!;
  }

  /** Deletes an audience (`force` also removes its connections to destinations). */
  async deleteAudience(key: string, options: { collection?: Collectionish; force?: boolean } = {}): Promise<void> {
    const request = DeleteAudienceRequest.fromPartial({ key, collection: collectionValue(options.collection ?? "users"), force: options.force });
    await this.caller.unary("admin", this.admin.deleteAudience.bind(this.admin), request);
  }

  /** One page of an audience's members, in profile order, with `totalSize`. */
  listAudienceMembers(key: string, options: { collection?: Collectionish; includeTraits?: string[] } & PageOptions = {}): Promise<ListAudienceMembersResponse> {
    const request = ListAudienceMembersRequest.fromPartial({ ...options, key, collection: collectionValue(options.collection ?? "users") });
    return this.caller.unary("admin", this.admin.listAudienceMembers.bind(this.admin), request);
  }

  /** Every member of an audience, following the pages. */
  iterAudienceMembers(key: string, options: { collection?: Collectionish; includeTraits?: string[] } = {}): AsyncGenerator<AudienceMember> {
    return pages((pageToken) => this.listAudienceMembers(key, { ...options, pageSize: 1000, pageToken }), (page) => page.members);
  }

  // -- computed traits -------------------------------------------------------------------------

  /** Creates a computed trait; it starts BACKFILLING, then turns LIVE. */
  async createComputedTrait(key: string, definition: string, input: ComputationInput = {}): Promise<ComputedTrait> {
    const request = CreateComputedTraitRequest.fromPartial({ computedTrait: { key, definition, ...computation(input) } });
    return (await this.caller.unary("admin", this.admin.createComputedTrait.bind(this.admin), request)).computedTrait!;
  }

  /** One computed trait with its status, size and backfill progress. */
  async getComputedTrait(key: string, options: { collection?: Collectionish } = {}): Promise<ComputedTrait> {
    const request = GetComputedTraitRequest.fromPartial({ key, collection: collectionValue(options.collection ?? "users") });
    return (await this.caller.unary("admin", this.admin.getComputedTrait.bind(this.admin), request)).computedTrait!;
  }

  /** One page of computed traits. */
  listComputedTraits(options: { collection?: Collectionish } & PageOptions = {}): Promise<ListComputedTraitsResponse> {
    const request = ListComputedTraitsRequest.fromPartial({ ...options, collection: collectionValue(options.collection) });
    return this.caller.unary("admin", this.admin.listComputedTraits.bind(this.admin), request);
  }

  /** Every computed trait, following the pages. */
  iterComputedTraits(options: { collection?: Collectionish } = {}): AsyncGenerator<ComputedTrait> {
    return pages((pageToken) => this.listComputedTraits({ ...options, pageSize: 1000, pageToken }), (page) => page.computedTraits);
  }

  /** Changes the given fields (only those); a new definition or options restarts the backfill. */
  async updateComputedTrait(key: string, update: ComputationChanges): Promise<ComputedTrait> {
    const { collection, ...fields } = update;
    const { set, paths } = changes(fields);
    const request = UpdateComputedTraitRequest.fromPartial({
      computedTrait: { ...set, key, collection: collectionValue(collection ?? "users") },
      updateMask: paths,
    });
    return (await this.caller.unary("admin", this.admin.updateComputedTrait.bind(this.admin), request)).computedTrait!;
  }

  /** Deletes a computed trait. */
  async deleteComputedTrait(key: string, options: { collection?: Collectionish; force?: boolean } = {}): Promise<void> {
    const request = DeleteComputedTraitRequest.fromPartial({ key, collection: collectionValue(options.collection ?? "users"), force: options.force });
    await this.caller.unary("admin", this.admin.deleteComputedTrait.bind(this.admin), request);
  }

  // -- definitions -----------------------------------------------------------------------------

  /** Checks a definition without saving it: `valid`, or `error` with line, column and caret. */
  validateDefinition(definition: string, options: { kind?: Kindish; collection?: Collectionish; key?: string } = {}): Promise<ValidateDefinitionResponse> {
    const request = ValidateDefinitionRequest.fromPartial({
      definition,
      kind: kindValue(options.kind ?? "audience"),
      collection: collectionValue(options.collection ?? "users"),
      key: options.key,
    });
    return this.caller.unary("admin", this.admin.validateDefinition.bind(this.admin), request);
  }

  /**
   * Evaluates an unsaved definition now: how many profiles it selects, and a sample; with
   * `compareKey`, also how that differs from the saved definition of that key.
   */
  previewDefinition(
    definition: string,
    options: { kind?: Kindish; collection?: Collectionish; includeAnonymousUsers?: boolean; sampleSize?: number; compareKey?: string } = {},
  ): Promise<PreviewDefinitionResponse> {
    const request = PreviewDefinitionRequest.fromPartial({
      ...options,
      definition,
      kind: kindValue(options.kind ?? "audience"),
      collection: collectionValue(options.collection ?? "users"),
    });
    return this.caller.unary("admin", this.admin.previewDefinition.bind(this.admin), request);
  }

  // -- identity rules --------------------------------------------------------------------------

  /** The space's identity resolution rules. */
  async getIdentityRules(): Promise<IdentityRules> {
    const reply = await this.caller.unary("admin", this.admin.getIdentityRules.bind(this.admin), GetIdentityRulesRequest.fromPartial({}));
    return reply.identityRules!;
  }

  /** Changes the given fields of one identifier type's rule (`limitPeriod`: ever, daily, weekly, monthly, annually). */
  async updateIdentityRule(
    idType: string,
    update: {
      blockedPatterns?: string[];
      blockedValues?: string[];
      limit?: number;
      limitPeriod?: string;
      priority?: number;
      sourceKeys?: string[];
    },
  ): Promise<IdentityRule> {
    const { limitPeriod, ...rest } = update;
    const { set, paths } = changes({
      ...rest,
      limitPeriod: limitPeriod === undefined ? undefined : pick(LIMIT_PERIODS, limitPeriod, "limitPeriod"),
    });
    const request = UpdateIdentityRuleRequest.fromPartial({ rule: { ...set, idType }, updateMask: paths });
    return (await this.caller.unary("admin", this.admin.updateIdentityRule.bind(this.admin), request)).rule!;
  }

  /** How often each rule held back identifiers of each type, the most frequent first. */
  listIdentityRuleViolations(options: { startTime?: Date; idType?: string } & PageOptions = {}): Promise<ListIdentityRuleViolationsResponse> {
    const request = ListIdentityRuleViolationsRequest.fromPartial(options);
    return this.caller.unary("admin", this.admin.listIdentityRuleViolations.bind(this.admin), request);
  }

  // -- the evaluator ---------------------------------------------------------------------------

  /** Moves a manual-clock server's clock to `clockTime`, or forward by `advanceMs`. */
  async setClock(to: { clockTime: Date } | { advanceMs: number }): Promise<SetClockResponse> {
    const request =
      "clockTime" in to
        ? SetClockRequest.fromPartial({ clockTime: to.clockTime })
        : SetClockRequest.fromPartial({ advance: duration(to.advanceMs) });
    return this.caller.unary("admin", this.admin.setClock.bind(this.admin), request);
  }

  /**
   * Runs a tick now (or ticks until no work waits) and resolves to what each did. It may take
   * 600 s under the default `timeoutMs` (a tick until idle can be long); a `timeoutMs` given to
   * the client applies to it as it is.
   */
  runTick(options: { untilIdle?: boolean } = {}): Promise<RunTickResponse> {
    const timeout = this.caller.longTimeout(600_000);
    return this.caller.unary("admin", this.admin.runTick.bind(this.admin), RunTickRequest.fromPartial(options), timeout);
  }

  /** The evaluator's clock, its last tick and the work waiting. */
  getEvaluatorStatus(): Promise<GetEvaluatorStatusResponse> {
    return this.caller.unary("admin", this.admin.getEvaluatorStatus.bind(this.admin), GetEvaluatorStatusRequest.fromPartial({}));
  }

  /**
   * Waits until no audience or computed trait is BACKFILLING; resolves to them all. With `tick`
   * (default), runs ticks until idle while waiting (needed on a manual-clock server).
   * Rejects with DEADLINE_EXCEEDED / BACKFILL_TIMEOUT after `timeoutMs`.
   */
  async waitUntilLive(options: { timeoutMs?: number; tick?: boolean } = {}): Promise<Array<Audience | ComputedTrait>> {
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    for (;;) {
      if (options.tick ?? true) await this.runTick({ untilIdle: true });
      const found: Array<Audience | ComputedTrait> = [...(await collect(this.iterAudiences())), ...(await collect(this.iterComputedTraits()))];
      const waiting = found.filter((c) => c.status === ComputationStatus.COMPUTATION_STATUS_BACKFILLING).map((c) => c.key);
      if (!waiting.length) return found;
      if (Date.now() > deadline) {
        throw new AudiencesError(Status.DEADLINE_EXCEEDED, `still backfilling: ${waiting.join(", ")}`, {
          reason: "BACKFILL_TIMEOUT",
          metadata: { keys: waiting.join(",") },
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  // -- explanations, history, versions, audit --------------------------------------------------

  /** Why a profile is (or is not) in an audience, or has its computed trait's value, now or at `explainTime`. */
  explainMembership(
    key: string,
    profileId: string,
    options: { collection?: Collectionish; explainTime?: Date; maxEvidence?: number } = {},
  ): Promise<ExplainMembershipResponse> {
    const { collection, ...rest } = options;
    const request = ExplainMembershipRequest.fromPartial({ ...rest, key, profileId, collection: collectionValue(collection ?? "users") });
    return this.caller.unary("admin", this.admin.explainMembership.bind(this.admin), request);
  }

  /** One page of membership changes, of a computation (`key`) or of a profile (`profileId`), or both. */
  listMembershipHistory(
    options: { key?: string; profileId?: string; collection?: Collectionish; startTime?: Date; endTime?: Date } & PageOptions = {},
  ): Promise<ListMembershipHistoryResponse> {
    const { collection, ...rest } = options;
    const request = ListMembershipHistoryRequest.fromPartial({ ...rest, collection: collectionValue(collection ?? "users") });
    return this.caller.unary("admin", this.admin.listMembershipHistory.bind(this.admin), request);
  }

  /** Every membership change asked for (as `listMembershipHistory`), following the pages. */
  iterMembershipHistory(
    options: { key?: string; profileId?: string; collection?: Collectionish; startTime?: Date; endTime?: Date } = {},
  ): AsyncGenerator<MembershipChange> {
    return pages((pageToken) => this.listMembershipHistory({ ...options, pageSize: 1000, pageToken }), (page) => page.changes);
  }

  /**
   * A computation's size over time, a point per hour or per day (`interval`: "hourly", the
   * default, or "daily"); another word rejects with INVALID_ARGUMENT `INTERVAL_INVALID`.
   */
  async getSizeHistory(
    key: string,
    options: { collection?: Collectionish; interval?: IntervalName; startTime?: Date; endTime?: Date } = {},
  ): Promise<GetSizeHistoryResponse> {
    const { collection, interval, ...rest } = options;
    const request = GetSizeHistoryRequest.fromPartial({
      ...rest,
      key,
      collection: collectionValue(collection ?? "users"),
      interval: pick(INTERVALS, interval ?? "hourly", "interval"),
    });
    return this.caller.unary("admin", this.admin.getSizeHistory.bind(this.admin), request);
  }

  /** One page of a computation's definition versions. */
  listDefinitionVersions(key: string, options: { collection?: Collectionish } & PageOptions = {}): Promise<ListDefinitionVersionsResponse> {
    const { collection, ...page } = options;
    const request = ListDefinitionVersionsRequest.fromPartial({ ...page, key, collection: collectionValue(collection ?? "users") });
    return this.caller.unary("admin", this.admin.listDefinitionVersions.bind(this.admin), request);
  }

  /** Every version of a computation's definition, the newest first. */
  iterDefinitionVersions(key: string, options: { collection?: Collectionish } = {}): AsyncGenerator<DefinitionVersion> {
    return pages((pageToken) => this.listDefinitionVersions(key, { ...options, pageSize: 1000, pageToken }), (page) => page.versions);
  }

  /** One version of a computation's definition (0 for the current one). */
  async getDefinitionVersion(key: string, version: number, options: { collection?: Collectionish } = {}): Promise<DefinitionVersion> {
    const request = GetDefinitionVersionRequest.fromPartial({ key, version, collection: collectionValue(options.collection ?? "users") });
    return (await this.caller.unary("admin", this.admin.getDefinitionVersion.bind(this.admin), request)).version!;
  }

  /** One page of the audit log, the newest first, filtered by action and target. */
  listAuditEntries(options: { action?: string; targetType?: string; target?: string } & PageOptions = {}): Promise<ListAuditEntriesResponse> {
    return this.caller.unary("admin", this.admin.listAuditEntries.bind(this.admin), ListAuditEntriesRequest.fromPartial(options));
  }

  /** Every audit entry asked for, the newest first, following the pages. */
  iterAuditEntries(options: { action?: string; targetType?: string; target?: string } = {}): AsyncGenerator<AuditEntry> {
    return pages((pageToken) => this.listAuditEntries({ ...options, pageSize: 1000, pageToken }), (page) => page.entries);
  }

  /**
   * What saving `definition` as the new definition of `key` would change now: how many profiles
   * would enter, exit and stay, with samples of each. Changes nothing. The options given
   * (`includeAnonymousUsers`, `includeHistoricalData`, `backfillDays`) are those the edit would
   * change: the others keep their saved values, read first, and the diff is evaluated with them
   * as the update would save them (as the Python client's `diff_definition`).
   */
  async diffDefinition(key: string, definition: string, options: DiffOptions = {}): Promise<DefinitionDiff> {
    const kind = kindValue(options.kind ?? "audience");
    const collection = options.collection ?? "users";
    const edited = {
      includeAnonymousUsers: options.includeAnonymousUsers,
      includeHistoricalData: options.includeHistoricalData,
      backfillDays: options.backfillDays,
    };
    const given = Object.fromEntries(Object.entries(edited).filter(([, value]) => value !== undefined));
    let compareOptions: ComputationOptions | undefined;
    if (Object.keys(given).length) {
      const saved = await this.saved(key, kind, collection);
      compareOptions = ComputationOptions.fromPartial({ ...saved.options, ...given });
    }
    const request = PreviewDefinitionRequest.fromPartial({
      definition,
      kind,
      collection: collectionValue(collection),
      sampleSize: options.sampleSize,
      compareKey: key,
      compareOptions,
    });
    const reply = await this.caller.unary("admin", this.admin.previewDefinition.bind(this.admin), request);
    return reply.diff!;
  }

  /**
   * Updates the definition to an older version's text and options (a new version); its backfill
   * then restores that version's members. A version with the current text and options changes
   * nothing: no update is sent (no new version, no backfill, no audit entry) and the definition
   * is returned as it stands. A version below 1 or beyond an int32 rejects with INVALID_ARGUMENT
   * `VERSION_INVALID` (0, "the current one" to `getDefinitionVersion`, is nothing to roll back to).
   */
  async rollbackDefinition(key: string, version: number, options: { collection?: Collectionish } = {}): Promise<Audience | ComputedTrait> {
    if (!(Number.isInteger(version) && version >= 1 && version <= MAX_VERSION)) {
      throw invalidArgument(`version must be a whole number from 1 to ${MAX_VERSION.toLocaleString("en")}, not ${version}`, "VERSION_INVALID", {
        value: String(version),
      });
    }
    const collection = options.collection ?? "users";
    const old = await this.getDefinitionVersion(key, version, { collection });
    const kind = old.computation?.kind ?? ComputationKind.COMPUTATION_KIND_AUDIENCE;
    if (sameDefinition(old, await this.getDefinitionVersion(key, 0, { collection }))) {
      return this.saved(key, kind, collection);
    }
    const update = { collection, definition: old.definition, options: old.options ?? ComputationOptions.fromPartial({}) };
    return kind === ComputationKind.COMPUTATION_KIND_AUDIENCE ? this.updateAudience(key, update) : this.updateComputedTrait(key, update);
  }

  /** The saved audience or computed trait of `key`. */
  private saved(key: string, kind: ComputationKind, collection: Collectionish): Promise<Audience | ComputedTrait> {
    return kind === ComputationKind.COMPUTATION_KIND_AUDIENCE
      ? this.getAudience(key, { collection })
      : this.getComputedTrait(key, { collection });
  }

  // -- profiles --------------------------------------------------------------------------------

  /** One page of a profile's traits by key (`traitClass`: audience, computed_trait, custom). */
  listTraits(
    profile: string,
    options: { collection?: Collectionish; include?: string[]; traitClass?: string; verbose?: boolean } & PageOptions = {},
  ): Promise<ListTraitsResponse> {
    const { collection, traitClass, ...rest } = options;
    const request = ListTraitsRequest.fromPartial({
      ...rest,
      profile: ref(profile, collection),
      traitClass: traitClass ? pick(TRAIT_CLASSES, traitClass, "traitClass") : undefined,
    });
    return this.caller.unary("read", this.profiles.listTraits.bind(this.profiles), request);
  }

  /** Every trait of a profile as a plain object: custom, computed and audience traits. */
  async getTraits(profile: string, options: { collection?: Collectionish; traitClass?: string } = {}): Promise<Record<string, unknown>> {
    const traits = pages((pageToken) => this.listTraits(profile, { ...options, pageSize: 200, pageToken }), (page) => page.traits);
    const out: Record<string, unknown> = {};
    for await (const trait of traits) out[trait.key] = traitValue(trait);
    return out;
  }

  /**
   * One page of a profile's events (`sort`: desc, newest first, the default, or asc); another
   * word rejects with INVALID_ARGUMENT `SORT_INVALID`.
   */
  async listEvents(
    profile: string,
    options: { collection?: Collectionish; startTime?: Date; endTime?: Date; include?: string[]; exclude?: string[]; sort?: SortName } & PageOptions = {},
  ): Promise<ListEventsResponse> {
    const { collection, sort, ...rest } = options;
    const request = ListEventsRequest.fromPartial({
      ...rest,
      profile: ref(profile, collection),
      sortOrder: pick(SORTS, sort ?? "desc", "sort"),
    });
    return this.caller.unary("read", this.profiles.listEvents.bind(this.profiles), request);
  }

  /** Every event of a profile (filters as in `listEvents`), following the pages. */
  iterEvents(profile: string, options: Omit<Parameters<Client["listEvents"]>[1], keyof PageOptions> = {}): AsyncGenerator<Event> {
    return pages((pageToken) => this.listEvents(profile, { ...options, pageSize: 200, pageToken }), (page) => page.events);
  }

  /** One page of a profile's identifiers. */
  listExternalIds(profile: string, options: { collection?: Collectionish } & PageOptions = {}): Promise<ListExternalIdsResponse> {
    const { collection, ...page } = options;
    const request = ListExternalIdsRequest.fromPartial({ ...page, profile: ref(profile, collection) });
    return this.caller.unary("read", this.profiles.listExternalIds.bind(this.profiles), request);
  }

  /** One page of a user's accounts, or of an account's users. */
  listLinks(profile: string, options: { collection?: Collectionish } & PageOptions = {}): Promise<ListLinksResponse> {
    const { collection, ...page } = options;
    const request = ListLinksRequest.fromPartial({ ...page, profile: ref(profile, collection) });
    return this.caller.unary("read", this.profiles.listLinks.bind(this.profiles), request);
  }

  /** When a profile was created and updated, its first and last message, its merges. */
  async getMetadata(profile: string, options: { collection?: Collectionish } = {}): Promise<ProfileMetadata> {
    const request = GetMetadataRequest.fromPartial({ profile: ref(profile, options.collection) });
    return (await this.caller.unary("read", this.profiles.getMetadata.bind(this.profiles), request)).metadata!;
  }

  /** One page of the audiences a profile is in now. */
  listAudienceMemberships(profile: string, options: { collection?: Collectionish } & PageOptions = {}): Promise<ListAudienceMembershipsResponse> {
    const { collection, ...page } = options;
    const request = ListAudienceMembershipsRequest.fromPartial({ ...page, profile: ref(profile, collection) });
    return this.caller.unary("read", this.profiles.listAudienceMemberships.bind(this.profiles), request);
  }

  // -- destinations and connections ------------------------------------------------------------

  /** Creates a destination of one kind: give exactly one of webhook, segment, grpcFeed, csv, postgres. */
  async createDestination(key: string, input: DestinationInput): Promise<Destination> {
    const kinds = DESTINATION_KINDS.filter((kind) => input[kind] !== undefined);
    if (kinds.length !== 1) {
      throw invalidArgument(`give exactly one of ${DESTINATION_KINDS.join(", ")}`, "DESTINATION_CONFIG_INVALID", { given: kinds.join(",") });
    }
    const request = CreateDestinationRequest.fromPartial({ destination: { enabled: true, ...input, key } });
    return (await this.caller.unary("admin", this.sync.createDestination.bind(this.sync), request)).destination!;
  }

  /** One destination. */
  async getDestination(key: string): Promise<Destination> {
    const request = GetDestinationRequest.fromPartial({ key });
    return (await this.caller.unary("admin", this.sync.getDestination.bind(this.sync), request)).destination!;
  }

  /** One page of destinations. */
  listDestinations(options: PageOptions = {}): Promise<ListDestinationsResponse> {
    return this.caller.unary("admin", this.sync.listDestinations.bind(this.sync), ListDestinationsRequest.fromPartial(options));
  }

  /** Every destination. */
  iterDestinations(): AsyncGenerator<Destination> {
    return pages((pageToken) => this.listDestinations({ pageSize: 1000, pageToken }), (page) => page.destinations);
  }

  /** Changes the given fields (a config given replaces that whole config). */
  async updateDestination(key: string, update: DestinationInput): Promise<Destination> {
    const { set, paths } = changes(update);
    const request = UpdateDestinationRequest.fromPartial({ destination: { ...set, key }, updateMask: paths });
    return (await this.caller.unary("admin", this.sync.updateDestination.bind(this.sync), request)).destination!;
  }

  /** Deletes a destination (`force` also removes its connections and queued deliveries). */
  async deleteDestination(key: string, options: { force?: boolean } = {}): Promise<void> {
    const request = DeleteDestinationRequest.fromPartial({ key, force: options.force });
    await this.caller.unary("admin", this.sync.deleteDestination.bind(this.sync), request);
  }

  /** Connects an audience or computed trait to a destination; its first sync starts. */
  async connectDestination(destinationKey: string, key: string, input: ConnectionInput = {}): Promise<Connection> {
    const { kind, collection, identifierSelection, ...rest } = input;
    const request = ConnectDestinationRequest.fromPartial({
      connection: {
        ...rest,
        destinationKey,
        computation: computationRef(key, kind, collection),
        identifierSelection: pick(SELECTIONS, identifierSelection ?? "all", "identifierSelection"),
      },
    });
    return (await this.caller.unary("admin", this.sync.connectDestination.bind(this.sync), request)).connection!;
  }

  /** One connection with its delivery status. */
  async getConnection(destinationKey: string, key: string, options: { kind?: Kindish; collection?: Collectionish } = {}): Promise<Connection> {
    const request = GetConnectionRequest.fromPartial({ destinationKey, computation: computationRef(key, options.kind, options.collection) });
    return (await this.caller.unary("admin", this.sync.getConnection.bind(this.sync), request)).connection!;
  }

  /** One page of connections with their delivery status. */
  listConnections(options: { destinationKey?: string; computation?: ComputationRef } & PageOptions = {}): Promise<ListConnectionsResponse> {
    return this.caller.unary("admin", this.sync.listConnections.bind(this.sync), ListConnectionsRequest.fromPartial(options));
  }

  /** Changes what a connection sends from now on (only the fields given). */
  async updateConnection(destinationKey: string, key: string, update: ConnectionInput): Promise<Connection> {
    const { kind, collection, identifierSelection, ...rest } = update;
    const { set, paths } = changes({
      ...rest,
      identifierSelection: identifierSelection && pick(SELECTIONS, identifierSelection, "identifierSelection"),
    });
    const request = UpdateConnectionRequest.fromPartial({
      connection: { ...set, destinationKey, computation: computationRef(key, kind, collection) },
      updateMask: paths,
    });
    return (await this.caller.unary("admin", this.sync.updateConnection.bind(this.sync), request)).connection!;
  }

  /** Removes a connection; nothing more is sent for it. */
  async disconnectDestination(destinationKey: string, key: string, options: { kind?: Kindish; collection?: Collectionish } = {}): Promise<void> {
    const request = DisconnectDestinationRequest.fromPartial({ destinationKey, computation: computationRef(key, options.kind, options.collection) });
    await this.caller.unary("admin", this.sync.disconnectDestination.bind(this.sync), request);
  }

  /** One page of parked deliveries, the oldest first. */
  listDeadLetters(options: { destinationKey?: string; computation?: ComputationRef } & PageOptions = {}): Promise<ListDeadLettersResponse> {
    return this.caller.unary("admin", this.sync.listDeadLetters.bind(this.sync), ListDeadLettersRequest.fromPartial(options));
  }

  /** Puts parked deliveries back in the queue; resolves to how many. */
  async redriveDeadLetters(destinationKey: string, options: { computation?: ComputationRef; deadLetterIds?: string[] } = {}): Promise<number> {
    const request = RedriveDeadLettersRequest.fromPartial({ ...options, destinationKey });
    return (await this.caller.unary("admin", this.sync.redriveDeadLetters.bind(this.sync), request)).redrivenCount;
  }

  /**
   * One page of a `grpcFeed` destination's change records after a cursor. Each record's
   * `oldValue` and `newValue` are read from its JSON text, numbers exact (see `exactChange`).
   */
  async listChanges(destinationKey: string, options: { startCursor?: string } & PageOptions = {}): Promise<ListChangesResponse> {
    const request = ListChangesRequest.fromPartial({ ...options, destinationKey });
    const page = await this.caller.unary("admin", this.sync.listChanges.bind(this.sync), request);
    page.changes.forEach(exactChange);
    return page;
  }

  /**
   * Acknowledges a `grpcFeed` destination's records up to `cursor` (the last one processed), as a
   * `watchChanges` consumer does once it has processed them; resolves once stored.
   */
  async ackChanges(destinationKey: string, cursor: string): Promise<void> {
    await this.caller.unary("admin", this.sync.ackChanges.bind(this.sync), AckChangesRequest.fromPartial({ destinationKey, cursor }));
  }

  /**
   * Follows a `grpcFeed` destination's change feed: the backlog, then each new record, with
   * heartbeats while quiet. Runs until the caller stops iterating (`break` ends the stream).
   * Records streamed are not acknowledged (the start cursor is): call `ackChanges` once they
   * are processed.
   */
  async *watchChanges(destinationKey: string, options: { startCursor?: string; heartbeatIntervalMs?: number } = {}): AsyncGenerator<WatchChangesResponse> {
    const interval = options.heartbeatIntervalMs;
    const request = WatchChangesRequest.fromPartial({
      destinationKey,
      startCursor: options.startCursor,
      heartbeatInterval: duration(interval),
    });
    for await (const item of this.caller.stream("admin", this.sync.watchChanges.bind(this.sync), request, 2 ** 31)) {
      if (item.change) exactChange(item.change);
      yield item;
    }
  }

  /** An audience's members as CSV chunks (the header row first), from one snapshot. */
  async *exportAudience(
    key: string,
    options: { collection?: Collectionish; externalIdTypes?: string[]; includeTraits?: string[]; identifierSelection?: IdentifierSelectionName } = {},
  ): AsyncGenerator<Buffer> {
    const request = ExportAudienceRequest.fromPartial({
      ...options,
      key,
      collection: collectionValue(options.collection ?? "users"),
      identifierSelection: pick(SELECTIONS, options.identifierSelection ?? "all", "identifierSelection"),
    });
    for await (const chunk of this.caller.stream("admin", this.sync.exportAudience.bind(this.sync), request, this.caller.longTimeout(3_600_000))) {
      yield chunk.csvData;
    }
  }

  // -- spaces (operator) -----------------------------------------------------------------------
  // Every operator method takes `space`, a space's name; empty (the default) is the operator
  // token's own space.

  /** Creates a space, keeping events for `eventRetentionMs` (default: for ever). */
  async createSpace(name: string, options: { eventRetentionMs?: number } = {}): Promise<Space> {
    const request = CreateSpaceRequest.fromPartial({ space: { name, eventRetention: duration(options.eventRetentionMs) } });
    return (await this.caller.unary("operator", this.operator.createSpace.bind(this.operator), request)).space!;
  }

  /** One space with its settings (default: the token's own). */
  async getSpace(name = ""): Promise<Space> {
    const request = GetSpaceRequest.fromPartial({ name });
    return (await this.caller.unary("operator", this.operator.getSpace.bind(this.operator), request)).space!;
  }

  /** One page of the server's spaces, the oldest first. */
  listSpaces(options: PageOptions = {}): Promise<ListSpacesResponse> {
    return this.caller.unary("operator", this.operator.listSpaces.bind(this.operator), ListSpacesRequest.fromPartial(options));
  }

  /** Every space of the server, the oldest first. */
  iterSpaces(): AsyncGenerator<Space> {
    return pages((pageToken) => this.listSpaces({ pageSize: 1000, pageToken }), (page) => page.spaces);
  }

  /**
   * Changes the given settings of a space: `eventRetentionMs` (null: events kept for ever).
   * Refused (`RETENTION_CONFLICT`) while an enabled definition of the space reads further back.
   */
  async updateSpace(name: string, update: { eventRetentionMs?: number | null }): Promise<Space> {
    const paths = update.eventRetentionMs === undefined ? [] : ["event_retention"];
    const request = UpdateSpaceRequest.fromPartial({
      space: { name, eventRetention: duration(update.eventRetentionMs ?? undefined) },
      updateMask: paths,
    });
    return (await this.caller.unary("operator", this.operator.updateSpace.bind(this.operator), request)).space!;
  }

  /** Sets how long a space keeps events, in milliseconds (null: for ever). */
  setEventRetention(name: string, eventRetentionMs: number | null): Promise<Space> {
    return this.updateSpace(name, { eventRetentionMs });
  }

  // -- tokens (operator) -----------------------------------------------------------------------

  /**
   * Issues a token of one scope (write, read, admin, operator); the reply's `secret` is shown
   * this once. It expires after `ttlMs` or at `expireTime`, or never.
   */
  async createToken(scope: Scopeish, options: { space?: string; label?: string; ttlMs?: number; expireTime?: Date } = {}): Promise<CreateTokenResponse> {
    const { ttlMs, ...rest } = options;
    const request = CreateTokenRequest.fromPartial({ ...rest, scope: scopeValue(scope), ttl: duration(ttlMs) });
    return this.caller.unary("operator", this.operator.createToken.bind(this.operator), request);
  }

  /** One page of a space's tokens, the oldest first, revoked and expired ones included; never a secret. */
  listTokens(options: { space?: string } & PageOptions = {}): Promise<ListTokensResponse> {
    return this.caller.unary("operator", this.operator.listTokens.bind(this.operator), ListTokensRequest.fromPartial(options));
  }

  /** Every token of a space, following the pages. */
  iterTokens(options: { space?: string } = {}): AsyncGenerator<Token> {
    return pages((pageToken) => this.listTokens({ ...options, pageSize: 1000, pageToken }), (page) => page.tokens);
  }

  /** Revokes a token by its id (`tok_…`): its next call is refused with TOKEN_REVOKED. */
  async revokeToken(tokenId: string): Promise<Token> {
    const request = RevokeTokenRequest.fromPartial({ tokenId });
    return (await this.caller.unary("operator", this.operator.revokeToken.bind(this.operator), request)).token!;
  }

  // -- profile deletions and suppressions (operator) -------------------------------------------

  /**
   * Starts deleting a profile (`type:value` or `prf_…`); with `suppress`, later calls carrying its
   * identifiers are refused. Waits up to `deliveryTimeoutMs` (server default: 1 hour) for its
   * exits to be delivered. Resolves to the deletion, PENDING; `getProfileDeletion` says when it
   * is COMPLETE.
   */
  async deleteProfile(
    profile: string,
    options: { collection?: Collectionish; space?: string; suppress?: boolean; deliveryTimeoutMs?: number } = {},
  ): Promise<ProfileDeletion> {
    const { collection, deliveryTimeoutMs, ...rest } = options;
    const request = DeleteProfileRequest.fromPartial({ ...rest, profile: ref(profile, collection), deliveryTimeout: duration(deliveryTimeoutMs) });
    return (await this.caller.unary("operator", this.operator.deleteProfile.bind(this.operator), request)).deletion!;
  }

  /** One profile deletion (`del_…`) and how far it got. */
  async getProfileDeletion(deletionId: string, options: { space?: string } = {}): Promise<ProfileDeletion> {
    const request = GetProfileDeletionRequest.fromPartial({ ...options, deletionId });
    return (await this.caller.unary("operator", this.operator.getProfileDeletion.bind(this.operator), request)).deletion!;
  }

  /** One page of a space's profile deletions, the newest first. */
  listProfileDeletions(options: { space?: string } & PageOptions = {}): Promise<ListProfileDeletionsResponse> {
    const request = ListProfileDeletionsRequest.fromPartial(options);
    return this.caller.unary("operator", this.operator.listProfileDeletions.bind(this.operator), request);
  }

  /** Every profile deletion of a space, following the pages. */
  iterProfileDeletions(options: { space?: string } = {}): AsyncGenerator<ProfileDeletion> {
    return pages((pageToken) => this.listProfileDeletions({ ...options, pageSize: 1000, pageToken }), (page) => page.deletions);
  }

  /** One page of a space's suppressed identifiers, by collection, type and value. */
  listSuppressions(options: { space?: string } & PageOptions = {}): Promise<ListSuppressionsResponse> {
    const request = ListSuppressionsRequest.fromPartial(options);
    return this.caller.unary("operator", this.operator.listSuppressions.bind(this.operator), request);
  }

  /** Every suppressed identifier of a space, following the pages. */
  iterSuppressions(options: { space?: string } = {}): AsyncGenerator<Suppression> {
    return pages((pageToken) => this.listSuppressions({ ...options, pageSize: 1000, pageToken }), (page) => page.suppressions);
  }

  /** Stops suppressing an identifier (`type:value`): calls carrying it are stored again. */
  async deleteSuppression(externalId: string, options: { collection?: Collectionish; space?: string } = {}): Promise<void> {
    const colon = externalId.indexOf(":");
    if (colon < 0) throw invalidArgument(`an identifier is type:value, not ${externalId}`, "EXTERNAL_ID_INVALID");
    const request = DeleteSuppressionRequest.fromPartial({
      space: options.space,
      externalId: { type: externalId.slice(0, colon), value: externalId.slice(colon + 1), collection: collectionValue(options.collection ?? "users") },
    });
    await this.caller.unary("operator", this.operator.deleteSuppression.bind(this.operator), request);
  }
}

function computation(input: ComputationInput): DeepPartial<Audience> {
  return {
    collection: collectionValue(input.collection ?? "users"),
    name: input.name,
    description: input.description,
    enabled: input.enabled ?? true,
    options: input.options,
  };
}

function computationRef(key: string, kind: Kindish = "audience", collection: Collectionish = "users"): DeepPartial<ComputationRef> {
  return { key, kind: kindValue(kind), collection: collectionValue(collection) };
}

/**
 * Milliseconds as a protobuf Duration; undefined stays unset. NaN, an infinity or more than a
 * Duration holds (10,000 years) throws INVALID_ARGUMENT `DURATION_INVALID`, as in the Python client.
 */
function duration(ms: number | undefined): { seconds: number; nanos: number } | undefined {
  if (ms === undefined) return undefined;
  if (typeof ms !== "number" || !(Math.abs(ms / 1000) <= MAX_DURATION_SECONDS)) {
    throw invalidArgument(
      `a duration must be a finite number of milliseconds within 10,000 years (${MAX_DURATION_SECONDS.toLocaleString("en")} s), not ${String(ms)}`,
      "DURATION_INVALID",
      { value: String(ms) },
    );
  }
  const seconds = Math.trunc(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Whether two versions have the same text and options (rolling back from one to the other would change nothing). */
function sameDefinition(one: DefinitionVersion, other: DefinitionVersion): boolean {
  const options = (version: DefinitionVersion): Buffer =>
    Buffer.from(ComputationOptions.encode(ComputationOptions.fromPartial(version.options ?? {})).finish());
  return one.definition === other.definition && options(one).equals(options(other));
}

function ref(profile: string, collection: Collectionish | undefined): { id: string; collection: Collection } {
  return { id: profile, collection: collectionValue(collection ?? "users") };
}

async function* pages<P extends { nextPageToken: string }, T>(fetch: (token: string) => Promise<P>, items: (page: P) => T[]): AsyncGenerator<T> {
  let token = "";
  do {
    const page = await fetch(token);
    yield* items(page);
    token = page.nextPageToken;
  } while (token);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
