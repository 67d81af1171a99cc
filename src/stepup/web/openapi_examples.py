"""Whole-body examples of the integration calls (``/api/v1/users``, ``/api/v1/webhooks``)
for the OpenAPI description: each request body and each success answer, keyed by method
and full path template (``"request"`` or the status). The models carry examples of single
fields only; these show what a portal sends and gets. ``tests/api/test_openapi.py``
checks the answers of the users' calls against real ones."""

from __future__ import annotations

from typing import Any

USER = "/api/v1/users/{user_id}"
USER_ID = "5f0c3a9e8b7d4e21a6c9d0b1e2f3a4b5"
OPERATION_ID = "9a1b2c3d4e5f60718293a4b5c6d7e8f9"
WHEN = "2025-06-02T09:41:07Z"
LATER = "2025-06-02T09:51:07Z"
DETAILS = {"amount": "0.1", "currency": "BTC",
           "destination": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}
SUMMARY = "0.1 BTC to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
TOTP_CODE = "492039"

NEW_USER = {"id": USER_ID, "email": "jane@example.com", "external_id": "client-8812",
            "language": "en", "verification_grade": 0}
USER_DETAIL = {
    "id": USER_ID, "email": "jane@example.com", "external_id": "client-8812",
    "language": "en", "created_at": WHEN, "verification_grade": 0,
    "identities": {"email_verified": False, "phone_verified": False},
    "methods": [{"type": "totp", "enabled": True,
                 "protects": {"login": True, "withdrawal": True}}],
    "locks": {"methods": {}},
}
TOTP = {"type": "totp", "enabled": True, "available": True, "pending": False,
        "protects": {"login": True, "withdrawal": False}, "created_at": WHEN,
        "last_used_at": WHEN}
TOTP_OFF = {"type": "totp", "enabled": False, "available": True, "pending": False,
            "protects": {"login": False, "withdrawal": False}}
PASSKEYS = {"type": "webauthn", "enabled": True, "available": True, "pending": False,
            "protects": {"login": True, "withdrawal": True}, "created_at": WHEN,
            "last_used_at": WHEN,
            "passkeys": [{"id": "3c4d5e6f708192a3b4c5d6e7f8091a2b", "name": "YubiKey 5",
                          "created_at": WHEN, "last_used_at": WHEN}]}
SENT = {"sent_to": "+44 **** **3456", "expires_in": 300, "resend_in": 60}
CODES = {"codes": ["k7m2p-9xq4d", "b3n8t-w5r2c", "h6v9j-2m4kq", "p8d3x-7c5nw",
                   "r2w6m-4t9hb", "t5q8c-3n7vd", "w9h2k-6p3xm", "x4b7r-8d2jt",
                   "c6m9w-5q3hn", "j3t5p-9v8bk"]}
PASSKEY_OPTIONS = {
    "options": {"rp": {"name": "StepUp", "id": "stepup.example.com"},
                "user": {"id": "X8Ok...", "name": "jane@example.com",
                         "displayName": "jane@example.com"},
                "challenge": "q2Vx...", "pubKeyCredParams": [{"type": "public-key",
                                                              "alg": -7}],
                "timeout": 300000, "excludeCredentials": [],
                "authenticatorSelection": {"residentKey": "preferred",
                                           "userVerification": "preferred"},
                "attestation": "none"},
    "expires_in": 300}
OPERATION = {"id": OPERATION_ID, "type": "withdrawal", "status": "pin_required",
             "summary": SUMMARY, "details": DETAILS, "expires_at": LATER}
CODE_REQUIRED = {**OPERATION, "status": "code_required", "methods": [{"type": "totp"}]}
EVENT = {"id": 4182, "event": "login.succeeded", "created_at": WHEN, "ip": "203.0.113.7",
         "user_agent": "Chrome 126, Linux", "method": "totp", "purpose": None,
         "details": {"via": "api"}}
RECOVERY = {"id": "6e7f8091a2b3c4d5e6f708192a3b4c5d", "status": "requested",
            "created_at": WHEN}
CREDENTIAL = ('{"id": "AQID...", "rawId": "AQID...", "type": "public-key", "response": '
              '{"clientDataJSON": "eyJ0...", "attestationObject": "o2Nm..."}}')

DELIVERY = {"id": "0b1c2d3e4f5061728394a5b6c7d8e9fa", "event": "operation.confirmed",
            "url": "https://portal.example.com/hooks/stepup", "created_at": WHEN,
            "status": "failed", "attempts": 8, "last_error": "HTTP 500"}

