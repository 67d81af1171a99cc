"""The checksums of payment destinations, written out from their specifications.

Each function answers whether a string is a well-formed value of its kind; none of them
looks anything up. Bech32 and bech32m segwit addresses (BIP-173, BIP-350), Base58Check
(Bitcoin's legacy addresses and those copied from them: Litecoin, Dogecoin, Tron ...),
EIP-55 mixed-case Ethereum addresses (Keccak-256, the original padding, written here as
the standard library has only SHA-3) and IBAN check digits (ISO 13616, mod 97-10 of
ISO 7064). Small enough to read against the specs, so no dependency is taken for them.
"""

from __future__ import annotations

import hashlib
from enum import Enum

# --- bech32 / bech32m (BIP-173, BIP-350) ---------------------------------------------

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32(Enum):
    BECH32 = 1
    BECH32M = 0x2BC830A3


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= _BECH32_GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_decode(text: str) -> tuple[str, list[int], Bech32] | None:
    """(hrp, data without checksum, encoding) of a valid bech32 or bech32m string."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text) or len(text) > 90:
        return None
    if text.lower() != text and text.upper() != text:
        return None  # mixed case
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        return None
    if any(c not in BECH32_CHARSET for c in text[pos + 1:]):
        return None
    hrp = text[:pos]
    data = [BECH32_CHARSET.find(c) for c in text[pos + 1:]]
    const = _polymod(_hrp_expand(hrp) + data)
    for spec in Bech32:
        if const == spec.value:
            return hrp, data[:-6], spec
    return None


def _convert_bits(data: list[int], from_bits: int, to_bits: int) -> list[int] | None:
    """Regroup 5-bit groups as bytes; padding must be zero and under 5 bits."""
    acc = bits = 0
    out: list[int] = []
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & ((1 << to_bits) - 1))
    if bits >= from_bits or (acc << (to_bits - bits)) & ((1 << to_bits) - 1):
        return None
    return out


def segwit_ok(address: str, hrp: str) -> bool:
    """A valid segwit address for ``hrp`` (``bc``, ``tb``, ``ltc`` ...): version 0 with
    bech32 and a 20- or 32-byte program, versions 1-16 with bech32m and 2-40 bytes."""
    decoded = bech32_decode(address)
    if decoded is None or decoded[0] != hrp or not decoded[1]:
        return False
    _, data, spec = decoded
    version, program = data[0], _convert_bits(data[1:], 5, 8)
    if program is None or version > 16 or not 2 <= len(program) <= 40:
        return False
    if version == 0:
        return spec is Bech32.BECH32 and len(program) in (20, 32)
    return spec is Bech32.BECH32M


# --- Base58Check ------------------------------------------------------------------------

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58_decode(text: str) -> bytes | None:
    number = 0
    for c in text:
        digit = BASE58_ALPHABET.find(c)
        if digit < 0:
            return None
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def base58check_ok(text: str) -> bool:
    """Four bytes of double SHA-256 at the end agree with what they follow."""
    raw = base58_decode(text)
    if raw is None or len(raw) < 5:
        return False
    payload, check = raw[:-4], raw[-4:]
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == check


# --- Keccak-256 and EIP-55 ------------------------------------------------------------

_MASK = (1 << 64) - 1


def _round_constants() -> list[int]:
    def bit(t: int) -> int:  # the LFSR of FIPS 202 §3.2.5
        r = 1
        for _ in range(t % 255):
            r <<= 1
            if r & 0x100:
                r ^= 0x171
        return r & 1

    return [sum(bit(j + 7 * i) << ((1 << j) - 1) for j in range(7)) for i in range(24)]


def _rotations() -> list[int]:
    offsets = [0] * 25
    x, y = 1, 0
    for t in range(24):
        offsets[x + 5 * y] = (t + 1) * (t + 2) // 2 % 64
        x, y = y, (2 * x + 3 * y) % 5
    return offsets


_RC = _round_constants()
_ROT = _rotations()


def _rotl(lane: int, n: int) -> int:
    return ((lane << n) | (lane >> (64 - n))) & _MASK if n else lane


def _keccak_f(a: list[int]) -> list[int]:
    for rc in _RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rotl(c[(x + 1) % 5], 1) for x in range(5)]
        a = [a[i] ^ d[i % 5] for i in range(25)]
        b = [0] * 25
        for x in range(5):
            for y in range(5):
                b[y + 5 * ((2 * x + 3 * y) % 5)] = _rotl(a[x + 5 * y], _ROT[x + 5 * y])
        a = [b[i] ^ (~b[(i + 1) % 5 + i - i % 5] & b[(i + 2) % 5 + i - i % 5]) & _MASK
             for i in range(25)]
        a[0] ^= rc
    return a


def keccak_256(data: bytes, *, pad: int = 0x01) -> bytes:
    """Keccak-256 as Ethereum uses it (``pad=0x01``); ``pad=0x06`` makes it SHA3-256."""
    rate = 136
    padded = bytearray(data) + bytes([pad]) + bytes(-(len(data) + 1) % rate)
    padded[-1] |= 0x80
    state = [0] * 25
    for start in range(0, len(padded), rate):
        block = padded[start:start + rate]
        for i in range(rate // 8):
            state[i] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        state = _keccak_f(state)
    return b"".join(lane.to_bytes(8, "little") for lane in state[:4])


def eip55(address: str) -> str:
    """The EIP-55 checksummed form of a ``0x`` + 40 hex digits address."""
    hexpart = address[2:].lower()
    digest = keccak_256(hexpart.encode()).hex()
    return "0x" + "".join(c.upper() if int(h, 16) >= 8 else c for c, h in zip(hexpart, digest,
                                                                               strict=False))


def eip55_ok(address: str) -> bool:
    """All lower or all upper case carries no checksum (accepted); mixed case must match."""
    hexpart = address[2:]
    if hexpart == hexpart.lower() or hexpart == hexpart.upper():
        return True
    return eip55(address) == address


# --- IBAN (ISO 13616) -------------------------------------------------------------------


def iban_ok(iban: str) -> bool:
    """Check digits of an IBAN in electronic form (no spaces): mod 97 of the number made
    by moving the first four characters to the end, letters as 10-35, is 1."""
    text = iban.upper()
    if not text.isascii() or not text.isalnum() or len(text) < 5:
        return False
    moved = text[4:] + text[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
