/**
 * Request and answer bodies of StepUp's integration API (`/api/v1`), as JSON goes over the
 * wire: member names are the API's own (snake_case), times are RFC 3339 UTC strings.
 * The OpenAPI description is at `/openapi.json`.
 */

/** Method types StepUp knows (more may be configured; any string is accepted). */
export type MethodType = "totp" | "sms" | "email" | "whatsapp" | "backup_codes" | "webauthn";
/** Methods that send a code (SMS, e-mail, WhatsApp). */
export type OutOfBandMethod = "sms" | "email" | "whatsapp";
/** `"login"`, or an operation's id (a withdrawal to confirm). */
export type Purpose = "login" | (string & {});
/** Which operations a method protects, e.g. `{login: true, withdrawal: false}`. */
export type Protects = Record<string, boolean>;

// --- the end user's context and per-call options ------------------------------------

/** The person at the keyboard, forwarded on a call (`StepUp-End-User-IP`,
 * `StepUp-End-User-Agent`): StepUp uses them for per-address caps, new-device checks,
 * notices and the audit. Never your server's own address. */
export interface EndUser {
  /** The end user's IP address (IPv4 or IPv6), as your portal saw it. */
  endUserIp?: string;
  /** The end user's browser `User-Agent`, as your portal received it. */
  endUserAgent?: string;
}

/** The optional last argument of every call. */
export interface CallOptions extends EndUser {
  /** The `Idempotency-Key` of this logical call (POST, PATCH, DELETE). By default the
   * client makes a fresh UUID per call and reuses it on its own retries; pass your own
   * to retry a call across restarts of your portal. */
  idempotencyKey?: string;
  /** Milliseconds each attempt may take (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Attempts at most, 1 = no automatic retry (default: the client's `maxAttempts`). */
  maxAttempts?: number;
  /** Aborts the call (no retry follows): it rejects with `ServiceUnavailable`. */
  signal?: AbortSignal;
}

// --- users ----------------------------------------------------------------------------

export interface CreateUserRequest {
  email: string;
  /** Your portal's id for the user (unique in your app). */
  external_id?: string | null;
  /** `en` or `ru`; a new user without one gets `en`. */
  language?: string | null;
  /** The withdrawal PIN; without it StepUp asks none. */
  pin?: string | null;
  /** Keys of the app `portal` only: the user also logs in to StepUp's own pages. */
  password?: string | null;
  /** `true`: your portal verified this address and vouches for it. Only a verified
   * e-mail gets the code of a withdrawal that no method protects. */
  email_verified?: boolean;
}

/** The answer of `createUser`. */
export interface User {
  id: string;
  email: string;
  external_id?: string | null;
  language: string;
  verification_grade: number;
}

/** `createUser`'s answer, with `created`: false when the user already existed (200). */
export interface CreatedUser extends User {
  created: boolean;
}

export interface Identities {
  email_verified: boolean;
  phone_verified: boolean;
}

export interface MethodSummary {
  type: MethodType | (string & {});
  enabled: boolean;
  protects: Protects;
}

/** Only the locks that hold now, each with the instant it ends. */
export interface Locks {
  account?: string;
  pin?: string;
  methods: Record<string, string>;
}

/** A user as `getUser`, the lookups, `listUsers` and `updateUser` answer it. */
export interface UserDetail {
  id: string;
  email: string;
  external_id: string | null;
  language: string;
  created_at: string;
  verification_grade: number;
  identities: Identities;
  /** The enabled methods. */
  methods: MethodSummary[];
  locks: Locks;
}

export interface UsersPage {
  users: UserDetail[];
  /** Pass back as is for the next page; null on the last page. */
  next_cursor: string | null;
}

export interface PageRequest {
  /** 1-200 (default 50). */
  limit?: number;
  /** `next_cursor` of the page before. */
  cursor?: string | null;
}

/** Only the members sent change; `external_id: null` removes the external id. */
export interface UpdateUserRequest {
  email?: string;
  external_id?: string | null;
  language?: string;
  /** A new PIN. */
  pin?: string;
  /** `true`: your portal verified the (new) address and vouches for it. */
  email_verified?: boolean;
}

/** `all` (default), `account`, `pin` or a method type. */
export type UnlockWhat = "all" | "account" | "pin" | MethodType | (string & {});

export interface UnlockResult {
  /** What was lifted, e.g. `["method:totp"]`. */
  cleared: string[];
}

export interface UserEvent {
  id: number;
  event: string;
  created_at: string;
  ip?: string | null;
  /** The browser, in short (e.g. `Chrome 126, Linux`). */
  user_agent?: string | null;
  method?: string | null;
  purpose?: string | null;
  details: Record<string, unknown>;
}

export interface EventsPage {
  /** Newest first. */
  events: UserEvent[];
  next_cursor: string | null;
}

// --- methods --------------------------------------------------------------------------

export interface Passkey {
  id: string;
  name: string;
  created_at: string;
  last_used_at?: string | null;
}

/** One method of a user, enabled or not. */
export interface Method {
  type: MethodType | (string & {});
  enabled: boolean;
  available?: boolean;
  pending?: boolean;
  protects: Protects;
  /** The masked destination (`+44 **** **0123`). */
  destination?: string | null;
  /** Backup codes left. */
  remaining?: number | null;
  created_at?: string | null;
  last_used_at?: string | null;
  passkeys?: Passkey[] | null;
}

export interface MethodsList {
  methods: Method[];
}