EXAMPLES: dict[tuple[str, str], dict[str | int, Any]] = {
    ("POST", "/api/v1/users"): {
        "request": {"email": "jane@example.com", "external_id": "client-8812",
                    "language": "en", "pin": "417293"},
        201: NEW_USER, 200: NEW_USER},
    ("GET", "/api/v1/users"): {200: {"users": [USER_DETAIL], "next_cursor": None}},
    ("GET", USER): {200: USER_DETAIL},
    ("PATCH", USER): {"request": {"email": "jane.doe@example.com", "language": "ru"},
                      200: {**USER_DETAIL, "email": "jane.doe@example.com",
                            "language": "ru"}},
    ("POST", f"{USER}/unlock"): {"request": {"what": "all"},
                                 200: {"cleared": ["account", "pin", "method:totp"]}},
    ("GET", f"{USER}/events"): {200: {"events": [EVENT], "next_cursor": None}},
    ("POST", f"{USER}/recovery"): {
        "request": {"description": "Lost my phone with the authenticator app; no backup "
                                   "codes.",
                    "contact": {"channel": "phone", "phone": "+44 20 7946 0018",
                                "best_time": "weekdays after 6 pm"}},
        201: RECOVERY},
    ("GET", f"{USER}/recovery"): {200: RECOVERY},
    ("GET", f"{USER}/methods"): {200: {"methods": [TOTP, {
        "type": "backup_codes", "enabled": True, "available": True, "pending": False,
        "protects": {"login": False, "withdrawal": False}, "remaining": 10,
        "created_at": WHEN}]}},
    ("POST", f"{USER}/methods/{{method_type}}/enrollment"): {
        "request": {"phone": "+44 7911 123456"},
        200: {"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
              "otpauth_uri": "otpauth://totp/StepUp:jane%40example.com?secret="
                             "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=StepUp",
              "qr_svg": "<svg xmlns=\"http://www.w3.org/2000/svg\" ...></svg>"},
        201: CODES, 202: SENT},
    ("POST", f"{USER}/methods/{{method_type}}/enrollment/confirm"): {
        "request": {"code": TOTP_CODE, "protects": {"login": True, "withdrawal": True}},
        200: {**TOTP, "protects": {"login": True, "withdrawal": True}}},
    ("POST", f"{USER}/methods/{{method_type}}/challenge"): {202: SENT},
    ("PATCH", f"{USER}/methods/{{method_type}}"): {
        "request": {"protects": {"withdrawal": True}, "code": TOTP_CODE},
        200: {**TOTP, "protects": {"login": True, "withdrawal": True}}},
    ("POST", f"{USER}/methods/{{method_type}}/disable"): {"request": {"code": TOTP_CODE},
                                                          200: TOTP_OFF},
    ("POST", f"{USER}/methods/backup_codes/regenerate"): {"request": {"code": "k7m2p-9xq4d"},
                                                          201: CODES},
    ("POST", f"{USER}/methods/webauthn/passkeys"): {"request": {}, 200: PASSKEY_OPTIONS},
    ("POST", f"{USER}/methods/webauthn/passkeys/confirm"): {
        "request": {"code": CREDENTIAL, "name": "YubiKey 5"}, 200: PASSKEYS},
    ("PATCH", f"{USER}/methods/webauthn/passkeys/{{passkey_id}}"): {
        "request": {"name": "YubiKey 5"}, 200: PASSKEYS},
    ("POST", f"{USER}/methods/webauthn/passkeys/{{passkey_id}}/remove"): {
        "request": {"code": '{"id": "AQID...", "type": "public-key", "response": {...}}'},
        200: PASSKEYS},
    ("POST", f"{USER}/challenge"): {"request": {"method": "sms", "purpose": "login"},
                                    202: {"method": "sms", **SENT}},
    ("POST", f"{USER}/verify"): {
        "request": {"method": "totp", "code": TOTP_CODE, "purpose": "login"},
        200: {"valid": True, "method": "totp", "verified_at": WHEN}},
    ("POST", f"{USER}/operations"): {
        "request": {"type": "withdrawal",
                    "details": {"amount": "0.10", "currency": "btc",
                                "destination": DETAILS["destination"]}},
        201: OPERATION},
    ("POST", f"{USER}/operations/{{operation_id}}/pin"): {"request": {"pin": "417293"},
                                                         200: CODE_REQUIRED},
    ("GET", f"{USER}/operations/{{operation_id}}"): {200: CODE_REQUIRED},
    ("POST", "/api/v1/webhooks/test"): {202: {
        "id": "7d8e9fa0b1c2d3e4f5061728394a5b6c", "event": "webhook.test",
        "url": "https://portal.example.com/hooks/stepup"}},
    ("GET", "/api/v1/webhooks/deliveries"): {200: {"deliveries": [DELIVERY],
                                                   "next_cursor": None}},
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/redeliver"): {202: {
        **{k: v for k, v in DELIVERY.items() if k != "last_error"}, "status": "pending",
        "attempts": 0, "next_attempt_at": LATER}},
}
