"""The AES-GCM key ring that protects TOTP seeds at rest."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from stepup.domain.keyring import KeyRing, KeyRingError

AAD = b"totp:user1:method1"


def spec(kid: str, byte: int) -> str:
    return f"{kid}:{base64.b64encode(bytes([byte]) * 32).decode()}"


def test_round_trip() -> None:
    ring = KeyRing.parse(KeyRing.generate_spec("k1"))
    kid, blob = ring.encrypt(b"JBSWY3DPEHPK3PXP", AAD)
    assert kid == "k1"
    assert b"JBSWY3DPEHPK3PXP" not in blob
    assert ring.decrypt(kid, blob, AAD) == b"JBSWY3DPEHPK3PXP"


def test_each_encryption_uses_a_fresh_nonce() -> None:
    ring = KeyRing.parse(spec("k1", 1))
    assert ring.encrypt(b"same", AAD)[1] != ring.encrypt(b"same", AAD)[1]


def test_rotation_old_kid_still_decrypts_new_kid_encrypts() -> None:
    old = KeyRing.parse(spec("k1", 1))
    kid, blob = old.encrypt(b"seed", AAD)
    rotated = KeyRing.parse(f"{spec('k2', 2)},{spec('k1', 1)}")
    assert rotated.active_kid == "k2"
    assert rotated.decrypt(kid, blob, AAD) == b"seed"
    new_kid, new_blob = rotated.encrypt(b"seed", AAD)
    assert new_kid == "k2"
    with pytest.raises(KeyRingError):
        old.decrypt(new_kid, new_blob, AAD)  # the old ring does not know k2


def test_wrong_aad_or_tampering_fails() -> None:
    ring = KeyRing.parse(spec("k1", 1))
    kid, blob = ring.encrypt(b"seed", AAD)
    with pytest.raises(InvalidTag):
        ring.decrypt(kid, blob, b"totp:user2:method1")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(InvalidTag):
        ring.decrypt(kid, tampered, AAD)


def test_a_key_with_the_same_id_but_other_bytes_fails() -> None:
    kid, blob = KeyRing.parse(spec("k1", 1)).encrypt(b"seed", AAD)
    with pytest.raises(InvalidTag):
        KeyRing.parse(spec("k1", 9)).decrypt(kid, blob, AAD)


@pytest.mark.parametrize("bad", [
    "",                                   # empty ring
    " , ",                                # only separators
    "k1",                                 # no key
    "k1:not base64!",                     # bad base64
    f"k1:{base64.b64encode(b'x' * 16).decode()}",  # 128-bit key
    f":{base64.b64encode(b'x' * 32).decode()}",    # no key id
])
def test_parse_errors(bad: str) -> None:
    with pytest.raises(KeyRingError):
        KeyRing.parse(bad)


def test_parse_ignores_spaces_and_trailing_commas() -> None:
    ring = KeyRing.parse(f" {spec('a', 3)} , {spec('b', 4)} ,")
    assert ring.active_kid == "a"
    kid, blob = KeyRing.parse(spec("b", 4)).encrypt(b"x", AAD)
    assert ring.decrypt(kid, blob, AAD) == b"x"


def test_duplicate_and_overlong_key_ids_are_refused() -> None:
    with pytest.raises(KeyRingError, match="twice"):
        KeyRing.parse(f"{spec('a', 1)},{spec('a', 2)}")
    with pytest.raises(KeyRingError, match="bad key id"):
        KeyRing.parse(spec("k" * 41, 1))  # stored in a column of 40 characters


def test_spec_add_first_and_without() -> None:
    ring = KeyRing.parse(f"{spec('b', 2)},{spec('a', 1)}")
    assert KeyRing.parse(ring.spec()).kids == ("b", "a")
    kid, blob = ring.encrypt(b"seed", AAD)
    ring.add_first("c", bytes([3]) * 32)
    assert ring.kids == ("c", "b", "a") and ring.encrypt(b"x", AAD)[0] == "c"
    assert KeyRing.parse(ring.spec()).decrypt(kid, blob, AAD) == b"seed"
    assert ring.without("a").kids == ("c", "b")
    with pytest.raises(KeyRingError, match="active"):
        ring.without("c")
    with pytest.raises(KeyRingError, match="taken"):
        ring.add_first("a", bytes(32))
    with pytest.raises(KeyRingError, match="32 bytes"):
        ring.add_first("d", bytes(16))


def test_a_retired_key_decrypts_nothing() -> None:
    ring = KeyRing.parse(f"{spec('b', 2)},{spec('a', 1)}")
    kid, blob = KeyRing.parse(spec("a", 1)).encrypt(b"seed", AAD)
    assert ring.retire(["a", "gone"]) == ["a"]  # only "a" was still in the ring
    assert ring.kids == ("b",) and ring.retired == {"a", "gone"}
    with pytest.raises(KeyRingError, match="'a' was retired"):
        ring.decrypt(kid, blob, AAD)
    with pytest.raises(KeyRingError, match="active key 'b' was retired"):
        ring.retire(["b"])
    assert ring.encrypt(b"x", AAD)[0] == "b"
