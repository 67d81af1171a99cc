"""The ``async`` client, :class:`AsyncStepUp`: the same methods as
:class:`~stepup_client.StepUp` (documented there), awaited; ``iter_users`` and
``iter_user_events`` are ``async for`` iterators."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx

from stepup_client import _calls, _core
from stepup_client import _lifecycle as _lc
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

__all__ = ["AsyncStepUp"]

T = TypeVar("T")
Who = EndUser | None  # the end user at the keyboard, for every call
Key = str | None  # your own Idempotency-Key, to span retries across processes


class AsyncStepUp:
    """The ``async`` twin of :class:`~stepup_client.StepUp`: same methods, awaited.

    >>> async with AsyncStepUp("https://mfa.example.com", "sk_app_…") as stepup:
    ...     await stepup.verify(user_id, "totp", "492039")

    ``transport`` is an :class:`httpx.AsyncBaseTransport`. Like any
    ``httpx.AsyncClient``, it belongs to the event loop that first uses it.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 retries: int = 3, backoff: float = 0.5, max_retry_wait: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        kwargs = _core.client_kwargs(base_url, api_key, timeout)
        self.base_url: str = kwargs["base_url"]
        self._retry = Retry(retries=retries, backoff=backoff, max_wait=max_retry_wait)
        self._http = httpx.AsyncClient(transport=transport, **kwargs)

    def __repr__(self) -> str:
        return f"AsyncStepUp(base_url={self.base_url!r})"

    async def __aenter__(self) -> AsyncStepUp:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: Call[T], end_user: Who = None, key: Key = None) -> T:
        request = _core.request_kwargs(call, end_user, _core.idempotency_key(call, key))
        retry = 0
        while True:
            cause: BaseException | None = None
            try:
                response = await self._http.request(**request)
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
            await anyio.sleep(wait)
            retry += 1

    # --- users ------------------------------------------------------------------------

    async def create_user(self, email: str, external_id: str | None = None,
                          language: str | None = None, pin: str | None = None,
                          password: str | None = None, *, email_verified: bool | None = None,
                          end_user: Who = None,
                          idempotency_key: Key = None) -> User:
        """See :meth:`StepUp.create_user`."""
        return await self._run(_calls.create_user(email, external_id, language, pin, password,
                                                  email_verified),
                               end_user, idempotency_key)

    async def get_user(self, user_id: str, *, end_user: Who = None) -> User:
        """See :meth:`StepUp.get_user`."""
        return await self._run(_lc.get_user(user_id), end_user)

    async def find_user(self, *, email: str | None = None, external_id: str | None = None,
                        end_user: Who = None) -> User | None:
        """See :meth:`StepUp.find_user`."""
        return await self._run(_lc.find_user(email, external_id), end_user)

    async def list_users(self, limit: int | None = None, cursor: str | None = None, *,
                         end_user: Who = None) -> UsersPage:
        """See :meth:`StepUp.list_users`."""
        return await self._run(_lc.list_users(limit, cursor), end_user)

    async def iter_users(self, limit: int | None = None, *, end_user: Who = None
                         ) -> AsyncIterator[User]:
        """See :meth:`StepUp.iter_users`."""
        cursor: str | None = None
        while True:
            page = await self.list_users(limit, cursor, end_user=end_user)
            for item in page.users:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def update_user(self, user_id: str, *, email: str | None = None,
                          external_id: str | Unset | None = UNSET, language: str | None = None,
                          pin: str | None = None, email_verified: bool | None = None,
                          end_user: Who = None,
                          idempotency_key: Key = None) -> User:
        """See :meth:`StepUp.update_user`."""
        return await self._run(_lc.update_user(user_id, email, external_id, language, pin,
                                               email_verified),
                               end_user, idempotency_key)

    async def delete_user(self, user_id: str, *, end_user: Who = None,
                          idempotency_key: Key = None) -> None:
        """See :meth:`StepUp.delete_user`."""
        return await self._run(_lc.delete_user(user_id), end_user, idempotency_key)

    async def unlock_user(self, user_id: str, what: str = "all", *, end_user: Who = None,
                          idempotency_key: Key = None) -> Unlocked:
        """See :meth:`StepUp.unlock_user`."""
        return await self._run(_lc.unlock_user(user_id, what), end_user, idempotency_key)

    async def user_events(self, user_id: str, limit: int | None = None,
                          cursor: str | None = None, *, end_user: Who = None) -> EventsPage:
        """See :meth:`StepUp.user_events`."""
        return await self._run(_lc.user_events(user_id, limit, cursor), end_user)

    async def iter_user_events(self, user_id: str, limit: int | None = None, *,
                               end_user: Who = None) -> AsyncIterator[Event]:
        """See :meth:`StepUp.iter_user_events`."""
        cursor: str | None = None
        while True:
            page = await self.user_events(user_id, limit, cursor, end_user=end_user)
            for item in page.events:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- methods ----------------------------------------------------------------------

    async def methods(self, user_id: str, *, end_user: Who = None) -> list[Method]:
        """See :meth:`StepUp.methods`."""
        return await self._run(_calls.methods(user_id), end_user)

    async def enroll(self, user_id: str, method: str, *, phone: str | None = None,
                     email: str | None = None, pin: str | None = None,
                     protects: Mapping[str, bool] | None = None, end_user: Who = None,
                     idempotency_key: Key = None) -> Enrollment:
        """See :meth:`StepUp.enroll`."""
        return await self._run(_calls.enroll(user_id, method, phone, email, pin, protects),
                               end_user, idempotency_key)

    async def confirm_enrollment(self, user_id: str, method: str, code: str, *,
                                 protects: Mapping[str, bool] | None = None,
                                 end_user: Who = None, idempotency_key: Key = None) -> Method:
        """See :meth:`StepUp.confirm_enrollment`."""
        return await self._run(_calls.confirm_enrollment(user_id, method, code, protects),
                               end_user, idempotency_key)

    async def method_challenge(self, user_id: str, method: str, *, end_user: Who = None,
                               idempotency_key: Key = None) -> Challenge:
        """See :meth:`StepUp.method_challenge`."""
        return await self._run(_calls.method_challenge(user_id, method), end_user,
                               idempotency_key)

    async def switch(self, user_id: str, method: str, code: str, *, end_user: Who = None,
                     idempotency_key: Key = None, **protects: bool) -> Method:
        """See :meth:`StepUp.switch`."""
        return await self._run(_calls.switch(user_id, method, code, protects), end_user,
                               idempotency_key)

    async def disable(self, user_id: str, method: str, code: str, *, end_user: Who = None,
                      idempotency_key: Key = None) -> Method:
        """See :meth:`StepUp.disable`."""
        return await self._run(_calls.disable(user_id, method, code), end_user, idempotency_key)

    async def regenerate_backup_codes(self, user_id: str, code: str | None = None, *,
                                      end_user: Who = None, idempotency_key: Key = None
                                      ) -> Enrollment:
        """See :meth:`StepUp.regenerate_backup_codes`."""
        return await self._run(_calls.regenerate_backup_codes(user_id, code), end_user,
                               idempotency_key)

    # --- passkeys ---------------------------------------------------------------------

    async def add_passkey(self, user_id: str, *, pin: str | None = None, end_user: Who = None,
                          idempotency_key: Key = None) -> Enrollment:
        """See :meth:`StepUp.add_passkey`."""
        return await self._run(_lc.add_passkey(user_id, pin), end_user, idempotency_key)

    async def confirm_passkey(self, user_id: str, credential: str | Mapping[str, Any],
                              name: str | None = None, *, end_user: Who = None,
                              idempotency_key: Key = None) -> Method:
        """See :meth:`StepUp.confirm_passkey`."""
        return await self._run(_lc.confirm_passkey(user_id, credential, name), end_user,
                               idempotency_key)

    async def rename_passkey(self, user_id: str, passkey_id: str, name: str, *,
                             end_user: Who = None, idempotency_key: Key = None) -> Method:
        """See :meth:`StepUp.rename_passkey`."""
        return await self._run(_lc.rename_passkey(user_id, passkey_id, name), end_user,
                               idempotency_key)

    async def remove_passkey(self, user_id: str, passkey_id: str, code: str, *,
                             end_user: Who = None, idempotency_key: Key = None) -> Method:
        """See :meth:`StepUp.remove_passkey`."""
        return await self._run(_lc.remove_passkey(user_id, passkey_id, code), end_user,
                               idempotency_key)

    # --- second factor ----------------------------------------------------------------

    async def challenge(self, user_id: str, method: str, purpose: str = "login", *,
                        end_user: Who = None, idempotency_key: Key = None) -> Challenge:
        """See :meth:`StepUp.challenge`."""
        return await self._run(_calls.challenge(user_id, method, purpose), end_user,
                               idempotency_key)

    async def verify(self, user_id: str, method: str, code: str, purpose: str = "login", *,
                     end_user: Who = None, idempotency_key: Key = None) -> Verification:
        """See :meth:`StepUp.verify`."""
        return await self._run(_calls.verify(user_id, method, code, purpose), end_user,
                               idempotency_key)

    # --- operations -------------------------------------------------------------------

    async def create_operation(self, user_id: str, type: str, details: Mapping[str, str], *,
                               end_user: Who = None, idempotency_key: Key = None) -> Operation:
        """See :meth:`StepUp.create_operation`."""
        return await self._run(_calls.create_operation(user_id, type, details), end_user,
                               idempotency_key)

    async def submit_pin(self, user_id: str, operation_id: str, pin: str, *,
                         end_user: Who = None, idempotency_key: Key = None) -> Operation:
        """See :meth:`StepUp.submit_pin`."""
        return await self._run(_calls.submit_pin(user_id, operation_id, pin), end_user,
                               idempotency_key)

    async def operation(self, user_id: str, operation_id: str, *, end_user: Who = None
                        ) -> Operation:
        """See :meth:`StepUp.operation`."""
        return await self._run(_calls.operation(user_id, operation_id), end_user)

    # --- recovery and webhooks --------------------------------------------------------

    async def file_recovery(self, user_id: str, description: str, *, channel: str,
                            phone: str | None = None, best_time: str | None = None,
                            end_user: Who = None, idempotency_key: Key = None) -> Recovery:
        """See :meth:`StepUp.file_recovery`."""
        return await self._run(_lc.file_recovery(user_id, description, channel, phone, best_time),
                               end_user, idempotency_key)

    async def recovery(self, user_id: str, *, end_user: Who = None) -> Recovery:
        """See :meth:`StepUp.recovery`."""
        return await self._run(_lc.recovery(user_id), end_user)

    async def test_webhook(self, *, end_user: Who = None, idempotency_key: Key = None
                           ) -> WebhookDelivery:
        """See :meth:`StepUp.test_webhook`."""
        return await self._run(_lc.test_webhook(), end_user, idempotency_key)

    async def webhook_deliveries(self, limit: int | None = None, cursor: str | None = None,
                                 status: str | None = None, *, end_user: Who = None
                                 ) -> WebhookDeliveries:
        """See :meth:`StepUp.webhook_deliveries`."""
        return await self._run(_lc.webhook_deliveries(limit, cursor, status), end_user)

    async def redeliver_webhook(self, delivery_id: str, *, end_user: Who = None,
                                idempotency_key: Key = None) -> WebhookDelivery:
        """See :meth:`StepUp.redeliver_webhook`."""
        return await self._run(_lc.redeliver_webhook(delivery_id), end_user, idempotency_key)
