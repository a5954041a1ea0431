"""Server rows on the wire: JSON values that come back as exactly what psycopg reads.

A server row (``EntityCodec.to_remote`` output, or a row read from PostgreSQL) holds
uuid.UUID, str, int, float, bool, aware datetimes, bytes and JSON objects. On the wire:

    uuid         canonical text            bytea   standard base64 text
    timestamptz  ISO 8601 text with offset  jsonb   the JSON value itself
    text, bigint, double precision, boolean: the JSON value of that type

``decode_row`` is the server's gate for what a client sends: every column must be one the
table has, of the right JSON type, or it raises ``UsageError`` naming the column, so a
malformed push is a 400 and never reaches PostgreSQL.
"""

from __future__ import annotations

import base64
import binascii
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from duru.errors import UsageError
from duru.remote.layout import TIMESTAMPTZ, ServerTable

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]


def encode_row(table: ServerTable, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` (server column -> psycopg value) as JSON-able values."""
    coders = _coders(table.name, table)
    return {c: None if v is None else coders[c][0](v) for c, v in row.items()}


def decode_row(
    table: ServerTable, data: object, columns: Iterable[str] | None = None
) -> dict[str, Any]:
    """The psycopg values of a wire row; UsageError for anything malformed.

    ``columns`` (default: every column of the table) are the ones the row must carry,
    no more and no fewer.
    """
    if not isinstance(data, dict):
        raise UsageError(f"a {table.name} row must be a JSON object")
    coders = _coders(table.name, table)
    want = set(coders if columns is None else columns)
    if set(data) != want:
        extra, missing = sorted(set(data) - want), sorted(want - set(data))
        raise UsageError(
            f"a {table.name} row has unknown columns {extra} or lacks columns {missing}"
        )
    out: dict[str, Any] = {}
    for name, value in data.items():
        if value is None:
            if not _nullable(table, name):
                raise UsageError(f"{table.name}.{name} may not be null")
            out[name] = None
            continue
        try:
            out[name] = coders[name][1](value)
        except (TypeError, ValueError, binascii.Error, OverflowError) as exc:
            raise UsageError(f"{table.name}.{name}: {exc}") from None
    return out


def _coders(name: str, table: ServerTable) -> dict[str, tuple[Encode, Decode]]:
    """The coders of ``table``'s columns, built once per table name (hashing the whole
    table description on every row costs more than the coding)."""
    found = _BY_TABLE.get(name)
    if found is None or found[0] is not table:
        found = _BY_TABLE[name] = (table, _build_coders(table))
    return found[1]


_BY_TABLE: dict[str, tuple[ServerTable, dict[str, tuple[Encode, Decode]]]] = {}


def _build_coders(table: ServerTable) -> dict[str, tuple[Encode, Decode]]:
    out = {c.name: _CODERS[c.type] for c in table.columns}
    for c in table.columns:
        if c.enum is not None:
            out[c.name] = (_same, _member_of(frozenset(c.enum)))
    return out


def _member_of(names: frozenset[str]) -> Decode:
    def decode(value: Any) -> str:
        if _text(value) not in names:
            raise ValueError(f"{value[:40]!r} is not one of {sorted(names)}")
        return str(value)

    return decode


def _nullable(table: ServerTable, name: str) -> bool:
    col = table.column(name)
    return col is not None and col.nullable


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise TypeError("expected a uuid as text")
    return uuid.UUID(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected text")
    if "\x00" in value:
        raise ValueError("text may not hold a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text may not hold a lone surrogate (not UTF-8)") from None
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    if not -(2**63) <= value < 2**63:
        raise ValueError("integer out of the 64-bit range")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError("expected a finite number")
    return out


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _bytes_out(value: Any) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def _bytes_in(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("expected base64 text")
    # Strict mode checks the alphabet and padding in C; b64decode's validate=True ran a
    # regular expression over the text first, a tenth of the server's work on a push.
    return binascii.a2b_base64(value, strict_mode=True)


def _time_out(value: Any) -> str:
    return str(value.isoformat())


def _time_in(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("expected an ISO 8601 time")
    out = datetime.fromisoformat(value)
    if out.tzinfo is None:
        raise ValueError("a time must carry its UTC offset")
    # In UTC it must still be a datetime (years 1 to 9999), at whole milliseconds as
    # devices keep it: anything else could be stored but never read back.
    out = out.astimezone(UTC)
    if out.microsecond % 1000:
        raise ValueError("a time is at whole milliseconds")
    return out


def _json_out(value: Any) -> Any:
    return value.obj if isinstance(value, Jsonb) else value


def _json_in(value: Any) -> Jsonb:
    return Jsonb(value)


def _same(value: Any) -> Any:
    return value


_CODERS: dict[str, tuple[Encode, Decode]] = {
    "uuid": (str, _uuid),
    "text": (_same, _text),
    "bigint": (_same, _int),
    "integer": (_same, _int),
    "double precision": (_same, _float),
    "boolean": (_same, _bool),
    TIMESTAMPTZ: (_time_out, _time_in),
    "jsonb": (_json_out, _json_in),
    "bytea": (_bytes_out, _bytes_in),
}
