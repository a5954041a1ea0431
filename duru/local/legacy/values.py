"""Reading the values of a version 11 file, and mapping its ids to uuids.

Version 11 files hold the same kind of value in several forms; every reader
here accepts all of them and raises InvalidValue for anything else:

- dates: unix seconds (INTEGER, REAL or numeric TEXT), unix milliseconds,
  microseconds or nanoseconds told apart by magnitude (see :func:`read_timestamp`),
  and ISO-8601 text with or without a zone (no zone means UTC);
- integers, booleans and reals as numbers or numeric text.

Ids: a legacy id that is a uuid in its usual 8-4-4-4-12 hex form keeps its
value (lower-cased); any other id becomes ``uuid5(LEGACY_NAMESPACE,
"<legacy table>:<id>")``, so a reference to it maps to the same uuid wherever
it occurs. Integer ids (reminders) use their decimal text as ``<id>``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from datetime import UTC, datetime
from functools import lru_cache

from duru.errors import InvalidValue
from duru.model import EnumType

# Fixed forever: changing it would give re-imported rows new ids.
LEGACY_NAMESPACE = uuid.UUID("5d0c1f47-6e0b-5b7e-9a51-64757275a011")
_NAMESPACE_BYTES = LEGACY_NAMESPACE.bytes
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Magnitude ladder for numeric dates: below 1e11 a value is seconds (up to the
# year 5138), below 1e14 milliseconds (from 1973-03-03 on), below 1e17
# microseconds, else nanoseconds. Milliseconds before March 1973 read as seconds.
# Integers are cut to whole milliseconds; reals round to the nearest one.
_SCALES = ((1e11, 1000, 1), (1e14, 1, 1), (1e17, 1, 1000), (math.inf, 1, 1_000_000))
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_MIN_MS, _MAX_MS = -62_135_596_800_000, 253_402_300_799_999  # years 1 and 9999


def legacy_key(value: object) -> str | None:
    """The text form of a legacy id (or reference); None when it is NULL or empty.

    Integers (and integral reals or numeric text such as ``"12"`` or ``12.0``)
    give their decimal text, so ``note_tasks.reminder_id = '12'`` finds
    reminder 12. Raises InvalidValue for a BLOB or a fractional number.
    """
    if value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidValue(f"{value!r} is not an id")
        return str(int(value))
    if isinstance(value, str):
        return value if value.strip() else None
    raise InvalidValue(f"a {type(value).__name__} value is not an id")


@lru_cache(maxsize=1 << 18)
def map_id(table: str, key: str) -> str:
    """The uuid (canonical text) that legacy id ``key`` of ``table`` becomes.

    Cached: one id is mapped once as a row and again by every reference to it.
    """
    if _UUID_TEXT.fullmatch(key):
        return key.lower()
    return _uuid5(f"{table}:{key}")


def composite_id(table: str, parts: list[object]) -> str:
    """A uuid for a row with no id of its own, from the values that identify it.

    The parts are written as a JSON array, so no separator can be ambiguous.
    """
    return _uuid5(f"{table}:{_COMPACT_JSON.encode(parts)}")


def random_id() -> str:
    """``str(uuid.uuid4())``, a few times faster: the import makes one per outbox op."""
    return _uuid_text(os.urandom(16), 0x40)


def _uuid5(name: str) -> str:
    # str(uuid.uuid5(LEGACY_NAMESPACE, name)), without building UUID objects (hot path).
    return _uuid_text(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest(), 0x50)


def _uuid_text(raw: bytes, version: int) -> str:
    # RFC 4122 layout: the version in the high nibble of byte 6, the variant in byte 8.
    b = bytearray(raw[:16])
    b[6] = (b[6] & 0x0F) | version
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def read_timestamp(value: object) -> int | None:
    """Epoch milliseconds (UTC) from any date form of a version 11 file.

    Empty text reads as NULL. Raises InvalidValue for other text, a BLOB, or a
    date outside years 1..9999.
    """
    if type(value) is int:  # the common case first: this runs for every date
        return _numeric_ms(value, value)
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _NUMBER.fullmatch(text):
            return _numeric_ms(float(text) if _is_fraction(text) else int(text), value)
        return _iso_ms(text, value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _numeric_ms(value, value)
    raise InvalidValue(f"{_show(value)} is not a date")


def read_int(value: object) -> int | None:
    """An integer from INTEGER, an integral REAL or numeric TEXT."""
    if value is None or (type(value) is int and _INT_MIN <= value <= _INT_MAX):
        return value
    number = _number(value, "an integer")
    if isinstance(number, float):
        if not number.is_integer():
            raise InvalidValue(f"{_show(value)} is not an integer")
        number = int(number)
    if not -(2**63) <= number < 2**63:
        raise InvalidValue(f"{_show(value)} is out of range for an integer")
    return number


def read_real(value: object) -> float | None:
    """A finite real from INTEGER, REAL or numeric TEXT."""
    if value is None:
        return None
    number = float(_number(value, "a number"))
    if not math.isfinite(number):
        raise InvalidValue(f"{_show(value)} is not a finite number")
    return number


def read_bool(value: object) -> bool | None:
    """A flag: 0/1 as a number or text, or the words true/false (any case).

    Any other number is refused rather than guessed at.
    """
    if value is None:
        return None
    if type(value) is int and 0 <= value <= 1:
        return value == 1
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    number = _number(value, "a flag (0 or 1)")
    if number not in (0, 1):
        raise InvalidValue(f"{_show(value)} is not a flag (0 or 1)")
    return bool(number)


def read_enum(enum: EnumType, value: object) -> int | None:
    """The app's integer code of ``enum``; a member name is accepted too."""
    if value is None:
        return None
    codes = _codes(enum)
    if type(value) is int and value in codes:
        return value
    if isinstance(value, str) and value.strip() in enum.names:
        return enum.code(value.strip())
    try:
        code = read_int(value)
    except InvalidValue:
        code = None
    if code not in codes:
        raise InvalidValue(f"{_show(value)} is not a {enum.name} code {list(enum.codes)}")
    return code


