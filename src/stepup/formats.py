"""Numbers, amounts and times as each language writes them (Babel, CLDR data).

English keeps the forms the service has always shown, which its logs, API examples and
support read alike: ``2026-11-22 12:10 UTC`` and ``1234.50``. Every other language gets
its own: ``22 нояб. 2026 г., 12:10 UTC`` and ``1 234,50``. Times are in UTC and say so.

An amount keeps every decimal it was given (a withdrawal of 0.00012345 BTC is never
rounded) and, for an ISO 4217 currency, at least its minor units (EUR 12.5 → 12.50).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from babel.dates import format_skeleton, get_datetime_format
from babel.numbers import format_decimal, get_currency_precision, is_currency

SOURCE = "en"  # the language whose forms stay as they were


def moment(value: datetime | str | None, language: str, *, seconds: bool = False) -> str:
    """A stored instant, in UTC, as ``language`` writes a date and a time."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if language == SOURCE:
        return value.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
    date = format_skeleton("yMMMd", value, locale=language)
    time = format_skeleton("Hms" if seconds else "Hm", value, tzinfo=UTC, locale=language)
    # The language's way of joining a date and a time ("{1}, {0}").
    combined = str(get_datetime_format("medium", locale=language)).replace(
        "{1}", date).replace("{0}", time)
    return f"{combined} UTC"


def decimals(text: str) -> int:
    """How many digits follow the decimal point in ``text`` ("12.50" → 2)."""
    _int, _sep, frac = text.strip().partition(".")
    return len(frac)


def amount(value: str | Decimal, currency: str | None, language: str) -> str:
    """A money amount as ``language`` writes numbers; the currency code stays beside it
    (the caller's), because a code like BTC has no symbol in CLDR."""
    text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text  # not a number: shown as given, never an error while showing one
    places = decimals(text)
    code = (currency or "").upper()
    if code and is_currency(code):
        places = max(places, get_currency_precision(code))
    if language == SOURCE:
        return f"{number:.{places}f}"
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return str(format_decimal(number, format=pattern, locale=language,
                              decimal_quantization=True))


def number(value: int, language: str) -> str:
    """A whole number with the language's grouping (10 000 in Russian)."""
    if language == SOURCE:
        return str(value)
    return str(format_decimal(value, locale=language))
