"""Destination checksums against the vectors of their specifications, and which check a
withdrawal's destination gets from its form."""

from __future__ import annotations

import hashlib

import pytest

from stepup.domain import checksums
from stepup.domain.errors import ValidationFailed
from stepup.domain.operations import WITHDRAWAL, check_destination, check_details

# --- bech32 / bech32m: BIP-173 and BIP-350 test vectors ---------------------------------

VALID_BECH32 = ["A12UEL5L", "a12uel5l",
                "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharac"
                "tersbio1tt5tgs",
                "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
                "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
                "qqqqqqqc8247j",
                "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "?1ezyfcl"]
VALID_BECH32M = ["A1LQFN3A", "a1lqfn3a",
                 "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioand"
                 "number11sg7hg6",
                 "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
                 "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"
                 "llllllllludsr8",
                 "split1checkupstagehandshakeupstreamerranterredcaperredlc445v", "?1v759aa"]
INVALID_BECH32 = [" 1nwldj5", "\x7f1axkwrx", "\x801eym55h",
                  "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedchar"
                  "actersbio1569pvx",
                  "pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "de1lg7wt\xff",
                  "A1G7SGD8", "10a06t8", "1qzzfhee"]

VALID_SEGWIT = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "tb"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", "bc"),
    ("BC1SW50QGDZ25J", "bc"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "bc"),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy", "tb"),
    ("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c", "tb"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "bc"),
]
INVALID_SEGWIT = [
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",  # invalid HRP
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",  # bech32, not m
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",  # bech32m for version 0
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",  # char in checksum
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",  # witness version
    "bc1pw5dgrnzv",  # program of 1 byte
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",  # 41
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # version 0 of 16 bytes
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",  # mixed case
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",  # padding > 4 bits
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",  # non-zero padding
    "bc1gmk9yu",  # empty data
]


@pytest.mark.parametrize("text", VALID_BECH32 + VALID_BECH32M)
def test_valid_bech32_strings_and_one_flipped_character(text: str) -> None:
    decoded = checksums.bech32_decode(text)
    assert decoded is not None
    spec = checksums.Bech32.BECH32 if text in VALID_BECH32 else checksums.Bech32.BECH32M
    assert decoded[2] is spec
    pos = text.rfind("1")
    flipped = text[:pos + 1] + chr(ord(text[pos + 1]) ^ 1) + text[pos + 2:]
    assert checksums.bech32_decode(flipped) is None


@pytest.mark.parametrize("text", INVALID_BECH32)
def test_invalid_bech32_strings(text: str) -> None:
    decoded = checksums.bech32_decode(text)
    assert decoded is None or decoded[2] is not checksums.Bech32.BECH32


@pytest.mark.parametrize(("address", "hrp"), VALID_SEGWIT)
def test_valid_segwit_addresses(address: str, hrp: str) -> None:
    assert checksums.segwit_ok(address, hrp)


@pytest.mark.parametrize("address", INVALID_SEGWIT)
def test_invalid_segwit_addresses(address: str) -> None:
    assert not checksums.segwit_ok(address, "bc") and not checksums.segwit_ok(address, "tb")


# --- Base58Check --------------------------------------------------------------------------

def _encode58(raw: bytes) -> str:
    number, out = int.from_bytes(raw, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = checksums.BASE58_ALPHABET[digit] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def _with_check(payload: bytes) -> str:
    return _encode58(payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4])


@pytest.mark.parametrize("address", [
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",  # the genesis block's
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
])
def test_base58check_bitcoin_addresses(address: str) -> None:
    assert checksums.base58check_ok(address)
    last = address[-1]
    assert not checksums.base58check_ok(address[:-1] + ("2" if last != "2" else "3"))


@pytest.mark.parametrize(("version", "first"), [(0x30, "L"), (0x1E, "D"), (0x41, "T")])
def test_base58check_of_other_coins(version: int, first: str) -> None:
    address = _with_check(bytes([version]) + bytes(range(20)))
    assert address[0] == first and checksums.base58check_ok(address)
    assert not checksums.base58check_ok(address.replace(address[5], "z" if address[5] != "z"
                                                        else "y", 1))


