"""Hashes for everything we store instead of a secret.

- passwords and PINs: argon2id (OWASP parameters by default, configurable);
- backup codes: argon2id of HMAC(server key, code) with one random salt per set, so a
  typed code costs one argon2 computation whatever the size of the set;
- session, login and API tokens (random, 256-bit): SHA-256, as a slow hash adds nothing
  to a value that cannot be guessed.

CPU-heavy calls are synchronous here; services run them off the event loop.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import Type, hash_secret_raw


class Hasher:
    def __init__(self, secret_key: bytes, *, time_cost: int = 2, memory_kib: int = 19456,
                 parallelism: int = 1) -> None:
        self._key = secret_key
        self._ph = _password_hasher(time_cost, memory_kib, parallelism)
        self._params = (time_cost, memory_kib, parallelism)
        # Verifying against this keeps an unknown e-mail as slow as a wrong password.
        self._dummy = _dummy(time_cost, memory_kib, parallelism)

    def hash_password(self, password: str) -> str:
        return self._ph.hash(password)

    def verify_password(self, stored: str | None, password: str) -> bool:
        try:
            return self._ph.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._ph.check_needs_rehash(stored)

    def backup_code_hash(self, code: str, salt: bytes) -> bytes:
        keyed = hmac.new(self._key, b"backup-code:" + code.encode(), hashlib.sha256).digest()
        _, m, p = self._params
        # A code has 50 bits of entropy and a server-side key: a lighter cost suffices.
        return hash_secret_raw(keyed, salt, time_cost=1, memory_cost=max(m // 2, 8192),
                               parallelism=p, hash_len=32, type=Type.ID)

    def token_hash(self, token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def mac(self, *parts: str) -> str:
        msg = "\x1f".join(parts).encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def derive_key(self, label: str) -> bytes:
        """A key of its own for one use (``label``), derived from the server key: what it
        keys never equals an HMAC made by ``mac``."""
        return hmac.new(self._key, b"stepup-derive\x1f" + label.encode(),
                        hashlib.sha256).digest()

    def mac_ok(self, expected_hex: str, *parts: str) -> bool:
        # As bytes: compare_digest refuses str with non-ASCII characters (a header can
        # carry any Latin-1 text), and a forged value must be False, not an error.
        supplied = expected_hex.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self.mac(*parts).encode(), supplied)


@functools.cache
def _password_hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                          parallelism=parallelism, hash_len=32, salt_len=16)


@functools.cache
def _dummy(time_cost: int, memory_kib: int, parallelism: int) -> str:
    """A hash of nothing anyone knows, made once a process for each set of parameters
    (the test suite builds several runtimes a test; an argon2 hash costs ~50 ms)."""
    return _password_hasher(time_cost, memory_kib, parallelism).hash(
        secrets.token_urlsafe(16))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_id() -> str:
    return secrets.token_hex(16)
