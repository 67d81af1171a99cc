"""The operator adapter: the one class an operator overrides to customise StepUp.

Texts, the name shown in authenticator apps, the set-up QR code and policy hooks are
answered here, so an operator changes them without forking code (as django-allauth's
``DefaultMFAAdapter``). Subclass :class:`Adapter`, override what you need, and name the
class in the configuration::

    STEPUP_ADAPTER=mycompany.stepup_adapter:Adapter

The service refuses to start when the class cannot be imported or is not a subclass of
:class:`Adapter`. One instance is built per process (``Runtime.adapter``); the services
and the methods reach it through the runtime and ``MethodContext.adapter``. Methods may
be called concurrently and must not block (no I/O): they run on the event loop.
See docs/customising.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from stepup.config import ConfigurationError, Settings
from stepup.domain import texts
from stepup.domain.errors import DomainError
from stepup.methods.base import speaks_for

if TYPE_CHECKING:
    from stepup.store.models import App, User


class Adapter:
    """StepUp's defaults. Every method may be overridden; keep the signatures."""

    #: Texts by catalogue key (an error ``code``, or ``code.situation``: see
    #: ``stepup.domain.texts.ERRORS``), replacing StepUp's own in every language. They may
    #: use the entry's placeholders (``%(num)d``, ``%(channel)s``).
    error_messages: ClassVar[Mapping[str, str]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- texts -------------------------------------------------------------------------

    def error_text(self, key: str, default: str, lang: str) -> str:
        """What a person is told about a refused request. ``key`` is the catalogue key,
        ``default`` StepUp's text already in ``lang`` ("en", "ru"). Used for the API's
        ``detail`` and on the pages alike."""
        return self.error_messages.get(key, default)

    def describe_error(self, err: DomainError, lang: str) -> str:
        """The text of ``err`` in ``lang``: the catalogue's, passed through ``error_text``
        (and through ``error_messages``, filled with the error's values)."""
        from stepup.i18n import translations  # the catalogues are read on first use

        key = texts.key(err)
        default = texts.error_text(err, translations(lang))
        text = self.error_text(key, default, lang)
        if text is default or "%(" not in text:
            return text
        try:
            return text % {"num": texts.count(err), **err.values}
        except (KeyError, ValueError, TypeError):
            return default  # an override naming a value this error does not carry

    # --- authenticator apps ------------------------------------------------------------

    def issuer(self, app: App | None) -> str:
        """The name an authenticator app shows for the account (the otpauth ``issuer``):
        StepUp's ``ISSUER`` for its own pages' people, else their app's display name."""
        return speaks_for(self.settings, app)[0]

    def otpauth_uri(self, uri: str, user: User) -> str:
        """The ``otpauth://`` URI an authenticator app scans, as StepUp built it (label,
        secret, issuer, digits, period); return another to add parameters (an ``image``)."""
        return uri

    def totp_qr_svg(self, uri: str) -> str:
        """The QR code of ``uri`` as inline SVG, shown on the set-up page and in the API."""
        import segno  # here: only setting up an authenticator app draws a QR code

        qr = segno.make(uri, error="m")
        svg: str = qr.svg_inline(scale=4, border=4, dark="#000", light="#fff",
                                 title="QR code for your authenticator app")
        return svg

    # --- policy ------------------------------------------------------------------------

    def may_enable(self, user: User, method_type: str) -> bool:
        """May ``user`` start enrolling a method of this type? A refusal answers
        ``forbidden`` (403) and nothing changes."""
        return True

    def may_disable(self, user: User, method_type: str) -> bool:
        """May ``user`` disable their method of this type? A refusal answers
        ``method_required`` (409) and nothing changes."""
        return True


def load(settings: Settings) -> Adapter:
    """The configured adapter (``STEPUP_ADAPTER=package.module:Class``), else the default."""
    spec = settings.adapter
    if not spec:
        return Adapter(settings)
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ConfigurationError(
            f"STEPUP_ADAPTER={spec!r}: expected 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the operator's module stops the start
        raise ConfigurationError(
            f"STEPUP_ADAPTER={spec!r}: cannot import {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, Adapter):
        raise ConfigurationError(
            f"STEPUP_ADAPTER={spec!r}: {class_name!r} is not a subclass of "
            f"stepup.adapter.Adapter")
    return cls(settings)
