/**
 * Exceptions: one class per problem `code` of the StepUp API (RFC 9457 documents).
 *
 * Every error the client throws for a StepUp answer, or for no answer at all, is a
 * {@link StepUpError}. Catch a subclass for the cases your portal handles differently:
 *
 * ```ts
 * try {
 *   await stepup.verify(userId, "totp", code);
 * } catch (e) {
 *   if (e instanceof InvalidCode) ...          // "That code is not right"
 *   else if (e instanceof MethodLocked) ...    // `try again in ${e.retryAfter} s`
 *   else throw e;
 * }
 * ```
 *
 * The specific codes extend the catch-all they replace, as in the Python client:
 * `CodeAlreadyUsed` is a `Conflict`, `SendCapReached` a `RateLimited`.
 */

/** An RFC 9457 problem document as StepUp answers it (extra members kept as they came). */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  retryable?: boolean;
  field?: string;
  retry_after?: number;
  errors?: Array<{ field: string; message: string }>;
  [member: string]: unknown;
}

export interface StepUpErrorInit {
  status: number;
  code: string;
  title: string;
  detail: string;
  retryable?: boolean;
  retryAfter?: number | null;
  field?: string | null;
  problem?: Problem | null;
  cause?: unknown;
}

/**
 * An error answer from StepUp, or no answer at all ({@link ServiceUnavailable} with
 * `status: 0`).
 *
 * - `status`: the HTTP status (0 when no answer came);
 * - `code`: the problem's stable machine word (`invalid_code`, `method_locked`, …);
 * - `retryable`: StepUp's word on whether the same request may succeed if sent again
 *   later as it is (after `retryAfter` seconds when given);
 * - `retryAfter`: seconds to wait (locks, rate limits), or null;
 * - `field`: the request field at fault, when StepUp names one;
 * - `problem`: the whole document (for extra members such as `errors`).
 *
 * The message never holds the API key (nor any request header).
 */
