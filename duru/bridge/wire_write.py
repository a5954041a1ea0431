"""Writing a pushed row's plain values in one pass: device value -> (wire value, MAC bytes).

The reverse of ``wire_read``. The general way out (``EntityCodec.to_remote`` then
``duru.sync.wire.encode_row``) builds psycopg values (``uuid.UUID``, ``datetime``) only
to write each as wire text and as the bytes the row MAC covers. A writer goes from the
device value straight to both. It takes only device values in their stored form
(canonical uuid text, epoch milliseconds in range, 0 or 1, known enum codes, text
without NUL or lone surrogates, 64-bit integers); anything else raises ``NotInForm``
and the caller takes the general way, which names what is wrong. On every value a
writer takes it gives exactly what the general way gives (``tests/test_wire_read.py``).
Floats and JSON are NotInForm (no plain field of the model is one).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from duru.model import Field, Kind

from .values import MAX_EPOCH_MS, MIN_EPOCH_MS
from .wire_read import NotInForm, int64_value, text_value, uuid_value

Writer = Callable[[Any], tuple[Any, bytes]]

_NULL = b"\xff\xff\xff\xff"
_LEN8 = b"\x00\x00\x00\x08"
_TRUE = b"\x00\x00\x00\x01\x01"
_FALSE = b"\x00\x00\x00\x01\x00"
_INT64 = struct.Struct(">q").pack
_LENGTH = struct.Struct(">i").pack
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_MS = (datetime(2000, 1, 1, tzinfo=UTC) - _UNIX) // timedelta(milliseconds=1)


def writer(f: Field) -> Writer:
    """The writer of plain field ``f``."""
    write = _by_kind(f)
    if not f.nullable:
        return write

    def nullable(value: Any) -> tuple[Any, bytes]:
        return (None, _NULL) if value is None else write(value)

    return nullable


def _by_kind(f: Field) -> Writer:
    if f.kind is Kind.ENUM:
        return _enum({code: name for name, code in f.enum.members})
    return {
        Kind.UUID: uuid_value,
        Kind.TEXT: text_value,
        Kind.INT: int64_value,
        Kind.BOOL: _bool,
        Kind.TIMESTAMP: _time,
    }.get(f.kind, _not_in_form)


def _not_in_form(value: Any) -> tuple[Any, bytes]:
    raise NotInForm


def _enum(names: dict[int, str]) -> Writer:
    def write(value: Any) -> tuple[str, bytes]:
        name = names.get(value) if type(value) is int else None
        if name is None:
            raise NotInForm
        data = name.encode("utf-8")
        return name, _LENGTH(len(data)) + data

    return write


def _bool(value: Any) -> tuple[bool, bytes]:
    if type(value) is int:
        if value == 1:
            return True, _TRUE
        if value == 0:
            return False, _FALSE
    raise NotInForm


def _time(value: Any) -> tuple[str, bytes]:
    if type(value) is not int or not MIN_EPOCH_MS <= value <= MAX_EPOCH_MS:
        raise NotInForm
    when = _UNIX + timedelta(milliseconds=value)
    return when.isoformat(), _LEN8 + _INT64((value - _PG_EPOCH_MS) * 1000)
