"""Blind indexes: keyed hashes that let the server compare values it cannot read.

    blind_index = BLAKE2b-256(key = blind-index key, person = b"duru/blind/v1",
                              message = frame(entity, field, value))

The key is a subkey of the account master key, so equal values give equal indexes
within one account and unrelated ones across accounts. The value is hashed exactly
as given: nothing is normalised (no case folding, no Unicode normalisation, no
trimming), so ``"Work"``, ``"work"`` and ``"work "`` index differently. A caller that
wants tags unique regardless of case must canonicalise before calling.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from duru.errors import UsageError

from .framing import frame
from .subkeys import BLIND_INDEX_PERSON, SUBKEY_BYTES, derive_subkey

BLIND_INDEX_BYTES = 32


@dataclass(frozen=True, slots=True, eq=False)
class BlindIndexKey:
    """The account's blind-index key; secret, so kept out of the repr."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != SUBKEY_BYTES:
            raise UsageError(f"a blind-index key is {SUBKEY_BYTES} bytes")

    @classmethod
    def derive(cls, master_key: bytes) -> BlindIndexKey:
        """The blind-index key of ``master_key``."""
        return cls(derive_subkey(master_key, person=BLIND_INDEX_PERSON))

    def blind_index(self, value: str, *, entity: str, field: str) -> bytes:
        """The 32-byte blind index of ``value`` in ``entity.field`` (e.g. note_tag.tag).

        ``value`` is used exactly as given (see the module docstring).
        """
        # hashlib's BLAKE2b is the same function as libsodium's (a test checks it),
        # without the cffi round trip per call.
        return hashlib.blake2b(
            frame(entity, field, value),
            digest_size=BLIND_INDEX_BYTES,
            key=self.secret,
            person=BLIND_INDEX_PERSON,
        ).digest()
