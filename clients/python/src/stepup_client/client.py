"""The clients: :class:`StepUp` (blocking) and :class:`AsyncStepUp` (``async``/``await``).

Both have the same methods with the same arguments; each method is one line that hands a
:class:`~stepup_client._calls.Call` (built in ``_calls``, shared) to ``_run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from stepup_client import _calls
from stepup_client._calls import Call
from stepup_client.models import (
    Challenge,
    Enrollment,
    Method,
    Operation,
    User,
    Verification,
)

__all__ = ["AsyncStepUp", "StepUp"]

T = TypeVar("T")


class _Settings:
    """What both clients take from their constructor. The API key goes into the HTTP
    client's default headers and nowhere else: no attribute, no ``repr``, no log line."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = _calls.api_base(base_url)
        self.headers = _calls.headers(api_key)
        self.timeout = httpx.Timeout(timeout)

    def client_kwargs(self) -> dict[str, Any]:
        # follow_redirects stays off: a redirect must not carry the key elsewhere.
        return {"base_url": self.base_url, "headers": self.headers, "timeout": self.timeout,
                "follow_redirects": False}


class StepUp:
    """Blocking client for StepUp's integration API (an API key of role ``app``).

    >>> with StepUp("https://mfa.example.com", "sk_app_…") as stepup:
    ...     stepup.verify(user_id, "totp", "492039")

    ``transport`` is an :class:`httpx.BaseTransport` (tests pass ``httpx.MockTransport``).
    Errors are raised as :class:`~stepup_client.StepUpError` subclasses.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        settings = _Settings(base_url, api_key, timeout)
        self.base_url = settings.base_url
        self._http = httpx.Client(transport=transport, **settings.client_kwargs())

    def __repr__(self) -> str:
        return f"StepUp(base_url={self.base_url!r})"

    def __enter__(self) -> StepUp:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        try:
            response = self._http.request(**_calls.request_kwargs(call))
        except httpx.HTTPError as exc:
            raise _calls.transport_error(exc) from exc
        return _calls.finish(call, response)

    # --- users and methods ------------------------------------------------------------

    def create_user(self, email: str, external_id: str | None = None,
                    language: str | None = None,
                    pin: str | None = None, password: str | None = None) -> User:
        """Create a user, or get the one with this ``external_id`` (or e-mail):
        ``User.created`` tells which. Safe to repeat."""
        return self._run(_calls.create_user(email, external_id, language, pin, password))

    def methods(self, user_id: str) -> list[Method]:
        """Every method type, enabled or not, with what it protects."""
        return self._run(_calls.methods(user_id))

    def enroll(self, user_id: str, method: str, *, phone: str | None = None,
               email: str | None = None, pin: str | None = None) -> Enrollment:
        """Start enabling ``method`` (``totp``, ``sms``, ``email``, ``whatsapp``,
        ``backup_codes``) for the user."""
        return self._run(_calls.enroll(user_id, method, phone, email, pin))

    def confirm_enrollment(self, user_id: str, method: str, code: str) -> Method:
        """Finish enabling ``method`` with the first code the user received or read."""
        return self._run(_calls.confirm_enrollment(user_id, method, code))

    def method_challenge(self, user_id: str, method: str) -> Challenge:
        """Send a code for :meth:`switch` or :meth:`disable` (out-of-band methods)."""
        return self._run(_calls.method_challenge(user_id, method))

    def switch(self, user_id: str, method: str, code: str, **protects: bool) -> Method:
        """Switch operations on or off for ``method``, e.g. ``withdrawal=True``; the code
        must come from this same method."""
        return self._run(_calls.switch(user_id, method, code, protects))

    def disable(self, user_id: str, method: str, code: str) -> Method:
        """Disable ``method``; the code must come from this same method."""
        return self._run(_calls.disable(user_id, method, code))

    # --- second factor ----------------------------------------------------------------

    def challenge(self, user_id: str, method: str, purpose: str = "login") -> Challenge:
        """Send a code by SMS, e-mail or WhatsApp for ``purpose`` (``login`` or an
        operation id)."""
        return self._run(_calls.challenge(user_id, method, purpose))

    def verify(self, user_id: str, method: str, code: str, purpose: str = "login"
               ) -> Verification:
        """Check a code for ``purpose`` (``login`` or an operation id). Returns only when
        the code is right; raises ``InvalidCode``, ``MethodLocked``, … otherwise."""
        return self._run(_calls.verify(user_id, method, code, purpose))

    # --- operations -------------------------------------------------------------------

    def create_operation(self, user_id: str, type: str, details: Mapping[str, str]
                         ) -> Operation:
        """A protected operation, e.g. ``type="withdrawal"`` with ``details`` amount,
        currency and destination (amounts as decimal strings)."""
        return self._run(_calls.create_operation(user_id, type, details))

    def submit_pin(self, user_id: str, operation_id: str, pin: str) -> Operation:
        """The PIN step, for portals that collect the PIN themselves."""
        return self._run(_calls.submit_pin(user_id, operation_id, pin))

    def operation(self, user_id: str, operation_id: str) -> Operation:
        """The operation's current state (and its receipt once confirmed)."""
        return self._run(_calls.operation(user_id, operation_id))


