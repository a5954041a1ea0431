"""Device rows straight to binary COPY rows: ``EntityCodec.to_remote`` without the detours.

An upload sends every row of a device file; through ``to_remote`` each row becomes a dict,
its uuids ``uuid.UUID`` objects and its timestamps ``datetime`` objects, which psycopg then
turns into bytes again. ``CopyRows`` goes from the device tuple to the bytes PostgreSQL's
binary COPY reads, sealing with a ``place_sealer``, for the same server row:

    rows = CopyRows.build(NOTE, keys, user_id)   # None: the entity has a kind it skips
    data = rows.encode(batch, first_seq)         # None: a row needs the general path

``encode`` covers the common exact forms (an ``int`` that is an ``int``, a canonical uuid
``str``, ...). Any row it does not cover goes through ``to_remote``: when that raises (a
value that cannot cross), ``encode`` raises the same error; when it does not, ``encode``
returns None and the caller formats the chunk from ``to_remote`` rows. So both paths
accept and refuse the same rows; the tests check they write the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from duru.crypto import AccountKeys
from duru.crypto.envelope import place_sealer
from duru.crypto.row_mac import make_row_mac, row_prefix
from duru.errors import UsageError
from duru.model import PROPS_COLUMN, Entity, Field, Kind
from duru.remote.layout import CHANGE_SEQ, ROW_MAC, Role, server_columns

from .codec import EntityCodec, _dumps, _user_text, _user_uuid
from .copy_fields import INT8, LENGTH, NULL, UUID_TEXT, NotInForm, plain_field
from .values import check_local

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

# One column of one row: the row's values (model field order) and its id -> the column's
# bytes with their length. Raises anything for a value it does not cover.
Step = Callable[[Sequence[Any], str], bytes]


class CopyRows:
    """One entity's rows of one user as binary COPY data of ``codec.columns`` + change_seq."""

    def __init__(
        self, codec: EntityCodec, keys: AccountKeys, user: str, steps: list[Step], key_index: int
    ) -> None:
        self.codec = codec
        self._keys = keys
        self._user = user
        self._steps = steps
        self._key_index = key_index
        # row_mac (the last column before change_seq) hashes the covered columns' bytes.
        names = [c for c in codec.columns if c != ROW_MAC]
        self._mac_at = [names.index(c) for c in codec.mac_columns]
        names_here = codec.entity.field_names
        self._version_at = names_here.index("version") if "version" in names_here else None
        self._mac_key = keys.row_mac_key
        self._field_count = struct.pack(">h", len(steps) + 2)

    @classmethod
    def build(cls, e: Entity, keys: AccountKeys, user_id: str) -> CopyRows | None:
        """The writer of ``e``'s rows for ``user_id``; None when ``e`` has a kind it skips.

        Raises what ``to_remote`` raises for a user id or keys that do not fit.
        """
        from . import codec_for  # the package caches one codec per entity

        codec = codec_for(e)
        user = _user_text(user_id, keys)
        index = {name: i for i, name in enumerate(e.field_names)}
        try:
            steps = _steps(codec, e, keys, user, index)
        except NotInForm:
            return None
        return cls(codec, keys, user, steps, index[e.key])

    def encode(self, rows: Sequence[Sequence[Any]], first_seq: int) -> bytes | None:
        """One complete COPY stream of ``rows``, the i-th with change_seq ``first_seq + i``.

        None when some row needs the general path (see the module docstring); raises
        BridgeError / UsageError exactly as ``to_remote`` does for a row that cannot cross.
        """
        parts = [SIGNATURE]
        append, steps, key, count = parts.append, self._steps, self._key_index, self._field_count
        mac_at, version_at, mac_key = self._mac_at, self._version_at, self._mac_key
        name, user, covered = self.codec.entity.name, self._user, self.codec.mac_columns
        cleared = self.codec.mac_cleared
        row: Sequence[Any] = ()
        try:
            for seq, row in enumerate(rows, first_seq):
                row_id = row[key]
                if type(row_id) is not str or UUID_TEXT(row_id) is None:
                    raise NotInForm
                base = 0 if version_at is None else row[version_at]
                if type(base) is not int:
                    raise NotInForm
                append(count)
                fields = [step(row, row_id) for step in steps]
                parts += fields
                mac = make_row_mac(
                    mac_key,
                    row_prefix(name, user, row_id, covered),
                    base,
                    [fields[i] for i in mac_at],
                    cleared,
                )
                append(LENGTH(len(mac)) + mac)
                append(INT8(8, seq))
        except Exception:
            self._explain(row)
            return None
        append(TRAILER)
        return b"".join(parts)

    def _explain(self, row: Sequence[Any]) -> None:
        """Raise what ``to_remote`` raises for ``row``; return if it takes the row."""
        names = self.codec.entity.field_names
        if len(row) != len(names):
            return
        self.codec.to_remote(dict(zip(names, row, strict=True)), self._keys, self._user)


