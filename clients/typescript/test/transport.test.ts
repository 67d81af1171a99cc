/**
 * The client's own rules, against tiny local stand-ins (no StepUp needed): retries with
 * the same Idempotency-Key, ServiceUnavailable when nothing answers, timeouts, errors
 * per code, the end user's headers, and the API key kept out of every message.
 */

import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { describe, test } from "node:test";
import { inspect } from "node:util";

import {
  CodeAlreadyUsed, Conflict, InvalidCode, KNOWN_CODES, MethodLocked, RateLimited, SendCapReached,
  ServiceUnavailable, StepUp, StepUpError, VERSION, errorClass,
} from "../src/index.js";
import { PACKAGE_DIR, nowhere } from "./support.js";

const KEY = "sk_app_thisisnotarealkeybutitmustnotleak0123456789";

interface Seen { method: string; url: string; headers: IncomingMessage["headers"]; body: string }
type Handler = (req: Seen, res: ServerResponse, n: number) => void;

/** A stand-in HTTP server answering with `handler`; records what it was sent. */
async function standIn(handler: Handler) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => { body += c; });
    req.on("end", () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, body };
      seen.push(s);
      handler(s, res, seen.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, seen,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function problem(res: ServerResponse, status: number, code: string, extra: Record<string, unknown> = {},
                 headers: Record<string, string> = {}) {
  res.writeHead(status, { "Content-Type": "application/problem+json", ...headers });
  res.end(JSON.stringify({ type: `https://stepup.dev/problems/${code}`, title: code, status,
                           detail: `detail of ${code}`, code, ...extra }));
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

const verified = { valid: true, method: "totp", verified_at: "2026-01-01T00:00:00Z" };

describe("retries and idempotency", () => {
  test("an automatic retry after a 503 sends the same Idempotency-Key", async () => {
    const site = await standIn((_req, res, n) =>
      n === 1 ? problem(res, 503, "service_unavailable", { retryable: true }, { "Retry-After": "0" })
        : json(res, 200, verified));
    const keys: Array<string | null> = [];
    const spy: typeof fetch = async (input, init) => {
      keys.push(new Headers(init?.headers).get("Idempotency-Key"));
      return fetch(input, init);
    };
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY, fetch: spy, retryBaseMs: 5 });
      const ok = await stepup.verify("u1", "totp", "123456");
      assert.equal(ok.valid, true);
      assert.equal(keys.length, 2);
      assert.match(keys[0]!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(keys[1], keys[0]);
      assert.deepEqual(site.seen.map((s) => s.headers["idempotency-key"]), [keys[0], keys[0]]);
      assert.deepEqual(site.seen.map((s) => s.body), [site.seen[0]!.body, site.seen[0]!.body]);
      assert.deepEqual(JSON.parse(site.seen[0]!.body), { method: "totp", code: "123456", purpose: "login" });

      // Another logical call: another key.
      await stepup.verify("u1", "totp", "123456");
      assert.notEqual(site.seen[2]!.headers["idempotency-key"], keys[0]);
      // GETs carry none.
      await stepup.operation("u1", "op1").catch(() => undefined);
      assert.equal(site.seen.at(-1)!.method, "GET");
      assert.equal(site.seen.at(-1)!.headers["idempotency-key"], undefined);
    } finally {
      await site.close();
    }
  });

  test("every POST, PATCH and DELETE carries a key; a caller's own key is used as is", async () => {
    const site = await standIn((req, res) =>
      req.method === "DELETE" ? (res.writeHead(204), res.end()) : json(res, 200, {}));
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY });
      await stepup.updateUser("u1", { language: "ru" });
      await stepup.deleteUser("u1");
      await stepup.methodChallenge("u1", "sms");
      await stepup.createOperation("u1", "withdrawal", { amount: "1", currency: "BTC", destination: "x" },
                                   { idempotencyKey: "my-own-key-1" });
      const keys = site.seen.map((s) => s.headers["idempotency-key"]);
      assert.ok(keys.every((k) => typeof k === "string" && k.length > 0));
      assert.equal(new Set(keys).size, 4);
      assert.equal(keys[3], "my-own-key-1");
      assert.deepEqual(site.seen.map((s) => s.method), ["PATCH", "DELETE", "POST", "POST"]);
    } finally {
      await site.close();
    }
  });

  test("retries are bounded, and only for retryable answers", async () => {
    const site = await standIn((req, res) =>
      req.url!.includes("/verify") ? problem(res, 400, "invalid_code", { retryable: false })
        : problem(res, 409, "idempotency_key_in_use", { retryable: true }, { "Retry-After": "0" }));
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY, retryBaseMs: 1 });
      await assert.rejects(stepup.verify("u1", "totp", "000000"), InvalidCode);
      assert.equal(site.seen.length, 1);
      await assert.rejects(stepup.challenge("u1", "sms"), (e: StepUpError) =>
        e instanceof Conflict && e.code === "idempotency_key_in_use" && e.retryable);
      assert.equal(site.seen.length, 1 + 3);
      await assert.rejects(stepup.challenge("u1", "sms", "login", { maxAttempts: 1 }));
      assert.equal(site.seen.length, 1 + 3 + 1);
    } finally {
      await site.close();
    }
  });

  test("a Retry-After longer than the client waits is thrown at once", async () => {
    const site = await standIn((_req, res) =>
      problem(res, 429, "send_cap_reached", { retryable: true, retry_after: 1312 }, { "Retry-After": "1312" }));
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY });
      const started = Date.now();
      await assert.rejects(stepup.challenge("u1", "sms"), (e: StepUpError) =>
        e instanceof SendCapReached && e instanceof RateLimited && e.retryAfter === 1312 && e.status === 429);
      assert.equal(site.seen.length, 1);
      assert.ok(Date.now() - started < 2000);
    } finally {
      await site.close();
    }
  });

  test("Retry-After is honoured between attempts", async () => {
    const site = await standIn((_req, res, n) =>
      n === 1 ? problem(res, 429, "api_quota_exceeded", { retryable: true }, { "Retry-After": "1" })
        : json(res, 200, verified));
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY, retryBaseMs: 1 });
      const started = Date.now();
      await stepup.verify("u1", "totp", "123456");
      assert.ok(Date.now() - started >= 950, "waited the second Retry-After asked");
      assert.equal(site.seen.length, 2);
    } finally {
      await site.close();
    }
  });
});

