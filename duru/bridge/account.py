"""An account's crypto record <-> its ``accounts`` row on the server.

The row keeps the salt in its own bytea column and the rest of the KDF parameters
(algorithm and cost) as jsonb, the wrapped master key as bytea and the verifier as text.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from duru.crypto import AccountRecord, KdfParams, WrappedKey
from duru.errors import BridgeError

from .values import uuid_to_remote

ACCOUNT_COLUMNS = ("user_id", "salt", "kdf_params", "wrapped_master_key", "auth_verifier")


def account_row(user_id: str, record: AccountRecord) -> dict[str, Any]:
    """The ``accounts`` row of ``record`` (created_at and last_change_seq take defaults)."""
    kdf = record.kdf_params.to_dict()
    del kdf["salt"]
    return {
        "user_id": uuid_to_remote(user_id),
        "salt": record.salt,
        "kdf_params": Jsonb(kdf),
        "wrapped_master_key": record.wrapped_master_key.to_bytes(),
        "auth_verifier": record.auth_verifier.decode("ascii"),
    }


def account_record(row: Mapping[str, Any]) -> AccountRecord:
    """The crypto record stored in an ``accounts`` row.

    Raises BridgeError when a column is missing, and CryptoError when a value is not valid.
    """
    try:
        kdf = row["kdf_params"]
        kdf = dict(kdf.obj if isinstance(kdf, Jsonb) else kdf)
        kdf["salt"] = base64.b64encode(bytes(row["salt"])).decode("ascii")
        wrapped = WrappedKey.from_bytes(bytes(row["wrapped_master_key"]))
        verifier = str(row["auth_verifier"]).encode("ascii")
    except (KeyError, TypeError, ValueError) as exc:
        raise BridgeError(f"accounts row is incomplete or malformed: {exc!r}") from None
    return AccountRecord(KdfParams.from_dict(kdf), wrapped, verifier)


def account_user_id(row: Mapping[str, Any]) -> str:
    """The canonical user id text of an ``accounts`` row."""
    value = row["user_id"]
    return str(value) if isinstance(value, uuid.UUID) else str(uuid_to_remote(value))