def _steps(
    codec: EntityCodec, e: Entity, keys: AccountKeys, user: str, index: dict[str, int]
) -> list[Step]:
    out: list[Step] = []
    for col in server_columns(e):
        if col.name in (CHANGE_SEQ, ROW_MAC) or col.name not in codec.columns:
            continue
        match col.role:
            case Role.OWNER:
                out.append(_constant(LENGTH(16) + _user_uuid(user).bytes))
            case Role.PLAIN:
                f = e.field(col.field or "")
                out.append(_nullable(index[f.name], f.nullable, plain_field(f)))
            case Role.SEALED:
                f = e.field(col.field or "")
                out.append(_sealed(f, index[f.name], keys, e.name, user))
            case Role.BLIND_INDEX:
                f = e.field(col.field or "")
                out.append(_blind(f, index[f.name], keys, e.name))
            case Role.PROPS:
                out.append(_props(e, index, keys, user))
            case _:
                raise NotInForm
    if tuple(c.name for c in server_columns(e) if c.name in codec.columns) != codec.columns:
        raise UsageError(f"{e.name}: the codec's columns are not in table order")
    if codec.columns[-1] != ROW_MAC:
        raise UsageError(f"{e.name}: row_mac is not the last column before change_seq")
    return out


def _constant(data: bytes) -> Step:
    return lambda row, row_id: data


def _nullable(i: int, nullable: bool, dump: Callable[[Any], bytes]) -> Step:
    def step(row: Sequence[Any], row_id: str) -> bytes:
        value = row[i]
        if value is None:
            if nullable:
                return NULL
            raise NotInForm
        return dump(value)

    return step


def _sealed(f: Field, i: int, keys: AccountKeys, entity: str, user: str) -> Step:
    seal = place_sealer(keys.field_keys, entity=entity, field=f.name, user_id=user)
    nullable = f.nullable

    def step(row: Sequence[Any], row_id: str) -> bytes:
        value = row[i]
        if value is None:
            if nullable:
                return NULL
            raise NotInForm
        sealed = seal(_secret_text(f, value).encode(), row_id)
        return LENGTH(len(sealed)) + sealed

    return step


def _blind(f: Field, i: int, keys: AccountKeys, entity: str) -> Step:
    nullable, name = f.nullable, f.name

    def step(row: Sequence[Any], row_id: str) -> bytes:
        value = row[i]
        if value is None:
            if nullable:
                return NULL
            raise NotInForm
        return b"\x00\x00\x00\x20" + keys.blind_index(
            _secret_text(f, value), entity=entity, field=name
        )

    return step


def _props(e: Entity, index: dict[str, int], keys: AccountKeys, user: str) -> Step:
    seal = place_sealer(keys.field_keys, entity=e.name, field=PROPS_COLUMN, user_id=user)
    packed = [(f.name, index[f.name], f.nullable, f) for f in e.packed_fields]

    def step(row: Sequence[Any], row_id: str) -> bytes:
        props = {}
        for name, i, nullable, f in packed:
            value = row[i]
            if value is None:
                if not nullable:
                    raise NotInForm
            elif f.kind is Kind.TEXT:
                if type(value) is not str:
                    raise NotInForm
            else:
                check_local(f, value)
            props[name] = value
        sealed = seal(_dumps(props).encode(), row_id)
        return LENGTH(len(sealed)) + sealed

    return step


def _secret_text(f: Field, value: Any) -> str:
    """The text a secret field is sealed (and blind-indexed) as, as ``to_remote`` makes it."""
    if f.kind is Kind.TEXT:
        if type(value) is not str:
            raise NotInForm
        return value
    check_local(f, value)
    return _dumps(value)