export class StepUpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly retryable: boolean;
  readonly retryAfter: number | null;
  readonly field: string | null;
  readonly problem: Readonly<Problem>;

  constructor(init: StepUpErrorInit) {
    const where = init.status ? `${init.code} (${init.status})` : init.code;
    super(`${where}: ${init.detail}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.title = init.title;
    this.detail = init.detail;
    this.retryable =
      init.retryable ?? (typeof init.problem?.retryable === "boolean"
        ? init.problem.retryable
        : [0, 502, 503, 504].includes(init.status));
    this.retryAfter = init.retryAfter ?? null;
    this.field = init.field ?? null;
    this.problem = Object.freeze({ ...(init.problem ?? {}) });
    Object.defineProperty(this, "name", { value: new.target.name, enumerable: false,
                                          configurable: true, writable: true });
  }

  /** The error as plain data (for logs): no request, no header, no key. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name, status: this.status, code: this.code, title: this.title,
      detail: this.detail, retryable: this.retryable, retryAfter: this.retryAfter,
      field: this.field,
    };
  }
}

/** `service_unavailable`: StepUp answered 503 (or a proxy in front of it a 502/504 without
 * a problem document), or no answer came at all (`status: 0`: connection refused, reset,
 * timed out, aborted). Whether a code was consumed is unknown: retry with the same
 * idempotency key, or read the state. */
export class ServiceUnavailable extends StepUpError {}

/** `validation_error` (422): see `field` and `problem.errors`. */
export class ValidationError extends StepUpError {}
/** `bad_request` (400): the body is not JSON or not UTF-8. */
export class BadRequest extends StepUpError {}
/** `invalid_credentials` (401). */
export class InvalidCredentials extends StepUpError {}
/** `not_authenticated` (401): the API key is missing, wrong or revoked. */
export class NotAuthenticated extends StepUpError {}
/** `forbidden` (403): the key's role or scopes do not allow this call. */
export class Forbidden extends StepUpError {}
/** `not_found` (404): no such user (in your app), operation or request. */
export class NotFound extends StepUpError {}
/** `method_not_allowed` (405). */
export class MethodNotAllowed extends StepUpError {}
/** `payload_too_large` (413). */
export class PayloadTooLarge extends StepUpError {}
/** `unsupported_media_type` (415). */
export class UnsupportedMediaType extends StepUpError {}
/** `conflict` (409): the catch-all the specific 409 codes below extend. */
export class Conflict extends StepUpError {}
/** `invalid_code` (400): wrong code; ask the user again. */
export class InvalidCode extends StepUpError {}
/** `code_expired` (400): the code expired or was tried too often; send a new one. */
export class CodeExpired extends StepUpError {}
/** `pin_invalid` (400). */
export class PinInvalid extends StepUpError {}
/** `method_locked` (423): too many wrong codes; `retryAfter` seconds to wait. */
export class MethodLocked extends StepUpError {}
/** `account_locked` (423): `retryAfter` seconds to wait. */
export class AccountLocked extends StepUpError {}
/** `method_not_enabled` (409): the user has not enabled this method. */
export class MethodNotEnabled extends StepUpError {}
/** `second_factor_required` (401). */
export class SecondFactorRequired extends StepUpError {}
/** `rate_limited` (429): the catch-all the specific 429 codes below extend. */
export class RateLimited extends StepUpError {}
/** `delivery_failed` (502): the provider failed for now; nothing was changed. */
export class DeliveryFailed extends StepUpError {}
/** `internal_error` (500). */
export class InternalError extends StepUpError {}
/** `pin_required` (409): the operation waits for its PIN. */
export class PinRequired extends Conflict {}
/** `operation_already_confirmed` (409): read the operation for its receipt. */
export class OperationAlreadyConfirmed extends Conflict {}
/** `operation_expired` (409): start a new operation. */
export class OperationExpired extends Conflict {}
/** `method_already_enabled` (409): disable it first to enrol again. */
export class MethodAlreadyEnabled extends Conflict {}
/** `method_required` (409): the operator's policy keeps this method on; nothing was spent. */
export class MethodRequired extends Conflict {}
/** `email_taken` (409): another user of your app has this e-mail. */
export class EmailTaken extends Conflict {}
/** `user_conflict` (409): the details differ from the existing user's, or name two users. */
export class UserConflict extends Conflict {}
/** `code_already_used` (409): the code was already accepted; not a failure, nothing counted. */
export class CodeAlreadyUsed extends Conflict {}
/** `method_not_allowed_for_purpose` (409): not switched on for this login or operation. */
export class MethodNotAllowedForPurpose extends Conflict {}
/** `method_sends_no_codes` (409): TOTP and backup codes are read from the user, not sent. */
export class MethodSendsNoCodes extends Conflict {}
/** `state_changed` (409, retryable): it changed meanwhile; read it again. */
export class StateChanged extends Conflict {}
/** `recovery_already_open` (409): one recovery request at a time. */
export class RecoveryAlreadyOpen extends Conflict {}
/** `idempotency_key_in_use` (409, retryable): the first call with this key still runs. */
export class IdempotencyKeyInUse extends Conflict {}
/** `webhook_not_configured` (409): neither your app nor the operator set a webhook URL. */
export class WebhookNotConfigured extends Conflict {}
/** `idempotency_key_reused` (422): the key was used with another request. */
export class IdempotencyKeyReused extends StepUpError {}
/** `api_quota_exceeded` (429): the API key's calls per minute. */
export class ApiQuotaExceeded extends RateLimited {}
/** `resend_too_soon` (429): a code was sent moments ago. */
export class ResendTooSoon extends RateLimited {}
/** `send_cap_reached` (429): a per-destination, per-user, per-address or app cap. */
export class SendCapReached extends RateLimited {}
/** `recovery_cooldown` (429): the user's last recovery request was cancelled or rejected
 * lately; a new one may be filed after `retryAfter` seconds. */
export class RecoveryCooldown extends RateLimited {}
/** `signup_limit_reached` (429): too many sign-ups from the caller's network this hour;
 * try again after `retryAfter` seconds. */
export class SignupLimitReached extends RateLimited {}
/** `invalid_destination` (422): this number or address cannot receive; ask for another. */
export class InvalidDestination extends StepUpError {}
/** `no_method_for_operation` (409): nothing can confirm this operation yet — the user
 * verifies their e-mail address, or switches a method on for it. */
export class NoMethodForOperation extends Conflict {}
/** `email_already_verified` (409): the account e-mail is verified already; nothing sent. */
export class EmailAlreadyVerified extends Conflict {}
/** `invalid_reset_token` (400): the password reset link is unknown, expired, used or
 * replaced; the user asks for a new one. */
export class InvalidResetToken extends StepUpError {}

type ErrorClass = new (init: StepUpErrorInit) => StepUpError;

const BY_CODE: Readonly<Record<string, ErrorClass>> = Object.freeze({
  validation_error: ValidationError,
  bad_request: BadRequest,
  invalid_credentials: InvalidCredentials,
  not_authenticated: NotAuthenticated,
  forbidden: Forbidden,
  not_found: NotFound,
  method_not_allowed: MethodNotAllowed,
  payload_too_large: PayloadTooLarge,
  unsupported_media_type: UnsupportedMediaType,
  conflict: Conflict,
  invalid_code: InvalidCode,
  code_expired: CodeExpired,
  pin_invalid: PinInvalid,
  method_locked: MethodLocked,
  account_locked: AccountLocked,
  method_not_enabled: MethodNotEnabled,
  second_factor_required: SecondFactorRequired,
  rate_limited: RateLimited,
  delivery_failed: DeliveryFailed,
  service_unavailable: ServiceUnavailable,
  internal_error: InternalError,
  pin_required: PinRequired,
  operation_already_confirmed: OperationAlreadyConfirmed,
  operation_expired: OperationExpired,
  method_already_enabled: MethodAlreadyEnabled,
  method_required: MethodRequired,
  email_taken: EmailTaken,
  user_conflict: UserConflict,
  code_already_used: CodeAlreadyUsed,
  method_not_allowed_for_purpose: MethodNotAllowedForPurpose,
  method_sends_no_codes: MethodSendsNoCodes,
  state_changed: StateChanged,
  recovery_already_open: RecoveryAlreadyOpen,
  idempotency_key_in_use: IdempotencyKeyInUse,
  webhook_not_configured: WebhookNotConfigured,
  idempotency_key_reused: IdempotencyKeyReused,
  api_quota_exceeded: ApiQuotaExceeded,
  resend_too_soon: ResendTooSoon,
  send_cap_reached: SendCapReached,
  recovery_cooldown: RecoveryCooldown,
  signup_limit_reached: SignupLimitReached,
  invalid_destination: InvalidDestination,
  no_method_for_operation: NoMethodForOperation,
  email_already_verified: EmailAlreadyVerified,
  invalid_reset_token: InvalidResetToken,
});

/** Every problem `code` this client has a class for. */
export const KNOWN_CODES: readonly string[] = Object.freeze(Object.keys(BY_CODE));

/** The exception class for a problem `code` ({@link StepUpError} if unknown). */
export function errorClass(code: string): ErrorClass {
  return Object.prototype.hasOwnProperty.call(BY_CODE, code) ? BY_CODE[code]! : StepUpError;
}

// A status without a problem document (a proxy's page, an empty body): the code StepUp
// itself would have used for it.
const CODE_BY_STATUS: Readonly<Record<number, string>> = {
  400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
  405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
  415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
  500: "internal_error", 502: "service_unavailable", 503: "service_unavailable",
  504: "service_unavailable",
};

function seconds(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== "string") return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value); // Retry-After may also be an HTTP date
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** The exception for an HTTP error answer: its problem document if it has one, else
 * what the status says. `retryAfterHeader` is the answer's `Retry-After`, if any. */
export function fromAnswer(status: number, body: unknown, retryAfterHeader: string | null
): StepUpError {
  const retryAfter = seconds(retryAfterHeader) ?? null;
  if (body && typeof body === "object" && !Array.isArray(body)
      && typeof (body as Problem).code === "string") {
    const p = body as Problem;
    const code = p.code as string;
    const Cls = errorClass(code);
    return new Cls({
      status, code,
      title: typeof p.title === "string" ? p.title : code,
      detail: typeof p.detail === "string" ? p.detail : (typeof p.title === "string" ? p.title : code),
      retryAfter: seconds(p.retry_after) ?? retryAfter,
      field: typeof p.field === "string" ? p.field : null,
      problem: p,
    });
  }
  const code = CODE_BY_STATUS[status] ?? (status >= 500 ? "internal_error" : "http_error");
  const Cls = errorClass(code);
  const detail = `StepUp answered HTTP ${status} without a problem document.`;
  return new Cls({ status, code, title: `HTTP ${status}`, detail, retryAfter });
}

/** The exception for no answer at all: refused, reset, timed out, aborted. */
export function noAnswer(detail: string, cause?: unknown): ServiceUnavailable {
  return new ServiceUnavailable({
    status: 0, code: "service_unavailable", title: "StepUp could not be reached",
    detail, retryable: true, cause,
  });
}
