"""The language switcher of a logged-in user: a POST form in every page's header.

Choosing a language saves it to the account (``account.updated``, fields ``language``),
so the pages and the messages StepUp sends follow it on every device. A saved setting
changes only through a POST with the session's CSRF token, never through a link: a
visitor's switcher (logged out) is a pair of ``?lang=`` links that only set this
browser's ``stepup_lang`` cookie. See web/i18n.py for the order of precedence.
"""

from __future__ import annotations

from fastapi.responses import Response

from stepup.services import lifecycle
from stepup.web import deps, i18n
from stepup.web.portal.plumbing import SignedIn, UserForm, portal_router
from stepup.web.portal.render import redirect, remember_language, safe_next

router = portal_router()


@router.post("/settings/language")
async def choose_language(page: SignedIn, form: UserForm) -> Response:
    language = form.get("language", "")
    if language not in i18n.LANGUAGES:
        return page.render("error.html", status_code=400, title=page._("Request refused"),
                           message=page._("This language is not available."))
    if language != page.me.language:
        await lifecycle.update(page.rt, deps.actor(page.request), page.me.id,
                               language=language)
    response = redirect(safe_next(form.get("next")) or "/settings/methods")
    # The browser remembers it too: the pages after logging out stay in this language.
    remember_language(response, page.rt, language)
    return response
