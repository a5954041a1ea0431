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
(no server column of the model is one; the general way carries them). A uuid, a text
and an integer are the same on the wire as stored on the device: their bytes are
``copy_fields``', as an upload writes them.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from duru.model import Field, Kind
from duru.remote.layout import TIMESTAMPTZ, ServerColumn

from .copy_fields import (
    INT8,
    LENGTH,
    NULL,
    NotInForm,
    bool_field,
    int_field,
    text_field,
    uuid_field,
)

Reader = Callable[[Any], tuple[Any, bytes]]

_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_ZERO = timedelta(0)
_PG_EPOCH_US = (datetime(2000, 1, 1, tzinfo=UTC) - _UNIX) // _MICRO


def reader(col: ServerColumn, f: Field | None) -> Reader:
    """The reader of column ``col``, which carries plain field ``f`` (None: a bytea
    column of sealed bytes, a blind index or the MAC, or ``user_id``)."""
    read = _by_type(col, f)
    if not (col.nullable and (f is None or f.nullable)):
        return read

    def nullable(value: Any) -> tuple[Any, bytes]:
        return (None, NULL) if value is None else read(value)

    return nullable


def _by_type(col: ServerColumn, f: Field | None) -> Reader:
    if col.enum is not None:
        if f is None or f.kind is not Kind.ENUM:
            return _not_in_form
        return _enum(dict(f.enum.members), frozenset(col.enum))
    want = {
        "uuid": (Kind.UUID, _as_stored(uuid_field)),
        "text": (Kind.TEXT, _as_stored(text_field)),
        "bigint": (Kind.INT, _as_stored(int_field)),
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


def _as_stored(dump: Callable[[Any], bytes]) -> Reader:
    """The reader of a value the wire carries as the device stores it (uuid, text, int)."""
    return lambda value: (value, dump(value))


def _enum(codes: dict[str, int], names: frozenset[str]) -> Reader:
    def read(value: Any) -> tuple[int, bytes]:
        if type(value) is not str or value not in names or value not in codes:
            raise NotInForm
        data = value.encode("utf-8")
        return codes[value], LENGTH(len(data)) + data

    return read


def _bool(value: Any) -> tuple[int, bytes]:
    if type(value) is not bool:
        raise NotInForm
    return int(value), bool_field(int(value))


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
    return micros // 1000, INT8(8, micros - _PG_EPOCH_US)


def _bytes(value: Any) -> tuple[bytes, bytes]:
    if type(value) is not str:
        raise NotInForm
    try:  # what base64.b64decode(value, validate=True) does, without its wrapping
        data = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise NotInForm from None
    return data, LENGTH(len(data)) + data
