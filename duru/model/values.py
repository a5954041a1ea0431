"""Device storage form of each canonical type, and the conversions to it.

Device rows hold: uuid as canonical lower-case text, bool as 0/1, timestamp as
integer epoch milliseconds (UTC), enum as the app's integer, json as compact
text. ``to_local`` accepts the friendly Python form too (``True``, an enum
name, a ``datetime``, a list), so API callers never hand-encode values.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from duru.errors import InvalidValue
from duru.model.schema import Default, Entity, Field
from duru.model.types import Kind

Row = dict[str, Any]


def now_ms() -> int:
    """The current time as integer epoch milliseconds."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A new random (version 4) uuid in canonical text form.

    Formatted by hand from 16 random bytes: a third of the time of
    ``str(uuid.uuid4())``, and every write makes two.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def to_local(f: Field, value: object) -> object:
    """Encode ``value`` for field ``f`` in device storage form.

    Raises InvalidValue when the value does not fit the field.
    """
    return _encode(f, _ENCODERS[f.kind], value)


def _encode(f: Field, encoder: _Encoder, value: object) -> object:
    """``to_local`` with the field's encoder already looked up."""
    if value is None:
        if not f.nullable:
            raise InvalidValue(f"{f.name} may not be empty (null)")
        return None
    try:
        return encoder(f, value)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise InvalidValue(f"{f.name}: {value!r} is not a valid {_type_name(f)}") from exc


def from_local(f: Field, stored: object) -> object:
    """Decode device storage into the friendly Python form (names, bools, objects)."""
    if stored is None:
        return None
    match f.kind:
        case Kind.BOOL:
            return bool(stored)
        case Kind.ENUM:
            return f.enum.name_of(int(stored))  # type: ignore[call-overload]
        case Kind.JSON:
            return json.loads(str(stored))
        case _:
            return stored


def default_local(f: Field, now: int) -> object:
    """The stored default of ``f``; InvalidValue when it has none and is required."""
    if f.default is Default.NOW:
        return now
    if f.default is Default.NONE:
        if f.nullable:
            return None
        raise InvalidValue(f"{f.name} is required")
    return to_local(f, f.default)


def complete_row(entity: Entity, values: Row, now: int) -> Row:
    """A full device row: ``values`` encoded, every missing field defaulted.

    Raises InvalidValue for an unknown field or a value that does not fit.
    The same as ``to_local`` and ``default_local`` field by field, with each
    field's encoder and constant default looked up once per entity: this runs
    in every insert.
    """
    plan = _row_plan(entity)
    if not plan.names.issuperset(values):
        unknown = sorted(set(values) - plan.names)
        raise InvalidValue(f"{entity.name} has no field(s) {', '.join(unknown)}")
    row: Row = {}
    for f, encoder, default in plan.fields:
        name = f.name
        if name in values:
            row[name] = _encode(f, encoder, values[name])
        elif default is _NOW:
            row[name] = now
        elif default is _NO_DEFAULT:
            row[name] = default_local(f, now)  # None, or the "required" error
        else:
            row[name] = default
    return row


_Encoder = Callable[[Field, object], object]
_NOW, _NO_DEFAULT = object(), object()


@dataclass(frozen=True, slots=True)
class _RowPlan:
    entity: Entity  # kept, so the id() it is filed under stays this entity's
    names: frozenset[str]
    fields: tuple[tuple[Field, _Encoder, object], ...]  # field, encoder, default


_ROW_PLANS: dict[int, _RowPlan] = {}


def _row_plan(entity: Entity) -> _RowPlan:
    plan = _ROW_PLANS.get(id(entity))
    if plan is not None and plan.entity is entity:
        return plan
    fields = []
    for f in entity.fields:
        if f.default is Default.NOW:
            default: object = _NOW
        elif f.default is Default.NONE:
            default = _NO_DEFAULT
        else:
            default = to_local(f, f.default)
        fields.append((f, _ENCODERS[f.kind], default))
    plan = _RowPlan(entity, frozenset(entity.field_names), tuple(fields))
    _ROW_PLANS[id(entity)] = plan
    return plan


def encode_changes(entity: Entity, changes: Row) -> Row:
    """Encode a partial row (for an update); InvalidValue on unknown fields."""
    unknown = sorted(set(changes) - set(entity.field_names))
    if unknown:
        raise InvalidValue(f"{entity.name} has no field(s) {', '.join(unknown)}")
    return {name: to_local(entity.field(name), v) for name, v in changes.items()}


def _type_name(f: Field) -> str:
    if f.kind is Kind.ENUM:
        return f"{f.enum.name} ({', '.join(f.enum.names)})"
    return f.kind.value


def _uuid(f: Field, v: object) -> str:
    if isinstance(v, uuid.UUID):
        return str(v)
    if not isinstance(v, str):
        raise TypeError
    found = uuid_text(v)
    if found is None:
        raise ValueError(f"{v[:60]!r} is not a uuid")
    return found


def uuid_text(value: str) -> str | None:
    """``value`` as a canonical uuid when it spells one (any case, braces, no hyphens,
    ``urn:uuid:``); None otherwise. ``uuid.UUID`` alone reads its hex with ``int()``,
    which also takes a blank, a sign, an underscore or other scripts' digits, and so
    would make another uuid than the one written."""
    if CANONICAL_UUID.fullmatch(value):  # the usual case (our own ids): nothing to convert
        return value
    if _UUID_SPELLING.fullmatch(value):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return None
    return None


# A uuid as str(uuid.UUID(...)) writes it: the one spelling ids are stored and sent in.
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUID_SPELLING = re.compile(r"(?:urn:uuid:)?(\{)?[0-9A-Fa-f-]{32,36}(?(1)\})")


def _text(f: Field, v: object) -> str:
    if not isinstance(v, str):
        raise TypeError
    if not v.isascii():
        _check_utf8(f, v)
    return v


def _check_utf8(f: Field, v: str) -> None:
    # Bytes that were not UTF-8 (a command-line argument, a file) reach Python as lone
    # surrogates, which SQLite cannot store: say so, not UnicodeEncodeError.
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValue(
            f"{f.name}: {v!r} holds bytes that are not UTF-8 text (at character {exc.start})"
        ) from None


def _int(f: Field, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError
    if not -(2**63) <= v < 2**63:
        raise OverflowError
    return v


def _float(f: Field, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError
    out = float(v)
    if not math.isfinite(out):
        raise ValueError
    return out


def _bool(f: Field, v: object) -> int:
    if isinstance(v, bool | int) and v in (0, 1):
        return int(v)
    raise TypeError


def _timestamp(f: Field, v: object) -> int:
    if isinstance(v, datetime):
        aware = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
        delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
        return delta // _ONE_MS
    return _int(f, v)


def _json(f: Field, v: object) -> str:
    text = json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if not text.isascii():
        _check_utf8(f, text)
    return text


def _enum(f: Field, v: object) -> int:
    if isinstance(v, str):
        return f.enum.code(v)
    code = _int(f, v)
    f.enum.name_of(code)
    return code


_ONE_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)

_ENCODERS = {
    Kind.UUID: _uuid,
    Kind.TEXT: _text,
    Kind.INT: _int,
    Kind.FLOAT: _float,
    Kind.BOOL: _bool,
    Kind.TIMESTAMP: _timestamp,
    Kind.JSON: _json,
    Kind.ENUM: _enum,
}
