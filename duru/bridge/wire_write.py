"""Writing a pushed row's plain values in one pass: device value -> (wire value, MAC bytes).

The reverse of ``wire_read``. The general way out (``EntityCodec.to_remote`` then
``duru.sync.wire.encode_row``) builds psycopg values (``uuid.UUID``, ``datetime``) only
to write each as wire text and as the bytes the row MAC covers. A writer goes from the
device value straight to both: the bytes are binary COPY's (``copy_fields``, as an
upload writes them), the wire value is the device value itself for a uuid, a text or an
integer, ``true``/``false`` for a boolean, ISO 8601 in UTC for a time and the member name
for an enum. A value ``copy_fields`` does not take raises ``NotInForm`` and the caller
takes the general way, which names what is wrong. On every value a writer takes it gives
exactly what the general way gives (``tests/test_wire_read.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from duru.model import Field, Kind

from .copy_fields import NULL, NotInForm, plain_field

Writer = Callable[[Any], tuple[Any, bytes]]

_UNIX = datetime(1970, 1, 1, tzinfo=UTC)


def writer(f: Field) -> Writer:
    """The writer of plain field ``f``."""
    try:
        dump = plain_field(f)
    except NotInForm:
        return _not_in_form
    wire = _wire_value(f)

    def write(value: Any) -> tuple[Any, bytes]:
        if value is None:
            if f.nullable:
                return None, NULL
            raise NotInForm
        mac = dump(value)  # first: it checks the value is in stored form
        return wire(value), mac

    return write


def _wire_value(f: Field) -> Callable[[Any], Any]:
    """The wire value of a stored value ``plain_field(f)`` took."""
    match f.kind:
        case Kind.BOOL:
            return lambda value: value == 1
        case Kind.TIMESTAMP:
            return lambda value: (_UNIX + timedelta(milliseconds=value)).isoformat()
        case Kind.ENUM:
            names = {code: name for name, code in f.enum.members}
            return names.__getitem__
        case _:
            return _same


def _same(value: Any) -> Any:
    return value


def _not_in_form(value: Any) -> tuple[Any, bytes]:
    raise NotInForm
