"""Method destinations at rest: phones and e-mail addresses sealed with the key ring.

A destination is stored as AES-GCM ciphertext with the id of the key that sealed it, the
associated data binding it to its table and row (``dest:<table>:<row id>``), so a
ciphertext copied to another row does not open. Beside it, where something must be
compared without opening it (the send caps, a code bound to the destination it went
to), a keyed hash: HMAC-SHA256 under a key derived from the server's HMAC secret for
this use alone, so it never equals any other HMAC StepUp computes.

``SEALED`` lists every (table, key id column, ciphertext column, associated data
prefix) of a destination, for the commands that re-seal data under a new key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from cryptography.exceptions import InvalidTag

from stepup.domain.destinations import mask
from stepup.domain.keyring import KeyRing, KeyRingError

# The label the hash key is derived under (never reuse it for another key).
HASH_KEY_LABEL = "destination-hash"

METHODS = "methods"
CHALLENGES = "challenges"
NOTICES = "notification_queue"
# (table, key id column, ciphertext column, AAD prefix): the AAD is the prefix + row id.
SEALED: tuple[tuple[str, str, str, bytes], ...] = tuple(
    (table, "destination_kid", "destination_ct", f"dest:{table}:".encode())
    for table in (METHODS, CHALLENGES, NOTICES))


def aad(table: str, row_id: str) -> bytes:
    return f"dest:{table}:{row_id}".encode()


class SealedRow(Protocol):
    """A row that holds a sealed destination (methods, challenges, notification_queue)."""

    @property
    def __tablename__(self) -> str: ...

    id: str
    destination_kid: str | None
    destination_ct: bytes | None


class DestinationSeal:
    """Seal, open and hash destinations; one per process, built from its keys."""

    def __init__(self, keyring: KeyRing, hash_key: bytes) -> None:
        """``hash_key``: ``Hasher.derive_key(HASH_KEY_LABEL)``, from STEPUP_SECRET_KEY."""
        if len(hash_key) < 32:
            raise ValueError("the destination hash key must be at least 32 bytes")
        self._keyring = keyring
        self._hash_key = hash_key

    @property
    def keyring(self) -> KeyRing:
        """The key ring it seals with: a migration that moves another sealed value (a
        staff member's authenticator seed, revision 0012) re-seals it with these keys."""
        return self._keyring

    def hash(self, destination: str) -> str:
        """The keyed hash of a destination, case-insensitive (as addresses are)."""
        return hmac.new(self._hash_key, destination.strip().lower().encode(),
                        hashlib.sha256).hexdigest()

    @staticmethod
    def same(a: str | None, b: str | None) -> bool:
        """Two keyed hashes name the same destination (constant time)."""
        if a is None or b is None:
            return False
        return hmac.compare_digest(a.encode(), b.encode())

    def seal(self, table: str, row_id: str, destination: str) -> tuple[str, bytes]:
        return self._keyring.encrypt(destination.encode(), aad(table, row_id))

    def open(self, table: str, row_id: str, kid: str, ct: bytes) -> str:
        try:
            return self._keyring.decrypt(kid, ct, aad(table, row_id)).decode()
        except InvalidTag as exc:  # another row's ciphertext, or tampered with
            raise KeyRingError(f"the destination of {table} {row_id} does not open") from exc

    # --- on rows -------------------------------------------------------------------------

    def put(self, row: SealedRow, destination: str) -> None:
        """Seal ``destination`` into ``row`` (its id must be set)."""
        row.destination_kid, row.destination_ct = self.seal(row.__tablename__, row.id,
                                                            destination)

    def read(self, row: SealedRow) -> str | None:
        """The row's destination, or None when it has none (or it was dropped)."""
        if row.destination_kid is None or row.destination_ct is None:
            return None
        return self.open(row.__tablename__, row.id, row.destination_kid, row.destination_ct)

    def masked(self, channel: str, row: SealedRow) -> str | None:
        """The row's destination as pages and answers show it (``+7 *** ***-45-67``)."""
        destination = self.read(row)
        return mask(channel, destination) if destination else None

    @staticmethod
    def drop(row: SealedRow) -> None:
        """Forget the row's destination (it was sent): only the hash, if any, stays."""
        row.destination_kid = row.destination_ct = None
