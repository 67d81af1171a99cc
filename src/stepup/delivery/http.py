"""The HTTP call every REST provider makes: 5-second timeouts, one retry when the
connection could not be made, never a retry once the provider may have the request
(a read timeout or any answer) — a retry then could send the code twice."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from stepup.delivery.base import ProviderError

if TYPE_CHECKING:
    import ssl

    import httpx

TIMEOUT = 5.0  # seconds: connect, read, write and pool, each


@functools.cache
def tls() -> ssl.SSLContext:
    """The TLS context of every call to a provider or a webhook: httpx's own default
    (certifi's CAs, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``; certificates and host names
    verified), made once a process. A client made with httpx's default loads the CA store
    again (~15 ms of CPU), and a new client is made for every call."""
    import httpx

    return httpx.create_ssl_context()


def new_client() -> httpx.AsyncClient:
    """A client for one call (or one batch of webhooks): closed by whoever made it."""
    import httpx

    return httpx.AsyncClient(timeout=TIMEOUT, verify=tls())


async def post(provider: str, url: str, *, client: httpx.AsyncClient | None = None,
               **kwargs: Any) -> httpx.Response:
    # Imported here: httpx (with the rich, pygments and click its command line brings)
    # is ~4 MB a worker holds only once it calls a provider.
    import httpx

    own = client is None
    http = client or new_client()
    try:
        for attempt in (1, 2):
            try:
                return await http.post(url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == 2:
                    raise ProviderError(provider, f"cannot connect: {exc!r}") from exc
            except httpx.TimeoutException as exc:
                raise ProviderError(provider, f"no answer within 5 s: {exc!r}") from exc
            except httpx.HTTPError as exc:
                raise ProviderError(provider, f"transport error: {exc!r}") from exc
        raise AssertionError("unreachable")
    finally:
        if own:
            await http.aclose()


def json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
