"""One value across the bridge: device storage form <-> what psycopg sends and returns.

    kind       device (SQLite)            server (PostgreSQL)
    uuid       canonical lower-case text  uuid.UUID
    text       str                        str (no NUL: PostgreSQL text cannot hold one)
    int        int                        int (bigint range)
    float      float                      float
    bool       0 / 1                      bool
    timestamp  epoch ms (int, UTC)        aware datetime (UTC), year 1 to 9999
    json       compact JSON text          Jsonb(object) going in; the object coming out
    enum       the app's integer          the member name

Every converter refuses, with BridgeError (UnknownEnumValue for enums), a value it
cannot carry exactly: nothing is rounded, truncated or normalised on the way.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from psycopg.types.json import Jsonb

from duru.errors import BridgeError, UnknownEnumValue
from duru.model import EnumType, Field, Kind
from duru.model.values import CANONICAL_UUID

Convert = Callable[[object], object]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
# Python's datetime (and so psycopg) spans years 1 to 9999; PostgreSQL spans more, but a
# value outside this range could be stored and then never read back.
MIN_EPOCH_MS = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // ONE_MS
MAX_EPOCH_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - EPOCH) // ONE_MS
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def ms_to_datetime(ms: object) -> datetime:
    """Epoch milliseconds -> aware UTC datetime; BridgeError outside years 1 to 9999."""
    count = _int(ms)
    if not MIN_EPOCH_MS <= count <= MAX_EPOCH_MS:
        raise BridgeError(
            f"{count} ms is outside the dates the server side can carry "
            f"(year 1 to 9999: {MIN_EPOCH_MS} to {MAX_EPOCH_MS} ms)"
        )
    return EPOCH + timedelta(milliseconds=count)


def datetime_to_ms(value: object) -> int:
    """Aware datetime -> epoch milliseconds; BridgeError if naive or finer than 1 ms."""
    if not isinstance(value, datetime):
        raise BridgeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise BridgeError(f"{value.isoformat()} has no time zone (expected timestamptz)")
    if value.microsecond % 1000:
        raise BridgeError(f"{value.isoformat()} is finer than a millisecond; it would be cut")
    return (value - EPOCH) // ONE_MS


def uuid_to_remote(value: object) -> uuid.UUID:
    return uuid.UUID(canonical_uuid(value))


def canonical_uuid(value: object) -> str:
    """``value`` if it is a uuid in canonical text form; BridgeError otherwise.

    Only the canonical form crosses: any other spelling would come back changed.
    """
    text = _str(value)
    if CANONICAL_UUID.fullmatch(text) is None:
        try:
            out = uuid.UUID(text)
        except ValueError:
            raise BridgeError(f"{text!r} is not a uuid") from None
        raise BridgeError(f"{text!r} is not in canonical form ({out}); it would change")
    return text


def uuid_to_local(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(uuid_to_remote(value))


def text_to_remote(value: object) -> str:
    text = _str(value)
    if "\x00" in text:
        raise BridgeError("text holds a NUL character, which PostgreSQL text cannot store")
    return text


def text_to_local(value: object) -> str:
    return _str(value)


def int_to_remote(value: object) -> int:
    out = _int(value)
    if not INT64_MIN <= out <= INT64_MAX:
        raise BridgeError(f"{out} does not fit a 64-bit integer")
    return out


def float_to_remote(value: object) -> float:
    if isinstance(value, float):
        return value
    out = float(_int(value))
    if out != value:
        raise BridgeError(f"{value} has no exact float form")
    return out


def float_to_local(value: object) -> float:
    if isinstance(value, float):
        return value
    return float_to_remote(value)


def bool_to_remote(value: object) -> bool:
    if _int(value) not in (0, 1):
        raise BridgeError(f"{value!r} is not a stored boolean (0 or 1)")
    return value == 1


def bool_to_local(value: object) -> int:
    if not isinstance(value, bool):
        raise BridgeError(f"expected a boolean, got {type(value).__name__}")
    return int(value)


def json_to_remote(value: object) -> Jsonb:
    text = _str(value)
    # jsonb rejects \u0000 in strings, and checking the text is cheaper than parsing twice.
    if "\\u0000" in text:
        raise BridgeError("JSON holds \\u0000, which PostgreSQL jsonb cannot store")
    try:
        return Jsonb(json.loads(text))
    except ValueError as exc:
        raise BridgeError(f"not valid JSON text: {exc}") from None


def json_to_local(value: object) -> str:
    """jsonb -> compact JSON text. jsonb keeps the value, not the text: keys come back in
    jsonb's order and duplicate keys collapse (only secret JSON round trips byte-exactly)."""
    # psycopg returns jsonb parsed (a str is a JSON string, not JSON text).
    obj = value.obj if isinstance(value, Jsonb) else value
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def enum_to_remote(enum: EnumType) -> Convert:
    """Device integer -> member name; UnknownEnumValue for a code outside the enum."""
    by_code = {code: name for name, code in enum.members}

    def convert(value: object) -> str:
        name = by_code.get(_int(value))
        if name is None:
            raise UnknownEnumValue(
                f"device value {value!r} is not a {enum.name} code "
                f"({', '.join(f'{c}={n}' for n, c in enum.members)})"
            )
        return name

    return convert


def enum_to_local(enum: EnumType) -> Convert:
    """Member name -> device integer; UnknownEnumValue for a name outside the enum."""
    by_name = dict(enum.members)

    def convert(value: object) -> int:
        code = by_name.get(_str(value))
        if code is None:
            raise UnknownEnumValue(
                f"server value {value!r} is not a {enum.name} name ({', '.join(enum.names)})"
            )
        return code

    return convert


def converters(f: Field) -> tuple[Convert, Convert]:
    """(to_remote, to_local) for a plain (non-secret) field; nulls are handled by the caller."""
    match f.kind:
        case Kind.ENUM:
            return enum_to_remote(f.enum), enum_to_local(f.enum)
        case kind:
            return _PLAIN[kind]


_PLAIN: dict[Kind, tuple[Convert, Convert]] = {
    Kind.UUID: (uuid_to_remote, uuid_to_local),
    Kind.TEXT: (text_to_remote, text_to_local),
    Kind.INT: (int_to_remote, int_to_remote),
    Kind.FLOAT: (float_to_remote, float_to_local),
    Kind.BOOL: (bool_to_remote, bool_to_local),
    Kind.TIMESTAMP: (ms_to_datetime, datetime_to_ms),
    Kind.JSON: (json_to_remote, json_to_local),
}


def check_local(f: Field, value: object) -> None:
    """BridgeError unless ``value`` is in device storage form for ``f`` (not null).

    Secret fields are sealed as they are, so this is their only check before sealing.
    """
    match f.kind:
        case Kind.TEXT | Kind.UUID | Kind.JSON:
            _str(value)
        case Kind.FLOAT:
            if not isinstance(value, float) or not math.isfinite(value):
                raise BridgeError(f"{value!r} is not a finite float")
        case Kind.BOOL:
            bool_to_remote(value)
        case Kind.ENUM:
            enum_to_remote(f.enum)(value)
        case _:
            int_to_remote(value)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise BridgeError(f"expected text, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BridgeError(f"expected an integer, got {type(value).__name__}")
    return value
