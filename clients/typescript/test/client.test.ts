/** The Node client against a real server: every service reached, typed errors, the queue flushed. */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AudiencesError, Client, resolve, type Undelivered, status, v1 } from "../src/index.js";
import { type RunningServer, rejection, startServer } from "./server.js";
import { AudienceAdminServiceService } from "../src/gen/audiences/v1/admin.js";
import { IngestServiceService } from "../src/gen/audiences/v1/ingest.js";
import { OperatorServiceService } from "../src/gen/audiences/v1/operator.js";
import { ProfilesServiceService } from "../src/gen/audiences/v1/profiles.js";
import { SyncServiceService } from "../src/gen/audiences/v1/sync.js";

const T0 = "2027-01-15T08:00:00.000Z";
let server: RunningServer;
let client: Client;
let counter = 0;
const unique = (prefix: string): string => `${prefix}_${process.pid}_${++counter}`;

function connect(options: ConstructorParameters<typeof Client>[0] = {}): Client {
  return new Client({ address: server.address, credentialsFile: server.credentialsFile, flushIntervalMs: 50, ...options });
}

before(async () => {
  server = await startServer();
  client = connect();
});

after(async () => {
  await client?.close();
  await server?.stop();
});

describe("tracking queue", () => {
  test("close() delivers every queued call, in several batches, with a long flush interval", async () => {
    const user = unique("batched");
    const batched = connect({ batchSize: 100, flushIntervalMs: 30_000 });
    for (let i = 0; i < 1_050; i += 1) {
      batched.track({ userId: user, event: "Item Seen", properties: { i }, timestamp: T0 });
    }
    assert.equal(batched.stats.accepted, 0);
    await batched.close();
    assert.equal(batched.stats.accepted, 1_050);
    assert.ok(batched.stats.batches >= 11, `only ${batched.stats.batches} batches`);
    const events = await client.listEvents(`user_id:${user}`, { pageSize: 1 });
    assert.equal(events.events[0]?.event, "Item Seen");
  });

  test("a lone call is sent once flushIntervalMs passes, without flush()", async () => {
    const lone = connect({ flushIntervalMs: 30 });
    const messageId = lone.identify({ userId: unique("lone"), traits: { plan: "pro" } });
    assert.match(messageId, /^node-/);
    const deadline = Date.now() + 5_000;
    while (lone.stats.accepted < 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(lone.stats.accepted, 1);
    await lone.close();
  });

  test("every tracking method is queued and stored; a repeated messageId is a duplicate", async () => {
    const user = unique("all");
    const account = unique("acct");
    client.identify({ userId: user, traits: { email: `${user}@example.com` }, timestamp: T0 });
    client.track({ userId: user, event: "Signed In", messageId: `m-${user}`, timestamp: T0 });
    client.track({ userId: user, event: "Signed In", messageId: `m-${user}`, timestamp: T0 });
    client.page({ userId: user, name: "Pricing", category: "Docs", timestamp: T0 });
    client.screen({ userId: user, name: "Home", timestamp: T0 });
    client.group({ userId: user, groupId: account, traits: { name: "Acme" }, timestamp: T0 });
    client.alias({ previousId: `anon-${user}`, userId: user, timestamp: T0 });
    const before = { ...client.stats };
    await client.flush();
    assert.equal(client.stats.accepted - before.accepted, 6);
    assert.equal(client.stats.duplicate - before.duplicate, 1);
    const names = (await client.listEvents(`user_id:${user}`, { sort: "asc" })).events.map((e) => e.event);
    assert.deepEqual(names.sort(), ["Page Viewed", "Screen Viewed", "Signed In"]);
  });

  test("a call the server rejects reaches onError with its reason and the call itself", async () => {
    const seen: Undelivered[] = [];
    const rejecting = connect({ onError: (u) => seen.push(u) });
    rejecting.enqueue({ type: "track", userId: "x", event: 42 });
    await rejecting.close();
    assert.deepEqual(seen.map((u) => [u.reason, u.message.event]), [["event_not_string", 42]]);
    assert.equal(rejecting.stats.rejected, 1);
  });

  test("a batch refused for good is reported once per call with the typed error, not retried", async () => {
    const seen: Undelivered[] = [];
    const wrongScope = connect({ writeToken: server.tokens.read, onError: (u) => seen.push(u) });
    wrongScope.track({ userId: "someone", event: "Anything" });
    await wrongScope.close();
    assert.equal(wrongScope.stats.failed, 1);
    assert.equal(wrongScope.stats.retries, 0);
    assert.equal(seen[0]?.error?.code, status.PERMISSION_DENIED);
    assert.equal(seen[0]?.reason, "SCOPE_MISSING");
  });

  test("calls the server would refuse outright throw at once with the same reason", () => {
    assert.throws(() => client.track({ event: "No One" }), (e: AudiencesError) => e.reason === "NO_USER_ANON_ID" && e.violations[0]?.field === "userId");
    assert.throws(() => client.track({ userId: "u", event: "Big", properties: { blob: "x".repeat(40_000) } }), /bytes of JSON/);
  });
});

describe("typed errors", () => {
  test("an invalid definition carries code, reason, metadata, violations, line, column and request id", async () => {
    const error = await rejection(client.createAudience("broken", "event('A').count( >= 1"));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.equal(error.reason, "INVALID_DEFINITION");
    assert.deepEqual([error.line, error.column], [1, 19]);
    assert.equal(error.metadata.offending_text, ">=");
    assert.equal(error.violations[0]?.field, "definition");
    assert.match(error.message, /\^\^/);
    assert.ok(error.requestId);
  });

  test("the unary Track RPC refuses an anonymous call with NO_USER_ANON_ID and a field violation", async () => {
    const error = await rejection(client.send({ track: { event: "Nobody" } }));
    assert.deepEqual([error.code, error.reason, error.metadata.code], [status.INVALID_ARGUMENT, "NO_USER_ANON_ID", "no_user_anon_id"]);
    assert.ok(error.violations.length > 0);
  });

  test("a token of the wrong scope is PERMISSION_DENIED / SCOPE_MISSING naming both scopes", async () => {
    const wrong = connect({ adminToken: server.tokens.write });
    const error = await rejection(wrong.listAudiences());
    assert.equal(error.code, status.PERMISSION_DENIED);
    assert.deepEqual(error.metadata, { required_scope: "admin", token_scope: "write" });
    await wrong.close();
  });

  test("a scope without a token is refused before calling, naming the option", async () => {
    const tokenless = new Client({ address: server.address, token: { write: "w" }, credentialsFile: "/nonexistent" });
    const error = await rejection(tokenless.getMetadata("user_id:x"));
    assert.deepEqual([error.code, error.reason, error.metadata], [status.UNAUTHENTICATED, "TOKEN_MISSING", { required_scope: "read" }]);
    assert.match(error.message, /readToken/);
    await tokenless.close();
  });

  test("a credentials file that gives no tokens says why, when named or when the default is there but unusable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "audiences-creds-"));
    const missing = join(dir, "missing.json");
    const named = new Client({ address: server.address, token: { write: "w" }, credentialsFile: missing });
    const error = await rejection(named.getMetadata("user_id:x"));
    assert.equal(error.reason, "TOKEN_MISSING");
    assert.match(error.message, new RegExp(`\\(cannot read the credentials file ${missing}: `));
    await named.close();
    writeFileSync(join(dir, "credentials.json"), '{"tokens": ');
    const env = { AUDIENCES_DB: join(dir, "audiences.db") };
    assert.match(resolve({}, env).credentialsProblem, /^the credentials file .*credentials\.json is not JSON/);
    assert.equal(resolve({ token: "t" }, env).credentialsProblem, ""); // not read
    assert.equal(resolve({}, { AUDIENCES_DB: join(dir, "elsewhere", "audiences.db") }).credentialsProblem, ""); // absent default
    rmSync(dir, { recursive: true });
  });

  test("the operator token comes from the credentials file like the others, and operatorToken wins", async () => {
    assert.ok(server.tokens.operator);
    assert.ok((await client.getSpace()).name);
    const wrong = connect({ operatorToken: server.tokens.admin });
    const error = await rejection(wrong.listSpaces());
    assert.equal(error.code, status.PERMISSION_DENIED);
    assert.deepEqual(error.metadata, { required_scope: "operator", token_scope: "admin" });
    await wrong.close();
  });

  test("a server that cannot be reached is UNAVAILABLE", async () => {
    const nowhere = new Client({ address: "127.0.0.1:1", token: "t", timeoutMs: 5_000 });
    const error = await rejection(nowhere.getEvaluatorStatus());
    assert.equal(error.code, status.UNAVAILABLE);
    await nowhere.close();
  });
});

