/**
 * Withdrawals, the user lifecycle, recovery, idempotency and webhooks against a live
 * `stepup serve`.
 */

import assert from "node:assert/strict";
import { createHmac, createPublicKey, randomBytes, verify as verifySignature } from "node:crypto";
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";

import {
  CodeAlreadyUsed, EmailTaken, IdempotencyKeyReused, NotFound, OperationAlreadyConfirmed,
  PinInvalid, PinRequired, RecoveryAlreadyOpen, StepUp, StepUpError, ValidationError,
  WebhookNotConfigured,
} from "../src/index.js";
import { Authenticator, type Server, WITHDRAWAL, email, startServer } from "./support.js";

let server: Server;
let stepup: StepUp;

before(async () => {
  server = await startServer();
  stepup = new StepUp({ baseUrl: server.baseUrl, apiKey: server.apiKey });
});
after(async () => { await server?.stop(); });

async function failure(promise: Promise<unknown>): Promise<StepUpError> {
  const e = await promise.then(() => assert.fail("expected a StepUpError"), (err: unknown) => err);
  assert.ok(e instanceof StepUpError, String(e));
  return e;
}

function b64url(text: string): Buffer {
  return Buffer.from(text, "base64url");
}

/** Check a receipt's EdDSA signature with the published JWKS; its claims. */
async function receiptClaims(receipt: string): Promise<Record<string, any>> {
  const [head, body, sig] = receipt.split(".");
  const header = JSON.parse(b64url(head!).toString()) as { alg: string; kid: string };
  assert.equal(header.alg, "EdDSA");
  const jwks = await (await fetch(`${server.baseUrl}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> };
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, "the receipt's kid is published");
  const key = createPublicKey({ key: jwk as any, format: "jwk" });
  assert.ok(verifySignature(null, Buffer.from(`${head}.${body}`), key, b64url(sig!)), "signature");
  return JSON.parse(b64url(body!).toString());
}

describe("enabling a method", () => {
  test("the first code also confirms what it protects", async () => {
    const user = await stepup.createUser({ email: email() });
    const start = await stepup.enroll(user.id, "totp");
    const app = new Authenticator(start.secret);
    const code = await app.code();
    const refused = await failure(stepup.confirmEnrollment(user.id, "totp", code,
                                                           { protects: { deposit: true } }));
    assert.ok(refused instanceof ValidationError, String(refused));
    const method = await stepup.confirmEnrollment(user.id, "totp", code,
                                                  { protects: { withdrawal: true } });
    assert.deepEqual(method.protects, { login: true, withdrawal: true });
    await stepup.enroll(user.id, "backup_codes", { protects: { withdrawal: true } });
    const codes = (await stepup.methods(user.id)).find((m) => m.type === "backup_codes");
    assert.deepEqual(codes?.protects, { login: false, withdrawal: true });
  });
});

describe("a withdrawal", () => {
  test("create, PIN, verify with the operation as purpose → a receipt", async () => {
    const user = await stepup.createUser({ email: email(), pin: "417293" });
    const start = await stepup.enroll(user.id, "totp");
    const app = new Authenticator(start.secret);
    await stepup.confirmEnrollment(user.id, "totp", await app.code());
    const switched = await stepup.switchMethod(user.id, "totp", { withdrawal: true }, await app.code());
    assert.equal(switched.protects.withdrawal, true);

    const endUser = { endUserIp: "198.51.100.23", endUserAgent: "Mozilla/5.0 (Macintosh) Safari/605.1.15" };
    const op = await stepup.createOperation(user.id, "withdrawal",
                                            { ...WITHDRAWAL, amount: "0.2500", currency: "btc" }, endUser);
    assert.equal(op.status, "pin_required");
    assert.equal(op.type, "withdrawal");
    assert.deepEqual(op.details, WITHDRAWAL); // canonical: "0.25", "BTC"
    assert.ok(op.summary.includes("0.25"));

    const code = await app.code();
    const early = await failure(stepup.verify(user.id, "totp", code, op.id, endUser));
    assert.ok(early instanceof PinRequired && early.code === "pin_required", String(early));
    assert.ok(await failure(stepup.submitPin(user.id, op.id, "000000", endUser)) instanceof PinInvalid);
    const ready = await stepup.submitPin(user.id, op.id, "417293", endUser);
    assert.equal(ready.status, "code_required");
    assert.deepEqual(ready.methods?.map((m) => m.type), ["totp"]);

    const done = await stepup.verify(user.id, "totp", code, op.id, endUser);
    assert.equal(done.valid, true);
    assert.ok(done.receipt);
    const claims = await receiptClaims(done.receipt);
    assert.equal(claims.sub, user.id);
    assert.equal(claims.operation.id, op.id);
    assert.equal(claims.operation.type, "withdrawal");
    assert.deepEqual(claims.operation.details, op.details);
    assert.ok(claims.exp > claims.iat);

    const read = await stepup.operation(user.id, op.id);
    assert.equal(read.status, "confirmed");
    assert.equal(read.receipt, done.receipt);

    const again = await failure(stepup.verify(user.id, "totp", code, op.id));
    assert.ok(again instanceof CodeAlreadyUsed || again instanceof OperationAlreadyConfirmed, String(again));
  });
});

describe("lifecycle", () => {
  test("get, find, list, update, delete → NotFound", async () => {
    const address = email();
    const external = `lc-${randomBytes(4).toString("hex")}`;
    const user = await stepup.createUser({ email: address, external_id: external });
    const other = await stepup.createUser({ email: email() });

    assert.equal((await stepup.findUserByEmail(address.toUpperCase()))?.id, user.id);
    assert.equal((await stepup.findUserByExternalId(external))?.id, user.id);
    assert.equal(await stepup.findUserByEmail(email()), null);
    assert.equal(await stepup.findUserByExternalId("no-such-id"), null);

    const first = await stepup.listUsers({ limit: 1 });
    assert.equal(first.users.length, 1);
    assert.ok(first.next_cursor);
    const seen = new Set<string>();
    for await (const u of stepup.allUsers(1)) seen.add(u.id);
    assert.ok(seen.has(user.id) && seen.has(other.id));

    const changed = await stepup.updateUser(user.id, { language: "ru", external_id: null });
    assert.equal(changed.language, "ru");
    assert.equal(changed.external_id, null);
    const taken = await failure(stepup.updateUser(user.id, { email: other.email }));
    assert.ok(taken instanceof EmailTaken && taken.code === "email_taken", String(taken));
    const invalid = await failure(stepup.updateUser(user.id, { language: null as unknown as string }));
    assert.ok(invalid instanceof ValidationError && invalid.status === 422, String(invalid));

    await stepup.deleteUser(user.id);
    const gone = await failure(stepup.getUser(user.id));
    assert.ok(gone instanceof NotFound && gone.status === 404 && gone.code === "not_found", String(gone));
    assert.ok(await failure(stepup.deleteUser(user.id)) instanceof NotFound);
    assert.equal(await stepup.findUserByEmail(address), null);
  });

  test("recovery: file one, read it, one at a time", async () => {
    const user = await stepup.createUser({ email: email() });
    assert.ok(await failure(stepup.recovery(user.id)) instanceof NotFound);
    const bad = await failure(stepup.fileRecovery(user.id, { description: "Lost my phone.", contact: { channel: "phone" } }));
    assert.ok(bad instanceof ValidationError);
    assert.equal(bad.field, "contact.phone");
    const filed = await stepup.fileRecovery(user.id, {
      description: "Lost my phone; no backup codes.",
      contact: { channel: "phone", phone: "+44 20 7946 0018", best_time: "weekdays after 6 pm" },
    }, { endUserIp: "203.0.113.9" });
    assert.equal(filed.status, "requested");
    assert.equal((await stepup.recovery(user.id)).id, filed.id);
    const twice = await failure(stepup.fileRecovery(user.id, { description: "Again.", contact: { channel: "email" } }));
    assert.ok(twice instanceof RecoveryAlreadyOpen, String(twice));
  });
});

describe("idempotency on the live server", () => {
  test("the same key replays the stored answer; with another body it is refused", async () => {
    const user = await stepup.createUser({ email: email() });
    await stepup.enroll(user.id, "backup_codes");
    const key = `ts-${randomBytes(8).toString("hex")}`;
    const first = await stepup.regenerateBackupCodes(user.id, undefined, { idempotencyKey: key });
    const replayed = await stepup.regenerateBackupCodes(user.id, undefined, { idempotencyKey: key });
    assert.deepEqual(replayed.codes, first.codes); // not made again
    const reused = await failure(stepup.regenerateBackupCodes(user.id, first.codes[0], { idempotencyKey: key }));
    assert.ok(reused instanceof IdempotencyKeyReused && reused.status === 422, String(reused));
    assert.equal((await stepup.verify(user.id, "backup_codes", first.codes[0]!)).valid, true);
  });
});

describe("webhooks", () => {
  test("test event, deliveries, redeliver", async (t) => {
    if (!server.paths.has("/api/v1/webhooks/test") || !server.paths.has("/api/v1/webhooks/deliveries")) {
      t.skip("this StepUp has no webhook calls yet");
      return;
    }
    const none = await failure(stepup.testWebhook());
    assert.ok(none instanceof WebhookNotConfigured || none.code === "webhook_not_configured", String(none));

    const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => { received.push({ headers: req.headers, body }); res.writeHead(204).end(); });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    try {
      const secret = randomBytes(16).toString("hex");
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/stepup-hook`;
      await server.cli(["app", "set", "default", "--webhook-url", url, "--webhook-secret", secret]);

      const sent = await stepup.testWebhook();
      assert.equal(sent.event, "webhook.test");
      assert.equal(sent.url, url);
      const deadline = Date.now() + 20_000;
      while (!received.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(received.length, 1, "the test event arrived");
      const { headers, body } = received[0]!;
      assert.equal(headers["stepup-event-id"], sent.id);
      const parts = Object.fromEntries(String(headers["stepup-signature"]).split(",").map((p) => p.split("=", 2)));
      const mac = createHmac("sha256", secret).update(`${parts.t}.${body}`).digest("hex");
      assert.equal(parts.v1, mac, "signed with the app's secret");

      let listed = await stepup.webhookDeliveries({ limit: 10 });
      for (let i = 0; i < 50 && listed.deliveries.find((d) => d.id === sent.id)?.status !== "delivered"; i++) {
        await new Promise((r) => setTimeout(r, 100));
        listed = await stepup.webhookDeliveries({ limit: 10 });
      }
      const delivery = listed.deliveries.find((d) => d.id === sent.id);
      assert.equal(delivery?.status, "delivered");
      assert.equal(delivery?.attempts, 1);
      assert.equal((await stepup.webhookDeliveries({ status: "failed" })).deliveries.length, 0);

      const again = await stepup.redeliverWebhook(sent.id);
      assert.equal(again.id, sent.id);
      assert.equal(again.status, "pending");
      const until = Date.now() + 20_000;
      while (received.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      assert.equal(received[1]?.headers["stepup-event-id"], sent.id);
      assert.ok(await failure(stepup.redeliverWebhook("no-such-delivery")) instanceof NotFound);
    } finally {
      receiver.closeAllConnections();
      await new Promise((r) => receiver.close(r));
    }
  });
});
