"""Rows -> PostgreSQL binary COPY data, made without a connection.

So another process (the sealer) can turn rows into the bytes a ``COPY ... FROM STDIN
(FORMAT BINARY)`` takes, and the process holding the connection only forwards them
(``Copy.write``). Values are dumped by psycopg's own binary dumpers for the given types.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from psycopg import postgres, pq
from psycopg.adapt import PyFormat, Transformer

from duru.errors import UsageError

# PostgreSQL's binary COPY framing: signature, flags, header extension length; trailer.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_pack_int32 = struct.Struct(">i").pack


def _native_formatter() -> Callable[[Any], Any] | None:
    """psycopg's own (C) binary COPY row formatter, or None if this psycopg moved it.

    It is private API, about 3x faster than the Python loop of ``CopyFormatter``, which
    the tests check it against and which takes over when it is missing.
    """
    try:
        from psycopg import _copy_base
    except ImportError:  # pragma: no cover - depends on the installed psycopg
        return None
    found: Callable[[Any], Any] | None = getattr(_copy_base, "BinaryFormatter", None)
    return found


_NATIVE = _native_formatter()


class CopyFormatter:
    """Formats rows of the given PostgreSQL types (``uuid``, ``bigint``, ...) as binary COPY.

    Raises UsageError for a type name psycopg does not know. A value of the wrong Python
    type raises what psycopg's dumper raises (TypeError, DataError).
    """

    def __init__(self, types: Sequence[str], *, native: bool = True) -> None:
        oids = [_oid(t) for t in types]
        self.types = tuple(types)
        self._tx = Transformer()
        self._tx.set_dumper_types(oids, pq.Format.BINARY)
        self._formats = [PyFormat.BINARY] * len(oids)
        self._field_count = struct.pack(">h", len(oids))
        self._native = native and _NATIVE is not None

    def format(self, rows: Iterable[Sequence[Any]]) -> bytes:
        """One complete COPY stream (signature, rows, trailer) of ``rows``."""
        if self._native:
            return self._format_native(rows)
        return self._format_python(rows)

    def _format_native(self, rows: Iterable[Sequence[Any]]) -> bytes:
        assert _NATIVE is not None
        formatter = _NATIVE(self._tx)
        out = bytearray()
        for row in rows:
            out += formatter.write_row(row)
        out += formatter.end()
        return bytes(out)

    def _format_python(self, rows: Iterable[Sequence[Any]]) -> bytes:
        parts = [SIGNATURE]
        append, dump, formats = parts.append, self._tx.dump_sequence, self._formats
        for row in rows:
            append(self._field_count)
            for data in dump(row, formats):
                if data is None:
                    append(_NULL)
                else:
                    append(_pack_int32(len(data)))
                    append(bytes(data))
        append(TRAILER)
        return b"".join(parts)


def _oid(type_name: str) -> int:
    info = postgres.types.get(type_name)
    if info is None:
        raise UsageError(f"psycopg knows no PostgreSQL type {type_name!r}")
    return info.oid
