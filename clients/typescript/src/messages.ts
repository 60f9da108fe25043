/**
 * Builders of tracking-spec calls in the tracking API's JSON shape (what `BatchJson` takes).
 *
 * Each builder checks what the server would refuse outright (no `userId` nor `anonymousId`, a
 * track call without an event, …) so the caller hears of it at once rather than from the
 * background queue, and gives the call a `messageId` (so a retry is stored once) and, without a
 * `timestamp`, an `originalTimestamp` of now: the server corrects it for clock skew with the
 * batch's `sentAt`.
 */

import { randomUUID } from "node:crypto";
import { status as Status } from "@grpc/grpc-js";
import { AudiencesError, invalidArgument } from "./errors.js";

export type Json = Record<string, unknown>;
export type Time = Date | string;
/** A call in the tracking API's JSON shape. */
export type Call = Json & { type: string; messageId?: string };

/** What every call may carry, as in Segment's libraries. */
export interface Common {
  userId?: string;
  anonymousId?: string;
  context?: Json;
  integrations?: Json;
  /** When it happened; default now (sent as `originalTimestamp`). */
  timestamp?: Time;
  messageId?: string;
}

export interface TrackParams extends Common {
  event: string;
  properties?: Json;
}

export interface IdentifyParams extends Common {
  traits?: Json;
}

export interface GroupParams extends Common {
  groupId: string;
  traits?: Json;
}

export interface AliasParams extends Omit<Common, "anonymousId"> {
  previousId: string;
  userId: string;
}

export interface PageParams extends Common {
  name?: string;
  category?: string;
  properties?: Json;
}

export type ScreenParams = PageParams;

/** A new `messageId`, as every call the client makes gets one. */
export function newMessageId(): string {
  return `node-${randomUUID()}`;
}

function refuse(reason: string, field: string, message: string): AudiencesError {
  return new AudiencesError(Status.INVALID_ARGUMENT, message, {
    reason: reason.toUpperCase(),
    metadata: { code: reason },
    violations: [{ field, description: message }],
  });
}

/** A Date's ISO text; an Invalid Date (whose `toISOString` throws a RangeError) is refused as `TIME_INVALID`. */
function isoTime(time: Date, field: string): string {
  if (Number.isNaN(time.getTime())) {
    throw invalidArgument(`${field} is an Invalid Date`, "TIME_INVALID", { field });
  }
  return time.toISOString();
}

function common(type: string, params: Common, needIdentity = true): Call {
  if (needIdentity && !params.userId && !params.anonymousId) {
    throw refuse("no_user_anon_id", "userId", "a call needs a userId or an anonymousId");
  }
  const call: Call = { type, messageId: params.messageId || newMessageId() };
  if (params.userId) call.userId = String(params.userId);
  if (params.anonymousId) call.anonymousId = String(params.anonymousId);
  if (params.timestamp === undefined) {
    call.originalTimestamp = new Date().toISOString();
  } else {
    call.timestamp = params.timestamp instanceof Date ? isoTime(params.timestamp, "timestamp") : params.timestamp;
  }
  if (params.context) call.context = params.context;
  if (params.integrations) call.integrations = params.integrations;
  return call;
}

/** A track call: `event` done by the user, with its properties. */
export function track(params: TrackParams): Call {
  if (!params.event) {
    throw refuse("event_not_defined", "event", "a track call needs an event name");
  }
  return { ...common("track", params), event: params.event, properties: params.properties ?? {} };
}

/** An identify call: who the user is, and traits to set (`null` values remove a trait). */
export function identify(params: IdentifyParams): Call {
  return { ...common("identify", params), traits: params.traits ?? {} };
}

/** A group call: links the user to the account `groupId` and sets the account's traits. */
export function group(params: GroupParams): Call {
  if (!params.groupId) {
    throw refuse("group_id_not_defined", "groupId", "a group call needs a groupId");
  }
  return { ...common("group", params), groupId: String(params.groupId), traits: params.traits ?? {} };
}

/** An alias call: `previousId` (an anonymous or older id) and `userId` are the same person. */
export function alias(params: AliasParams): Call {
  if (!params.previousId) {
    throw refuse("previous_id_not_defined", "previousId", "an alias call needs a previousId");
  }
  if (!params.userId) {
    throw refuse("user_id_not_defined", "userId", "an alias call needs a userId");
  }
  return { ...common("alias", params), previousId: String(params.previousId) };
}

function view(type: "page" | "screen", params: PageParams): Call {
  const call = common(type, params);
  if (params.name) call.name = params.name;
  if (params.category) call.category = params.category;
  return { ...call, properties: params.properties ?? {} };
}

/** A page call, stored as the event `Page Viewed`. */
export function page(params: PageParams): Call {
  return view("page", params);
}

/** A screen call, stored as the event `Screen Viewed`. */
export function screen(params: ScreenParams): Call {
  return view("screen", params);
}
