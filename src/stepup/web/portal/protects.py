"""What a method protects, as the set-up pages ask it and the notices say it.

The last step of every set-up offers "Use it for: Login / Withdrawal" (one box per
configured operation); the proof that finishes the set-up confirms the choice
(services/methods.py). After it, the notice says in one whole sentence what the method
now protects — one sentence per case, so that no language has to glue parts together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stepup.domain.policy import LOGIN, WITHDRAWAL
from stepup.methods import registry
from stepup.services import methods
from stepup.web.portal.render import N_, Page

# One sentence per case; "this method" keeps the sentence whole in every language
# (Russian: «этот способ», whatever the method's own gender or number).
BOTH = N_("This method now protects login and withdrawals.")
LOGIN_ONLY = N_("This method now protects login.")
WITHDRAWAL_ONLY = N_("This method now protects withdrawals.")
NOTHING = N_("This method protects nothing yet: switch it on for login or withdrawals "
             "on the Authentication methods page.")
# Operations configured beyond login and withdrawal: their names in a list.
OTHERS = N_("This method now protects: %(operations)s.")


def protection_sentence(page: Page, protects: Mapping[str, Any]) -> str:
    """What a method protects now, as one sentence of the page's language."""
    on = {op for op, value in protects.items() if value}
    if not on:
        return page._(NOTHING)
    if on <= {LOGIN, WITHDRAWAL}:
        text = {frozenset({LOGIN, WITHDRAWAL}): BOTH, frozenset({LOGIN}): LOGIN_ONLY,
                frozenset({WITHDRAWAL}): WITHDRAWAL_ONLY}[frozenset(on)]
        return page._(text)
    ops = [op for op in page.rt.settings.operations if op in on]
    return page._(OTHERS, operations=", ".join(page.operation_name(op) for op in ops))


def chosen(page: Page, form: Mapping[str, str]) -> dict[str, bool] | None:
    """The boxes ticked on the set-up's last step (``protect_<operation>``), or None when
    the form did not ask (``protects_asked`` is absent): the default then applies."""
    if not form.get("protects_asked"):
        return None
    return {op: form.get(f"protect_{op}") == "1" for op in page.rt.settings.operations}


async def choice(page: Page, method_type: str, ticked: Mapping[str, bool] | None = None
                 ) -> dict[str, Any]:
    """The context of ``enroll/_protects.html``: the boxes, ticked as the user left them
    (after a refused code) or as suggested."""
    assert page.user is not None
    boxes = dict(ticked) if ticked is not None else await methods.suggestion(
        page.rt, page.user.id, method_type)
    d = registry.descriptor(method_type)
    return {"protects_choice": {op: bool(boxes.get(op)) for op in page.rt.settings.operations},
            "protects_fallback": d is not None and d.login_fallback}
