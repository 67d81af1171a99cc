"""Which problem codes each route can answer, beyond those its dependencies and shape
give it (authentication, validation, quotas, the database: see ``web.openapi``).

The table is read off the services each route calls: a route is listed by its method
and full path template, with the codes of the domain errors its use case raises. A
route not listed answers only the generic problems. Codes are the stable words of
``domain.errors``; their statuses come from ``web.problems.STATUS_BY_CODE``.
"""

from __future__ import annotations

# --- what the shared steps of the services raise -------------------------------------------

# services.verification.check_code: the guards, the method's own verify, the lock after
# a failure. A right code that was already accepted is ``code_already_used``.
CHECK_CODE = ("invalid_code", "code_expired", "code_already_used", "method_locked",
              "account_locked")
# services.verification.check_pin
CHECK_PIN = ("pin_invalid", "method_locked", "account_locked")
# A method's challenge and services.challenges.deliver: cooldown, send caps, the
# provider (transient or permanent), passkey request caps.
SEND = ("resend_too_soon", "send_cap_reached", "rate_limited", "delivery_failed",
        "invalid_destination")
# services.operations._load: an operation that cannot move on any more.
LOAD_OPERATION = ("not_found", "operation_expired", "operation_already_confirmed",
                  "conflict")
# services.operations._chosen: the method picked to confirm an operation.
CHOOSE_METHOD = ("pin_required", "method_not_allowed_for_purpose", "method_not_enabled")

# The operator adapter's policy hooks (stepup.adapter): may_enable, may_disable.
ENROLL = ("not_found", "validation_error", "forbidden", *CHECK_PIN, "method_already_enabled",
          *SEND)
CONFIRM_ENROLLMENT = ("not_found", "conflict", *CHECK_CODE)
METHOD_CHALLENGE = ("not_found", "method_not_enabled", "method_sends_no_codes", "conflict",
                    *SEND)
SWITCH = ("validation_error", "method_not_enabled", *CHECK_CODE)
DISABLE = ("not_found", "method_not_enabled", "method_required", *CHECK_CODE)
ADD_PASSKEY = (*CHECK_PIN, "not_found", "method_not_enabled", "rate_limited")
CONFIRM_PASSKEY = ("validation_error", "method_not_enabled", "conflict", *CHECK_CODE)
RENAME_PASSKEY = ("validation_error", "not_found")
REMOVE_PASSKEY = ("not_found", "method_not_enabled", "method_required", *CHECK_CODE)
REGENERATE = ("method_not_enabled", *CHECK_CODE)
CREATE_OPERATION = ("validation_error", "not_found", "conflict", "no_method_for_operation")
OPERATION_PIN = (*LOAD_OPERATION, *CHECK_PIN, "state_changed", "no_method_for_operation")
OPERATION_CHALLENGE = (*LOAD_OPERATION, *CHOOSE_METHOD, "method_sends_no_codes", *SEND)
OPERATION_CONFIRM = (*LOAD_OPERATION, *CHOOSE_METHOD, *CHECK_CODE)

V1 = "/api/v1"
ME = f"{V1}/me/methods"
USER = f"{V1}/users/{{user_id}}"

