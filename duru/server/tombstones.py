"""Purging old tombstones, and what a purge means for devices (the tombstone horizon).

A delete stays on the server as a tombstone so every device can pull it. After
``older_than`` (``DURU_SERVER_TOMBSTONE_DAYS``, default 90 days) it is removed for good,
and the user's ``accounts.horizon_seq`` moves up to the highest change sequence number
removed: a device whose cursor is below it may have missed a delete, so its next pull
answers "full resync needed" (see ``pull``) and the device rebuilds from what is live.

A tombstone still pointed at by any other row (a younger tombstone below it, or a live
row, which a push should never leave: a write under a tombstone waits until its device
has written the dead row again, ``revive``) is kept for a later purge, so the purge
itself never cascades into a row it did not mean to remove. Old op-id records,
expired sessions, stale login-failure counters and snapshot uploads abandoned by a
killed client or server go at the same time.

Runs as the schema owner (it crosses users: a superuser or BYPASSRLS owner in one pass,
any other owner one user at a time, as row level security then shows it); ``duru serve``
calls it hourly in the background, under an advisory lock so that one process of several
does the work.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from psycopg import Connection, sql

from duru.model import ENTITIES, Entity
from duru.remote.layout import (
    ACCOUNTS,
    APPLIED_OPS,
    CHANGE_SEQ,
    DELETED_AT,
    LOGIN_FAILURES,
    SESSIONS,
    SNAPSHOTS,
    USER_ID,
)
from duru.remote.schema import USER_SETTING

logger = logging.getLogger("duru.server")
_PURGE_LOCK = 0x64757275_00000003
_ABANDONED_UPLOADS_PURGED_AFTER = 24 * 3600  # seconds after an upload's last part


def purge_tombstones(conn: Connection[Any], older_than: timedelta) -> int:
    """Remove tombstones older than ``older_than`` and raise horizons; the rows removed.

    One transaction; returns 0 at once when another process holds the purge lock.
    """
    with conn.transaction():
        got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_PURGE_LOCK,)).fetchone()
        if not got or not got[0]:
            return 0
        horizon: dict[Any, int] = defaultdict(int)
        removed = 0
        # A role that row level security binds (an owner that is no superuser: FORCE
        # applies to it) sees one user's rows at a time: purge user by user. accounts is
        # not forced, so the owner lists every user there.
        users = [None] if _sees_every_user(conn) else _users(conn)
        for user in users:
            if user is not None:
                conn.execute("SELECT set_config(%s, %s, true)", (USER_SETTING, str(user)))
            removed += _purge_rows(conn, older_than, horizon)
            conn.execute(f"DELETE FROM {APPLIED_OPS} WHERE applied_at < now() - %s", (older_than,))
            # Snapshot uploads a killed client or server left (their parts go by
            # cascade): else they stay until that user's next upload, maybe months away.
            # A day after their last part, where ``begin_upload`` takes their slots back
            # after ``LEASE_SECONDS``: nothing here needs the space sooner.
            conn.execute(
                f"DELETE FROM {SNAPSHOTS} WHERE NOT complete"
                " AND created_at < now() - make_interval(secs => %s)",
                (_ABANDONED_UPLOADS_PURGED_AFTER,),
            )
        conn.cursor().executemany(
            f"UPDATE {ACCOUNTS} SET horizon_seq = greatest(horizon_seq, %s) WHERE {USER_ID} = %s",
            [(seq, user) for user, seq in horizon.items()],
        )
        conn.execute(f"DELETE FROM {SESSIONS} WHERE expires_at < now()")
        conn.execute(f"DELETE FROM {LOGIN_FAILURES} WHERE window_start < now() - interval '1 day'")
    return removed


def _purge_rows(conn: Connection[Any], older_than: timedelta, horizon: dict[Any, int]) -> int:
    """Remove the old tombstones this connection sees, children first, until none is left."""
    removed = 0
    while True:
        step = 0
        for e in reversed(ENTITIES):
            for user, seq in conn.execute(_purge_sql(e), (older_than,)):
                horizon[user] = max(horizon[user], int(seq))
                step += 1
        removed += step
        if not step:
            return removed


def _sees_every_user(conn: Connection[Any]) -> bool:
    found = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(found and found[0])


def _users(conn: Connection[Any]) -> list[Any]:
    return [r[0] for r in conn.execute(f"SELECT {USER_ID} FROM {ACCOUNTS} ORDER BY {USER_ID}")]


def _purge_sql(e: Entity) -> sql.Composed:
    held = [
        sql.SQL(
            "NOT EXISTS (SELECT 1 FROM {child} c WHERE c.{user} = t.{user} AND c.{fk} = t.{key})"
        ).format(
            child=sql.Identifier(child.table),
            user=sql.Identifier(USER_ID),
            fk=sql.Identifier(f.name),
            key=sql.Identifier(e.key),
        )
        for child in ENTITIES
        for f in child.foreign_keys
        if f.references == e.name
    ]
    where = sql.SQL(" AND ").join(
        [sql.SQL("t.{} < now() - %s").format(sql.Identifier(DELETED_AT)), *held]
    )
    return sql.SQL("DELETE FROM {t} t WHERE {where} RETURNING t.{user}, t.{seq}").format(
        t=sql.Identifier(e.table),
        where=where,
        user=sql.Identifier(USER_ID),
        seq=sql.Identifier(CHANGE_SEQ),
    )


def start_purger(
    connect: Callable[[], Connection[Any]], older_than: timedelta, every: float = 3600.0
) -> Callable[[], None]:
    """Purge now and then every ``every`` seconds on a daemon thread; returns ``stop``."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                with connect() as conn:
                    removed = purge_tombstones(conn, older_than)
                if removed:
                    logger.warning("purged %d tombstones older than %s", removed, older_than)
            except Exception:  # noqa: BLE001 - the next round tries again; serving goes on
                logger.exception("purging tombstones failed")
            stop.wait(every)

    threading.Thread(target=loop, name="duru-purge", daemon=True).start()
    return stop.set