def test_base58_refuses_characters_outside_its_alphabet() -> None:
    assert not checksums.base58check_ok("1A1zP1eP5QGefi2DMPTfTL5SLmv7Div0Na")


# --- Keccak-256 and EIP-55 ------------------------------------------------------------

def test_keccak_256_of_nothing() -> None:
    assert checksums.keccak_256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


@pytest.mark.parametrize("size", [0, 3, 135, 136, 137, 300])
def test_the_permutation_agrees_with_sha3(size: int) -> None:
    # SHA3-256 is the same sponge with another padding byte: the standard library checks it.
    data = bytes(range(256))[:size] * 2
    assert checksums.keccak_256(data, pad=0x06) == hashlib.sha3_256(data).digest()


EIP55_MIXED = ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
               "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
               "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
               "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"]
EIP55_ONE_CASE = ["0x52908400098527886E0F7030069857D2E4169EE7",
                  "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
                  "0xde709f2102306220921060314715629080e2fb77",
                  "0x27b1fdb04752bbc536007a920d24acb045561c26"]


@pytest.mark.parametrize("address", EIP55_MIXED)
def test_eip55_examples(address: str) -> None:
    assert checksums.eip55(address.lower()) == address
    assert checksums.eip55_ok(address)
    last = max(i for i, c in enumerate(address) if c.isalpha() and i > 1)
    assert not checksums.eip55_ok(address[:last] + address[last].swapcase()
                                  + address[last + 1:])


@pytest.mark.parametrize("address", EIP55_ONE_CASE)
def test_eip55_one_case_is_unchecked(address: str) -> None:
    assert checksums.eip55_ok(address)


# --- IBAN -------------------------------------------------------------------------------

@pytest.mark.parametrize("iban", ["DE89370400440532013000", "GB82WEST12345698765432",
                                  "FR1420041010050500013M02606", "NL91ABNA0417164300",
                                  "CH9300762011623852957", "BE68539007547034"])
def test_real_ibans(iban: str) -> None:
    assert checksums.iban_ok(iban)
    assert not checksums.iban_ok(iban[:-1] + str((int(iban[-1], 36) + 1) % 10))
    i = next(i for i in range(4, len(iban) - 1) if iban[i] != iban[i + 1])
    assert not checksums.iban_ok(iban[:i] + iban[i + 1] + iban[i] + iban[i + 2:])  # swapped


# --- which check a destination gets ---------------------------------------------------

@pytest.mark.parametrize(("destination", "currency"), [
    ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "BTC"),
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "BTC"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "BTC"),
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "ETH"),
    ("0xde709f2102306220921060314715629080e2fb77", "USDT"),
    ("IBAN DE89 3704 0044 0532 0130 00", "EUR"), ("DE89370400440532013000", "EUR"),
    # Forms it does not know, as before: names, account numbers, references.
    ("Иван Петров, счёт 40817 810", "RUB"), ("acct-1", "USD"), ("DE89-1", "EUR"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "EUR"),  # Base58Check only for its coins
    ("EQD4FPq-PRDieyQKkizFTRtSDyucUIqrj0v_zXJmqaDp6_0t", "TON"),
])
def test_accepted_destinations(destination: str, currency: str) -> None:
    check_destination(destination, currency)


@pytest.mark.parametrize(("destination", "currency", "reason"), [
    ("bc1q\u0430r0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "BTC", "not_ascii"),  # Cyrillic а
    ("IBAN DE89\u00a03704 0044 0532 0130 00", "EUR", "not_ascii"),  # non-breaking space
    ("\uff10x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "ETH", "not_ascii"),  # fullwidth 0
    ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdd", "BTC", "checksum"),
    ("bc1qar0srrr7 xfkvy5l643lydnw9re59gtzzwf5mdq", "BTC", "spaces"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "BTC", "checksum"),
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "ETH", "checksum"),
    ("DE89 3704 0044 0532 0130 01", "EUR", "checksum"),
])
def test_refused_destinations(destination: str, currency: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_destination(destination, currency)
    assert caught.value.field == "details.destination"
    assert caught.value.extra["reason"] == reason
    assert caught.value.detail


def test_withdrawal_details_are_checked() -> None:
    with pytest.raises(ValidationFailed):
        check_details(WITHDRAWAL, {"amount": "1", "currency": "BTC",
                                   "destination": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdd"})