class AsyncStepUp:
    """The ``async`` twin of :class:`StepUp`: same methods, awaited.

    >>> async with AsyncStepUp("https://mfa.example.com", "sk_app_…") as stepup:
    ...     await stepup.verify(user_id, "totp", "492039")

    ``transport`` is an :class:`httpx.AsyncBaseTransport`.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        settings = _Settings(base_url, api_key, timeout)
        self.base_url = settings.base_url
        self._http = httpx.AsyncClient(transport=transport, **settings.client_kwargs())

    def __repr__(self) -> str:
        return f"AsyncStepUp(base_url={self.base_url!r})"

    async def __aenter__(self) -> AsyncStepUp:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(**_calls.request_kwargs(call))
        except httpx.HTTPError as exc:
            raise _calls.transport_error(exc) from exc
        return _calls.finish(call, response)

    # --- users and methods ------------------------------------------------------------

    async def create_user(self, email: str, external_id: str | None = None,
                          language: str | None = None, pin: str | None = None,
                          password: str | None = None) -> User:
        """See :meth:`StepUp.create_user`."""
        return await self._run(_calls.create_user(email, external_id, language, pin,
                                                  password))

    async def methods(self, user_id: str) -> list[Method]:
        """See :meth:`StepUp.methods`."""
        return await self._run(_calls.methods(user_id))

    async def enroll(self, user_id: str, method: str, *, phone: str | None = None,
                     email: str | None = None, pin: str | None = None) -> Enrollment:
        """See :meth:`StepUp.enroll`."""
        return await self._run(_calls.enroll(user_id, method, phone, email, pin))

    async def confirm_enrollment(self, user_id: str, method: str, code: str) -> Method:
        """See :meth:`StepUp.confirm_enrollment`."""
        return await self._run(_calls.confirm_enrollment(user_id, method, code))

    async def method_challenge(self, user_id: str, method: str) -> Challenge:
        """See :meth:`StepUp.method_challenge`."""
        return await self._run(_calls.method_challenge(user_id, method))

    async def switch(self, user_id: str, method: str, code: str, **protects: bool) -> Method:
        """See :meth:`StepUp.switch`."""
        return await self._run(_calls.switch(user_id, method, code, protects))

    async def disable(self, user_id: str, method: str, code: str) -> Method:
        """See :meth:`StepUp.disable`."""
        return await self._run(_calls.disable(user_id, method, code))

    # --- second factor ----------------------------------------------------------------

    async def challenge(self, user_id: str, method: str, purpose: str = "login"
                        ) -> Challenge:
        """See :meth:`StepUp.challenge`."""
        return await self._run(_calls.challenge(user_id, method, purpose))

    async def verify(self, user_id: str, method: str, code: str, purpose: str = "login"
                     ) -> Verification:
        """See :meth:`StepUp.verify`."""
        return await self._run(_calls.verify(user_id, method, code, purpose))

    # --- operations -------------------------------------------------------------------

    async def create_operation(self, user_id: str, type: str, details: Mapping[str, str]
                               ) -> Operation:
        """See :meth:`StepUp.create_operation`."""
        return await self._run(_calls.create_operation(user_id, type, details))

    async def submit_pin(self, user_id: str, operation_id: str, pin: str) -> Operation:
        """See :meth:`StepUp.submit_pin`."""
        return await self._run(_calls.submit_pin(user_id, operation_id, pin))

    async def operation(self, user_id: str, operation_id: str) -> Operation:
        """See :meth:`StepUp.operation`."""
        return await self._run(_calls.operation(user_id, operation_id))
