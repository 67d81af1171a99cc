/**
 * The client: one method per call of StepUp's integration API, over `fetch`.
 *
 * Every POST, PATCH and DELETE carries an `Idempotency-Key` made once per logical call
 * and reused on the client's own retries, so a retried verify never spends a code twice
 * and a retried enrolment never sends two SMS. Retries are bounded and happen only when
 * StepUp says the answer is `retryable`, or when no answer came at all.
 */

import { randomUUID } from "node:crypto";

import { StepUpError, fromAnswer, noAnswer } from "./errors.js";
import type {
  BackupCodes,
  CallOptions,
  ConfirmEnrollmentOptions,
  CodeSent,
  CreateUserRequest,
  CreatedUser,
  Enrollment,
  EnrollRequest,
  EventsPage,
  Method,
  MethodsList,
  Operation,
  OutOfBandMethod,
  PageRequest,
  PasskeyOptions,
  Protects,
  Purpose,
  RecoveryRequest,
  RecoveryRequestIn,
  TotpEnrollment,
  UnlockResult,
  UnlockWhat,
  UpdateUserRequest,
  User,
  UserDetail,
  UsersPage,
  Verification,
  WebhookDeliveriesPage,
  WebhookDeliveriesRequest,
  WebhookDelivery,
  WebhookTest,
} from "./types.js";
import { VERSION } from "./version.js";

export interface StepUpOptions {
  /** StepUp's address, e.g. `https://mfa.example.com` (a trailing `/api/v1` is fine). */
  baseUrl: string;
  /** An API key of role `app` (`sk_app_…`). Never logged, never in an error. */
  apiKey: string;
  /** Milliseconds each attempt may take, answer included (default 10 000). */
  timeoutMs?: number;
  /** Attempts per call at most, the first included (default 3; 1 = never retry). */
  maxAttempts?: number;
  /** The first retry's back-off in milliseconds, doubled each time (default 250). */
  retryBaseMs?: number;
  /** The longest wait before a retry, in milliseconds (default 5 000): an answer whose
   * `Retry-After` asks for longer is thrown at once, for your portal to handle. */
  maxRetryDelayMs?: number;
  /** The `fetch` to use (default: the global one), e.g. to add tracing. */
  fetch?: typeof globalThis.fetch;
  /** Sent as the client's `User-Agent` (default `stepup-client-typescript/<version>`). */
  userAgent?: string;
}

type HttpMethod = "GET" | "POST" | "PATCH" | "DELETE";
type Query = Record<string, string | number | null | undefined>;

interface Answer<T> {
  status: number;
  data: T;
  headers: Headers;
}

const API = "/api/v1";
const enc = encodeURIComponent;

function codeText(code: string | object): string {
  return typeof code === "string" ? code : JSON.stringify(code);
}

function page(request?: PageRequest): Query {
  return { limit: request?.limit, cursor: request?.cursor };
}

/** A visible-ASCII token: what an API key, and any header value we make, must be. */
const TOKEN = /^[\x21-\x7e]+$/;

/**
 * StepUp's integration API for one app (an API key of role `app`).
 *
 * ```ts
 * const stepup = new StepUp({ baseUrl: "https://mfa.example.com", apiKey: process.env.STEPUP_API_KEY! });
 * const user = await stepup.createUser({ email, external_id: portalId });
 * await stepup.verify(user.id, "totp", code, "login", { endUserIp, endUserAgent });
 * ```
 *
 * Every method takes an optional last argument {@link CallOptions}: the end user's
 * context (`endUserIp`, `endUserAgent`), and per-call overrides. Every failure rejects
 * with a {@link StepUpError} subclass named after the problem's `code`.
 */
export class StepUp {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly maxRetryDelayMs: number;
  readonly #apiKey: string;
  readonly #fetch: typeof globalThis.fetch;
  readonly #userAgent: string;

  constructor(options: StepUpOptions) {
    if (!options || typeof options.baseUrl !== "string" || !/^https?:\/\//i.test(options.baseUrl)) {
      throw new TypeError("StepUp: baseUrl must be an http:// or https:// URL");
    }
    if (typeof options.apiKey !== "string" || !TOKEN.test(options.apiKey)) {
      // Say nothing of the value: it may be a real key with a stray newline.
      throw new TypeError("StepUp: apiKey must be a non-empty API key without spaces");
    }
    let base = options.baseUrl.replace(/\/+$/, "");
    if (base.endsWith(API)) base = base.slice(0, -API.length);
    this.baseUrl = base;
    this.#apiKey = options.apiKey;
    this.timeoutMs = positive(options.timeoutMs, 10_000, "timeoutMs");
    this.maxAttempts = Math.floor(positive(options.maxAttempts, 3, "maxAttempts"));
    this.retryBaseMs = nonNegative(options.retryBaseMs, 250, "retryBaseMs");
    this.maxRetryDelayMs = nonNegative(options.maxRetryDelayMs, 5_000, "maxRetryDelayMs");
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("StepUp: no fetch (Node 18 or later is needed)");
    this.#fetch = f;
    this.#userAgent = options.userAgent ?? `stepup-client-typescript/${VERSION}`;
  }

