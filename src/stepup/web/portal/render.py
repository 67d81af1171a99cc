"""What every portal page shares: templates, language, cookies, CSRF and error messages.

A :class:`Page` is built once per request. It picks the language (``?lang=``, else the
user's, else the language cookie, else Accept-Language: web/i18n.py), binds gettext for
both the templates and the Python side, and knows which CSRF token the forms on the page
carry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import cache, cached_property, partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from stepup import formats
from stepup.domain import texts
from stepup.domain.errors import DomainError, Forbidden, NotAuthenticated
from stepup.methods import registry
from stepup.methods.base import ChallengeSent, Descriptor, sentence
from stepup.services import sessions
from stepup.services.runtime import Runtime
from stepup.store.models import User
from stepup.web import deps, i18n

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

SESSION_COOKIE = "stepup_session"
LOGIN_COOKIE = "stepup_login"
PRE_COOKIE = "stepup_pre"
LANG_COOKIE = "stepup_lang"
# "Remember this device": the token that lets login.password_step skip the second factor.
DEVICE_COOKIE = "stepup_device"
# Where to go back to once the second factor passes (a local path, checked twice).
NEXT_COOKIE = "stepup_next"
LOGIN_COOKIE_MAX_AGE = 300
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def N_(message: str) -> str:  # the gettext "mark only" convention
    """Mark a string for extraction; it is translated where it is shown."""
    return message


# Everything about a method (its name, blurb, whether it sends codes, where) comes from
# its descriptor in the registry (methods/<type>/__init__.py).
def descriptor(method_type: str | None) -> Descriptor | None:
    return registry.descriptor(method_type) if method_type else None


def sends_codes(method_type: str | None) -> bool:
    """The method's challenge sends a code (out-of-band); the others show their own."""
    d = descriptor(method_type)
    return d is not None and d.sends_codes


def destination_field(method_type: str | None) -> str | None:
    """Where a sending method's codes go: the field its enrollment form asks for."""
    d = descriptor(method_type)
    return d.destination if d is not None else None


def login_fallback(method_type: str | None) -> bool:
    """The method stands in for any other (backup codes): offered last, never first."""
    d = descriptor(method_type)
    return d is not None and d.login_fallback


def browser_ceremony(method_type: str | None) -> bool:
    """The proof is a browser ceremony (a passkey): the form asks for options first."""
    d = descriptor(method_type)
    return d is not None and d.browser_ceremony


OPERATION_NAMES = {"login": N_("Login"), "withdrawal": N_("Withdrawal")}

