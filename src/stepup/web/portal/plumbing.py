"""What every portal handler needs, declared in its signature instead of written out.

A handler names what it needs and FastAPI hands it over::

    @router.post("/settings/methods/{method_type}/regenerate")
    async def regenerate(page: SignedIn, form: UserForm, method_type: CodeSetMethod): ...

* ``VisitorPage``: the page of anyone (language, runtime, CSRF bound to the pre-session);
  ``AnyPage``: the signed-in user's page if there is one, else a visitor's;
* ``SignedIn``: the page of a signed-in user (``page.me``), else the way to the login page
  (``SignedInReturning``: and back here afterwards, ``/login?next=``);
* ``VisitorForm`` / ``UserForm``: the submitted form once its CSRF token is checked, else
  the 403 page;
* ``refused(page, step, redraw)``: the service's step, or — when it refuses with a domain
  error — the form drawn again with the reason and the status of that error;
* ``code_sent(page, send, expired)``: "Send a code" at a login's second factor (the
  portal's and the console's): what was sent, or why not and how long to wait.

A dependency or a refused step that decides the answer raises :class:`PageAnswer`; the
routes of the portal (:class:`PortalRoute`) answer with its response. The page is built
once per request: every dependency that needs it shares the same one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from stepup.domain.errors import DomainError, Forbidden, NotAuthenticated, RateLimited
from stepup.methods import registry
from stepup.methods.base import ChallengeSent, HoldsSeveralCredentials, IssuesCodeSets
from stepup.store.models import User
from stepup.web.portal.render import Page, form_data, logged_in, to_login
from stepup.web.problems import STATUS_BY_CODE

T = TypeVar("T")


class PageAnswer(Exception):  # not an error: the answer to give instead
    """The response this request gets instead of what its handler would draw."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class PortalRoute(APIRoute):
    """A portal route: a :class:`PageAnswer` raised by a dependency or by the handler is
    the response."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except PageAnswer as answer:
                return answer.response
            return response

        return route


def portal_router(**options: Any) -> APIRouter:
    """A router whose routes answer a :class:`PageAnswer`."""
    return APIRouter(route_class=PortalRoute, **options)


def status_for(err: DomainError) -> int:
    # Form pages answer 4xx like the API, but never 401: the page itself is the answer.
    status = STATUS_BY_CODE.get(err.code, 400)
    return 400 if status == 401 or status >= 500 else status


# --- the page ----------------------------------------------------------------------------


class UserPage(Page):
    """The page of a signed-in user: ``me`` is the user (never None)."""

    def __init__(self, request: Request, user: User, session_id: str) -> None:
        super().__init__(request, user=user, session_id=session_id)
        self.me = user


def visitor_page(request: Request) -> Page:
    """The page of anyone, signed in or not (pre-login forms, links from messages)."""
    return Page(request)


async def _user_page(request: Request, *, back: bool) -> UserPage:
    page = await logged_in(request)
    if page is None or page.user is None or page.session_id is None:
        raise PageAnswer(to_login(request, back=back))
    return UserPage(request, page.user, page.session_id)


async def signed_in(request: Request) -> UserPage:
    """The signed-in user's page; otherwise to the login page."""
    return await _user_page(request, back=False)


async def signed_in_returning(request: Request) -> UserPage:
    """The signed-in user's page; otherwise to the login page, which comes back here."""
    return await _user_page(request, back=True)


async def any_page(request: Request) -> Page:
    """The signed-in user's page, else a visitor's (pages that serve both)."""
    return await logged_in(request) or Page(request)


VisitorPage = Annotated[Page, Depends(visitor_page)]
AnyPage = Annotated[Page, Depends(any_page)]
SignedIn = Annotated[UserPage, Depends(signed_in)]
SignedInReturning = Annotated[UserPage, Depends(signed_in_returning)]


# --- the form ----------------------------------------------------------------------------


async def checked(page: Page) -> Mapping[str, str]:
    """The submitted form, once its CSRF token is this visitor's; else the 403 page:
    every state-changing form of the portal and the console starts here."""
    form = await form_data(page.request)
    try:
        page.check_csrf(form.get("csrf_token"))
    except Forbidden as err:
        raise PageAnswer(page.forbidden(err)) from err
    return form


async def visitor_form(page: VisitorPage) -> Mapping[str, str]:
    return await checked(page)


async def user_form(page: SignedIn) -> Mapping[str, str]:
    return await checked(page)


VisitorForm = Annotated[Mapping[str, str], Depends(visitor_form)]
UserForm = Annotated[Mapping[str, str], Depends(user_form)]


# --- which method the path names ---------------------------------------------------------


def not_found(page: Page) -> NoReturn:
    raise PageAnswer(page.not_found())


async def available_method(method_type: str, page: SignedIn) -> str:
    """A registered method's type, else the 404 page."""
    if not registry.is_available(method_type):
        not_found(page)
    return method_type


async def code_set_method(method_type: str, page: SignedIn) -> str:
    """A method whose proof is a set of codes replaced as a whole (Regenerate)."""
    if not isinstance(registry.find(method_type), IssuesCodeSets):
        not_found(page)
    return method_type


async def several_credentials_method(method_type: str, page: SignedIn) -> str:
    """A method that holds several credentials (add one, rename one, remove one)."""
    if not isinstance(registry.find(method_type), HoldsSeveralCredentials):
        not_found(page)
    return method_type


AvailableMethod = Annotated[str, Depends(available_method)]
CodeSetMethod = Annotated[str, Depends(code_set_method)]
SeveralCredentialsMethod = Annotated[str, Depends(several_credentials_method)]


# --- a refused step ----------------------------------------------------------------------


@dataclass
class Refusal:
    """Why a service refused a step, as the page tells it."""

    error: DomainError
    message: str  # the reason in the page's language (Page.error_message)
    status: int  # the status the form is drawn again with (status_for)


Redraw = Callable[[Refusal], Response | Awaitable[Response]]


async def refused(page: Page, step: Awaitable[T], redraw: Redraw) -> T:
    """What ``step`` gives; when it refuses with a domain error, the answer is the form
    that ``redraw`` draws again with the reason (a :class:`PageAnswer`)."""
    try:
        return await step
    except DomainError as err:
        drawn = redraw(Refusal(err, page.error_message(err), status_for(err)))
        response = drawn if isinstance(drawn, Response) else await drawn
        raise PageAnswer(response) from err


# --- "Send a code" at a login's second factor ----------------------------------------------


@dataclass
class CodeSent:
    """What "Send a code" did, as the second-factor form shows it."""

    sent: ChallengeSent | None = None
    error: str | None = None  # why nothing was sent (Page.send_error)
    status: int = 200
    wait: int = 0  # seconds before asking again, when refused for that


async def code_sent(page: Page, send: Awaitable[ChallengeSent],
                    expired: Callable[[], Response]) -> CodeSent:
    """Send a code for a login waiting for its second factor; a refusal is told on the
    form (with its status, and the wait a rate limit names). A login that is over
    (``NotAuthenticated``) answers ``expired()`` instead (a :class:`PageAnswer`)."""
    try:
        return CodeSent(sent=await send)
    except NotAuthenticated:
        raise PageAnswer(expired()) from None
    except DomainError as err:
        wait = (err.retry_after or 0) if isinstance(err, RateLimited) else 0
        return CodeSent(error=page.send_error(err), status=status_for(err), wait=wait)
