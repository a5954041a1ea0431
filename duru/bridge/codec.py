"""The bridge of one entity: a device row <-> a server row, precomputed from the model.

A device row is ``{field name: stored value}`` (see ``duru.model.values``); a server row is
``{column name: value as psycopg sends it}`` for ``EntityCodec.columns``: ``user_id``, the
plain fields converted (``duru.bridge.values``), each secret field with ``remote`` sealed
into its own column, blind indexes, and the other secret fields sealed together into
``props_enc``. Server bookkeeping columns (``change_seq``, ``deleted_at``) are not the
bridge's: ``to_remote`` leaves them out and ``to_local`` ignores them.

Every server row also carries ``row_mac``: the writing device's MAC over the row's plain
columns, ciphertexts and base version (``duru.crypto.row_mac``). ``to_remote`` makes it
from the device row's ``version`` (the server version the write is based on); ``to_local``
checks it once every value has crossed (so a ciphertext that does not open still says
why) and raises ``TamperedRow`` naming the row on a mismatch.

Sealing binds each ciphertext to (entity name, field, user id, row id); ``props_enc`` is
sealed under the field name ``props_enc``. Plaintexts: a text field is its UTF-8 bytes,
any other kind its stored value as JSON; ``props_enc`` is a compact JSON object of the
packed fields' stored values (JSON fields stay the original JSON text, so they come back
byte for byte; floats are written in shortest round-trip form, so they come back exactly).
"""

from __future__ import annotations

import binascii
import json
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from duru.crypto import AccountKeys, open_sealed, seal
from duru.crypto.row_mac import check_row_mac, encoder, make_row_mac, row_prefix
from duru.errors import BridgeError, UsageError
from duru.model import PROPS_COLUMN, Entity, Field, Kind
from duru.remote.layout import (
    ROW_MAC,
    SERVER_ONLY_COLUMNS,
    Role,
    cleared_column,
    mac_columns,
    server_columns,
)

from .copy_fields import LENGTH, NULL, NotInForm
from .values import Convert, canonical_uuid, check_local, converters, uuid_to_local
from .wire_read import Reader, reader
from .wire_write import Writer, writer

Row = dict[str, Any]
_ALLOWED_EXTRA = frozenset(SERVER_ONLY_COLUMNS)


class _Plain:
    __slots__ = ("name", "column", "nullable", "to_remote", "to_local")

    def __init__(self, f: Field) -> None:
        self.name = self.column = f.name
        self.nullable = f.nullable
        self.to_remote: Convert
        self.to_local: Convert
        self.to_remote, self.to_local = converters(f)


class _Sealed:
    __slots__ = ("field", "column", "blind_column")

    def __init__(self, f: Field, column: str | None, blind_column: str | None) -> None:
        self.field = f
        self.column = column
        self.blind_column = blind_column