@cache
def environment(language: str) -> Environment:
    """One Jinja2 environment per language, with that language's catalogue installed."""
    # The pages' templates, then each method's own (``<type>/setup.html``, ``prompt.html``,
    # ``card.html``…): a generic page includes its method's part by the method's type.
    methods = [d.templates for d in registry.descriptors() if d.templates is not None]
    env = Environment(
        loader=FileSystemLoader([TEMPLATES, *methods]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["method_info"] = descriptor  # a method's descriptor, by its type
    env.globals["browser_ceremony"] = browser_ceremony
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks: whitespace as in babel.cfg
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def _secure(rt: Runtime) -> bool:
    return rt.settings.secure_cookies


def set_cookie(response: Response, rt: Runtime, base: str, value: str, *,
               max_age: int | None = None,
               samesite: Literal["lax", "strict"] = "lax") -> None:
    """An HttpOnly cookie on path /, Secure when the settings say so (``__Host-`` name)."""
    response.set_cookie(deps.cookie_name(rt, base), value, max_age=max_age, path="/",
                        httponly=True, secure=_secure(rt), samesite=samesite)


def remember_language(response: Response, rt: Runtime, language: str) -> None:
    """The browser's language choice (``stepup_lang``), kept a year: the pages of a
    visitor, and after logging out, stay in it."""
    set_cookie(response, rt, LANG_COOKIE, language, max_age=LANG_COOKIE_MAX_AGE)


def delete_cookie(response: Response, rt: Runtime, base: str) -> None:
    response.delete_cookie(deps.cookie_name(rt, base), path="/", httponly=True,
                           secure=_secure(rt))


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str | None:
    """A path of this site to come back to after login, or None.

    Only ``/something``: never ``//host`` or ``/\\host`` (browsers read both as another
    site), never a scheme, never control characters.
    """
    if not value or len(value) > 2000 or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    return value


def when(value: datetime | None, language: str = formats.SOURCE) -> str:
    """A stored instant as the pages show it: ``2026-11-22 12:10 UTC`` in English,
    ``22 нояб. 2026 г., 12:10 UTC`` in Russian (stepup.formats)."""
    return formats.moment(value, language)


def iso(value: datetime | None) -> str:
    """The ``datetime`` attribute of a ``<time>`` element."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Page:
    """One request's rendering context."""

    def __init__(self, request: Request, user: User | None = None,
                 session_id: str | None = None) -> None:
        self.request = request
        self.rt = deps.runtime(request)
        self.user = user
        self.session_id = session_id
        query_lang = request.query_params.get("lang")
        # Explicit choice > account > this browser's earlier choice > Accept-Language.
        self.lang = i18n.page_language(
            explicit=query_lang,
            account=user.language if user else None,
            remembered=request.cookies.get(deps.cookie_name(self.rt, LANG_COOKIE)),
            accept_language=request.headers.get("accept-language"),
        )
        self._remember_lang = user is None and query_lang in i18n.LANGUAGES
        self.translations = i18n.translations(self.lang)
        # Pre-login pages bind their CSRF token to a random pre-session cookie.
        self.pre = request.cookies.get(deps.cookie_name(self.rt, PRE_COOKIE))
        self._new_pre = False

    # --- times -------------------------------------------------------------------------

    @cached_property
    def zone(self) -> ZoneInfo | None:
        """The browser's time zone (the ``tz`` cookie static/portal.js sets), if valid."""
        return i18n.client_zone(self.request.cookies.get(i18n.TZ_COOKIE))

    def local_when(self, value: datetime | None) -> str:
        """An instant in the browser's time zone, the zone named ("Dec 2, 2026, 10:24 AM
        (Moscow)"); as :func:`when` writes it, in UTC and saying so, when the browser has
        not told its zone. The client's own pages draw their times with it (``when=``)."""
        if value is None:
            return ""
        if self.zone is None:
            return when(value, self.lang)
        return i18n.format_when_named(value, self.zone, self.lang)

    # --- translation -------------------------------------------------------------------

    def _(self, message: str, **values: Any) -> str:
        text: str = self.translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, num: int, **values: Any) -> str:
        text: str = self.translations.ngettext(singular, plural, num)
        return text % {"num": num, **values}

    def method_name(self, method_type: str) -> str:
        d = descriptor(method_type)
        return self._(d.name) if d is not None else method_type

    def method_sentence(self, method_type: str, key: str, **values: Any) -> str:
        """The method's own whole sentence for ``key`` (``Descriptor.sentences``; see
        methods/base.SENTENCES), translated: never a name spliced into a sentence."""
        text, generic = sentence(descriptor(method_type), key)
        if generic:
            values["method"] = self.method_name(method_type)
        return self._(text, **values)

    def proof_name(self, method_type: str) -> str:
        """What the method's proof is called in a picker: "Backup code", else its name."""
        d = descriptor(method_type)
        return self._(d.proof_label) if d is not None and d.proof_label else (
            self.method_name(method_type))

    def operation_name(self, op: str) -> str:
        name = OPERATION_NAMES.get(op)
        return self._(name) if name else op.replace("_", " ").capitalize()

    def error_message(self, err: DomainError) -> str:
        """What to tell the user about a refused request, in the page's language: the
        catalogue's text (domain/texts.py), as the operator adapter tells it — the same
        text the API's ``detail`` carries."""
        return self.rt.adapter.describe_error(err, self.lang)

    def send_error(self, err: DomainError) -> str:
        """What to tell the user when a code could not be sent (cooldown, caps, provider):
        any wait is told as a wait for a new code."""
        return self.error_message(texts.as_send_refusal(err))

    def language_url(self, language: str) -> str:
        """This page in ``language`` (the switcher's link for visitors)."""
        return i18n.language_url(self.request.url.path,
                                 list(self.request.query_params.multi_items()), language)

    def back_to(self) -> str:
        """Where the language form comes back to: this page, if a GET drew it."""
        if self.request.method != "GET":
            return ""
        query = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        return self.request.url.path + ("?" + urlencode(query) if query else "")

    # --- CSRF --------------------------------------------------------------------------

    def csrf_token(self) -> str:
        if self.session_id is not None:
            return deps.csrf_token_for(self.rt, self.session_id)
        if self.pre is None:
            self.pre = deps.new_pre_session()
            self._new_pre = True
        return deps.csrf_token_for(self.rt, "pre:" + self.pre)

    def check_csrf(self, supplied: object) -> None:
        """Raise ``Forbidden`` unless the form carries this visitor's token."""
        if self.session_id is not None:
            bound = self.session_id
        elif self.pre:
            bound = "pre:" + self.pre
        else:
            raise Forbidden(situation="csrf")
        deps.check_csrf(self.request, self.rt, bound,
                        supplied if isinstance(supplied, str) else None)

    # --- rendering ---------------------------------------------------------------------

    def finish(self, response: Response) -> Response:
        """Set the cookies this page decided on (pre-session, language)."""
        if self._new_pre and self.pre:
            set_cookie(response, self.rt, PRE_COOKIE, self.pre, samesite="strict")
        if self._remember_lang:
            remember_language(response, self.rt, self.lang)
        return response

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        env = environment(self.lang)
        values: dict[str, Any] = {
            "lang": self.lang,
            "languages": i18n.LANGUAGES,
            "user": self.user,
            "csrf_token": self.csrf_token(),
            "issuer": self.rt.adapter.issuer(None),  # the name people know these pages by
            "method_name": self.method_name,
            "method_sentence": self.method_sentence,
            "proof_name": self.proof_name,
            "operation_name": self.operation_name,
            "path": self.request.url.path,
            "lang_url": self.language_url,
            "back_to": self.back_to(),
            "when": partial(when, language=self.lang),
            "iso": iso,
        }
        values.update(context)
        html = env.get_template(template).render(values)
        return self.finish(HTMLResponse(html, status_code=status_code))

    def forbidden(self, err: DomainError | None = None) -> Response:
        message = self.error_message(err or Forbidden(situation="csrf"))
        return self.render("error.html", status_code=403, title=self._("Request refused"),
                           message=message)

    def not_found(self) -> Response:
        return self.render("error.html", status_code=404, title=self._("Page not found"),
                           message=self._("There is no such page."))


async def logged_in(request: Request) -> Page | None:
    """The page of a signed-in user, or None when there is no valid session cookie."""
    rt = deps.runtime(request)
    token = request.cookies.get(deps.cookie_name(rt, SESSION_COOKIE))
    if not token:
        return None
    try:
        auth = await sessions.resolve(rt, token)
    except NotAuthenticated:
        return None
    return Page(request, user=auth.user, session_id=auth.session.id)


def to_login(request: Request, *, back: bool = False) -> Response:
    """To the login page; with ``back``, login returns to this page (``?next=``)."""
    url = "/login"
    if back and safe_next(request.url.path):
        url += "?next=" + quote(request.url.path, safe="/")
    response = redirect(url)
    delete_cookie(response, deps.runtime(request), SESSION_COOKIE)
    return response


async def form_data(request: Request) -> Mapping[str, str]:
    """The submitted form's text fields (uploads are not part of any portal form)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def passkey_request(page: Page, method_type: str | None,
                          ask: Callable[[str], Awaitable[ChallengeSent]]
                          ) -> tuple[dict[str, Any] | None, str | None]:
    """For a passkey form: (the options the browser needs, or why there are none).

    A passkey answers a challenge made for this one step, so the page asks for it as it
    is shown; other methods need nothing here.
    """
    if method_type is None or not browser_ceremony(method_type):
        return None, None
    try:
        sent = await ask(method_type)
    except DomainError as err:
        return None, page.error_message(err)
    return sent.options, None
