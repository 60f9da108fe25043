/**
 * The channel's service config against a stand-in server the test controls: idempotent reads
 * are retried on UNAVAILABLE, writes are not, and `waitForReady` waits for a server to come up.
 */

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Server, ServerCredentials, type ServiceError, status, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { AudiencesError, Client, idempotentMethods } from "../src/index.js";
import { Audience, AudienceAdminServiceService, CreateAudienceResponse, GetAudienceResponse } from "../src/gen/audiences/v1/admin.js";

const servers: Server[] = [];
const delay = <T>(ms: number, value: T): Promise<T> => new Promise((resolve) => setTimeout(resolve, ms, value));
after(() => servers.forEach((s) => s.forceShutdown()));

function unavailable(): ServiceError {
  return Object.assign(new Error("try again"), { code: status.UNAVAILABLE, details: "try again", metadata: undefined as never });
}

/** A stand-in admin service whose first `failures` calls of each RPC fail UNAVAILABLE; counts attempts. */
function flakyAdmin(failures: number): { attempts: Record<string, number>; implementation: UntypedServiceImplementation } {
  const attempts: Record<string, number> = { getAudience: 0, createAudience: 0 };
  const answer = (name: string, reply: unknown) => (_call: unknown, callback: (e: ServiceError | null, r?: unknown) => void) => {
    attempts[name]! += 1;
    if (attempts[name]! <= failures) callback(unavailable());
    else callback(null, reply);
  };
  return {
    attempts,
    implementation: {
      getAudience: answer("getAudience", GetAudienceResponse.fromPartial({ audience: Audience.fromPartial({ key: "a" }) })),
      createAudience: answer("createAudience", CreateAudienceResponse.fromPartial({ audience: { key: "a" } })),
    },
  };
}

function listen(server: Server, address: string): Promise<number> {
  servers.push(server);
  return new Promise((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
}

test("the retried RPCs are the unary reads of every service, and no write", () => {
  const names = idempotentMethods().map(([service, method]) => `${service.split(".").pop()}/${method}`);
  for (const read of ["AudienceAdminService/GetAudience", "ProfilesService/ListTraits", "SyncService/ListChanges", "AudienceAdminService/ValidateDefinition"]) {
    assert.ok(names.includes(read), read);
  }
  const operator = names.filter((n) => n.startsWith("OperatorService/")).sort();
  assert.deepEqual(operator, [
    "OperatorService/GetProfileDeletion", "OperatorService/GetSpace", "OperatorService/ListProfileDeletions",
    "OperatorService/ListSpaces", "OperatorService/ListSuppressions", "OperatorService/ListTokens",
  ]);
  for (const write of ["CreateAudience", "RunTick", "SetClock", "BatchJson", "Track", "RedriveDeadLetters", "WatchChanges", "ExportAudience",
    "CreateToken", "RevokeToken", "DeleteProfile", "DeleteSuppression"]) {
    assert.ok(!names.some((n) => n.endsWith(`/${write}`)), write);
  }
});

test("a read that fails UNAVAILABLE is retried by the channel; a write is not", async () => {
  const { attempts, implementation } = flakyAdmin(2);
  const server = new Server();
  server.addService(AudienceAdminServiceService, implementation);
  const port = await listen(server, "127.0.0.1:0");
  const client = new Client({ address: `127.0.0.1:${port}`, token: "t" });
  assert.equal((await client.getAudience("a")).key, "a");
  assert.equal(attempts.getAudience, 3);
  await assert.rejects(client.createAudience("a", "x"), (e: unknown) => e instanceof AudiencesError && e.code === status.UNAVAILABLE);
  assert.equal(attempts.createAudience, 1);
  await client.close();
});

test("waitForReady: a call made before the server listens waits for it instead of failing", async () => {
  const probe = new Server();
  const port = await listen(probe, "127.0.0.1:0"); // a free port, released again
  probe.forceShutdown();
  const eager = new Client({ address: `127.0.0.1:${port}`, token: "t", timeoutMs: 10_000 });
  await assert.rejects(eager.createAudience("a", "x"), (e: unknown) => e instanceof AudiencesError && e.code === status.UNAVAILABLE);
  await eager.close();
  const patient = new Client({ address: `127.0.0.1:${port}`, token: "t", timeoutMs: 10_000, waitForReady: true });
  const pending = patient.createAudience("a", "x");
  const early = await Promise.race([pending.then(() => "answered", () => "failed"), delay(300, "waiting")]);
  assert.equal(early, "waiting");
  const server = new Server();
  server.addService(AudienceAdminServiceService, flakyAdmin(0).implementation);
  await listen(server, `127.0.0.1:${port}`);
  assert.equal((await pending).key, "a");
  await patient.close();
});
