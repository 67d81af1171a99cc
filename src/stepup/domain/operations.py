"""Protected operations as data: which details each type carries, how they are checked,
and the one-line summary shown beside the code field and in the message.

Amounts are decimal strings (never floats), positive, with at most the currency's
number of decimal places. A withdrawal's destination that has the form of a crypto address
or an IBAN must be plain ASCII and pass its checksum (domain/checksums.py): what the user
reads in the message is then what is paid.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from stepup.domain import checksums
from stepup.domain.errors import ValidationFailed

# Decimal places per currency; anything else gets DEFAULT_PRECISION.
PRECISION = {
    "USD": 2, "EUR": 2, "GBP": 2, "RUB": 2, "CHF": 2, "CAD": 2, "AUD": 2, "CNY": 2,
    "JPY": 0, "KRW": 0, "BTC": 8, "LTC": 8, "BCH": 8, "DOGE": 8, "ETH": 18, "USDT": 6,
    "USDC": 6, "TRX": 6, "XRP": 6, "SOL": 9, "TON": 9,
}
DEFAULT_PRECISION = 8
_CURRENCY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_AMOUNT = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,18})?$")


@dataclass(frozen=True)
class OperationType:
    name: str
    title: str  # what the user sees: "Withdrawal"
    fields: tuple[str, ...]  # the details it carries, all required
    summary: str  # "{amount} {currency} to {destination}"


WITHDRAWAL = OperationType("withdrawal", "Withdrawal", ("amount", "currency", "destination"),
                           "{amount} {currency} to {destination}")


def parse_types(raw: list[dict[str, object]] | None) -> dict[str, OperationType]:
    """The configured operation types (``login`` is not one: it has no details)."""
    types = {WITHDRAWAL.name: WITHDRAWAL}
    for item in raw or []:
        name = str(item["name"])
        fields = tuple(str(f) for f in item.get("fields", []))  # type: ignore[attr-defined]
        types[name] = OperationType(name, str(item.get("title", name.title())), fields,
                                    str(item.get("summary", " · ".join(
                                        "{" + f + "}" for f in fields))))
    return types


def check_amount(value: object, currency: str, field: str = "details.amount") -> str:
    if not isinstance(value, str) or not _AMOUNT.match(value.strip()):
        raise ValidationFailed("The amount must be a decimal number written as a string, "
                               "like \"0.25\".", field=field)
    try:
        amount = Decimal(value.strip())
    except InvalidOperation as exc:
        raise ValidationFailed("The amount is not a number.", field=field) from exc
    if amount <= 0:
        raise ValidationFailed("The amount must be more than zero.", field=field)
    places = PRECISION.get(currency, DEFAULT_PRECISION)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise ValidationFailed(f"{currency} amounts have at most {places} decimal places.",
                               field=field)
    return format(amount.normalize(), "f")


def check_currency(value: object, field: str = "details.currency") -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value.strip().upper()):
        raise ValidationFailed("The currency must be a code like USD or BTC.", field=field)
    return value.strip().upper()


# Control and format characters (C0/C1 controls, bidi overrides, zero-width marks) and
# line/paragraph separators: they could make the destination shown in a message read
# differently from the one confirmed.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def check_text(value: object, field: str, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("This must not be empty.", field=field)
    text = value.strip()
    if len(text) > max_length or any(unicodedata.category(c) in _HIDDEN for c in text):
        raise ValidationFailed(f"At most {max_length} printable characters.", field=field)
    return text


def check_details(op: OperationType, details: object) -> dict[str, str]:
    if not isinstance(details, dict):
        raise ValidationFailed("details must be an object.", field="details")
    unknown = set(details) - set(op.fields)
    if unknown:
        raise ValidationFailed(f"Unknown detail(s): {', '.join(sorted(map(str, unknown)))}",
                               field="details")
    clean: dict[str, str] = {}
    if "currency" in op.fields:
        clean["currency"] = check_currency(details.get("currency"))
    for name in op.fields:
        if name == "currency":
            continue
        if name == "amount":
            clean["amount"] = check_amount(details.get("amount"), clean.get("currency", ""))
        else:
            clean[name] = check_text(details.get(name), f"details.{name}")
    if op.name == WITHDRAWAL.name and "destination" in clean:
        check_destination(clean["destination"], clean.get("currency", ""))
    return clean


# --- destinations -----------------------------------------------------------------------

_FIELD = "details.destination"
# Letters of other scripts drawn like Latin ones, as a reader sees them.
_LOOKALIKES = str.maketrans(
    "аАВсСеЕһНіІјЈКмМоОрРѕЅТхХуУԁԛԝοΟαΑΒεΕΗιΙκΚΜνΝρΡτΤυΥχΧζΖ",
    "aABcCeEhHiIjJKmMoOpPsSTxXyYdqwoOaABeEHiIkKMvNpPtTuYxXzZ")
_SEGWIT = re.compile(r"^(bc|tb|bcrt|ltc|tltc)1[0-9a-z]{6,}$", re.IGNORECASE)
_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{25,35}$")
# Coins whose addresses (or, for the tokens, some of whose networks' addresses) are
# Base58Check: Bitcoin's legacy form and the coins that copied it; Tron for USDT/USDC.
BASE58CHECK_CURRENCIES = frozenset({"BTC", "BCH", "BSV", "LTC", "DOGE", "DASH", "TRX",
                                    "USDT", "USDC"})
_ETHEREUM = re.compile(r"^0x[0-9a-fA-F]{40}$")
# Upper case, as IBANs are printed (a lower-case one is left unchecked, not refused).
_IBAN = re.compile(r"^(?:[Ii][Bb][Aa][Nn])?([A-Z]{2}[0-9]{2}[A-Z0-9]{11,30})$")


def _refuse(reason: str, detail: str, kind: str | None = None) -> ValidationFailed:
    return ValidationFailed(detail, field=_FIELD,
                            extra={"reason": reason, **({"kind": kind} if kind else {})})


def _form(compact: str, currency: str) -> str | None:
    """Which kind of account ``compact`` (no spaces) has the form of, if any."""
    if _SEGWIT.match(compact):
        return "bech32"
    if _ETHEREUM.match(compact):
        return "eip55"
    if _IBAN.match(compact):
        return "iban"
    if currency in BASE58CHECK_CURRENCIES and _BASE58.match(compact):
        return "base58check"
    return None


def check_destination(value: str, currency: str) -> None:
    """Refuse a destination that has the form of a crypto address or an IBAN but is not
    plain ASCII (a Cyrillic ``а``, a non-breaking space: it would read as another one)
    or fails its checksum. Anything else, such as a name and account number in words, is
    left as it is."""
    folded = unicodedata.normalize("NFKC", value).translate(_LOOKALIKES)
    compact = "".join(folded.split())
    kind = _form(compact, currency)
    if not value.isascii():
        # Judged on what a reader sees: look-alike letters and other spaces folded.
        letters = sum(c.isascii() and c.isalnum() for c in compact)
        if kind or (len(compact) >= 14 and letters >= 0.9 * len(compact)):
            raise _refuse("not_ascii", "The destination has characters that only look like "
                          "Latin letters, digits or spaces (another alphabet, a special "
                          "space): addresses and IBANs are plain ASCII.")
        return
    if kind is None:
        return
    if kind != "iban" and compact != value:
        raise _refuse("spaces", "A crypto address has no spaces: check that it was copied "
                      "whole.", kind)
    body = _IBAN.match(compact)
    ok = {"bech32": lambda: checksums.segwit_ok(compact, compact.split("1")[0].lower()),
          "eip55": lambda: checksums.eip55_ok(compact),
          "iban": lambda: body is not None and checksums.iban_ok(body.group(1)),
          "base58check": lambda: checksums.base58check_ok(compact)}[kind]()
    if not ok:
        names = {"bech32": "segwit (bech32) address", "eip55": "mixed-case Ethereum address",
                 "iban": "IBAN", "base58check": "Base58Check address"}
        raise _refuse("checksum", f"This {names[kind]} is not valid: its checksum does not "
                      f"match. Check it for a typo or a missing character.", kind)


def summary(op: OperationType, details: dict[str, str]) -> str:
    return op.summary.format(**{f: details.get(f, "") for f in op.fields})


def details_digest(op_type: str, details: dict[str, str]) -> str:
    """A stable hash of what is being confirmed: any change makes another operation."""
    canonical = json.dumps({"type": op_type, "details": details}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
