"""Reading a pulled row's values in one pass: wire JSON value -> (value, MAC bytes).

The general way in (``duru.sync.wire.decode_row`` then ``EntityCodec.to_local``) builds
psycopg values (``uuid.UUID``, ``datetime``, ``bytes``) only to turn each into a device
value and into the bytes the row MAC covers (``duru.crypto.row_mac.encoder``). A reader
here goes from the wire value straight to both. It takes only the forms the server
writes: canonical lower-case uuids, times in UTC (``+00:00``) at whole milliseconds,
strict base64, text without NUL or lone surrogates, 64-bit integers, booleans, enum
member names. Anything else raises ``Unreadable``, and the caller takes the general way,
which names what is wrong. On every value a reader accepts it gives exactly what the
general way gives (``tests/test_wire_read.py`` holds the two to each other).

A reader returns the device value for a plain field (uuid as its text, a time as epoch
milliseconds, a boolean as 0 or 1, an enum as its code) and the bytes for a bytea
column (ciphertexts, blind indexes, the row MAC); a float or jsonb value is Unreadable
(no server column of the model is one; the general way carries them).
"""

from __future__ import annotations

import binascii
import re
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from duru.model import Field, Kind
from duru.remote.layout import TIMESTAMPTZ, ServerColumn

Reader = Callable[[Any], tuple[Any, bytes]]

_NULL = b"\xff\xff\xff\xff"
_LEN8 = b"\x00\x00\x00\x08"
_LEN16 = b"\x00\x00\x00\x10"
_TRUE = b"\x00\x00\x00\x01\x01"
_FALSE = b"\x00\x00\x00\x01\x00"
_INT64 = struct.Struct(">q").pack
_LENGTH = struct.Struct(">i").pack
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_ZERO = timedelta(0)
_PG_EPOCH_US = (datetime(2000, 1, 1, tzinfo=UTC) - _UNIX) // _MICRO
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


class Unreadable(Exception):
    """A value not in the form the server writes: take the general way."""


def reader(col: ServerColumn, f: Field | None) -> Reader:
    """The reader of column ``col``, which carries plain field ``f`` (None: a bytea
    column of sealed bytes, a blind index or the MAC, or ``user_id``)."""
    read = _by_type(col, f)
    if not (col.nullable and (f is None or f.nullable)):
        return read

    def nullable(value: Any) -> tuple[Any, bytes]:
        return (None, _NULL) if value is None else read(value)

    return nullable


def _by_type(col: ServerColumn, f: Field | None) -> Reader:
    if col.enum is not None:
        if f is None or f.kind is not Kind.ENUM:
            return _unreadable
        return _enum(dict(f.enum.members), frozenset(col.enum))
    want = {
        "uuid": (Kind.UUID, _uuid),
        "text": (Kind.TEXT, _text),
        "bigint": (Kind.INT, _bigint),
        "boolean": (Kind.BOOL, _bool),
        TIMESTAMPTZ: (Kind.TIMESTAMP, _time),
        "bytea": (None, _bytes),
    }.get(col.type)
    if want is None:
        return _unreadable
    kind, read = want
    if f is not None and f.kind is not kind:
        return _unreadable
    return read


def _unreadable(value: Any) -> tuple[Any, bytes]:
    raise Unreadable


def _uuid(value: Any) -> tuple[str, bytes]:
    if type(value) is not str or _UUID(value) is None:
        raise Unreadable
    return value, _LEN16 + bytes.fromhex(value.replace("-", ""))


def _text(value: Any) -> tuple[str, bytes]:
    if type(value) is not str or "\x00" in value:
        raise Unreadable
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        raise Unreadable from None
    return value, _LENGTH(len(data)) + data


def _enum(codes: dict[str, int], names: frozenset[str]) -> Reader:
    def read(value: Any) -> tuple[int, bytes]:
        if type(value) is not str or value not in names or value not in codes:
            raise Unreadable
        data = value.encode("utf-8")
        return codes[value], _LENGTH(len(data)) + data

    return read


def _bigint(value: Any) -> tuple[int, bytes]:
    if type(value) is not int or not -(2**63) <= value < 2**63:
        raise Unreadable
    return value, _LEN8 + _INT64(value)


def _bool(value: Any) -> tuple[int, bytes]:
    if value is True:
        return 1, _TRUE
    if value is False:
        return 0, _FALSE
    raise Unreadable


def _time(value: Any) -> tuple[int, bytes]:
    if type(value) is not str or not value.endswith("+00:00"):
        raise Unreadable
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Unreadable from None
    # Python 3.11 reads a date with an offset but no time ("2023-01-03+00:00") as a naive
    # datetime, the offset dropped; the general way refuses it.
    if when.utcoffset() != _ZERO:
        raise Unreadable
    micros = (when - _UNIX) // _MICRO
    if micros % 1000:
        raise Unreadable
    return micros // 1000, _LEN8 + _INT64(micros - _PG_EPOCH_US)


def _bytes(value: Any) -> tuple[bytes, bytes]:
    if type(value) is not str:
        raise Unreadable
    try:  # what base64.b64decode(value, validate=True) does, without its wrapping
        data = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise Unreadable from None
    return data, _LENGTH(len(data)) + data