ROUTE_CODES: dict[tuple[str, str], tuple[str, ...]] = {
    # accounts and login (public, or an end user's session)
    ("POST", f"{V1}/accounts"): ("validation_error", "email_taken", "signup_limit_reached"),
    ("POST", f"{V1}/login"): ("invalid_credentials", "rate_limited", "account_locked"),
    ("POST", f"{V1}/login/challenge"): ("not_authenticated", "method_not_enabled",
                                        "method_locked", "account_locked",
                                        "method_sends_no_codes", *SEND),
    ("POST", f"{V1}/login/verify"): ("not_authenticated", "method_not_enabled", *CHECK_CODE),
    # account security (services.account_security): the password is throttled like a
    # login; the PIN's code is checked like any other
    ("POST", f"{V1}/me/password"): ("validation_error", "invalid_credentials",
                                    "rate_limited"),
    ("POST", f"{V1}/me/pin/challenge"): ("method_not_enabled", "method_sends_no_codes",
                                         *SEND),
    ("POST", f"{V1}/me/pin"): ("validation_error", "invalid_credentials", "rate_limited",
                               "method_not_enabled", *CHECK_CODE),
    ("POST", f"{V1}/password/forgot"): ("rate_limited",),
    ("POST", f"{V1}/password/reset"): ("validation_error", "invalid_reset_token"),
    # /me/methods
    ("POST", f"{ME}/{{method_type}}/enrollment"): ENROLL,
    ("POST", f"{ME}/{{method_type}}/enrollment/confirm"): CONFIRM_ENROLLMENT,
    ("POST", f"{ME}/{{method_type}}/challenge"): METHOD_CHALLENGE,
    ("PATCH", f"{ME}/{{method_type}}"): SWITCH,
    ("POST", f"{ME}/{{method_type}}/disable"): DISABLE,
    ("POST", f"{ME}/webauthn/passkeys"): ADD_PASSKEY,
    ("POST", f"{ME}/webauthn/passkeys/confirm"): CONFIRM_PASSKEY,
    ("PATCH", f"{ME}/webauthn/passkeys/{{passkey_id}}"): RENAME_PASSKEY,
    ("POST", f"{ME}/webauthn/passkeys/{{passkey_id}}/remove"): REMOVE_PASSKEY,
    ("POST", f"{ME}/backup_codes/regenerate"): REGENERATE,
    # /me/operations and /me/devices
    ("POST", f"{V1}/me/operations"): CREATE_OPERATION,
    ("GET", f"{V1}/me/operations/{{operation_id}}"): ("not_found",),
    ("POST", f"{V1}/me/operations/{{operation_id}}/pin"): OPERATION_PIN,
    ("POST", f"{V1}/me/operations/{{operation_id}}/challenge"): OPERATION_CHALLENGE,
    ("POST", f"{V1}/me/operations/{{operation_id}}/confirm"): OPERATION_CONFIRM,
    ("DELETE", f"{V1}/me/devices/{{device_id}}"): ("not_found",),
    # /me/email/verification (services.email_verification)
    ("POST", f"{V1}/me/email/verification"): ("email_already_verified", "conflict", *SEND),
    ("POST", f"{V1}/me/email/verification/confirm"): ("conflict", *CHECK_CODE),
    # the integration API: users
    ("POST", f"{V1}/users"): ("validation_error", "user_conflict", "state_changed"),
    ("GET", f"{V1}/users"): ("validation_error",),
    ("PATCH", USER): ("validation_error", "email_taken", "user_conflict"),
    ("POST", f"{USER}/unlock"): ("validation_error",),
    ("GET", f"{USER}/events"): ("validation_error",),
    ("POST", f"{USER}/recovery"): ("validation_error", "recovery_already_open",
                                   "recovery_cooldown"),
    ("GET", f"{USER}/recovery"): ("not_found",),
    # ... their methods, on their behalf
    ("POST", f"{USER}/methods/{{method_type}}/enrollment"): ENROLL,
    ("POST", f"{USER}/methods/{{method_type}}/enrollment/confirm"): CONFIRM_ENROLLMENT,
    ("POST", f"{USER}/methods/{{method_type}}/challenge"): METHOD_CHALLENGE,
    ("PATCH", f"{USER}/methods/{{method_type}}"): SWITCH,
    ("POST", f"{USER}/methods/{{method_type}}/disable"): DISABLE,
    ("POST", f"{USER}/methods/webauthn/passkeys"): ADD_PASSKEY,
    ("POST", f"{USER}/methods/webauthn/passkeys/confirm"): CONFIRM_PASSKEY,
    ("PATCH", f"{USER}/methods/webauthn/passkeys/{{passkey_id}}"): RENAME_PASSKEY,
    ("POST", f"{USER}/methods/webauthn/passkeys/{{passkey_id}}/remove"): REMOVE_PASSKEY,
    ("POST", f"{USER}/methods/backup_codes/regenerate"): REGENERATE,
    # ... headless challenge and verify: for login (services.headless) or, with an
    # operation id as purpose, the operation's own challenge and confirmation
    ("POST", f"{USER}/challenge"): ("validation_error", "not_found", "method_not_enabled",
                                    "method_not_allowed_for_purpose",
                                    "method_sends_no_codes", *LOAD_OPERATION, "pin_required",
                                    *SEND),
    ("POST", f"{USER}/verify"): ("validation_error", "not_found", "method_not_enabled",
                                 "method_not_allowed_for_purpose", *CHECK_CODE,
                                 *LOAD_OPERATION, "pin_required"),
    # ... and their operations
    ("POST", f"{USER}/operations"): CREATE_OPERATION,
    ("POST", f"{USER}/operations/{{operation_id}}/pin"): OPERATION_PIN,
    ("GET", f"{USER}/operations/{{operation_id}}"): ("not_found",),
    # webhooks of the key's app (services.webhooks); validation_error: the end user's
    # context headers, checked by deps.app_actor
    ("POST", f"{V1}/webhooks/test"): ("webhook_not_configured", "validation_error"),
    ("GET", f"{V1}/webhooks/deliveries"): ("validation_error",),
    ("POST", f"{V1}/webhooks/deliveries/{{delivery_id}}/redeliver"): ("not_found",
                                                                      "validation_error"),
}

# Codes that no route of the JSON API answers, and why: a generated client never sees
# them, so they are declared nowhere in the OpenAPI description.
OUTSIDE_API: dict[str, str] = {
    "second_factor_required": "the support console's staff login (pages, not the API)",
}

# Titles of the problems that do not come from a domain error.
TITLES = {
    "bad_request": "There was an error parsing the body",
    "payload_too_large": "The request body is too large",
    "service_unavailable": "Service unavailable",
    "internal_error": "Internal error",
}
