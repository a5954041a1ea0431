"""Encrypted snapshots on the server: a device's whole database, as bytes it cannot read.

A device that has synced uploads its database sealed as one stream; a new device downloads
it, installs it, and pulls only the changes after its cursor. The server keeps the bytes
in ``snapshot_parts`` (``SNAPSHOT_PART_BYTES`` each) under a ``snapshots`` row, and never
parses them.

An upload is ``begin_upload`` (checks the cursor, clears uploads left by killed clients or
servers, inserts the row with ``complete`` false), one ``write_part`` per part, each its own
short transaction, then ``finish_upload``, which keeps the newer of it and the user's
complete snapshot. ``discard`` deletes an upload that failed (its parts go by cascade).
Every function scopes its transaction to the user (row level security), so none can see
or touch another user's snapshot; the caller passes an autocommit connection.

An upload's ``created_at`` is its lease: set at its start, renewed by every part it
stores, so a complete snapshot's is when its last part came. No transaction or
connection is held while the client sends (a slow link would hold it for hours), so a
server process killed mid-upload leaves its row behind: the lease is how the next
upload's start tells it from one still coming in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection

from duru.errors import RateLimited, UsageError
from duru.remote.layout import ACCOUNTS, SNAPSHOT_PARTS, SNAPSHOTS, USER_ID
from duru.sync.server_account import set_user

SNAPSHOT_PART_BYTES = 1024 * 1024
# An upload that stored no part (1 MiB) for this long was left by a killed client or
# server process: it no longer holds a slot of MAX_UPLOADS. A live one sends a part at
# 3.5 KB/s or faster, however long it takes in all.
LEASE_SECONDS = 300
# Uploads one user may run at once: a retry may overlap the upload it retries.
MAX_UPLOADS = 2
_CLEARED = (
    f"the upload stored no part for {LEASE_SECONDS} s and was cleared: upload the snapshot again"
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A user's complete snapshot: its id, change cursor, size and when it was made."""

    id: uuid.UUID
    cursor: int
    bytes: int
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "bytes": self.bytes,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Kept:
    """What ``finish_upload`` did: kept the upload, or kept the newer one already there."""

    kept: bool
    cursor: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept, "cursor": self.cursor, "bytes": self.bytes}


def begin_upload(conn: Connection[Any], user_id: str, cursor: int) -> uuid.UUID:
    """Start an upload at change cursor ``cursor``; its snapshot id.

    Raises UsageError unless ``horizon_seq <= cursor <= last_change_seq`` and ``cursor > 0``,
    RateLimited when the user already has ``MAX_UPLOADS`` uploads running. Deletes the
    user's uploads that stored no part for ``LEASE_SECONDS`` (abandoned).
    """
    user = uuid.UUID(user_id)
    with conn.transaction():
        set_user(conn, user_id)
        # The account row's lock makes the count and the insert one step per user.
        row = conn.execute(
            f"SELECT last_change_seq, horizon_seq FROM {ACCOUNTS} WHERE {USER_ID} = %s FOR UPDATE",
            (user,),
        ).fetchone()
        last, horizon = row if row is not None else (0, 0)
        first = max(horizon, 1)
        if not first <= cursor <= last:
            span = f"from {first} to {last}" if first <= last else "none yet"
            raise UsageError(
                f"cursor {cursor} is not a change this account has ({span}): sync, then"
                " upload the snapshot at the cursor the device reached"
            )
        conn.execute(
            f"DELETE FROM {SNAPSHOTS} WHERE {USER_ID} = %s AND NOT complete"
            " AND created_at < now() - make_interval(secs => %s)",
            (user, LEASE_SECONDS),
        )
        running = conn.execute(
            f"SELECT count(*) FROM {SNAPSHOTS} WHERE {USER_ID} = %s AND NOT complete", (user,)
        ).fetchone()
        if running is not None and running[0] >= MAX_UPLOADS:
            raise RateLimited(
                f"{running[0]} snapshot uploads of this account are running: wait for them",
                retry_after=60,
            )
        snapshot = uuid.uuid4()
        conn.execute(
            f"INSERT INTO {SNAPSHOTS} ({USER_ID}, id, change_seq, bytes) VALUES (%s, %s, %s, 0)",
            (user, snapshot, cursor),
        )
    return snapshot