describe("no answer", () => {
  test("nothing listening → ServiceUnavailable, status 0, retryable, after bounded retries", async () => {
    const calls: string[] = [];
    const spy: typeof fetch = async (input, init) => { calls.push(String(input)); return fetch(input, init); };
    const stepup = new StepUp({ baseUrl: await nowhere(), apiKey: KEY, fetch: spy, retryBaseMs: 1 });
    await assert.rejects(stepup.getUser("u1"), (e: unknown) => {
      assert.ok(e instanceof ServiceUnavailable && e instanceof StepUpError);
      assert.equal(e.code, "service_unavailable");
      assert.equal(e.status, 0);
      assert.equal(e.retryable, true);
      assert.equal(e.retryAfter, null);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
    assert.equal(calls.length, 3);
  });

  test("a timeout → ServiceUnavailable (and each attempt has its own)", async () => {
    const site = await standIn(() => { /* never answers */ });
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY, timeoutMs: 150, retryBaseMs: 1 });
      await assert.rejects(stepup.verify("u1", "totp", "123456"), (e: StepUpError) =>
        e instanceof ServiceUnavailable && e.status === 0 && /within 150 ms/.test(e.detail));
      assert.equal(site.seen.length, 3);
      assert.equal(new Set(site.seen.map((s) => s.headers["idempotency-key"])).size, 1);
    } finally {
      await site.close();
    }
  });

  test("the caller's abort → ServiceUnavailable, no retry", async () => {
    const site = await standIn(() => { /* never answers */ });
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      await assert.rejects(stepup.getUser("u1", { signal: controller.signal }), (e: StepUpError) =>
        e instanceof ServiceUnavailable && /aborted/.test(e.detail));
      assert.equal(site.seen.length, 1);
    } finally {
      await site.close();
    }
  });

  test("a proxy's 502 page without a problem document → ServiceUnavailable, retried", async () => {
    const site = await standIn((_req, res) => { res.writeHead(502, { "Content-Type": "text/html" }); res.end("<h1>Bad gateway</h1>"); });
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY, retryBaseMs: 1, maxAttempts: 2 });
      await assert.rejects(stepup.getUser("u1"), (e: StepUpError) =>
        e instanceof ServiceUnavailable && e.status === 502 && e.retryable);
      assert.equal(site.seen.length, 2);
    } finally {
      await site.close();
    }
  });
});