  /** What `console.log` and `JSON.stringify` show: never the key. */
  toJSON(): Record<string, unknown> {
    return { baseUrl: this.baseUrl, timeoutMs: this.timeoutMs, maxAttempts: this.maxAttempts };
  }

  toString(): string {
    return `StepUp(${this.baseUrl})`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  // --- users ------------------------------------------------------------------------

  /** Create a user of your app, or get the one with this `external_id` (or, without
   * one, this e-mail): safe to repeat. `created` tells which (201 or 200). Details that
   * differ from the existing user's reject with `UserConflict`. */
  async createUser(user: CreateUserRequest, options?: CallOptions): Promise<CreatedUser> {
    const answer = await this.#call<User>("POST", "/users", { body: user }, options);
    return { ...answer.data, created: answer.status === 201 };
  }

  /** The user: identities, enabled methods and the locks that hold now. */
  async getUser(userId: string, options?: CallOptions): Promise<UserDetail> {
    return (await this.#call<UserDetail>("GET", `/users/${enc(userId)}`, {}, options)).data;
  }

  /** Your app's user with this e-mail (any case), or null. */
  async findUserByEmail(email: string, options?: CallOptions): Promise<UserDetail | null> {
    const found = await this.#call<UsersPage>("GET", "/users", { query: { email } }, options);
    return found.data.users[0] ?? null;
  }

  /** Your app's user with this external id, or null. */
  async findUserByExternalId(externalId: string, options?: CallOptions
  ): Promise<UserDetail | null> {
    const found = await this.#call<UsersPage>("GET", "/users",
                                              { query: { external_id: externalId } }, options);
    return found.data.users[0] ?? null;
  }

  /** A page of your app's users in a stable order; pass `next_cursor` back as is. */
  async listUsers(request?: PageRequest, options?: CallOptions): Promise<UsersPage> {
    return (await this.#call<UsersPage>("GET", "/users", { query: page(request) }, options)).data;
  }

  /** Every user of your app, a page at a time. */
  async *allUsers(pageSize = 100, options?: CallOptions): AsyncGenerator<UserDetail> {
    let cursor: string | null = null;
    do {
      const found: UsersPage = await this.listUsers({ limit: pageSize, cursor }, options);
      yield* found.users;
      cursor = found.next_cursor;
    } while (cursor);
  }

  /** Change the e-mail, external id, language or PIN (only the members given). */
  async updateUser(userId: string, changes: UpdateUserRequest, options?: CallOptions
  ): Promise<UserDetail> {
    return (await this.#call<UserDetail>("PATCH", `/users/${enc(userId)}`,
                                         { body: changes }, options)).data;
  }

  /** Erase the user, their methods, secrets and sessions (the audit keeps the id only). */
  async deleteUser(userId: string, options?: CallOptions): Promise<void> {
    await this.#call<undefined>("DELETE", `/users/${enc(userId)}`, {}, options);
  }

  /** Lift the account lock, the PIN lock or a method's lock (`all` by default). */
  async unlockUser(userId: string, what?: UnlockWhat, options?: CallOptions
  ): Promise<UnlockResult> {
    return (await this.#call<UnlockResult>("POST", `/users/${enc(userId)}/unlock`,
                                           { body: what === undefined ? {} : { what } },
                                           options)).data;
  }

