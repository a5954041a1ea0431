"""The bridge: device rows (plaintext, SQLite forms) <-> server rows (sealed, PostgreSQL forms).

``to_remote(entity, local_row, keys, user_id)`` and ``to_local(entity, remote_row, keys)``
convert one row of any entity; ``codec_for(entity)`` returns the precomputed
``EntityCodec`` they use, for loops over many rows. Nothing is lost either way: a value
that cannot cross exactly raises BridgeError (UnknownEnumValue for an enum) instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from duru.crypto import AccountKeys
from duru.model import BY_NAME, Entity, entity

from .account import ACCOUNT_COLUMNS, account_record, account_row, account_user_id
from .codec import EntityCodec, Row
from .values import MAX_EPOCH_MS, MIN_EPOCH_MS, datetime_to_ms, ms_to_datetime


def codec_for(ent: Entity | str) -> EntityCodec:
    """The codec of an entity (by object, name or table), built once per model entity."""
    if isinstance(ent, str):
        return _codec(ent)
    return _codec(ent.name) if BY_NAME.get(ent.name) is ent else EntityCodec(ent)


@cache
def _codec(name: str) -> EntityCodec:
    return EntityCodec(entity(name))


def to_remote(
    ent: Entity | str, local_row: Mapping[str, Any], keys: AccountKeys, user_id: str
) -> Row:
    """The server row of a device row; see ``EntityCodec.to_remote``."""
    return codec_for(ent).to_remote(local_row, keys, user_id)


def to_local(ent: Entity | str, remote_row: Mapping[str, Any], keys: AccountKeys) -> Row:
    """The device row of a server row; see ``EntityCodec.to_local``."""
    return codec_for(ent).to_local(remote_row, keys)


__all__ = [
    "ACCOUNT_COLUMNS",
    "EntityCodec",
    "MAX_EPOCH_MS",
    "MIN_EPOCH_MS",
    "Row",
    "account_record",
    "account_row",
    "account_user_id",
    "codec_for",
    "datetime_to_ms",
    "ms_to_datetime",
    "to_local",
    "to_remote",
]