describe("errors", () => {
  test("every code StepUp can answer has its class; unknown codes are StepUpError", () => {
    const problems = resolve(PACKAGE_DIR, "../../src/stepup/web/problems.py");
    if (existsSync(problems)) {
      const source = readFileSync(problems, "utf8");
      const table = /STATUS_BY_CODE[^{]*\{([^}]*)\}/.exec(source)![1]!;
      const codes = [...table.matchAll(/"([a-z_]+)":\s*\d{3}/g)].map((m) => m[1]!);
      assert.ok(codes.length > 30);
      for (const code of codes) {
        assert.ok(KNOWN_CODES.includes(code), `no class for ${code}`);
        assert.notEqual(errorClass(code), StepUpError, code);
      }
    }
    assert.equal(errorClass("something_new"), StepUpError);
    assert.equal(errorClass("toString"), StepUpError);
    assert.equal(errorClass("code_already_used"), CodeAlreadyUsed);
    assert.equal(new CodeAlreadyUsed({ status: 409, code: "code_already_used", title: "t", detail: "d" }).name,
                 "CodeAlreadyUsed");
  });

  test("a problem becomes its class with status, code, title, detail, retryable, retryAfter, field, problem", async () => {
    const site = await standIn((req, res) => {
      if (req.url!.includes("/verify")) {
        problem(res, 423, "method_locked", { retryable: false, retry_after: 900 }, { "Retry-After": "900" });
      } else if (req.url!.includes("/operations")) {
        problem(res, 422, "validation_error", { retryable: false, field: "details.amount",
                                                errors: [{ field: "details.amount", message: "bad" }] });
      } else {
        problem(res, 418, "teapot_brewing", { retryable: false });
      }
    });
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY });
      const locked = await stepup.verify("u1", "totp", "1").catch((e: unknown) => e);
      assert.ok(locked instanceof MethodLocked);
      assert.deepEqual([locked.status, locked.code, locked.title, locked.detail, locked.retryable, locked.retryAfter],
                       [423, "method_locked", "method_locked", "detail of method_locked", false, 900]);
      assert.equal(locked.problem.retry_after, 900);
      const invalid = await stepup.createOperation("u1", "withdrawal", {}).catch((e: unknown) => e);
      assert.ok(invalid instanceof StepUpError && invalid.name === "ValidationError");
      assert.equal(invalid.field, "details.amount");
      assert.deepEqual(invalid.problem.errors, [{ field: "details.amount", message: "bad" }]);
      const odd = await stepup.getUser("u1").catch((e: unknown) => e);
      assert.ok(odd instanceof StepUpError);
      assert.equal(odd.constructor, StepUpError);
      assert.equal(odd.code, "teapot_brewing");
      assert.equal(odd.status, 418);
    } finally {
      await site.close();
    }
  });

  test("the API key is in no error, message, toString, inspect or JSON", async () => {
    const site = await standIn((_req, res) => problem(res, 401, "not_authenticated", { retryable: false }));
    try {
      const stepup = new StepUp({ baseUrl: site.url, apiKey: KEY });
      const errors: unknown[] = [
        await stepup.getUser("u1").catch((e: unknown) => e),
        await new StepUp({ baseUrl: await nowhere(), apiKey: KEY, maxAttempts: 1 }).getUser("u1").catch((e: unknown) => e),
      ];
      assert.equal(site.seen[0]!.headers.authorization, `Bearer ${KEY}`);
      for (const e of errors) {
        assert.ok(e instanceof StepUpError);
        for (const text of [e.message, String(e), e.stack ?? "", inspect(e, { depth: 10, showHidden: true }), JSON.stringify(e)]) {
          assert.ok(!text.includes(KEY) && !text.includes("sk_app_"), text);
        }
      }
      for (const text of [String(stepup), inspect(stepup, { showHidden: true }), JSON.stringify(stepup)]) {
        assert.ok(!text.includes(KEY), text);
      }
      assert.throws(() => new StepUp({ baseUrl: site.url, apiKey: `${KEY}\n` }),
                    (e: Error) => e instanceof TypeError && !e.message.includes(KEY));
    } finally {
      await site.close();
    }
  });
});

