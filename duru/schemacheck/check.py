"""``check_schema``: compare a device file and a server database with the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from psycopg import Connection

from duru.model import ENTITIES, Entity
from duru.remote.config import RemoteConfig, describe_url
from duru.remote.introspect import introspect
from duru.remote.pool import connect
from duru.remote.schema import read_meta

from .device import compare_device, introspect_device, open_read_only
from .report import Mismatch, SchemaReport, Side
from .server import compare_server


def check_schema(
    local_path: str | Path | None,
    remote_url: str | None,
    *,
    entities: tuple[Entity, ...] = ENTITIES,
) -> SchemaReport:
    """Compare a live device file and/or a live server database with the model.

    Either side may be None to check only the other. Opens the device file read-only and
    the server in a read-only transaction; changes nothing. Raises NotFound or
    CorruptDatabase for an unusable device file and ServerUnavailable when the server
    cannot be reached; every difference found is a ``Mismatch`` in the report, not an error.
    """
    mismatches: list[Mismatch] = []
    checked: list[Side] = []
    if local_path is not None:
        mismatches += check_device_file(local_path, entities)
        checked.append("device")
    if remote_url is not None:
        with connect(RemoteConfig(), remote_url) as conn:
            conn.read_only = True
            mismatches += check_server_connection(conn, entities)
            conn.rollback()
        checked.append("server")
    return SchemaReport(
        device=None if local_path is None else str(local_path),
        server=None if remote_url is None else describe_url(remote_url),
        mismatches=tuple(mismatches),
        checked=tuple(checked),
    )


def check_device_file(path: str | Path, entities: tuple[Entity, ...] = ENTITIES) -> list[Mismatch]:
    """The device side of ``check_schema``."""
    conn = open_read_only(path)
    try:
        return compare_device(introspect_device(conn), entities)
    finally:
        conn.close()


def check_server_connection(
    conn: Connection[Any], entities: tuple[Entity, ...] = ENTITIES
) -> list[Mismatch]:
    """The server side of ``check_schema``, on an open connection (its current schema)."""
    return compare_server(introspect(conn), read_meta(conn), entities)