describe("every service", () => {
  test("every RPC of the five services has a Client method (the ingest ones under their queue-free names)", () => {
    const ingest: Record<string, string> = {
      track: "send", identify: "send", page: "send", screen: "send", group: "send", alias: "send",
      batch: "sendTypedBatch", batchJson: "sendBatch", streamCalls: "streamCalls",
    };
    const rpcs = [
      ...Object.keys(IngestServiceService).map((name) => ingest[name] ?? name),
      ...[ProfilesServiceService, AudienceAdminServiceService, SyncServiceService, OperatorServiceService].flatMap((s) => Object.keys(s)),
    ];
    const missing = rpcs.filter((name) => typeof (client as unknown as Record<string, unknown>)[name] !== "function");
    assert.deepEqual(missing, []);
  });

  test("IngestService: the typed unary calls, Batch, BatchJson and StreamCalls", async () => {
    const user = unique("typed");
    const reply = await client.send({ identify: { userId: user } });
    assert.equal(reply.status, v1.ingest.MessageStatus.MESSAGE_STATUS_ACCEPTED);
    const typed = await client.sendTypedBatch([{ track: { userId: user, event: "A" } }]);
    assert.equal(typed.acceptedCount, 1, JSON.stringify(typed));
    const streamed = await client.streamCalls([0, 1, 2].map((i) => ({ type: "track", userId: user, event: `E${i}` })));
    assert.equal(streamed.acceptedCount, 3);
    assert.equal((await client.sendBatch([{ type: "page", userId: user }])).acceptedCount, 1);
  });

  test("AudienceAdminService and ProfilesService: definitions go LIVE and the member's profile reads back", async () => {
    const user = unique("ada");
    const key = unique("buyers");
    const traitKey = unique("spend");
    const account = unique("acme");
    client.identify({ userId: user, traits: { email: `${user}@example.com` }, timestamp: T0 });
    client.group({ userId: user, groupId: account, traits: { name: "Acme" }, timestamp: T0 });
    client.track({ userId: user, event: "Order Completed", properties: { revenue: 50 }, timestamp: T0 });
    await client.flush();
    const definition = `event('Order Completed').where(property('revenue') > 10).count() >= 1 AND trait('email') = '${user}@example.com'`;
    assert.equal((await client.validateDefinition(definition)).valid, true);
    assert.equal((await client.previewDefinition(definition)).count, 1);
    await client.createAudience(key, definition);
    await client.createComputedTrait(traitKey, "event('Order Completed').sum(property('revenue'))");
    await client.waitUntilLive({ timeoutMs: 30_000 });
    assert.equal((await client.getAudience(key)).size, 1);
    assert.equal((await client.getComputedTrait(traitKey)).status, v1.admin.ComputationStatus.COMPUTATION_STATUS_LIVE);
    const members = [];
    for await (const member of client.iterAudienceMembers(key)) members.push(member);
    assert.equal(members.length, 1);
    const updated = await client.updateAudience(key, { name: "Buyers", description: "who bought" });
    assert.deepEqual([updated.name, updated.definition], ["Buyers", definition]);
    assert.ok((await client.listComputedTraits()).computedTraits.some((t) => t.key === traitKey));
    const traits = await client.getTraits(`user_id:${user}`);
    assert.equal(traits[key], true);
    assert.equal(traits[traitKey], 50);
    assert.equal(traits.email, `${user}@example.com`);
    const ids = (await client.listExternalIds(`user_id:${user}`)).externalIds.map((i) => i.type);
    assert.deepEqual(new Set(ids), new Set(["user_id", "email"]));
    const links = await client.listLinks(`group_id:${account}`, { collection: "accounts" });
    assert.ok(links.links[0]?.profile?.externalIds.length);
    assert.match((await client.getMetadata(`user_id:${user}`)).profileId, /^prf_/);
    const memberships = await client.listAudienceMemberships(`user_id:${user}`);
    assert.deepEqual(memberships.memberships.map((m) => m.audienceKey), [key]);
    const profileId = (await client.getMetadata(`user_id:${user}`)).profileId;
    const explained = await client.explainMembership(key, profileId);
    assert.equal(explained.computation?.key, key);
    const history = await client.listMembershipHistory({ key });
    assert.deepEqual(history.changes.map((c) => c.profile?.profileId), [profileId]);
    assert.ok(Array.isArray((await client.getSizeHistory(key, { interval: "hourly" })).points));
    const versions = await client.listDefinitionVersions(key);
    assert.ok(versions.versions.length >= 1);
    assert.equal((await client.getDefinitionVersion(key, 0)).definition, definition);
    const audit = await client.listAuditEntries({ target: key });
    assert.ok(audit.entries.length >= 1, JSON.stringify(audit));
    await client.deleteAudience(key);
    await client.deleteComputedTrait(traitKey);
    assert.equal((await rejection(client.getAudience(key))).code, status.NOT_FOUND);
  });

  test("AudienceAdminService: identity rules, violations, the clock and ticks", async () => {
    const rules = await client.getIdentityRules();
    assert.ok(rules.rules.some((r) => r.idType === "user_id"));
    const rule = await client.updateIdentityRule("ios.id", { limit: 3, limitPeriod: "weekly" });
    assert.deepEqual([rule.limit, rule.limitPeriod], [3, v1.admin.IdentityLimitPeriod.IDENTITY_LIMIT_PERIOD_WEEKLY]);
    assert.ok(Array.isArray((await client.listIdentityRuleViolations()).violations));
    const before = (await client.getEvaluatorStatus()).clockTime!.getTime();
    const moved = await client.setClock({ advanceMs: 60_000 });
    assert.equal(moved.clockTime!.getTime(), before + 60_000);
    assert.equal((await client.runTick()).ticks[0]?.tickTime?.getTime(), before + 60_000);
  });

  test("SyncService: a grpc feed destination, its connection, change feed and CSV export", async () => {
    const user = unique("w");
    const key = unique("watched");
    const destination = unique("feed");
    client.identify({ userId: user, traits: { email: `${user}@example.com` }, timestamp: T0 });
    await client.flush();
    await client.createAudience(key, `trait('email') = '${user}@example.com'`);
    await client.waitUntilLive({ timeoutMs: 30_000 });
    await client.createDestination(destination, { grpcFeed: {} });
    assert.equal((await client.getDestination(destination)).key, destination);
    assert.equal((await client.updateDestination(destination, { name: "Feed" })).name, "Feed");
    const destinations = [];
    for await (const d of client.iterDestinations()) destinations.push(d.key);
    assert.ok(destinations.includes(destination));
    await client.connectDestination(destination, key);
    assert.equal((await client.getConnection(destination, key)).destinationKey, destination);
    const changed = await client.updateConnection(destination, key, { externalIdTypes: ["email"] });
    assert.deepEqual(changed.externalIdTypes, ["email"]);
    assert.ok((await client.listConnections({ destinationKey: destination })).connections.length === 1);
    await client.runTick({ untilIdle: true });
    let cursor = "";
    for await (const change of client.watchChanges(destination)) {
      assert.equal(change.change?.computation?.key, key);
      cursor = change.change?.cursor ?? "";
      break; // ends the stream
    }
    assert.ok((await client.listChanges(destination)).changes.length >= 1);
    assert.equal((await client.getConnection(destination, key)).delivery?.pendingCount, 1); // streamed, not acknowledged
    await client.ackChanges(destination, cursor);
    assert.equal((await client.getConnection(destination, key)).delivery?.pendingCount, 0);
    assert.deepEqual((await client.listDeadLetters({ destinationKey: destination })).deadLetters, []);
    assert.equal(await client.redriveDeadLetters(destination), 0);
    const chunks = [];
    for await (const chunk of client.exportAudience(key)) chunks.push(chunk);
    const csv = Buffer.concat(chunks).toString();
    assert.match(csv, /^profile_id/);
    assert.match(csv, new RegExp(user));
    await client.disconnectDestination(destination, key);
    await client.deleteDestination(destination, { force: true });
    assert.equal((await rejection(client.getDestination(destination))).code, status.NOT_FOUND);
  });

  test("OperatorService: a space, a token of it listed and revoked, its settings changed", async () => {
    const name = unique("space");
    const day = 86_400_000;
    const space = await client.createSpace(name, { eventRetentionMs: 30 * day });
    assert.deepEqual([space.name, space.eventRetention?.seconds], [name, 30 * 86_400]);
    assert.equal((await client.getSpace(name)).name, name);
    const spaces = [];
    for await (const s of client.iterSpaces()) spaces.push(s.name);
    assert.ok(spaces.includes(name));
    assert.ok((await client.listSpaces({ pageSize: 1 })).spaces.length === 1);
    assert.equal((await client.setEventRetention(name, null)).eventRetention, undefined);
    assert.equal((await client.updateSpace(name, { eventRetentionMs: 7 * day })).eventRetention?.seconds, 7 * 86_400);

    const created = await client.createToken("read", { space: name, label: "reporting", ttlMs: 3_600_000 });
    const token = created.token!;
    assert.ok(created.secret);
    assert.match(token.tokenId, /^tok_/);
    assert.deepEqual([token.space, token.scope, token.label, token.state],
      [name, v1.operator.TokenScope.TOKEN_SCOPE_READ, "reporting", v1.operator.TokenState.TOKEN_STATE_ACTIVE]);
    assert.ok(token.expireTime);
    const reader = connect({ readToken: created.secret });
    assert.equal((await rejection(reader.getMetadata("user_id:nobody"))).code, status.NOT_FOUND); // accepted, nobody there
    const listed = (await client.listTokens({ space: name })).tokens;
    assert.deepEqual(listed.map((t) => t.tokenId), [token.tokenId]);
    const iterated = [];
    for await (const t of client.iterTokens({ space: name })) iterated.push(t.tokenId);
    assert.deepEqual(iterated, [token.tokenId]);

    const revoked = await client.revokeToken(token.tokenId);
    assert.equal(revoked.state, v1.operator.TokenState.TOKEN_STATE_REVOKED);
    assert.ok(revoked.revokeTime);
    assert.equal((await client.listTokens({ space: name })).tokens[0]?.state, v1.operator.TokenState.TOKEN_STATE_REVOKED);
    const error = await rejection(reader.getMetadata("user_id:nobody"));
    assert.deepEqual([error.code, error.reason], [status.UNAUTHENTICATED, "TOKEN_REVOKED"]);
    await reader.close();
    assert.equal((await rejection(client.getSpace(unique("missing")))).reason, "SPACE_NOT_FOUND");
  });

  test("OperatorService: a profile deleted with its identifiers suppressed, then a suppression lifted", async () => {
    const user = unique("gone");
    client.identify({ userId: user, traits: { email: `${user}@example.com` }, timestamp: T0 });
    await client.flush();
    const deletion = await client.deleteProfile(`user_id:${user}`, { suppress: true, deliveryTimeoutMs: 0 });
    assert.match(deletion.deletionId, /^del_/);
    assert.deepEqual([deletion.suppress, deletion.profile?.id], [true, `user_id:${user}`]);
    assert.equal((await client.getProfileDeletion(deletion.deletionId)).deletionId, deletion.deletionId);
    assert.equal((await client.listProfileDeletions({ pageSize: 1 })).deletions[0]?.deletionId, deletion.deletionId);
    const deletions = [];
    for await (const d of client.iterProfileDeletions()) deletions.push(d.deletionId);
    assert.ok(deletions.includes(deletion.deletionId));
    const suppressed = async (): Promise<string[]> => {
      const found = [];
      for await (const s of client.iterSuppressions()) found.push(`${s.externalId?.type}:${s.externalId?.value}`);
      return found.filter((id) => id.includes(user));
    };
    assert.deepEqual((await suppressed()).sort(), [`email:${user}@example.com`, `user_id:${user}`]);
    assert.ok((await client.listSuppressions({ pageSize: 1 })).suppressions.length === 1);
    await client.deleteSuppression(`user_id:${user}`);
    assert.deepEqual(await suppressed(), [`email:${user}@example.com`]);
    assert.equal((await rejection(client.deleteSuppression(`user_id:${user}`))).reason, "SUPPRESSION_NOT_FOUND");
  });
});
