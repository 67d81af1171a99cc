"""AES-GCM key ring for secrets at rest (TOTP seeds, passkeys, webhook secrets...).

The key id is stored beside each ciphertext so keys can rotate: the first key of the
ring encrypts, every key in the ring decrypts. The associated data binds a ciphertext to
its row (user and method), so a seed copied to another row does not decrypt.

A key id retired by ``stepup keys retire-data`` (services/rekey.py) decrypts nothing
again, even if it is still written in the configuration: :meth:`KeyRing.retire`.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyRingError(ValueError):
    pass


def _check(kid: str, key: bytes) -> None:
    if len(key) != 32:
        raise KeyRingError(f"key {kid!r} must be 32 bytes")
    # Stored beside every ciphertext, in a column of 40 characters.
    if not kid or ":" in kid or "," in kid or len(kid) > 40:
        raise KeyRingError(f"bad key id {kid!r}")


class KeyRing:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyRingError("the key ring is empty")
        for kid, key in keys:
            _check(kid, key)
        self._keys = dict(keys)
        if len(self._keys) != len(keys):
            raise KeyRingError("a key id appears twice")
        self.active_kid = keys[0][0]
        self._retired: set[str] = set()

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """``kid:base64key[,kid2:base64key...]``; the first key is the active one."""
        keys = []
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            kid, sep, b64 = part.partition(":")
            if not sep:
                raise KeyRingError("each key must be written kid:base64key")
            try:
                keys.append((kid, base64.b64decode(b64, validate=True)))
            except binascii.Error as exc:
                raise KeyRingError(f"key {kid!r} is not valid base64") from exc
        return cls(keys)

    @staticmethod
    def generate_spec(kid: str = "k1") -> str:
        return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids, the active one first."""
        return tuple(self._keys)

    @property
    def retired(self) -> frozenset[str]:
        """The key ids :meth:`retire` was told of."""
        return frozenset(self._retired)

    def spec(self) -> str:
        """The ring written as :meth:`parse` reads it (for the development keys file)."""
        return ",".join(f"{kid}:{base64.b64encode(key).decode()}"
                        for kid, key in self._keys.items())

    def add_first(self, kid: str, key: bytes) -> None:
        """Put ``key`` in front: it encrypts from now on (everyone holding this ring sees
        the change)."""
        _check(kid, key)
        if kid in self._keys or kid in self._retired:
            raise KeyRingError(f"key id {kid!r} is taken")
        self._keys = {kid: key, **self._keys}
        self.active_kid = kid

    def without(self, kid: str) -> KeyRing:
        """This ring without ``kid`` (which must not be the active key)."""
        if kid == self.active_kid:
            raise KeyRingError(f"key {kid!r} is the active key")
        return KeyRing([(k, v) for k, v in self._keys.items() if k != kid])

    def retire(self, kids: Iterable[str]) -> list[str]:
        """Never decrypt with ``kids`` again; the ids that were still in the ring are
        returned (dropped now). A retired active key is a configuration error."""
        gone = set(kids)
        if self.active_kid in gone:
            raise KeyRingError(f"the active key {self.active_kid!r} was retired: put "
                               "another key first")
        dropped = []
        for kid in sorted(gone):
            self._retired.add(kid)
            if self._keys.pop(kid, None) is not None:
                dropped.append(kid)
        return dropped

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        ct = AESGCM(self._keys[self.active_kid]).encrypt(nonce, plaintext, aad)
        return self.active_kid, nonce + ct

    def decrypt(self, kid: str, blob: bytes, aad: bytes) -> bytes:
        key = self._keys.get(kid)
        if key is None:
            if kid in self._retired:
                raise KeyRingError(f"key {kid!r} was retired")
            raise KeyRingError(f"key {kid!r} is not in the key ring")
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad)
