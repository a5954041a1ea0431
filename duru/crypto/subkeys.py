"""Per-purpose subkeys of the account master key (BLAKE2b keyed hashing).

    subkey = BLAKE2b-256(message = b"", key = master key, person = purpose, salt = context)

``person`` names the purpose (at most 16 bytes) and ``salt`` a context within it
(at most 16 bytes; BLAKE2b pads both with zeros), so no two purposes can share a key.
"""

from __future__ import annotations

import nacl.encoding
import nacl.hash

from duru.errors import UsageError

SUBKEY_BYTES = 32
FIELD_KEY_PERSON = b"duru/field/v1"
BLIND_INDEX_PERSON = b"duru/blind/v1"


def derive_subkey(master_key: bytes, *, person: bytes, salt: bytes = b"") -> bytes:
    """A 32-byte subkey of ``master_key`` for the purpose ``person`` and context ``salt``."""
    if len(master_key) != SUBKEY_BYTES:
        raise UsageError(f"a master key is {SUBKEY_BYTES} bytes")
    return bytes(
        nacl.hash.blake2b(
            b"",
            digest_size=SUBKEY_BYTES,
            key=master_key,
            salt=salt,
            person=person,
            encoder=nacl.encoding.RawEncoder,
        )
    )
