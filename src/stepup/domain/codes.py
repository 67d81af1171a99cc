"""Security codes, backup codes, PINs and passwords: generation, normalisation, rules.

Pure functions: randomness comes from ``secrets``; nothing here stores or sends.
"""

from __future__ import annotations

import gzip
import hmac
import secrets
from functools import lru_cache
from importlib import resources
from itertools import pairwise

from stepup.domain.errors import ValidationFailed

# Crockford's base32: 32 symbols without I, L, O and U, so a printed code cannot be
# misread; the look-alikes are mapped back when the user types them.
BACKUP_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_LOOKALIKES = str.maketrans({"i": "1", "l": "1", "o": "0"})
BACKUP_CODE_LENGTH = 10


def new_backup_code() -> str:
    return "".join(secrets.choice(BACKUP_ALPHABET) for _ in range(BACKUP_CODE_LENGTH))


def format_backup_code(code: str) -> str:
    half = BACKUP_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalise_backup_code(typed: str) -> str | None:
    """The canonical form of a typed backup code, or None if it cannot be one."""
    cleaned = "".join(typed.split()).replace("-", "").lower().translate(_LOOKALIKES)
    if len(cleaned) != BACKUP_CODE_LENGTH or any(c not in BACKUP_ALPHABET for c in cleaned):
        return None
    return cleaned


def new_numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def normalise_numeric_code(typed: str, digits: int = 6) -> str | None:
    cleaned = "".join(typed.split()).replace("-", "")
    if len(cleaned) != digits or not cleaned.isascii() or not cleaned.isdigit():
        return None
    return cleaned


def same(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality for secrets."""
    a_b = a.encode() if isinstance(a, str) else a
    b_b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_b, b_b)


# --- PIN -------------------------------------------------------------------------------

PIN_LENGTH = 6


def is_trivial_pin(pin: str) -> bool:
    """Repeats, runs and short repeated patterns: the PINs guessed first."""
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in pairwise(digits)}
    if len(steps) == 1 and steps <= {-1, 0, 1}:
        return True  # 000000, 123456, 987654
    for period in (1, 2, 3):
        if all(pin[i] == pin[i % period] for i in range(len(pin))):
            return True  # 121212, 123123
    if pin[:3] == pin[3:][::-1] and len(set(pin)) <= 2:
        return True  # 100001-style palindromes of two digits
    return pin in {"112233", "111222", "123321", "654321", "102030", "696969", "147258", "159753"}


def check_pin(pin: str, field: str = "pin") -> str:
    if len(pin) != PIN_LENGTH or not pin.isascii() or not pin.isdigit():
        raise ValidationFailed(situation="pin_format", field=field)
    if is_trivial_pin(pin):
        raise ValidationFailed(situation="pin_easy", field=field)
    return pin


# --- Passwords (NIST SP 800-63B §3.1.1.2: length and a block list, no composition rules) --


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    blob = resources.files("stepup.domain").joinpath("data/common-passwords.txt.gz")
    text = gzip.decompress(blob.read_bytes()).decode()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalpha())


def check_password(password: str, *, email: str, min_length: int, max_length: int,
                   context: tuple[str, ...] = ()) -> str:
    """``context``: the service's own words (its name, its host), refused as a password
    and in their derivatives — the word with digits or symbols around it (NIST SP
    800-63B-4 §3.1.1.2: context-specific words)."""
    if len(password) < min_length:
        raise ValidationFailed(situation="password_short", values={"min": min_length},
                               field="password")
    if len(password) > max_length:
        raise ValidationFailed(situation="password_long", values={"max": max_length},
                               field="password")
    lowered = password.strip().lower()
    if lowered in _common_passwords():
        raise ValidationFailed(situation="password_common", field="password")
    local = email.split("@", 1)[0].lower()
    own_words = {_letters(word) for word in (email, local, *context)} - {""}
    if (lowered in {email.lower(), local} or len(set(lowered)) <= 2
            or _letters(password) in own_words):
        raise ValidationFailed(situation="password_easy", field="password")
    return password
