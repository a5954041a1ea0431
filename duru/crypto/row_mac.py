"""Row MACs: a client-keyed tag over a server row's plain columns and its base version.

The AEAD of each sealed field protects that field, but the plain columns (flags, dates,
folder membership, tag links, task status) travel in the clear, and whoever controls the
server could change them, or send an older version of a row, and a device would take
it. So every row a device writes carries

    row_mac = base (8 bytes, signed big-endian) || tag (16 bytes) [|| cleared tag]
    tag     = BLAKE2b-128(key = row-MAC key, person = b"duru/rowmac/v1",
                          message = frame(entity, user id, row id, *column names)
                                    || base || column 1 || column 2 || ...)

``base`` is the server version the write was based on (the device row's ``version``
when it was sealed): the server gives the row a new version when it applies the write,
so the version a device can vouch for is the one it wrote on. Each column is written
as PostgreSQL's binary COPY writes it (a 4-byte length, -1 for NULL, then the value:
a uuid's 16 bytes, text as UTF-8, bigint and double as 8 bytes, a boolean as 1 byte, a
timestamp as microseconds since 2000-01-01 UTC, bytea as is; jsonb, whose text PostgreSQL
normalises, as a canonical JSON text of its value), so a binary COPY writer hashes
the bytes it sends and a reader hashes the values it got back, with one definition.

Covered: every column of the row except ``user_id`` (it is in the frame), ``version``
(``base`` stands for it) and the server's bookkeeping (``change_seq``, ``deleted_at``:
the server sets them, and a purge is the server's to carry). Sealed columns and blind
indexes are covered as their bytes, so an older ciphertext cannot be mixed into a newer
row either. A row with a foreign key the server clears when its target is purged
(``ON DELETE SET NULL``, as the device's SQLite does) carries a second tag, under person
``b"duru/rowmac/v1c"``, over the same message with that link NULL: the server may clear
the link, never point it elsewhere.

The key is a subkey of the account master key (``derive_subkey``), so only the user's
devices can make a tag, and every one of them can check it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from duru.errors import TamperedRow, UsageError

from .framing import frame
from .subkeys import SUBKEY_BYTES, derive_subkey

ROW_MAC_PERSON = b"duru/rowmac/v1"
_CLEARED_PERSON = b"duru/rowmac/v1c"  # the second tag: the row with its SET NULL link cleared
TAG_BYTES = 16
ROW_MAC_BYTES = 8 + TAG_BYTES
_BASE = struct.Struct(">q")
_FLOAT = struct.Struct(">d")
_LENGTH = struct.Struct(">i").pack
_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
TIMESTAMPTZ = "timestamp with time zone"
_MICRO = timedelta(microseconds=1)


def row_mac_key(master_key: bytes) -> bytes:
    """The row-MAC key of an account master key."""
    return derive_subkey(master_key, person=ROW_MAC_PERSON)


def row_prefix(entity: str, user_id: str, row_id: str, columns: tuple[str, ...]) -> bytes:
    """The framed start of a row's MAC message: what the row is and which columns count.

    ``frame(entity, user_id, row_id, *columns)``; only the row id changes per row.
    """
    return _prefix(entity, user_id) + frame(row_id) + _columns(columns)


@lru_cache(maxsize=256)
def _prefix(entity: str, user_id: str) -> bytes:
    return frame(entity, user_id)


@lru_cache(maxsize=256)
def _columns(columns: tuple[str, ...]) -> bytes:
    return frame(*columns)


def mac_bytes(cleared: object | None) -> int:
    """The length of a row MAC: with a second tag when the row has a clearable link."""
    return ROW_MAC_BYTES + (TAG_BYTES if cleared is not None else 0)


def make_row_mac(
    key: bytes, prefix: bytes, base: int, encoded: Sequence[bytes], cleared: int | None = None
) -> bytes:
    """``row_mac`` of a row whose covered columns are ``encoded`` (see ``encoder``).

    ``cleared``: the position in ``encoded`` of the link the server clears when its
    target is purged; a second tag then covers the row with that link NULL, so the
    server can clear it (as the device's SQLite would) but not point it elsewhere.
    """
    if isinstance(base, bool) or not isinstance(base, int) or not -(2**63) <= base < 2**63:
        raise UsageError(f"a row's base version is a 64-bit integer, got {base!r}")
    head = _BASE.pack(int(base))
    out = head + _tag(key, prefix, head, encoded)
    if cleared is not None:
        out += _tag(key, prefix, head, _clear(encoded, cleared), person=_CLEARED_PERSON)
    return out


def check_row_mac(
    key: bytes,
    prefix: bytes,
    found: object,
    encoded: Sequence[bytes],
    where: str,
    cleared: int | None = None,
) -> int:
    """The base version ``found`` vouches for; ``TamperedRow`` naming ``where`` when the
    MAC is missing, malformed or does not match the columns."""
    size = mac_bytes(cleared)
    if not isinstance(found, bytes | bytearray | memoryview) or len(found) != size:
        raise TamperedRow(
            f"{where}: the row has no valid MAC (changed on the server, or written by a "
            "build without row MACs)"
        )
    found = bytes(found)
    head = found[:8]
    ok = hmac.compare_digest(found[8:ROW_MAC_BYTES], _tag(key, prefix, head, encoded))
    if not ok and cleared is not None and encoded[cleared] == _NULL:
        # The link was cleared: its target was purged (ON DELETE SET NULL).
        tag = _tag(key, prefix, head, encoded, person=_CLEARED_PERSON)
        ok = hmac.compare_digest(found[ROW_MAC_BYTES:], tag)
    if not ok:
        raise TamperedRow(
            f"{where}: the row's MAC does not match its columns: it was changed on the "
            "server (flags, dates, links or ciphertexts) by someone without your keys"
        )
    return int(_BASE.unpack(head)[0])


def _clear(encoded: Sequence[bytes], at: int) -> list[bytes]:
    out = list(encoded)
    out[at] = _NULL
    return out


def mac_base(found: bytes) -> int:
    """The base version in a MAC ``check_row_mac`` already accepted."""
    return int(_BASE.unpack(found[:8])[0])


def encoder(pg_type: str) -> Callable[[Any], bytes]:
    """What writes a value of a ``pg_type`` column (as psycopg reads and writes it) as
    binary COPY writes the field; look it up once per column, it runs per row."""
    found = _ENCODERS.get(pg_type)
    if found is None:
        raise UsageError(f"a row MAC cannot cover a {pg_type} column")
    return found


def _nullable(encode: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    def out(value: Any) -> bytes:
        return _NULL if value is None else encode(value)

    return out


def _sized(data: bytes) -> bytes:
    return _LENGTH(len(data)) + data


def _uuid(value: Any) -> bytes:
    raw = value.bytes if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).bytes
    return b"\x00\x00\x00\x10" + raw


def _time(value: Any) -> bytes:
    return b"\x00\x00\x00\x08" + _BASE.pack((value - _PG_EPOCH) // _MICRO)


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    name: _nullable(fn)
    for name, fn in {
        "bytea": lambda v: _sized(bytes(v)),
        "text": lambda v: _sized(str(v).encode("utf-8")),
        "uuid": _uuid,
        "bigint": lambda v: b"\x00\x00\x00\x08" + _BASE.pack(v),
        "boolean": lambda v: b"\x00\x00\x00\x01\x01" if v else b"\x00\x00\x00\x01\x00",
        "double precision": lambda v: b"\x00\x00\x00\x08" + _FLOAT.pack(v),
        TIMESTAMPTZ: _time,
        "jsonb": lambda v: _sized(_canonical_json(v)),
    }.items()
}


def _canonical_json(value: Any) -> bytes:
    """A jsonb value as PostgreSQL gives it back, whatever the form it was sent in: keys
    sorted, no spaces, each number as its normalised decimal (PostgreSQL keeps numbers as
    ``numeric``: ``1e2`` comes back as ``100``, ``1.50`` may come back as ``1.5``)."""
    obj = value.obj if hasattr(value, "obj") else value  # psycopg's Jsonb wrapper
    return json.dumps(_numbers(obj), sort_keys=True, separators=(",", ":")).encode("utf-8")


def _numbers(obj: Any) -> Any:
    # Strings and numbers both become strings, told apart by their first character.
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, str):
        return "s" + obj
    if isinstance(obj, int | float | Decimal):
        number = Decimal(repr(obj)) if isinstance(obj, float) else Decimal(obj)
        return "n" + str(number.normalize())
    if isinstance(obj, dict):
        return {str(k): _numbers(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_numbers(v) for v in obj]
    raise UsageError(f"a row MAC cannot cover a JSON value of type {type(obj).__name__}")


def _tag(
    key: bytes,
    prefix: bytes,
    head: bytes,
    encoded: Sequence[bytes],
    person: bytes = ROW_MAC_PERSON,
) -> bytes:
    h = _keyed(key, person).copy()
    h.update(b"".join((prefix, head, *encoded)))
    return bytes(h.digest())


@lru_cache(maxsize=8)
def _keyed(key: bytes, person: bytes) -> Any:
    """A BLAKE2b state keyed for ``key`` (copying it is cheaper than keying anew)."""
    if len(key) != SUBKEY_BYTES:
        raise UsageError(f"a row-MAC key is {SUBKEY_BYTES} bytes")
    return hashlib.blake2b(key=key, person=person, digest_size=TAG_BYTES)