class EntityCodec:
    """Converts rows of one entity both ways; build once (``codec_for``), use per row."""

    def __init__(self, e: Entity) -> None:
        self.entity = e
        cols = [c for c in server_columns(e) if c.name not in SERVER_ONLY_COLUMNS]
        self.columns: tuple[str, ...] = tuple(c.name for c in cols)
        self._column_set = frozenset(self.columns)
        self._field_order = e.field_names
        self._names = frozenset(self._field_order)
        self._key = e.field(e.key)
        self._plain = [_Plain(f) for f in e.fields if not f.secret]
        by_field = {(c.field, c.role): c.name for c in cols}
        self._sealed = [
            _Sealed(
                f, by_field.get((f.name, Role.SEALED)), by_field.get((f.name, Role.BLIND_INDEX))
            )
            for f in e.fields
            if (f.secret and not f.packed) or f.blind_index
        ]
        self._packed = e.packed_fields
        self._packed_names = frozenset(f.name for f in self._packed)
        covered = mac_columns(e)
        self.mac_columns: tuple[str, ...] = tuple(c.name for c in covered)
        self._mac_types = tuple((c.name, encoder(c.type)) for c in covered)
        link = cleared_column(e)
        # Where the link the server may clear sits among the covered columns, if any.
        self.mac_cleared = None if link is None else self.mac_columns.index(link)
        self._mac_key: tuple[bytes, bytes] | None = None  # (master key, row-MAC key)
        self._wire: list[tuple[str, Reader, int]] | None = None  # see ``from_wire``
        at = {name: i for i, name in enumerate(self.mac_columns)}
        # See ``to_wire``: (field, its writer, its place among the MAC's columns or -1).
        self._writers: list[tuple[str, Writer, int]] = [
            (p.name, writer(e.field(p.name)), at.get(p.column, -1)) for p in self._plain
        ]
        self._sealed_at = {name: at.get(name, -1) for name in self.columns}

    def to_remote(self, row: Mapping[str, Any], keys: AccountKeys, user_id: str) -> Row:
        """The server row of device row ``row`` of user ``user_id``, secrets sealed.

        Raises BridgeError (UnknownEnumValue for an enum) naming the field and row when a
        value cannot cross exactly, and UsageError when ``keys`` are another user's.
        """
        self._check_fields(row)
        user = _user_text(user_id, keys)
        row_id = self._row_id(row)
        out: Row = {"user_id": _user_uuid(user)}
        for p in self._plain:
            out[p.column] = self._convert(p.name, p.nullable, p.to_remote, row[p.name], row_id)
        for s in self._sealed:
            self._seal_field(out, s, row[s.field.name], keys, user, row_id)
        if self._packed:
            out[PROPS_COLUMN] = self._seal_props(row, keys, user, row_id)
        encoded = [encode(out[c]) for c, encode in self._mac_types]
        out[ROW_MAC] = make_row_mac(
            self._row_mac_key(keys),
            self._mac_prefix(user, row_id),
            out.get("version", 0),
            encoded,
            self.mac_cleared,
        )
        return {c: out[c] for c in self.columns}

    def to_wire(self, row: Mapping[str, Any], keys: AccountKeys, user_id: str) -> Row | None:
        """``encode_row`` of ``to_remote``'s row (``duru.sync.wire``), written in one pass
        (``duru.bridge.wire_write``); None when a plain value is not in its stored form,
        and the caller takes the general way, which names what is wrong. Sealing
        checks and errors are ``to_remote``'s own.
        """
        self._check_fields(row)
        user = _user_text(user_id, keys)
        row_id = self._row_id(row)
        out: Row = {"user_id": user}
        encoded = [b""] * len(self.mac_columns)
        try:
            for name, write, at in self._writers:
                out[name], mac = write(row[name])
                if at >= 0:
                    encoded[at] = mac
        except NotInForm:
            return None
        sealed: Row = {}
        for s in self._sealed:
            self._seal_field(sealed, s, row[s.field.name], keys, user, row_id)
        if self._packed:
            sealed[PROPS_COLUMN] = self._seal_props(row, keys, user, row_id)
        for name, value in sealed.items():
            if value is None:
                out[name], mac = None, NULL
            else:
                out[name], mac = _base64(value), LENGTH(len(value)) + value
            if self._sealed_at[name] >= 0:
                encoded[self._sealed_at[name]] = mac
        tag = make_row_mac(
            self._row_mac_key(keys),
            self._mac_prefix(user, row_id),
            out.get("version", 0),
            encoded,
            self.mac_cleared,
        )
        out[ROW_MAC] = _base64(tag)
        return {c: out[c] for c in self.columns}

    def row_base(self, row: Mapping[str, Any], keys: AccountKeys) -> int:
        """The base version server row ``row``'s MAC vouches for.

        Raises TamperedRow naming the row when the MAC is missing or does not match.
        """
        key_value = row[self._key.name]
        row_id = "?" if key_value is None else uuid_to_local(key_value)
        return self._check_mac(row, keys, uuid_to_local(row["user_id"]), row_id)

    def to_local(self, row: Mapping[str, Any], keys: AccountKeys) -> Row:
        """The device row of server row ``row``, secrets opened and checked.

        Raises BridgeError when a column is missing or unknown or a value does not fit,
        and the crypto errors of ``open_sealed`` when a ciphertext does not open.
        """
        self._check_columns(row)
        user = uuid_to_local(row["user_id"])
        key_value = row[self._key.name]
        row_id = "?" if key_value is None else uuid_to_local(key_value)
        out: Row = {}
        for p in self._plain:
            out[p.name] = self._convert(p.name, p.nullable, p.to_local, row[p.column], row_id)
        if self._packed:
            out.update(self._open_props(row[PROPS_COLUMN], keys, user, row_id))
        for s in self._sealed:
            if s.column is not None:
                out[s.field.name] = self._open_field(row[s.column], s.field, keys, user, row_id)
            if s.blind_column is not None:
                self._check_blind(row[s.blind_column], s, out[s.field.name], keys, row_id)
        # Last, so a ciphertext that does not open says why (TamperedCiphertext, ...).
        self._check_mac(row, keys, user, row_id)
        return {name: out[name] for name in self._field_order}

    def from_wire(self, data: object, keys: AccountKeys) -> Row | None:
        """``to_local`` of a row as the sync wire carries it (``duru.sync.wire``), read in
        one pass (``duru.bridge.wire_read``); None when a value is not in the form the
        server writes, and the caller takes the general way (``decode_row``, then
        ``to_local``), which names what is wrong. A ciphertext that does not open and a
        MAC that does not match raise here as they do there.
        """
        plan = self._wire if self._wire is not None else self._wire_plan()
        # A row that is not a JSON object is the general way's to refuse (UsageError).
        if type(data) is not dict or data.keys() != self._column_set:
            return None
        values: Row = {}
        encoded = [b""] * len(self.mac_columns)
        try:
            for name, read, at in plan:
                values[name], mac = read(data[name])
                if at >= 0:
                    encoded[at] = mac
        except NotInForm:
            return None
        user, row_id = values["user_id"], values[self._key.name]
        out: Row = {p.name: values[p.column] for p in self._plain}
        if self._packed:
            out.update(self._open_props(values[PROPS_COLUMN], keys, user, row_id))
        for s in self._sealed:
            if s.column is not None:
                out[s.field.name] = self._open_field(values[s.column], s.field, keys, user, row_id)
            if s.blind_column is not None:
                self._check_blind(values[s.blind_column], s, out[s.field.name], keys, row_id)
        check_row_mac(
            self._row_mac_key(keys),
            self._mac_prefix(user, row_id),
            values[ROW_MAC],
            encoded,
            f"{self.entity.name} {row_id}",
            self.mac_cleared,
        )
        return {name: out[name] for name in self._field_order}

    def _wire_plan(self) -> list[tuple[str, Reader, int]]:
        """(column, its reader, its place among the MAC's columns or -1), every column."""
        plain = {p.column: self.entity.field(p.name) for p in self._plain}
        types = {c.name: c for c in server_columns(self.entity)}
        at = {name: i for i, name in enumerate(self.mac_columns)}
        self._wire = [
            (name, reader(types[name], plain.get(name)), at.get(name, -1)) for name in self.columns
        ]
        return self._wire

    def _check_mac(self, row: Mapping[str, Any], keys: AccountKeys, user: str, row_id: str) -> int:
        try:
            encoded = [encode(row[c]) for c, encode in self._mac_types]
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise BridgeError(f"{self.entity.name} (row {row_id}): {exc}") from None
        return check_row_mac(
            self._row_mac_key(keys),
            self._mac_prefix(user, row_id),
            row[ROW_MAC],
            encoded,
            f"{self.entity.name} {row_id}",
            self.mac_cleared,
        )

    def _row_mac_key(self, keys: AccountKeys) -> bytes:
        found = self._mac_key
        if found is None or found[0] is not keys.master_key:
            found = self._mac_key = (keys.master_key, keys.row_mac_key)
        return found[1]

    def _mac_prefix(self, user: str, row_id: str) -> bytes:
        return row_prefix(self.entity.name, user, row_id, self.mac_columns)

    # -- plain values ---------------------------------------------------------

    def _convert(
        self, name: str, nullable: bool, convert: Convert, value: object, row_id: str
    ) -> object:
        if value is None:
            if nullable:
                return None
            raise BridgeError(f"{self._where(name, row_id)}: may not be null")
        try:
            return convert(value)
        except BridgeError as exc:
            raise type(exc)(f"{self._where(name, row_id)}: {exc.message}") from None

    # -- secrets --------------------------------------------------------------

    def _seal_field(
        self, out: Row, s: _Sealed, value: object, keys: AccountKeys, user: str, row_id: str
    ) -> None:
        f = s.field
        if value is None:
            if not f.nullable:
                raise BridgeError(f"{self._where(f.name, row_id)}: may not be null")
            out.update({c: None for c in (s.column, s.blind_column) if c is not None})
            return
        self._check_value(f, value, row_id)
        text = value if f.kind is Kind.TEXT else _dumps(value)
        assert isinstance(text, str)
        if s.column is not None:
            plain = _utf8(text, self._where(f.name, row_id))
            out[s.column] = self._seal(plain, f.name, keys, user, row_id)
        if s.blind_column is not None:
            out[s.blind_column] = keys.blind_index(text, entity=self.entity.name, field=f.name)

    def _open_field(
        self, sealed: object, f: Field, keys: AccountKeys, user: str, row_id: str
    ) -> object:
        where = self._where(f.name, row_id)
        if sealed is None:
            if not f.nullable:
                raise BridgeError(f"{where}: may not be null")
            return None
        text = _text(self._open(sealed, f.name, keys, user, row_id), where)
        value: object = text if f.kind is Kind.TEXT else _loads(text, where)
        self._check_value(f, value, row_id)
        return value

    def _check_blind(
        self, found: object, s: _Sealed, value: object, keys: AccountKeys, row_id: str
    ) -> None:
        f = s.field
        if value is None and found is None:
            return
        text = value if f.kind is Kind.TEXT else _dumps(value)
        assert isinstance(text, str)
        want = keys.blind_index(text, entity=self.entity.name, field=f.name)
        if not isinstance(found, bytes | bytearray | memoryview) or bytes(found) != want:
            raise BridgeError(
                f"{self._where(f.name, row_id)}: blind index {s.blind_column} does not match "
                "the value"
            )

    def _seal_props(
        self, row: Mapping[str, Any], keys: AccountKeys, user: str, row_id: str
    ) -> bytes:
        props: Row = {}
        for f in self._packed:
            value = row[f.name]
            if value is None and not f.nullable:
                raise BridgeError(f"{self._where(f.name, row_id)}: may not be null")
            if value is not None:
                self._check_value(f, value, row_id)
            props[f.name] = value
        plain = _utf8(_dumps(props), self._where(PROPS_COLUMN, row_id))
        return self._seal(plain, PROPS_COLUMN, keys, user, row_id)

    def _open_props(self, sealed: object, keys: AccountKeys, user: str, row_id: str) -> Row:
        where = self._where(PROPS_COLUMN, row_id)
        if sealed is None:
            raise BridgeError(f"{where}: may not be null")
        props = _loads(_text(self._open(sealed, PROPS_COLUMN, keys, user, row_id), where), where)
        if not isinstance(props, dict) or set(props) != self._packed_names:
            got = sorted(props) if isinstance(props, dict) else type(props).__name__
            raise BridgeError(
                f"{where}: holds {got}, expected exactly {sorted(self._packed_names)} "
                "(sealed by another model version?)"
            )
        for f in self._packed:
            value = props[f.name]
            if value is None and not f.nullable:
                raise BridgeError(f"{self._where(f.name, row_id)}: may not be null")
            if value is not None:
                self._check_value(f, value, row_id)
        return props

    def _seal(self, plain: bytes, name: str, keys: AccountKeys, user: str, row_id: str) -> bytes:
        return seal(
            plain,
            keys=keys.field_keys,
            entity=self.entity.name,
            field=name,
            user_id=user,
            row_id=row_id,
        )

    def _open(self, sealed: object, name: str, keys: AccountKeys, user: str, row_id: str) -> bytes:
        if not isinstance(sealed, bytes | bytearray | memoryview):
            raise BridgeError(f"{self._where(name, row_id)}: expected bytea, got {type(sealed)}")
        return open_sealed(
            bytes(sealed),
            keys=keys.field_keys,
            entity=self.entity.name,
            field=name,
            user_id=user,
            row_id=row_id,
        )

    # -- checks ---------------------------------------------------------------

    def _check_value(self, f: Field, value: object, row_id: str) -> None:
        try:
            check_local(f, value)
        except BridgeError as exc:
            raise type(exc)(f"{self._where(f.name, row_id)}: {exc.message}") from None

    def _check_fields(self, row: Mapping[str, Any]) -> None:
        if row.keys() != self._names:
            missing = sorted(self._names - row.keys())
            extra = sorted(set(row) - self._names)
            raise BridgeError(
                f"{self.entity.name} row: missing fields {missing}, unknown fields {extra}"
            )

    def _check_columns(self, row: Mapping[str, Any]) -> None:
        if row.keys() == self._column_set:
            return
        names = set(row)
        missing = sorted(self._column_set - names)
        extra = sorted(names - self._column_set - _ALLOWED_EXTRA)
        if missing or extra:
            raise BridgeError(
                f"{self.entity.table} server row: missing columns {missing}, "
                f"unknown columns {extra}"
            )

    def _row_id(self, row: Mapping[str, Any]) -> str:
        value = row[self._key.name]
        try:
            return canonical_uuid(value)
        except BridgeError as exc:
            raise BridgeError(f"{self.entity.name}.{self._key.name}: {exc.message}") from None

    def _where(self, name: str, row_id: str) -> str:
        return f"{self.entity.name}.{name} (row {row_id})"


def _user_text(user_id: str, keys: AccountKeys) -> str:
    try:
        user = canonical_uuid(user_id)
    except BridgeError as exc:
        raise BridgeError(f"user id: {exc.message}") from None
    if keys.user_id != user:
        raise UsageError(f"keys of user {keys.user_id} cannot seal rows of user {user}")
    return user


@lru_cache(maxsize=64)
def _user_uuid(user: str) -> uuid.UUID:
    # One user's rows come in long runs; parsing the same id per row is waste.
    return uuid.UUID(user)


def _base64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _dumps(value: object) -> str:
    try:
        return _ENCODER.encode(value)
    except ValueError as exc:
        raise BridgeError(f"cannot write as JSON: {exc}") from None


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise BridgeError(f"{where}: opened plaintext is not JSON: {exc}") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BridgeError(f"{where}: text holds a lone surrogate, not valid Unicode") from None


def _text(plain: bytes, where: str) -> str:
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise BridgeError(f"{where}: opened plaintext is not UTF-8") from None
