"""AES-GCM key ring for secrets at rest (TOTP seeds).

The key id is stored beside each ciphertext so keys can rotate: the first key of the
ring encrypts, every key in the ring decrypts. The associated data binds a ciphertext to
its row (user and method), so a seed copied to another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyRingError(ValueError):
    pass


class KeyRing:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyRingError("the key ring is empty")
        for kid, key in keys:
            if len(key) != 32:
                raise KeyRingError(f"key {kid!r} must be 32 bytes")
            if not kid or ":" in kid or "," in kid:
                raise KeyRingError(f"bad key id {kid!r}")
        self._keys = dict(keys)
        self.active_kid = keys[0][0]

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

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        ct = AESGCM(self._keys[self.active_kid]).encrypt(nonce, plaintext, aad)
        return self.active_kid, nonce + ct

    def decrypt(self, kid: str, blob: bytes, aad: bytes) -> bytes:
        key = self._keys.get(kid)
        if key is None:
            raise KeyRingError(f"key {kid!r} is not in the key ring")
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad)
