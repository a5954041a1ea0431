"""Reading a pulled row's values in one pass: wire JSON value -> (value, MAC bytes).

The general way in (``duru.sync.wire.decode_row`` then ``EntityCodec.to_local``) builds
psycopg values (``uuid.UUID``, ``datetime``, ``bytes``) only to turn each into a device
value and into the bytes the row MAC covers (``duru.crypto.row_mac.encoder``). A reader
here goes from the wire value straight to both. It takes only the forms the server
writes: canonical lower-case uuids, times in UTC (``+00:00``) at whole milliseconds,
strict base64, text without NUL or lone surrogates, 64-bit integers, booleans, enum
member names. Anything else raises ``NotInForm``, and the caller takes the general way,
which names what is wrong. On every value a reader accepts it gives exactly what the
general way gives (``tests/test_wire_read.py`` holds the two to each other).

A reader returns the device value for a plain field (uuid as its text, a time as epoch
milliseconds, a boolean as 0 or 1, an enum as its code) and the bytes for a bytea
column (ciphertexts, blind indexes, the row MAC); a float or jsonb value is NotInForm
(no server column of the model is one; the general way carries them). A uuid and a text
are the same on the wire as stored on the device, so ``wire_write`` writes them with
``uuid_value`` and ``text_value`` from here.
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


class NotInForm(Exception):
    """A value not in the form the one-pass way takes (the form the server writes, or
    the device stores): take the general way."""


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
            return _not_in_form
        return _enum(dict(f.enum.members), frozenset(col.enum))
    want = {
        "uuid": (Kind.UUID, uuid_value),
        "text": (Kind.TEXT, text_value),
        "bigint": (Kind.INT, int64_value),
        "boolean": (Kind.BOOL, _bool),
        TIMESTAMPTZ: (Kind.TIMESTAMP, _time),
        "bytea": (None, _bytes),
    }.get(col.type)
    if want is None:
        return _not_in_form
    kind, read = want
    if f is not None and f.kind is not kind:
        return _not_in_form
    return read


def _not_in_form(value: Any) -> tuple[Any, bytes]:
    raise NotInForm


def uuid_value(value: Any) -> tuple[str, bytes]:
    """A canonical uuid text, and its MAC bytes."""
    if type(value) is not str or _UUID(value) is None:
        raise NotInForm
    return value, _LEN16 + bytes.fromhex(value.replace("-", ""))


def text_value(value: Any) -> tuple[str, bytes]:
    """A text PostgreSQL can hold (no NUL, UTF-8), and its MAC bytes."""
    if type(value) is not str or "\x00" in value:
        raise NotInForm
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotInForm from None
    return value, _LENGTH(len(data)) + data


def _enum(codes: dict[str, int], names: frozenset[str]) -> Reader:
    def read(value: Any) -> tuple[int, bytes]:
        if type(value) is not str or value not in names or value not in codes:
            raise NotInForm
        data = value.encode("utf-8")
        return codes[value], _LENGTH(len(data)) + data

    return read


def int64_value(value: Any) -> tuple[int, bytes]:
    """A 64-bit integer (not a bool), and its MAC bytes."""
    if type(value) is not int or not -(2**63) <= value < 2**63:
        raise NotInForm
    return value, _LEN8 + _INT64(value)


def _bool(value: Any) -> tuple[int, bytes]:
    if value is True:
        return 1, _TRUE
    if value is False:
        return 0, _FALSE
    raise NotInForm


def _time(value: Any) -> tuple[int, bytes]:
    if type(value) is not str or not value.endswith("+00:00"):
        raise NotInForm
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise NotInForm from None
    # Python 3.11 reads a date with an offset but no time ("2023-01-03+00:00") as a naive
    # datetime, the offset dropped; the general way refuses it.
    if when.utcoffset() != _ZERO:
        raise NotInForm
    micros = (when - _UNIX) // _MICRO
    if micros % 1000:
        raise NotInForm
    return micros // 1000, _LEN8 + _INT64(micros - _PG_EPOCH_US)


def _bytes(value: Any) -> tuple[bytes, bytes]:
    if type(value) is not str:
        raise NotInForm
    try:  # what base64.b64decode(value, validate=True) does, without its wrapping
        data = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise NotInForm from None
    return data, _LENGTH(len(data)) + data