  /** The user's security events, newest first, with the IP and browser you forwarded. */
  async userEvents(userId: string, request?: PageRequest, options?: CallOptions
  ): Promise<EventsPage> {
    return (await this.#call<EventsPage>("GET", `/users/${enc(userId)}/events`,
                                         { query: page(request) }, options)).data;
  }

  // --- methods ----------------------------------------------------------------------

  /** Every method type for the user, enabled or not. */
  async methods(userId: string, options?: CallOptions): Promise<Method[]> {
    return (await this.#call<MethodsList>("GET", `/users/${enc(userId)}/methods`, {},
                                          options)).data.methods;
  }

  /** Start enabling a method on the user's behalf: TOTP answers the secret, SMS, e-mail
   * and WhatsApp send a code, backup codes are made (and the method enabled) at once,
   * passkeys answer the options for `navigator.credentials.create`. */
  enroll(userId: string, type: "totp", params?: EnrollRequest, options?: CallOptions
  ): Promise<TotpEnrollment>;
  enroll(userId: string, type: "backup_codes", params?: EnrollRequest, options?: CallOptions
  ): Promise<BackupCodes>;
  enroll(userId: string, type: OutOfBandMethod, params: EnrollRequest, options?: CallOptions
  ): Promise<CodeSent>;
  enroll(userId: string, type: "webauthn", params?: EnrollRequest, options?: CallOptions
  ): Promise<PasskeyOptions>;
  enroll(userId: string, type: string, params?: EnrollRequest, options?: CallOptions
  ): Promise<Enrollment>;
  async enroll(userId: string, type: string, params: EnrollRequest = {}, options?: CallOptions
  ): Promise<Enrollment> {
    return (await this.#call<Enrollment>(
      "POST", `/users/${enc(userId)}/methods/${enc(type)}/enrollment`, { body: params },
      options)).data;
  }

  /** Finish enabling a method with a code from it (passkeys: the credential, as JSON or
   * as an object). `options.protects`: what it protects from now on, confirmed by that
   * same code. Answers the method, now enabled. */
  async confirmEnrollment(userId: string, type: string, code: string | object,
                          options?: ConfirmEnrollmentOptions): Promise<Method> {
    const { protects, ...callOptions } = options ?? {};
    const body = protects === undefined ? { code: codeText(code) }
      : { code: codeText(code), protects };
    return (await this.#call<Method>(
      "POST", `/users/${enc(userId)}/methods/${enc(type)}/enrollment/confirm`,
      { body }, callOptions)).data;
  }

  /** Send a code from an out-of-band method, for `switchMethod`, `disableMethod` (and,
   * for passkeys, `removePasskey`). */
  async methodChallenge(userId: string, type: string, options?: CallOptions): Promise<CodeSent> {
    return (await this.#call<CodeSent>(
      "POST", `/users/${enc(userId)}/methods/${enc(type)}/challenge`, {}, options)).data;
  }

  /** Switch which operations a method protects; `code` must come from that same method. */
  async switchMethod(userId: string, type: string, protects: Protects, code: string | object,
                     options?: CallOptions): Promise<Method> {
    return (await this.#call<Method>(
      "PATCH", `/users/${enc(userId)}/methods/${enc(type)}`,
      { body: { protects, code: codeText(code) } }, options)).data;
  }

  /** Disable a method; `code` must come from that same method. */
  async disableMethod(userId: string, type: string, code: string | object,
                      options?: CallOptions): Promise<Method> {
    return (await this.#call<Method>(
      "POST", `/users/${enc(userId)}/methods/${enc(type)}/disable`,
      { body: { code: codeText(code) } }, options)).data;
  }

  /** A new set of backup codes (shown once); the old ones stop working. With `code`, a
   * current backup code is required; without, your portal vouches for the user. */
  async regenerateBackupCodes(userId: string, code?: string, options?: CallOptions
  ): Promise<BackupCodes> {
    return (await this.#call<BackupCodes>(
      "POST", `/users/${enc(userId)}/methods/backup_codes/regenerate`,
      { body: code === undefined ? {} : { code } }, options)).data;
  }

  /** One more passkey: the options for `navigator.credentials.create`. */
  async addPasskey(userId: string, pin?: string, options?: CallOptions): Promise<PasskeyOptions> {
    return (await this.#call<PasskeyOptions>(
      "POST", `/users/${enc(userId)}/methods/webauthn/passkeys`,
      { body: pin === undefined ? {} : { pin } }, options)).data;
  }

  /** Store the new passkey (the browser's credential, as JSON or as an object). */
  async confirmPasskey(userId: string, credential: string | object, name?: string,
                       options?: CallOptions): Promise<Method> {
    const body: Record<string, string> = { code: codeText(credential) };
    if (name !== undefined) body.name = name;
    return (await this.#call<Method>(
      "POST", `/users/${enc(userId)}/methods/webauthn/passkeys/confirm`, { body },
      options)).data;
  }

  /** Rename a passkey. */
  async renamePasskey(userId: string, passkeyId: string, name: string, options?: CallOptions
  ): Promise<Method> {
    return (await this.#call<Method>(
      "PATCH", `/users/${enc(userId)}/methods/webauthn/passkeys/${enc(passkeyId)}`,
      { body: { name } }, options)).data;
  }

  /** Remove a passkey; `code`: the user's answer (from any of their passkeys) to
   * `methodChallenge(userId, "webauthn")`. The last one disables the method. */
  async removePasskey(userId: string, passkeyId: string, code: string | object,
                      options?: CallOptions): Promise<Method> {
    return (await this.#call<Method>(
      "POST", `/users/${enc(userId)}/methods/webauthn/passkeys/${enc(passkeyId)}/remove`,
      { body: { code: codeText(code) } }, options)).data;
  }

  // --- login and operations -----------------------------------------------------------

  /** Send a code by SMS, e-mail or WhatsApp for `purpose` (`"login"` or an operation's
   * id); passkeys answer `options` for `navigator.credentials.get`. TOTP and backup codes
   * need no challenge (`MethodSendsNoCodes`). */
  async challenge(userId: string, method: string, purpose: Purpose = "login",
                  options?: CallOptions): Promise<CodeSent> {
    return (await this.#call<CodeSent>("POST", `/users/${enc(userId)}/challenge`,
                                       { body: { method, purpose } }, options)).data;
  }

  /** Check a code for `purpose` (`"login"` or an operation's id). Resolves only when it
   * is right (with the operation's `receipt`); rejects with `InvalidCode`,
   * `MethodLocked`, `CodeAlreadyUsed` (the same code twice: not a failure), … */
  async verify(userId: string, method: string, code: string | object,
               purpose: Purpose = "login", options?: CallOptions): Promise<Verification> {
    return (await this.#call<Verification>(
      "POST", `/users/${enc(userId)}/verify`,
      { body: { method, code: codeText(code), purpose } }, options)).data;
  }

  /** Create an operation for the user to confirm, e.g. a withdrawal; its `details` come
   * back canonical, as the receipt will carry them. */
  async createOperation(userId: string, type: string, details: Record<string, string>,
                        options?: CallOptions): Promise<Operation> {
    return (await this.#call<Operation>("POST", `/users/${enc(userId)}/operations`,
                                        { body: { type, details } }, options)).data;
  }

  /** The PIN step of an operation (`pin_required` → `code_required`). */
  async submitPin(userId: string, operationId: string, pin: string, options?: CallOptions
  ): Promise<Operation> {
    return (await this.#call<Operation>(
      "POST", `/users/${enc(userId)}/operations/${enc(operationId)}/pin`, { body: { pin } },
      options)).data;
  }

  /** An operation's state (and, once confirmed, its receipt). */
  async operation(userId: string, operationId: string, options?: CallOptions): Promise<Operation> {
    return (await this.#call<Operation>(
      "GET", `/users/${enc(userId)}/operations/${enc(operationId)}`, {}, options)).data;
  }

  // --- recovery -------------------------------------------------------------------------

  /** File a lock-out recovery request for the user, after your own identity check. */
  async fileRecovery(userId: string, request: RecoveryRequestIn, options?: CallOptions
  ): Promise<RecoveryRequest> {
    return (await this.#call<RecoveryRequest>("POST", `/users/${enc(userId)}/recovery`,
                                              { body: request }, options)).data;
  }

  /** The user's latest recovery request (`NotFound` if they never filed one). */
  async recovery(userId: string, options?: CallOptions): Promise<RecoveryRequest> {
    return (await this.#call<RecoveryRequest>("GET", `/users/${enc(userId)}/recovery`, {},
                                              options)).data;
  }

  // --- webhooks -------------------------------------------------------------------------

  /** Queue a signed `webhook.test` event to your app's webhook URL (202); it rejects
   * with `WebhookNotConfigured` when neither the app nor the operator set one. */
  async testWebhook(options?: CallOptions): Promise<WebhookTest> {
    return (await this.#call<WebhookTest>("POST", "/webhooks/test", {}, options)).data;
  }

  /** Your app's webhook deliveries, newest first, with their state and attempts. */
  async webhookDeliveries(request?: WebhookDeliveriesRequest, options?: CallOptions
  ): Promise<WebhookDeliveriesPage> {
    return (await this.#call<WebhookDeliveriesPage>(
      "GET", "/webhooks/deliveries", { query: { ...page(request), status: request?.status } },
      options)).data;
  }

  /** Send a delivery again (typically a failed one), with the same event id, to the
   * app's current webhook URL: it answers the delivery, pending again. */
  async redeliverWebhook(deliveryId: string, options?: CallOptions): Promise<WebhookDelivery> {
    return (await this.#call<WebhookDelivery>(
      "POST", `/webhooks/deliveries/${enc(deliveryId)}/redeliver`, {}, options)).data;
  }

  // --- the transport ----------------------------------------------------------------------

  async #call<T>(method: HttpMethod, path: string, parts: { query?: Query; body?: unknown },
                 options: CallOptions = {}): Promise<Answer<T>> {
    const url = new URL(`${this.baseUrl}${API}${path}`);
    for (const [name, value] of Object.entries(parts.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    // Made before the first attempt, so a header value fetch refuses (a newline in a user
    // agent) throws a TypeError here instead of passing for a network failure.
    const headers = new Headers({
      Authorization: `Bearer ${this.#apiKey}`,
      Accept: "application/json, application/problem+json",
      "User-Agent": this.#userAgent,
    });
    if (method !== "GET") {
      const key = options.idempotencyKey ?? randomUUID();
      headers.set("Idempotency-Key", key);
    }
    if (options.endUserIp !== undefined) headers.set("StepUp-End-User-IP", options.endUserIp);
    if (options.endUserAgent !== undefined) {
      headers.set("StepUp-End-User-Agent", options.endUserAgent);
    }
    let body: string | undefined;
    if (parts.body !== undefined) {
      body = JSON.stringify(parts.body);
      headers.set("Content-Type", "application/json");
    }
    const attempts = Math.max(1, Math.floor(options.maxAttempts ?? this.maxAttempts));
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;

    for (let attempt = 1; ; attempt++) {
      let error: StepUpError;
      try {
        return await this.#once<T>(url, method, headers, body, timeoutMs, options.signal);
      } catch (caught) {
        if (!(caught instanceof StepUpError)) throw caught;
        error = caught;
      }
      if (options.signal?.aborted || !error.retryable || attempt >= attempts) throw error;
      const wait = this.#delay(attempt, error);
      if (wait === null) throw error;
      await sleep(wait, options.signal);
      if (options.signal?.aborted) throw error;
    }
  }

  async #once<T>(url: URL, method: HttpMethod, headers: Headers, body: string | undefined,
                 timeoutMs: number, signal: AbortSignal | undefined): Promise<Answer<T>> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs);
    const onAbort = (): void => controller.abort();
    if (signal?.aborted) controller.abort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    try {
      let response: Response;
      let text: string;
      try {
        response = await this.#fetch(url, {
          method, headers, body, signal: controller.signal, redirect: "manual",
        });
        text = await response.text();
      } catch (err) {
        const why = timedOut ? `no answer within ${timeoutMs} ms`
          : signal?.aborted ? "the call was aborted"
          : describe(err);
        throw noAnswer(`StepUp could not be reached (${method} ${url.pathname}): ${why}.`, err);
      }
      const data = parse(text);
      if (response.status >= 200 && response.status < 300) {
        if (data === INVALID) {
          throw new StepUpError({
            status: response.status, code: "invalid_answer", title: "Not JSON",
            detail: `StepUp answered ${response.status} with a body that is not JSON.`,
            retryable: false,
          });
        }
        return { status: response.status, data: data as T, headers: response.headers };
      }
      throw fromAnswer(response.status, data === INVALID ? null : data,
                       response.headers.get("Retry-After"));
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** How long to wait before attempt `attempt + 1`, or null: not worth waiting for. */
  #delay(attempt: number, error: StepUpError): number | null {
    const backoff = this.retryBaseMs * 2 ** (attempt - 1);
    const jittered = backoff / 2 + Math.random() * (backoff / 2);
    const asked = error.retryAfter === null ? 0 : error.retryAfter * 1000;
    if (asked > this.maxRetryDelayMs) return null;
    return Math.min(Math.max(jittered, asked), this.maxRetryDelayMs);
  }
}

const INVALID = Symbol("not JSON");

function parse(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return INVALID;
  }
}

function describe(err: unknown): string {
  // undici: TypeError("fetch failed") with the system error (ECONNREFUSED …) as cause.
  const cause = (err as { cause?: unknown } | null)?.cause;
  const inner = cause instanceof Error ? cause : err instanceof Error ? err : null;
  const code = (inner as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return inner?.message || String(err);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener("abort", done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new TypeError(`StepUp: ${name} must be a positive number`);
  }
  return value;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
    throw new TypeError(`StepUp: ${name} must be a number, 0 or more`);
  }
  return value;
}