def write_part(
    conn: Connection[Any], user_id: str, snapshot: uuid.UUID, part: int, data: bytes
) -> None:
    """Store part number ``part`` of an upload and renew its lease (its own short
    transaction). Raises UsageError when the upload is gone (abandoned and cleared)."""
    with conn.transaction():
        set_user(conn, user_id)
        renewed = conn.execute(
            f"UPDATE {SNAPSHOTS} SET created_at = now() WHERE {USER_ID} = %s AND id = %s"
            " AND NOT complete",
            (uuid.UUID(user_id), snapshot),
        ).rowcount
        if not renewed:
            raise UsageError(_CLEARED)
        conn.execute(
            f"INSERT INTO {SNAPSHOT_PARTS} ({USER_ID}, snapshot_id, part, data)"
            " VALUES (%s, %s, %s, %s)",
            (uuid.UUID(user_id), snapshot, part, data),
        )


def finish_upload(conn: Connection[Any], user_id: str, snapshot: uuid.UUID, size: int) -> Kept:
    """Keep the upload unless a complete snapshot at its cursor or later exists (then it
    goes); the kept one replaces every other complete snapshot of the user.

    Serialised per user on the account row, as pushes are: two uploads finishing at once
    keep the newer. Raises UsageError when the upload is gone (abandoned and cleared).
    """
    user = uuid.UUID(user_id)
    with conn.transaction():
        set_user(conn, user_id)
        conn.execute(f"SELECT 1 FROM {ACCOUNTS} WHERE {USER_ID} = %s FOR UPDATE", (user,))
        mine = conn.execute(
            f"SELECT change_seq FROM {SNAPSHOTS} WHERE {USER_ID} = %s AND id = %s",
            (user, snapshot),
        ).fetchone()
        if mine is None:
            raise UsageError(_CLEARED)
        cursor = int(mine[0])
        newer = conn.execute(
            f"SELECT change_seq, bytes FROM {SNAPSHOTS} WHERE {USER_ID} = %s AND complete"
            " AND change_seq >= %s ORDER BY change_seq DESC LIMIT 1",
            (user, cursor),
        ).fetchone()
        if newer is not None:
            _delete(conn, user, snapshot)
            return Kept(False, int(newer[0]), int(newer[1]))
        conn.execute(
            f"UPDATE {SNAPSHOTS} SET complete = true, bytes = %s WHERE {USER_ID} = %s AND id = %s",
            (size, user, snapshot),
        )
        conn.execute(
            f"DELETE FROM {SNAPSHOTS} WHERE {USER_ID} = %s AND complete AND id <> %s",
            (user, snapshot),
        )
    return Kept(True, cursor, size)


def discard(conn: Connection[Any], user_id: str, snapshot: uuid.UUID) -> None:
    """Delete an upload and its parts (one that failed, or was refused)."""
    with conn.transaction():
        set_user(conn, user_id)
        _delete(conn, uuid.UUID(user_id), snapshot)


def current(conn: Connection[Any], user_id: str) -> Snapshot | None:
    """The user's complete snapshot, or None. One older than the tombstone horizon missed
    deletes a device could no longer pull: it is deleted, and None returned."""
    user = uuid.UUID(user_id)
    with conn.transaction():
        set_user(conn, user_id)
        row = conn.execute(
            f"SELECT s.id, s.change_seq, s.bytes, s.created_at, a.horizon_seq FROM {SNAPSHOTS} s"
            f" JOIN {ACCOUNTS} a ON a.{USER_ID} = s.{USER_ID}"
            f" WHERE s.{USER_ID} = %s AND s.complete ORDER BY s.change_seq DESC LIMIT 1",
            (user,),
        ).fetchone()
        if row is None:
            return None
        if row[1] < row[4]:
            _delete(conn, user, row[0])
            return None
    return Snapshot(row[0], int(row[1]), int(row[2]), row[3])


def read_part(conn: Connection[Any], user_id: str, snapshot: uuid.UUID, part: int) -> bytes | None:
    """Part number ``part`` of a snapshot, or None when it is not there (replaced)."""
    with conn.transaction():
        set_user(conn, user_id)
        row = conn.execute(
            f"SELECT data FROM {SNAPSHOT_PARTS} WHERE {USER_ID} = %s AND snapshot_id = %s"
            " AND part = %s",
            (uuid.UUID(user_id), snapshot, part),
        ).fetchone()
    return None if row is None else bytes(row[0])


def _delete(conn: Connection[Any], user: uuid.UUID, snapshot: uuid.UUID) -> None:
    conn.execute(f"DELETE FROM {SNAPSHOTS} WHERE {USER_ID} = %s AND id = %s", (user, snapshot))