/** Parameters of `enroll`: `phone` for SMS and WhatsApp, `email` for e-mail; `pin` is
 * optional on the user's behalf (checked when given). */
export interface EnrollRequest {
  pin?: string;
  phone?: string;
  email?: string;
  /** Only for `backup_codes` (enabled at once): what they protect. Any other method
   * takes it with `confirmEnrollment`. */
  protects?: Protects;
}

/** `confirmEnrollment`'s options: what the method protects from now on, confirmed by
 * the same code (e.g. `{ login: true, withdrawal: true }`); the operations not named
 * keep the default (the user's first method protects login, any other nothing). */
export interface ConfirmEnrollmentOptions extends CallOptions {
  protects?: Protects;
}

/** totp: the secret to show (as the QR code), then `confirmEnrollment` with a code. */
export interface TotpEnrollment {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}

/** sms, email, whatsapp: a code was sent; then `confirmEnrollment` with it. */
export interface CodeSent {
  /** For `challenge`: the method the code is for. */
  method?: string | null;
  /** The masked destination. */
  sent_to: string;
  /** Seconds the code is valid. */
  expires_in: number;
  /** Seconds before another code may be sent. */
  resend_in: number;
  /** Passkeys: the options for `navigator.credentials.get({publicKey: options})`. */
  options?: Record<string, unknown> | null;
}

/** backup_codes: the codes, shown once (the method is enabled at once). */
export interface BackupCodes {
  codes: string[];
}

/** webauthn: options for `navigator.credentials.create({publicKey: options})`
 * (base64url members), then `confirmEnrollment` with `JSON.stringify(credential)`. */
export interface PasskeyOptions {
  options: Record<string, unknown>;
  expires_in: number;
}

export type Enrollment = TotpEnrollment | CodeSent | BackupCodes | PasskeyOptions;

/** The answer of `challenge` and `methodChallenge`. */
export type Challenge = CodeSent;

export interface SwitchRequest {
  protects: Protects;
  code: string;
}

// --- login and operations -------------------------------------------------------------

export interface ChallengeRequest {
  method: string;
  purpose?: Purpose;
}

export interface VerifyRequest {
  method: string;
  code: string;
  purpose?: Purpose;
}

/** The answer of `verify`: it answers only when the code is right. */
export interface Verification {
  valid: boolean;
  method: string;
  verified_at: string;
  /** For an operation: its receipt (a JWS signed with EdDSA). */
  receipt?: string | null;
  backup_codes_remaining?: number | null;
}

/** A withdrawal's details: `amount` is a decimal string, never a number. */
export interface WithdrawalDetails {
  amount: string;
  currency: string;
  destination: string;
  [member: string]: string;
}

export interface CreateOperationRequest {
  type: "withdrawal" | (string & {});
  details: Record<string, string>;
}

export interface OperationMethod {
  type: string;
  destination?: string | null;
}

export type OperationStatus = "pin_required" | "code_required" | "confirmed" | "expired";

export interface Operation {
  id: string;
  type: string;
  status: OperationStatus | (string & {});
  summary: string;
  /** The canonical details, exactly as the receipt carries them ("0.10 btc" comes back
   * "0.1 BTC"): compare the receipt with these. */
  details: Record<string, string>;
  expires_at: string;
  /** With `code_required`: the methods that may confirm it. */
  methods?: OperationMethod[] | null;
  receipt?: string | null;
  method?: string | null;
  confirmed_at?: string | null;
}

// --- recovery -------------------------------------------------------------------------

export interface RecoveryContact {
  channel: "phone" | "email";
  /** Required with `channel: "phone"`. */
  phone?: string | null;
  best_time?: string | null;
}

export interface RecoveryRequestIn {
  /** What happened, in the user's words (1-2000 characters). */
  description: string;
  contact: RecoveryContact;
}

export type RecoveryStatus =
  "requested" | "checked" | "approved" | "completed" | "rejected" | "cancelled";

export interface RecoveryRequest {
  id: string;
  status: RecoveryStatus | (string & {});
  created_at: string;
  checked_at?: string | null;
  decided_at?: string | null;
  effective_at?: string | null;
  completed_at?: string | null;
  cancelled_at?: string | null;
}

// --- webhooks -------------------------------------------------------------------------

/** The answer of `testWebhook` (202): a signed `webhook.test` event was queued. */
export interface WebhookTest {
  /** The event id (`StepUp-Event-Id`), also the delivery's id. */
  id: string;
  event: string;
  /** Where it goes: your app's webhook URL, else the operator's global one. */
  url: string;
}

export type WebhookDeliveryStatus = "pending" | "delivered" | "failed";

/** One webhook delivery: its event, where it went, how it went. */
export interface WebhookDelivery {
  /** The event id (`StepUp-Event-Id`). */
  id: string;
  event: string;
  url: string;
  created_at: string;
  /** pending (due, being sent or waiting to retry), delivered (the receiver answered
   * 2xx) or failed (given up after the last attempt). */
  status: WebhookDeliveryStatus | (string & {});
  attempts: number;
  last_error?: string | null;
  next_attempt_at?: string | null;
  delivered_at?: string | null;
}

export interface WebhookDeliveriesRequest extends PageRequest {
  /** 1-100 (default 20). */
  limit?: number;
  /** Only deliveries in this state. */
  status?: WebhookDeliveryStatus;
}

export interface WebhookDeliveriesPage {
  /** Newest first. */
  deliveries: WebhookDelivery[];
  /** Pass as `cursor` for the older ones; null (or absent) on the last page. */
  next_cursor?: string | null;
}
