"""End-to-end encryption for duru: key derivation, the key hierarchy, sealed envelopes.

Start with ``new_account`` / ``unlock`` for an ``AccountKeys``; seal and open fields
with ``seal`` / ``open_sealed`` and its ``field_keys``; compute blind indexes with
``AccountKeys.blind_index``. Only ``duru.errors`` is imported from the rest of duru.
"""

from .account import (
    AccountKeys,
    AccountRecord,
    change_passphrase,
    keys_from_master,
    new_account,
    unlock,
)
from .blind_index import BLIND_INDEX_BYTES, BlindIndexKey
from .envelope import (
    ENVELOPE_VERSION,
    MIN_ENVELOPE_BYTES,
    binding_tag,
    open_sealed,
    seal,
)
from .kdf import DerivedKeys, KdfParams, derive_keys
from .keys import FieldKey, KeyRing
from .verifier import make_auth_verifier, verifier_cost, verify_auth_key
from .wrap import WrappedKey, unwrap_master_key, wrap_master_key

__all__ = [
    "AccountKeys",
    "AccountRecord",
    "BLIND_INDEX_BYTES",
    "BlindIndexKey",
    "DerivedKeys",
    "ENVELOPE_VERSION",
    "FieldKey",
    "KdfParams",
    "KeyRing",
    "MIN_ENVELOPE_BYTES",
    "WrappedKey",
    "binding_tag",
    "change_passphrase",
    "derive_keys",
    "keys_from_master",
    "make_auth_verifier",
    "new_account",
    "open_sealed",
    "seal",
    "unlock",
    "unwrap_master_key",
    "verifier_cost",
    "verify_auth_key",
    "wrap_master_key",
]
