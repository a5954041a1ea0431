"""A device value of a plain field as binary COPY writes it (and the row MAC hashes it).

``plain_field(f)`` is the encoder of field ``f``: the device value (a canonical uuid
``str``, an ``int`` that is an ``int``, epoch milliseconds, 0 or 1, an enum code, text
without NUL) -> a 4-byte length and the value's bytes, as PostgreSQL's binary COPY reads
them. Any other value raises ``NotInForm``: the caller takes the general way
(``EntityCodec.to_remote``), which names what is wrong or writes it. Shared by the one-pass
writers of an upload (``copy_rows``), of a push (``wire_write``) and, for the values the
wire carries as the device stores them, of a pull (``wire_read``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from duru.model import Field, Kind
from duru.model.values import CANONICAL_UUID

from .values import INT64_MAX, INT64_MIN, MAX_EPOCH_MS, MIN_EPOCH_MS

NULL = b"\xff\xff\xff\xff"
# PostgreSQL's timestamps count microseconds from 2000-01-01 UTC.
PG_EPOCH_MS = 946_684_800_000
INT8 = struct.Struct(">iq").pack  # length 8, then the value
LENGTH = struct.Struct(">i").pack
_FLOAT8 = struct.Struct(">id").pack
_TRUE, _FALSE = b"\x00\x00\x00\x01\x01", b"\x00\x00\x00\x01\x00"
UUID_TEXT = CANONICAL_UUID.fullmatch


class NotInForm(Exception):
    """A value not in the form the one-pass way takes (the form the device stores, or the
    server writes): take the general way."""


def plain_field(f: Field) -> Callable[[Any], bytes]:
    """The encoder of plain field ``f``'s non-null values; NotInForm for a JSON field
    (psycopg's Jsonb dumper decides its bytes: the general way's)."""
    match f.kind:
        case Kind.UUID:
            return uuid_field
        case Kind.TEXT:
            return text_field
        case Kind.INT:
            return int_field
        case Kind.FLOAT:
            return _float
        case Kind.BOOL:
            return bool_field
        case Kind.TIMESTAMP:
            return timestamp_field
        case Kind.ENUM:
            return _enum(f)
        case _:
            raise NotInForm


def uuid_field(value: Any) -> bytes:
    if type(value) is not str or UUID_TEXT(value) is None:
        raise NotInForm
    return b"\x00\x00\x00\x10" + bytes.fromhex(value.replace("-", ""))


def text_field(value: Any) -> bytes:
    if type(value) is not str or "\x00" in value:
        raise NotInForm
    try:
        data = value.encode()
    except UnicodeEncodeError:
        raise NotInForm from None
    return LENGTH(len(data)) + data


def int_field(value: Any) -> bytes:
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        raise NotInForm
    return INT8(8, value)


def _float(value: Any) -> bytes:
    if type(value) is not float:
        raise NotInForm
    return _FLOAT8(8, value)


def bool_field(value: Any) -> bytes:
    if type(value) is not int:
        raise NotInForm
    if value == 1:
        return _TRUE
    if value == 0:
        return _FALSE
    raise NotInForm


def timestamp_field(value: Any) -> bytes:
    if type(value) is not int or not MIN_EPOCH_MS <= value <= MAX_EPOCH_MS:
        raise NotInForm
    return INT8(8, (value - PG_EPOCH_MS) * 1000)


def _enum(f: Field) -> Callable[[Any], bytes]:
    by_code = {code: LENGTH(len(name.encode())) + name.encode() for name, code in f.enum.members}

    def dump(value: Any) -> bytes:
        found = by_code.get(value) if type(value) is int else None
        if found is None:
            raise NotInForm
        return found

    return dump
