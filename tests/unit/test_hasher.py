"""Hashes stored instead of secrets: passwords, PINs, backup codes, tokens, MACs."""

from __future__ import annotations

import pytest

from stepup.domain.hashing import Hasher

KEY = b"k" * 32
SALT = b"s" * 16


@pytest.fixture(scope="module")
def hasher() -> Hasher:
    return Hasher(KEY, memory_kib=8192, time_cost=1)


def test_passwords(hasher: Hasher) -> None:
    stored = hasher.hash_password("violet-harbour-7-lanterns")
    assert "violet" not in stored and stored.startswith("$argon2id$")
    assert hasher.verify_password(stored, "violet-harbour-7-lanterns")
    assert not hasher.verify_password(stored, "violet-harbour-7-lantern")
    assert hasher.hash_password("same") != hasher.hash_password("same")  # salted


def test_verify_password_without_a_stored_hash_is_false(hasher: Hasher) -> None:
    assert hasher.verify_password(None, "") is False
    assert hasher.verify_password(None, "anything at all") is False
    assert hasher.verify_password("not a hash", "x") is False


def test_backup_code_hash_is_deterministic_per_salt(hasher: Hasher) -> None:
    a = hasher.backup_code_hash("abcde12345", SALT)
    assert len(a) == 32
    assert a == hasher.backup_code_hash("abcde12345", SALT)
    assert a != hasher.backup_code_hash("abcde12346", SALT)
    assert a != hasher.backup_code_hash("abcde12345", b"t" * 16)


def test_backup_code_hash_depends_on_the_server_key(hasher: Hasher) -> None:
    other = Hasher(b"o" * 32, memory_kib=8192, time_cost=1)
    assert hasher.backup_code_hash("abcde12345", SALT) != other.backup_code_hash("abcde12345",
                                                                                SALT)


def test_token_hash_and_mac(hasher: Hasher) -> None:
    assert hasher.token_hash("t") == hasher.token_hash("t") != hasher.token_hash("u")
    mac = hasher.mac("csrf", "session1")
    assert hasher.mac_ok(mac, "csrf", "session1")
    assert not hasher.mac_ok(mac, "csrf", "session2")
    assert not hasher.mac_ok(mac[:-1], "csrf", "session1")
    assert not hasher.mac_ok("", "csrf", "session1")
    # Parts are separated, so ("ab", "c") and ("a", "bc") differ.
    assert hasher.mac("ab", "c") != hasher.mac("a", "bc")


def test_mac_ok_with_non_ascii_input_is_false_not_an_error(hasher: Hasher) -> None:
    assert not hasher.mac_ok("é" * 64, "csrf", "session1")
