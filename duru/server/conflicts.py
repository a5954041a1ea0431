"""Conflict revisions' statuses: a device says what became of one, every device pulls it.

The server cannot tell a merged revision from an open one (it never sees the text), so
the device that merged it (or the user who resolved it) says so; the revision gets a new
change sequence number and reaches every device at its next pull.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection

from duru.errors import UsageError
from duru.remote.layout import CHANGE_SEQ, CONFLICTS, USER_ID
from duru.sync.protocol import MAX_RESOLUTIONS, canonical_id

from .tree import lock_sequence, store_sequence

STATUSES = frozenset({"open", "merged", "copied", "revived", "resolved"})


def parse_resolutions(data: object) -> list[tuple[str, str, str | None]]:
    """(id, status, copy id) of each item of a request body; UsageError when malformed."""
    if not isinstance(data, list) or len(data) > MAX_RESOLUTIONS:
        raise UsageError(f"resolutions must be a list of at most {MAX_RESOLUTIONS} items")
    out = []
    for item in data:
        status = item.get("status") if isinstance(item, dict) else None
        # A list or an object is no status (and is not hashable: ``in`` would raise).
        if not isinstance(item, dict) or not isinstance(status, str) or status not in STATUSES:
            raise UsageError(f"each resolution has an id and a status in {sorted(STATUSES)}")
        copy = item.get("copy_id")
        out.append(
            (
                canonical_id(item.get("id"), "id"),
                status,
                None if copy is None else canonical_id(copy, "copy_id"),
            )
        )
    return out


def resolve_conflicts(
    conn: Connection[Any], user_id: str, items: list[tuple[str, str, str | None]]
) -> int:
    """Set the statuses (for this user's revisions only); the number changed."""
    changed = 0
    with conn.transaction():
        seq = lock_sequence(conn, user_id)
        for revision, status, copy in items:
            found = conn.execute(
                f"UPDATE {CONFLICTS} SET status = %s, copy_id = %s, {CHANGE_SEQ} = %s"
                f" WHERE {USER_ID} = %s AND id = %s AND (status, copy_id) IS DISTINCT FROM"
                " (%s, %s) RETURNING id",
                (
                    status,
                    None if copy is None else uuid.UUID(copy),
                    seq.last + 1,
                    uuid.UUID(user_id),
                    uuid.UUID(revision),
                    status,
                    None if copy is None else uuid.UUID(copy),
                ),
            ).fetchone()
            if found is not None:
                seq.take()
                changed += 1
        store_sequence(conn, user_id, seq)
    return changed
