"""Settings (``STEPUP_*`` environment variables, a ``.env`` file or a TOML file).

The checks that make production refuse to start with development conveniences live
here too, so that ``serve`` and the app factory ask one place whether it is safe to run.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Each method declares its own settings in its package (settings.py, which imports
# nothing of StepUp); Settings composes them, so ``settings.totp_window`` reads as before.
from stepup.methods.backup_codes.settings import BackupCodeSettings
from stepup.methods.totp.settings import TotpSettings
from stepup.methods.webauthn.settings import WebAuthnSettings

#: The settings each method declares, in the order their production checks run.
METHOD_SETTINGS: tuple[type[Any], ...] = (TotpSettings, BackupCodeSettings, WebAuthnSettings)


class ConfigurationError(RuntimeError):
    """The settings cannot be used; the message says what to change."""


def _toml_defaults() -> dict[str, Any]:
    # STEPUP_CONFIG names a TOML file whose keys are the setting names without prefix.
    path = os.environ.get("STEPUP_CONFIG")
    if not path:
        return {}
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return {str(k).lower(): v for k, v in data.items()}


class Settings(TotpSettings, BackupCodeSettings, WebAuthnSettings, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STEPUP_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./stepup-data")
    database_url: str | None = None
    db_pool_size: int = 10
    db_max_overflow: int = 10
    # How much of the SQLite database file `serve`'s supervisor (two workers or more)
    # keeps mapped in memory, so that a host's reclaim of unmapped file cache does not
    # send verifications to the disk (store/sqlite_resident.py); never more than half
    # the machine's memory. 0: off.
    sqlite_resident_mb: int = Field(default=4096, ge=0)

    # Public name shown in authenticator apps, messages and pages.
    issuer: str = "StepUp"
    # The operator adapter (docs/customising.md): "package.module:Class", a subclass of
    # stepup.adapter.Adapter overriding texts, the issuer, the QR code and policy hooks.
    adapter: str | None = None
    # Where the portal lives, for links in messages and the SMS one-time-code hint.
    public_url: str = "http://localhost:8000"
    # Key material. In development both are generated into the data dir on first start.
    # STEPUP_KEYRING: "kid:base64key,kid2:base64key" — the first key encrypts, all decrypt.
    keyring: str | None = None
    # STEPUP_SECRET_KEY: base64, ≥ 32 bytes; keys HMACs (CSRF, backup codes, tokens).
    secret_key: str | None = None

    cookie_secure: bool | None = None  # None: Secure in production, not in development
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    login_token_minutes: int = 5

    password_min_length: int = Field(default=12, ge=8)
    password_max_length: int = Field(default=128, ge=64)

    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456  # OWASP ASVS / cheat sheet: m=19 MiB, t=2, p=1
    argon2_parallelism: int = 1

    method_lock_after: int = 5
    method_lock_first_seconds: int = 60
    method_lock_max_seconds: int = 3600
    pin_lock_after: int = 5
    pin_lock_seconds: int = 900
    account_lock_after: int = 50
    account_lock_seconds: int = 86400
    password_failures_per_account: int = 10
    password_failures_per_ip: int = 100
    password_throttle_window_seconds: int = 900
    # Password guessing (services/ratelimit.py), all counted per typed e-mail, known or
    # not. Per e-mail *and* client network (IPv4 /24, IPv6 /64): this many failures in a
    # window answer 429 to that network, the right password included; other networks
    # and remembered devices are not affected.
    password_failures_per_address: int = Field(default=10, ge=1)
    # Per e-mail across every network, failures since the last success: from
    # PASSWORD_FAILURES_PER_ACCOUNT on, every attempt waits (slow down, never refuse)
    # PASSWORD_SLOWDOWN_SECONDS more per failure, at most PASSWORD_SLOWDOWN_MAX_SECONDS;
    # at PASSWORD_ACCOUNT_CEILING (NIST SP 800-63B: at most 100) the e-mail answers 429
    # to every network until a success, `stepup user unlock` or a quiet window
    # (PASSWORD_CEILING_WINDOW_SECONDS, counted over the current and the previous one).
    # A remembered device still passes, but must then prove the second factor too.
    password_slowdown_seconds: float = Field(default=0.25, ge=0)
    password_slowdown_max_seconds: float = Field(default=3.0, ge=0)
    password_account_ceiling: int = Field(default=50, ge=1, le=100)
    password_ceiling_window_seconds: int = Field(default=86400, ge=60)
    # "Forgot password?" (services/account_security.py): how long a reset link works, and
    # how many links may be asked for per e-mail (known or not) and per client network
    # in an hour.
    password_reset_minutes: int = Field(default=30, ge=5, le=1440)
    password_resets_per_email_per_hour: int = Field(default=3, ge=1)
    password_resets_per_ip_per_hour: int = Field(default=20, ge=1)

    # --- delivery (issue: SMS, e-mail and WhatsApp codes) ---
    smtp_url: str | None = None  # smtp://user:pass@host:port, smtps://…, ?starttls=1
    email_from: str = "StepUp <no-reply@localhost>"
    sms_provider: Literal["outbox", "twilio"] | None = None
    whatsapp_provider: Literal["outbox", "twilio", "meta"] | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    meta_base_url: str = "https://graph.facebook.com/v21.0"
    meta_phone_number_id: str | None = None
    meta_access_token: str | None = None
    meta_template: str = "stepup_code"
    # Telegram codes (methods/telegram): the Telegram Gateway API, with the access token
    # of the Gateway account. Without a token, the development outbox carries them (and
    # nothing does in production).
    telegram_gateway_token: str | None = None
    telegram_gateway_base_url: str = "https://gatewayapi.telegram.org/"

    code_ttl_seconds: int = 300
    code_max_attempts: int = 5
    resend_cooldown_seconds: int = 60
    sends_per_destination_per_hour: int = 5
    sends_per_account_per_hour: int = 10
    sends_per_ip_per_hour: int = 20
    # Codes sent per hour for all the users of one app together, unless the app sets its
    # own (apps.sends_per_hour): a ceiling on what a leaked key or SMS pumping can cost.
    sends_per_app_per_hour: int = 1000
    # ISO 3166 region codes allowed for codes sent to phones (empty: all), against SMS
    # pumping.
    phone_countries: list[str] = Field(default_factory=list)
    # Region codes or calling codes ("SL", "232", "881") that lift the default refusal of
    # the international networks and the SMS-fraud countries (domain/destinations.py).
    phone_allow: list[str] = Field(default_factory=list)
    default_phone_region: str | None = None
    # Codes sent by SMS and WhatsApp per hour by all apps together (0: no budget); at 80 %
    # the operator is warned once an hour (a WARNING, and an e-mail to OPERATOR_EMAIL).
    sms_budget_per_hour: int = Field(default=2000, ge=0)
    operator_email: str | None = None
    # Sign-ups per hour from one client network (IPv4 /24, IPv6 /64); 0: no limit.
    signups_per_ip_per_hour: int = Field(default=20, ge=0)

    operations: list[str] = Field(default_factory=lambda: ["login", "withdrawal"])
    # Extra operation types beyond withdrawal: [{"name", "title", "fields", "summary"}].
    operation_types: list[dict[str, Any]] = Field(default_factory=list)
    operation_ttl_seconds: int = 600
    # A receipt's lifetime (its ``exp`` is ``iat`` plus this): the time a portal has to
    # act on a confirmation.
    receipt_ttl_seconds: int = Field(default=600, ge=1)
    # always: with no method protecting withdrawal, the code goes to the account e-mail;
    # if_protected: then the PIN alone confirms it.
    withdrawal_code: Literal["always", "if_protected"] = "always"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_max_attempts: int = 8
    webhook_poll_seconds: float = 2.0
    remember_device_days: int = 30
    # Security notices (services/notifications.py): kinds an operator turns off, e.g.
    # ["login.new_device"]. The recovery notices cannot be turned off.
    notifications_off: list[str] = Field(default_factory=list)
    notification_max_attempts: int = 8
    notification_poll_seconds: float = 5.0
    # A login is from a new device when this user-agent and IP /24 (IPv6 /64) pair did
    # not log in to the account successfully within this many days.
    new_device_days: int = 90
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = 64 * 1024

    # --- lock-out recovery and the support console ---
    # An approved reset of two-factor authentication waits this long, so that the user
    # and every verified contact can still cancel it.
    recovery_delay_hours: float = Field(default=24, ge=0)
    # After a request is cancelled or rejected, a new one waits this long: each filing
    # tells every contact, so whoever knows the password must not re-file at will.
    recovery_cooldown_hours: float = Field(default=24, ge=0)
    # The identity checks support records before a supervisor may approve a reset.
    recovery_checklist: list[str] = Field(default_factory=lambda: [
        "documents_seen", "answers_matched", "call_back_done"])
    recovery_poll_seconds: float = 60.0
    # The support console's sessions (services/sessions.py). Staff logins are throttled
    # and locked by the users' rules (password_*, method_lock_*, account_lock_*): the
    # former STAFF_FAILURES_BEFORE_LOCK and STAFF_LOCK_SECONDS are gone, and ignored.
    staff_session_hours: int = 8
    staff_session_idle_minutes: int = 30

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and len(self.webhook_secret or "") < 16:
            raise ValueError("STEPUP_WEBHOOK_URL needs STEPUP_WEBHOOK_SECRET of at least 16 "
                             "characters: webhooks are signed with it")
        return self

    @field_validator("notifications_off")
    @classmethod
    def _recovery_always_on(cls, v: list[str]) -> list[str]:
        kept = [k for k in v if k.startswith("recovery.")]
        if kept:
            raise ValueError(f"recovery notices cannot be turned off: {', '.join(kept)}")
        return v

    @field_validator("operations")
    @classmethod
    def _login_first(cls, v: list[str]) -> list[str]:
        if "login" not in v:
            raise ValueError("operations must include 'login'")
        return v

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        values = {**_toml_defaults(), **overrides}
        return cls(**values)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def password_context(self) -> tuple[str, ...]:
        """The service's own words, refused as passwords: its name and each word of it,
        the host of its public address and that host's domain name (``broker`` of
        auth.broker.com)."""
        host = (urlsplit(self.public_url).hostname or "").lower()
        labels = host.split(".")
        domain = labels[-2] if len(labels) >= 2 else labels[0]
        words = [w for w in self.issuer.split() if len(w) >= 4]
        return tuple(dict.fromkeys(w for w in (self.issuer, *words, host, domain) if w))

    @property
    def secure_cookies(self) -> bool:
        return self.is_production if self.cookie_secure is None else self.cookie_secure

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'stepup.db').resolve()}"

    def check_production(self) -> None:
        """Refuse the development conveniences that are unsafe in production."""
        if not self.is_production:
            return
        problems = []
        if not self.keyring:
            problems.append("STEPUP_KEYRING is not set (encryption keys for secrets at rest)")
        if not self.secret_key:
            problems.append("STEPUP_SECRET_KEY is not set (HMAC key)")
        if not self.secure_cookies:
            problems.append("STEPUP_COOKIE_SECURE=false: cookies must be Secure in production")
        if not self.public_url.startswith("https://"):
            problems.append("STEPUP_PUBLIC_URL must be an https:// address in production")
        for part in METHOD_SETTINGS:  # each method's own checks
            problems.extend(part.production_problems(self))
        if "outbox" in (self.sms_provider, self.whatsapp_provider):
            problems.append("the development outbox cannot deliver codes in production: "
                            "configure STEPUP_SMS_PROVIDER / STEPUP_WHATSAPP_PROVIDER")
        if problems:
            raise ConfigurationError(
                "refusing to start in production:\n  - " + "\n  - ".join(problems)
            )
