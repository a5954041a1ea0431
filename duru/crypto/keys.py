"""Field-encryption keys and the key ring that names them by key id.

A key id is an unsigned 32-bit integer written into every envelope, so a ring
holding old and new keys opens data sealed before and after a rotation. Keys are
secret: reprs show key ids only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from duru.errors import UsageError

from .subkeys import FIELD_KEY_PERSON, SUBKEY_BYTES, derive_subkey

FIELD_KEY_BYTES = SUBKEY_BYTES
MAX_KEY_ID = 2**32 - 1


@dataclass(frozen=True, slots=True, eq=False)
class FieldKey:
    """One XChaCha20-Poly1305 key for sealing fields, and the id envelopes name it by."""

    key_id: int
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if type(self.key_id) is not int or not 0 <= self.key_id <= MAX_KEY_ID:
            raise UsageError(f"a key id is an integer in 0..{MAX_KEY_ID}, got {self.key_id!r}")
        if not isinstance(self.secret, bytes) or len(self.secret) != FIELD_KEY_BYTES:
            raise UsageError(f"a field key is {FIELD_KEY_BYTES} bytes")

    @classmethod
    def derive(cls, master_key: bytes, key_id: int) -> FieldKey:
        """The field key of ``master_key`` for ``key_id`` (deterministic, so any device has it)."""
        if type(key_id) is not int or not 0 <= key_id <= MAX_KEY_ID:
            raise UsageError(f"a key id is an integer in 0..{MAX_KEY_ID}, got {key_id!r}")
        salt = key_id.to_bytes(4, "big")
        return cls(key_id, derive_subkey(master_key, person=FIELD_KEY_PERSON, salt=salt))

    @classmethod
    def generate(cls, key_id: int) -> FieldKey:
        """A new random field key."""
        return cls(key_id, os.urandom(FIELD_KEY_BYTES))


class KeyRing:
    """Field keys by key id, and the one new envelopes are sealed with (``current``).

    Immutable: ``with_key`` returns a new ring. Raises ``UsageError`` when empty,
    when two keys share an id, or when ``current`` is not one of the ids.
    """

    __slots__ = ("_keys", "_current")

    def __init__(self, keys: Iterable[FieldKey], *, current: int | None = None) -> None:
        by_id: dict[int, FieldKey] = {}
        for key in keys:
            if key.key_id in by_id:
                raise UsageError(f"key id {key.key_id} appears twice in a key ring")
            by_id[key.key_id] = key
        if not by_id:
            raise UsageError("a key ring needs at least one key")
        current_id = max(by_id) if current is None else current
        if current_id not in by_id:
            raise UsageError(f"current key id {current_id} is not in the key ring")
        self._keys = by_id
        self._current = by_id[current_id]

    @property
    def current(self) -> FieldKey:
        """The key new envelopes are sealed with."""
        return self._current

    @property
    def key_ids(self) -> tuple[int, ...]:
        """Every key id in the ring, ascending."""
        return tuple(sorted(self._keys))

    def get(self, key_id: int) -> FieldKey | None:
        """The key named ``key_id``, or None."""
        return self._keys.get(key_id)

    def with_key(self, key: FieldKey, *, make_current: bool = True) -> KeyRing:
        """A new ring that also holds ``key`` (the current one unless ``make_current=False``)."""
        current = key.key_id if make_current else self._current.key_id
        return KeyRing([*self._keys.values(), key], current=current)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self.key_ids)}, current={self._current.key_id})"
