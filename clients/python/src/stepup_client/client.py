"""The clients: :class:`StepUp` (blocking) and :class:`~stepup_client.AsyncStepUp`
(``async``/``await``, in ``_async``).

Both have the same methods with the same arguments; each method hands a
:class:`~stepup_client._core.Call` (built in ``_calls`` / ``_lifecycle``, shared) to
``_run``, which sends it with the end user's headers and an ``Idempotency-Key`` (one per
logical call, the same on every automatic retry) and retries it where StepUp says the
error is ``retryable`` or no answer came.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from stepup_client import _calls, _core
from stepup_client import _lifecycle as _lc
from stepup_client._async import AsyncStepUp
from stepup_client._core import Call, Retry
from stepup_client._lifecycle import UNSET, Unset
from stepup_client.errors import StepUpError
from stepup_client.models import (
    Challenge,
    EndUser,
    Enrollment,
    Method,
    Operation,
    User,
    UsersPage,
    Verification,
)
from stepup_client.records import (
    Event,
    EventsPage,
    Recovery,
    Unlocked,
    WebhookDeliveries,
    WebhookDelivery,
)

__all__ = ["AsyncStepUp", "StepUp"]

T = TypeVar("T")
Who = EndUser | None  # the end user at the keyboard, for every call
Key = str | None  # your own Idempotency-Key, to span retries across processes


class StepUp:
    """Blocking client for StepUp's integration API (an API key of role ``app``).

    >>> with StepUp("https://mfa.example.com", "sk_app_…") as stepup:
    ...     stepup.verify(user_id, "totp", "492039", end_user=EndUser(ip, agent))

    Every method takes ``end_user=EndUser(ip=…, user_agent=…)``; every changing call
    also takes ``idempotency_key=`` (else a fresh UUID per call). A ``retryable`` error,
    or no answer, is retried up to ``retries`` times (0: never) with exponential
    back-off from ``backoff`` seconds, honouring ``Retry-After`` up to ``max_retry_wait``
    seconds. ``transport`` is an :class:`httpx.BaseTransport` (e.g. ``MockTransport``).
    Errors are raised as :class:`~stepup_client.StepUpError` subclasses.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 retries: int = 3, backoff: float = 0.5, max_retry_wait: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        kwargs = _core.client_kwargs(base_url, api_key, timeout)
        self.base_url: str = kwargs["base_url"]
        self._retry = Retry(retries=retries, backoff=backoff, max_wait=max_retry_wait)
        self._http = httpx.Client(transport=transport, **kwargs)

    def __repr__(self) -> str:
        return f"StepUp(base_url={self.base_url!r})"

    def __enter__(self) -> StepUp:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call[T], end_user: Who = None, key: Key = None) -> T:
        request = _core.request_kwargs(call, end_user, _core.idempotency_key(call, key))
        retry = 0
        while True:
            cause: BaseException | None = None
            try:
                response = self._http.request(**request)
            except httpx.HTTPError as exc:
                error, cause = _core.transport_error(exc), exc
            else:
                try:
                    return _core.finish(call, response)
                except StepUpError as exc:
                    error = exc
            wait = self._retry.wait(retry, error)
            if wait is None:
                raise error from cause
            time.sleep(wait)
            retry += 1

    # --- users ------------------------------------------------------------------------

    def create_user(self, email: str, external_id: str | None = None,
                    language: str | None = None, pin: str | None = None,
                    password: str | None = None, *, email_verified: bool | None = None,
                    end_user: Who = None,
                    idempotency_key: Key = None) -> User:
        """Create a user, or get the one with this ``external_id`` (or e-mail):
        ``User.created`` tells which. Safe to repeat. ``email_verified=True``: your
        portal verified the address and vouches for it (only a verified e-mail gets the
        code of a withdrawal that no method protects)."""
        return self._run(_calls.create_user(email, external_id, language, pin, password,
                                            email_verified),
                         end_user, idempotency_key)

    def get_user(self, user_id: str, *, end_user: Who = None) -> User:
        """The user with their identities, enabled methods and the locks that hold."""
        return self._run(_lc.get_user(user_id), end_user)

    def find_user(self, *, email: str | None = None, external_id: str | None = None,
                  end_user: Who = None) -> User | None:
        """Your app's user with this e-mail and/or external id, or None."""
        return self._run(_lc.find_user(email, external_id), end_user)

    def list_users(self, limit: int | None = None, cursor: str | None = None, *,
                   end_user: Who = None) -> UsersPage:
        """One page of your app's users; pass ``page.next_cursor`` back for the next."""
        return self._run(_lc.list_users(limit, cursor), end_user)

    def iter_users(self, limit: int | None = None, *, end_user: Who = None
                   ) -> Iterator[User]:
        """Every user of your app, fetching ``limit`` per page as it goes."""
        cursor: str | None = None
        while True:
            page = self.list_users(limit, cursor, end_user=end_user)
            yield from page.users
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def update_user(self, user_id: str, *, email: str | None = None,
                    external_id: str | Unset | None = UNSET, language: str | None = None,
                    pin: str | None = None, email_verified: bool | None = None,
                    end_user: Who = None,
                    idempotency_key: Key = None) -> User:
        """Change only the fields given; ``external_id=None`` removes it."""
        return self._run(_lc.update_user(user_id, email, external_id, language, pin,
                                         email_verified),
                         end_user, idempotency_key)

    def delete_user(self, user_id: str, *, end_user: Who = None,
                    idempotency_key: Key = None) -> None:
        """Erase the user (methods, secrets, sessions); the audit keeps the id only."""
        return self._run(_lc.delete_user(user_id), end_user, idempotency_key)

    def unlock_user(self, user_id: str, what: str = "all", *, end_user: Who = None,
                    idempotency_key: Key = None) -> Unlocked:
        """Lift locks: ``all``, ``account``, ``pin`` or a method type."""
        return self._run(_lc.unlock_user(user_id, what), end_user, idempotency_key)

    def user_events(self, user_id: str, limit: int | None = None,
                    cursor: str | None = None, *, end_user: Who = None) -> EventsPage:
        """A page of the user's security events, newest first, with ip and device."""
        return self._run(_lc.user_events(user_id, limit, cursor), end_user)

    def iter_user_events(self, user_id: str, limit: int | None = None, *,
                         end_user: Who = None) -> Iterator[Event]:
        """Every security event of the user, newest first, page by page."""
        cursor: str | None = None
        while True:
            page = self.user_events(user_id, limit, cursor, end_user=end_user)
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- methods ----------------------------------------------------------------------

    def methods(self, user_id: str, *, end_user: Who = None) -> list[Method]:
        """Every method type, enabled or not, with what it protects."""
        return self._run(_calls.methods(user_id), end_user)

    def enroll(self, user_id: str, method: str, *, phone: str | None = None,
               email: str | None = None, pin: str | None = None,
               protects: Mapping[str, bool] | None = None, end_user: Who = None,
               idempotency_key: Key = None) -> Enrollment:
        """Start enabling ``method`` (``totp``, ``sms``, ``email``, ``whatsapp``,
        ``backup_codes``, ``webauthn``) for the user. ``protects`` only for
        ``backup_codes`` (enabled at once); any other method takes it with
        :meth:`confirm_enrollment`."""
        return self._run(_calls.enroll(user_id, method, phone, email, pin, protects),
                         end_user, idempotency_key)

    def confirm_enrollment(self, user_id: str, method: str, code: str, *,
                           protects: Mapping[str, bool] | None = None, end_user: Who = None,
                           idempotency_key: Key = None) -> Method:
        """Finish enabling ``method`` with the first code the user received or read.
        ``protects`` (e.g. ``{"login": True, "withdrawal": True}``): what it protects
        from now on, confirmed by that same code; the operations not named keep the
        default (the user's first method protects login, any other nothing)."""
        return self._run(_calls.confirm_enrollment(user_id, method, code, protects),
                         end_user, idempotency_key)

    def method_challenge(self, user_id: str, method: str, *, end_user: Who = None,
                         idempotency_key: Key = None) -> Challenge:
        """Send a code for :meth:`switch`, :meth:`disable` or :meth:`remove_passkey`."""
        return self._run(_calls.method_challenge(user_id, method), end_user,
                         idempotency_key)

    def switch(self, user_id: str, method: str, code: str, *, end_user: Who = None,
               idempotency_key: Key = None, **protects: bool) -> Method:
        """Switch operations on or off for ``method``, e.g. ``withdrawal=True``; the code
        must come from this same method."""
        return self._run(_calls.switch(user_id, method, code, protects), end_user,
                         idempotency_key)

    def disable(self, user_id: str, method: str, code: str, *, end_user: Who = None,
                idempotency_key: Key = None) -> Method:
        """Disable ``method``; the code must come from this same method."""
        return self._run(_calls.disable(user_id, method, code), end_user, idempotency_key)

    def regenerate_backup_codes(self, user_id: str, code: str | None = None, *,
                                end_user: Who = None, idempotency_key: Key = None
                                ) -> Enrollment:
        """A new set of backup codes (``.codes``, shown once); the old ones stop
        working. A ``code`` given must be a current backup code."""
        return self._run(_calls.regenerate_backup_codes(user_id, code), end_user,
                         idempotency_key)

    # --- passkeys ---------------------------------------------------------------------

    def add_passkey(self, user_id: str, *, pin: str | None = None, end_user: Who = None,
                    idempotency_key: Key = None) -> Enrollment:
        """One more passkey: ``.options`` for ``navigator.credentials.create``."""
        return self._run(_lc.add_passkey(user_id, pin), end_user, idempotency_key)

    def confirm_passkey(self, user_id: str, credential: str | Mapping[str, Any],
                        name: str | None = None, *, end_user: Who = None,
                        idempotency_key: Key = None) -> Method:
        """The new credential (JSON text or its parsed object), with an optional name."""
        return self._run(_lc.confirm_passkey(user_id, credential, name), end_user,
                         idempotency_key)

    def rename_passkey(self, user_id: str, passkey_id: str, name: str, *,
                       end_user: Who = None, idempotency_key: Key = None) -> Method:
        """Rename one passkey."""
        return self._run(_lc.rename_passkey(user_id, passkey_id, name), end_user,
                         idempotency_key)

    def remove_passkey(self, user_id: str, passkey_id: str, code: str, *,
                       end_user: Who = None, idempotency_key: Key = None) -> Method:
        """Remove one passkey; ``code``: the answer to ``method_challenge(…, "webauthn")``."""
        return self._run(_lc.remove_passkey(user_id, passkey_id, code), end_user,
                         idempotency_key)

    # --- second factor ----------------------------------------------------------------

    def challenge(self, user_id: str, method: str, purpose: str = "login", *,
                  end_user: Who = None, idempotency_key: Key = None) -> Challenge:
        """Send a code by SMS, e-mail or WhatsApp (or passkey options) for ``purpose``
        (``login`` or an operation id)."""
        return self._run(_calls.challenge(user_id, method, purpose), end_user,
                         idempotency_key)

    def verify(self, user_id: str, method: str, code: str, purpose: str = "login", *,
               end_user: Who = None, idempotency_key: Key = None) -> Verification:
        """Check a code for ``purpose`` (``login`` or an operation id). Returns only when
        the code is right; raises ``InvalidCode``, ``MethodLocked``, … otherwise."""
        return self._run(_calls.verify(user_id, method, code, purpose), end_user,
                         idempotency_key)

    # --- operations -------------------------------------------------------------------

    def create_operation(self, user_id: str, type: str, details: Mapping[str, str], *,
                         end_user: Who = None, idempotency_key: Key = None) -> Operation:
        """A protected operation, e.g. ``type="withdrawal"`` with ``details`` amount,
        currency and destination (amounts as decimal strings)."""
        return self._run(_calls.create_operation(user_id, type, details), end_user,
                         idempotency_key)

    def submit_pin(self, user_id: str, operation_id: str, pin: str, *,
                   end_user: Who = None, idempotency_key: Key = None) -> Operation:
        """The PIN step, for portals that collect the PIN themselves."""
        return self._run(_calls.submit_pin(user_id, operation_id, pin), end_user,
                         idempotency_key)

    def operation(self, user_id: str, operation_id: str, *, end_user: Who = None
                  ) -> Operation:
        """The operation's current state (and its receipt once confirmed)."""
        return self._run(_calls.operation(user_id, operation_id), end_user)

    # --- recovery and webhooks --------------------------------------------------------

    def file_recovery(self, user_id: str, description: str, *, channel: str,
                      phone: str | None = None, best_time: str | None = None,
                      end_user: Who = None, idempotency_key: Key = None) -> Recovery:
        """File a lock-out recovery request (``channel`` ``phone`` or ``email``)."""
        return self._run(_lc.file_recovery(user_id, description, channel, phone, best_time),
                         end_user, idempotency_key)

    def recovery(self, user_id: str, *, end_user: Who = None) -> Recovery:
        """The user's latest recovery request and where it stands."""
        return self._run(_lc.recovery(user_id), end_user)

    def test_webhook(self, *, end_user: Who = None, idempotency_key: Key = None
                     ) -> WebhookDelivery:
        """Send your app's webhook URL a signed test event."""
        return self._run(_lc.test_webhook(), end_user, idempotency_key)

    def webhook_deliveries(self, limit: int | None = None, cursor: str | None = None,
                           status: str | None = None, *, end_user: Who = None
                           ) -> WebhookDeliveries:
        """Recent deliveries, newest first (``status``: pending, delivered, failed)."""
        return self._run(_lc.webhook_deliveries(limit, cursor, status), end_user)

    def redeliver_webhook(self, delivery_id: str, *, end_user: Who = None,
                          idempotency_key: Key = None) -> WebhookDelivery:
        """Send a delivery again (e.g. a failed one), its attempts counted afresh."""
        return self._run(_lc.redeliver_webhook(delivery_id), end_user, idempotency_key)
