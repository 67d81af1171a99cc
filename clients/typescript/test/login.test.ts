/**
 * Login against a live `stepup serve`: users, TOTP, backup codes, SMS, locks, and the
 * end user's context reaching the audit.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  CodeAlreadyUsed, Conflict, InvalidCode, MethodLocked, MethodNotAllowedForPurpose,
  MethodSendsNoCodes, StepUp, StepUpError, UserConflict,
} from "../src/index.js";
import { Authenticator, type Server, email, lastCode, phone, startServer } from "./support.js";

let server: Server;
let stepup: StepUp;

before(async () => {
  server = await startServer();
  stepup = new StepUp({ baseUrl: server.baseUrl, apiKey: server.apiKey });
});
after(async () => { await server?.stop(); });

const rejectsWith = async <T extends StepUpError>(
  promise: Promise<unknown>, cls: abstract new (...a: never[]) => T, code: string,
): Promise<T> => {
  const e = await promise.then(() => assert.fail(`expected ${code}`), (err: unknown) => err);
  assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
  assert.equal((e as T).code, code);
  return e as T;
};

describe("users", () => {
  test("create, fetch, and create again (safe to repeat)", async () => {
    const address = email();
    const user = await stepup.createUser({ email: address, external_id: `ext-${address}`, language: "en" });
    assert.equal(user.created, true);
    assert.equal(user.email, address);
    assert.equal(user.external_id, `ext-${address}`);
    assert.equal(user.verification_grade, 0);

    const again = await stepup.createUser({ email: address, external_id: `ext-${address}` });
    assert.equal(again.created, false);
    assert.equal(again.id, user.id);

    const read = await stepup.getUser(user.id);
    assert.equal(read.id, user.id);
    assert.equal(read.language, "en");
    assert.deepEqual(read.methods, []);
    assert.deepEqual(read.locks, { methods: {} });
    assert.equal(read.identities.email_verified, false);

    const clash = await rejectsWith(stepup.createUser({ email: address, external_id: `ext-${address}`, language: "ru" }),
                                    UserConflict, "user_conflict");
    assert.ok(clash instanceof Conflict);
    assert.equal(clash.status, 409);
    assert.equal(clash.retryable, false);
  });
});

describe("TOTP", () => {
  test("enrol, verify, replay → CodeAlreadyUsed, wrong codes → MethodLocked, unlock", async () => {
    const user = await stepup.createUser({ email: email() });
    const start = await stepup.enroll(user.id, "totp");
    assert.match(start.otpauth_uri, /^otpauth:\/\/totp\//);
    assert.match(start.qr_svg, /<svg/);
    const app = new Authenticator(start.otpauth_uri);

    const method = await stepup.confirmEnrollment(user.id, "totp", await app.code());
    assert.equal(method.type, "totp");
    assert.equal(method.enabled, true);
    assert.equal(method.protects.login, true); // the first method protects login

    const ok = await stepup.verify(user.id, "totp", await app.code());
    assert.equal(ok.valid, true);
    assert.equal(ok.method, "totp");
    assert.ok(!Number.isNaN(Date.parse(ok.verified_at)));
    assert.equal(ok.receipt ?? null, null);

    const replay = await rejectsWith(stepup.verify(user.id, "totp", app.previous()), CodeAlreadyUsed, "code_already_used");
    assert.equal(replay.status, 409);
    assert.equal(replay.retryable, false);

    const wrong = await rejectsWith(stepup.verify(user.id, "totp", app.wrong()), InvalidCode, "invalid_code");
    assert.equal(wrong.status, 400);
    let locked: MethodLocked | undefined;
    for (let i = 0; i < 10 && !locked; i++) {
      try {
        await stepup.verify(user.id, "totp", app.wrong());
        assert.fail("a wrong code passed");
      } catch (e) {
        if (e instanceof MethodLocked) locked = e;
        else assert.ok(e instanceof InvalidCode, String(e));
      }
    }
    assert.ok(locked, "never locked");
    assert.equal(locked.status, 423);
    assert.equal(locked.code, "method_locked");
    assert.equal(locked.retryable, false);
    assert.ok(typeof locked.retryAfter === "number" && locked.retryAfter > 0, `retryAfter ${locked.retryAfter}`);
    assert.ok(Object.keys((await stepup.getUser(user.id)).locks.methods).includes("totp"));

    // Locked: even the right code is refused until support (here: the portal) unlocks.
    const unlocked = await stepup.unlockUser(user.id, "totp");
    assert.deepEqual(unlocked.cleared, ["method:totp"]);
    assert.deepEqual((await stepup.getUser(user.id)).locks, { methods: {} });
    assert.equal((await stepup.verify(user.id, "totp", await app.code())).valid, true);

    // TOTP sends nothing.
    await rejectsWith(stepup.challenge(user.id, "totp"), MethodSendsNoCodes, "method_sends_no_codes");
  });
});

describe("backup codes", () => {
  test("enrol, verify once, replay, regenerate", async () => {
    const user = await stepup.createUser({ email: email() });
    const { codes } = await stepup.enroll(user.id, "backup_codes");
    assert.equal(codes.length, 10);
    const used = await stepup.verify(user.id, "backup_codes", codes[0]!);
    assert.equal(used.valid, true);
    assert.equal(used.backup_codes_remaining, 9);
    await rejectsWith(stepup.verify(user.id, "backup_codes", codes[0]!), CodeAlreadyUsed, "code_already_used");
    const listed = (await stepup.methods(user.id)).find((m) => m.type === "backup_codes");
    assert.equal(listed?.enabled, true);
    assert.equal(listed?.remaining, 9);

    const fresh = await stepup.regenerateBackupCodes(user.id, codes[1]!);
    assert.equal(fresh.codes.length, 10);
    await rejectsWith(stepup.verify(user.id, "backup_codes", codes[2]!), InvalidCode, "invalid_code");
    assert.equal((await stepup.verify(user.id, "backup_codes", fresh.codes[0]!)).valid, true);
  });
});

describe("SMS", () => {
  test("enrol, challenge and verify for login", async () => {
    // The portal vouches for the address: with no method on for withdrawals, the
    // withdrawal below is confirmed through it (an unverified one confirms nothing).
    const user = await stepup.createUser({ email: email(), email_verified: true });
    const number = phone();
    const start = await stepup.enroll(user.id, "sms", { phone: number });
    assert.ok(start.sent_to && start.sent_to !== number);
    assert.ok(start.expires_in > 0);
    const method = await stepup.confirmEnrollment(user.id, "sms", await lastCode(server.baseUrl, number));
    assert.equal(method.enabled, true);
    assert.equal(method.protects.login, true);

    const sent = await stepup.challenge(user.id, "sms", "login");
    assert.equal(sent.method, "sms");
    assert.equal(sent.sent_to, start.sent_to);
    assert.ok(sent.resend_in >= 0);
    const code = await lastCode(server.baseUrl, number);
    assert.equal((await stepup.verify(user.id, "sms", code)).valid, true);
    await rejectsWith(stepup.verify(user.id, "sms", code), CodeAlreadyUsed, "code_already_used");

    // Enabled, but not switched on for withdrawals.
    const op = await stepup.createOperation(user.id, "withdrawal", { amount: "1", currency: "USD", destination: "acct-1" });
    await rejectsWith(stepup.challenge(user.id, "sms", op.id), MethodNotAllowedForPurpose,
                      "method_not_allowed_for_purpose");
  });
});

describe("the end user's context", () => {
  test("IP and user agent reach the user's audit events", async () => {
    const user = await stepup.createUser({ email: email() });
    const { codes } = await stepup.enroll(user.id, "backup_codes");
    const endUser = {
      endUserIp: "203.0.113.77",
      endUserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    };
    await stepup.verify(user.id, "backup_codes", codes[0]!, "login", endUser);
    const { events } = await stepup.userEvents(user.id, { limit: 10 }, endUser);
    assert.ok(events.length >= 2);
    const mine = events.filter((e) => e.ip === "203.0.113.77");
    assert.ok(mine.length >= 1, JSON.stringify(events));
    const login = mine.find((e) => e.event === "login.succeeded");
    assert.ok(login, JSON.stringify(mine));
    assert.equal(login.details.second_factor, "backup_codes");
    assert.match(mine[0]!.user_agent ?? "", /Chrome/);
    // The calls without the context have no address (never the portal's own).
    assert.ok(events.some((e) => e.ip === null || e.ip === undefined));
    // Pages: newest first, a cursor for the rest.
    const first = await stepup.userEvents(user.id, { limit: 1 });
    assert.equal(first.events.length, 1);
    assert.ok(first.next_cursor);
    const second = await stepup.userEvents(user.id, { limit: 1, cursor: first.next_cursor });
    assert.ok(second.events[0]!.id < first.events[0]!.id);
  });
});