describe("requests", () => {
  test("the end user's IP and agent go as headers; paths, queries and bodies as the API has them", async () => {
    const site = await standIn((req, res) =>
      json(res, req.method === "POST" ? 201 : 200,
           req.url!.startsWith("/api/v1/users?") ? { users: [], next_cursor: null }
             : { id: "u1", email: "a@example.com", language: "en", verification_grade: 0 }));
    try {
      const stepup = new StepUp({ baseUrl: `${site.url}/api/v1/`, apiKey: KEY });
      const agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)";
      const created = await stepup.createUser({ email: "a@example.com", external_id: "c-1" },
                                              { endUserIp: "203.0.113.7", endUserAgent: agent });
      assert.equal(created.created, true);
      assert.equal(site.seen[0]!.headers["stepup-end-user-ip"], "203.0.113.7");
      assert.equal(site.seen[0]!.headers["stepup-end-user-agent"], agent);
      assert.equal(site.seen[0]!.headers["content-type"], "application/json");
      assert.match(site.seen[0]!.headers["user-agent"]!, new RegExp(`^stepup-client-typescript/${VERSION}`));
      assert.equal(await stepup.findUserByEmail("a+b@example.com"), null);
      assert.equal(await stepup.findUserByExternalId("c 1/2"), null);
      await stepup.listUsers({ limit: 2, cursor: "abc" });
      await stepup.switchMethod("u/1", "totp", { withdrawal: true }, "123456");
      await stepup.confirmPasskey("u1", { id: "cred", type: "public-key" }, "YubiKey");
      assert.deepEqual(site.seen.slice(1).map((s) => `${s.method} ${s.url}`), [
        "GET /api/v1/users?email=a%2Bb%40example.com",
        "GET /api/v1/users?external_id=c+1%2F2",
        "GET /api/v1/users?limit=2&cursor=abc",
        "PATCH /api/v1/users/u%2F1/methods/totp",
        "POST /api/v1/users/u1/methods/webauthn/passkeys/confirm",
      ]);
      assert.equal(site.seen[1]!.headers["stepup-end-user-ip"], undefined);
      assert.deepEqual(JSON.parse(site.seen[4]!.body), { protects: { withdrawal: true }, code: "123456" });
      assert.deepEqual(JSON.parse(site.seen[5]!.body),
                       { code: JSON.stringify({ id: "cred", type: "public-key" }), name: "YubiKey" });
    } finally {
      await site.close();
    }
  });

  test("the version is package.json's", () => {
    const pkg = JSON.parse(readFileSync(resolve(PACKAGE_DIR, "package.json"), "utf8")) as { version: string };
    assert.equal(VERSION, pkg.version);
  });
});
