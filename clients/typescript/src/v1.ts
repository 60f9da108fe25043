/** The generated code for the `audiences.v1` protobuf package, for use without the wrapper. */

export * as admin from "./gen/audiences/v1/admin.js";
export * as common from "./gen/audiences/v1/common.js";
export * as ingest from "./gen/audiences/v1/ingest.js";
export * as operator from "./gen/audiences/v1/operator.js";
export * as profiles from "./gen/audiences/v1/profiles.js";
export * as sync from "./gen/audiences/v1/sync.js";
export * as tracking from "./gen/audiences/v1/tracking.js";