@lru_cache
def _codes(enum: EnumType) -> frozenset[int]:
    return frozenset(enum.codes)


def read_text(value: object) -> str | None:
    """Text; numbers give their SQL text, a BLOB must be UTF-8."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidValue(f"{_show(value)} is not UTF-8 text") from None
    if isinstance(value, int | float):
        return repr(value)
    raise InvalidValue(f"{_show(value)} is not text")


def read_json(value: object) -> tuple[object, bool]:
    """A JSON value and whether the text was JSON; other text is kept as a JSON string."""
    text = read_text(value)
    if text is None:
        return None, True
    try:
        return json.loads(text), True
    except ValueError:
        return text, False


def normalize_tag(value: object) -> str | None:
    """A tag as the tag API stores it: surrounding whitespace stripped; None when empty."""
    text = read_text(value)
    if text is None:
        return None
    return text.strip() or None


def _numeric_ms(number: int | float, original: object) -> int:
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidValue(f"{_show(original)} is not a date")
    times, per = _scale(abs(number))
    if isinstance(number, int):
        result = number * times // per
    else:
        result = round(number * times / per)
    if not _MIN_MS <= result <= _MAX_MS:
        raise InvalidValue(f"{_show(original)} is not a date between years 1 and 9999")
    return result


def _scale(size: float) -> tuple[int, int]:
    for limit, times, per in _SCALES:
        if size < limit:
            return times, per
    raise AssertionError("the last scale has no limit")


def _iso_ms(text: str, original: object) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"{_show(original)} is not a date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _number(value: object, what: str) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
        return float(text) if _is_fraction(text) else int(text)
    raise InvalidValue(f"{_show(value)} is not {what}")


def _is_fraction(text: str) -> bool:
    return any(c in text for c in ".eE")


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
