/**
 * Node client for the Audiences server.
 *
 * `Client` sends tracking calls in background batches and exposes every other RPC as a method
 * resolving to the generated message; every failure is an `AudiencesError`. The generated code
 * (messages and `@grpc/grpc-js` service clients) is exported under `v1`.
 */

export { Batcher, type BatchOptions, type BatchStats, type OverflowPolicy, retryBudgetMs, toJson, type Undelivered } from "./batching.js";
export { idempotentMethods, serviceConfig } from "./channel.js";
export * from "./client.js";
export { type ConnectionOptions, credentialsPath, DEFAULT_ADDRESS, resolve, type Resolved, type Scope, type Tokens } from "./config.js";
export { AudiencesError, type FieldViolation, QueueFull } from "./errors.js";
export type { AliasParams, Common, GroupParams, IdentifyParams, Json, PageParams, ScreenParams, TrackParams } from "./messages.js";
export * as v1 from "./v1.js";
export { status } from "@grpc/grpc-js";
