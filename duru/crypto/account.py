"""An account's keys: create them, unlock them with the passphrase, change the passphrase.

    passphrase + salt --Argon2id--> KEK (device only) + auth key (server keeps a hash)
    random master key (AMK) --wrapped under KEK--> stored on the server
    AMK --BLAKE2b--> field key (key id 1), blind-index key

The server stores an ``AccountRecord`` and sees neither the passphrase, the KEK,
the auth key nor the AMK.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from duru.errors import CryptoError

from .blind_index import BlindIndexKey
from .kdf import KdfParams, derive_keys
from .keys import FieldKey, KeyRing
from .row_mac import row_mac_key
from .verifier import make_auth_verifier, verifier_cost
from .wrap import MASTER_KEY_BYTES, WrappedKey, unwrap_master_key, wrap_master_key

FIRST_KEY_ID = 1


@dataclass(frozen=True, slots=True, eq=False)
class AccountKeys:
    """An unlocked account: what a device needs to seal, open and index fields.

    ``auth_key`` is what the client sends to log in. Secrets are kept out of the repr.
    """

    user_id: str
    field_keys: KeyRing
    blind_index_key: BlindIndexKey
    master_key: bytes = field(repr=False)
    auth_key: bytes = field(repr=False)

    def blind_index(self, value: str, *, entity: str, field: str) -> bytes:
        """``blind_index_key.blind_index(value, entity=..., field=...)``."""
        return self.blind_index_key.blind_index(value, entity=entity, field=field)

    @property
    def row_mac_key(self) -> bytes:
        """The key of the account's row MACs (``duru.crypto.row_mac``)."""
        return row_mac_key(self.master_key)


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """What the server stores for an account: KDF parameters (with the salt), the
    wrapped master key and the verifier of the authentication key."""

    kdf_params: KdfParams
    wrapped_master_key: WrappedKey
    auth_verifier: bytes

    @property
    def salt(self) -> bytes:
        """The account's Argon2id salt."""
        return self.kdf_params.salt

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (bytes as standard base64, the verifier as its ASCII string)."""
        return {
            "kdf": self.kdf_params.to_dict(),
            "wrapped_master_key": base64.b64encode(self.wrapped_master_key.to_bytes()).decode(),
            "auth_verifier": self.auth_verifier.decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccountRecord:
        """Read what ``to_dict`` wrote; raises ``CryptoError`` (or a subclass) when invalid."""
        kdf, wrapped, verifier = (
            data.get(name) for name in ("kdf", "wrapped_master_key", "auth_verifier")
        )
        if not isinstance(kdf, Mapping):
            raise CryptoError("the account record's 'kdf' is missing or not an object")
        try:
            raw = base64.b64decode(wrapped, validate=True) if isinstance(wrapped, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None:
            raise CryptoError(
                "the account record's 'wrapped_master_key' is missing or not base64 text"
            )
        if not isinstance(verifier, str) or not verifier.isascii():
            raise CryptoError("the account record's 'auth_verifier' is missing or not ASCII text")
        return cls(KdfParams.from_dict(kdf), WrappedKey.from_bytes(raw), verifier.encode("ascii"))


def new_account(
    passphrase: str, user_id: str, params: KdfParams | None = None
) -> tuple[AccountKeys, AccountRecord]:
    """Create an account's keys; the unlocked keys and the record for the server.

    ``params`` defaults to ``KdfParams.moderate()`` with a fresh salt; pass one with
    its own salt per user. Costs one Argon2id run plus the verifier's hash.
    """
    params = KdfParams.moderate() if params is None else params
    master_key = os.urandom(MASTER_KEY_BYTES)
    return _seal_account(passphrase, user_id, params, master_key)


def unlock(passphrase: str, record: AccountRecord, user_id: str) -> AccountKeys:
    """Unlock an account with its passphrase (one Argon2id run at the record's cost).

    Raises ``WrongPassphrase`` when the passphrase is wrong, or the record belongs
    to another user or was altered.
    """
    derived = derive_keys(passphrase, record.kdf_params)
    master_key = unwrap_master_key(record.wrapped_master_key, kek=derived.kek, user_id=user_id)
    return _account_keys(user_id, master_key, derived.auth_key)


def keys_from_master(user_id: str, master_key: bytes) -> AccountKeys:
    """The keys of an account whose master key a device kept (no authentication key)."""
    if not isinstance(master_key, bytes) or len(master_key) != MASTER_KEY_BYTES:
        raise CryptoError(f"a master key is {MASTER_KEY_BYTES} bytes")
    return _account_keys(user_id, master_key, b"")


def change_passphrase(
    old: str, new: str, record: AccountRecord, user_id: str, *, params: KdfParams | None = None
) -> AccountRecord:
    """Re-wrap the same master key under a key from ``new``; the record to store.

    Always draws a fresh salt; ``params`` (default: the record's) sets the new cost,
    which is how the cost gets raised. Field data is untouched: its keys derive from
    the master key, which does not change. Raises ``WrongPassphrase`` for a wrong
    ``old``. The server must replace the verifier too, or logins with ``new`` fail.
    """
    keys = unlock(old, record, user_id)
    new_params = (record.kdf_params if params is None else params).with_fresh_salt()
    return _seal_account(new, user_id, new_params, keys.master_key)[1]


def _seal_account(
    passphrase: str, user_id: str, params: KdfParams, master_key: bytes
) -> tuple[AccountKeys, AccountRecord]:
    derived = derive_keys(passphrase, params)
    wrapped = wrap_master_key(master_key, kek=derived.kek, user_id=user_id)
    opslimit, memlimit = verifier_cost(params)
    verifier = make_auth_verifier(derived.auth_key, opslimit=opslimit, memlimit=memlimit)
    keys = _account_keys(user_id, master_key, derived.auth_key)
    return keys, AccountRecord(params, wrapped, verifier)


def _account_keys(user_id: str, master_key: bytes, auth_key: bytes) -> AccountKeys:
    return AccountKeys(
        user_id=user_id,
        field_keys=KeyRing([FieldKey.derive(master_key, FIRST_KEY_ID)]),
        blind_index_key=BlindIndexKey.derive(master_key),
        master_key=master_key,
        auth_key=auth_key,
    )
