"""Connection-level rules of a server run: timeouts, autocommit blocks, the run lock.

A run uses one connection, autocommit off. Work that cannot run inside a
transaction block (``CREATE INDEX CONCURRENTLY``, ``DROP INDEX CONCURRENTLY``)
runs in an :func:`autocommit_block`, which says so in the code the way
alembic's ``autocommit_block`` does, and refuses to start inside a transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import Connection
from psycopg.pq import TransactionStatus

from duru.errors import MigrationError

# Any constant works; it only has to be the same for every duru process.
RUN_LOCK = 0x64757275_00000002
BACKFILL_SETTING = "duru.migration_backfill"


def millis(seconds: float) -> str:
    """A duration as PostgreSQL's timeout settings take it (milliseconds; "0" is no limit)."""
    return str(max(0, round(seconds * 1000)))


def set_local_timeouts(conn: Connection[Any], lock: float, statement: float) -> None:
    """Set ``lock_timeout`` and ``statement_timeout`` for the current transaction only."""
    conn.execute(
        "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
        (millis(lock), millis(statement)),
    )


def mark_backfill(conn: Connection[Any]) -> None:
    """Tell sync triggers that this transaction is the migration's own backfill.

    An expand trigger copies a client's write of one column into the other; the
    backfill writes the new column itself from the old one, so the trigger must
    not copy it back (lossy conversions would rewrite the old value).
    """
    conn.execute("SELECT set_config(%s, 'on', true)", (BACKFILL_SETTING,))


@contextmanager
def autocommit_block(conn: Connection[Any]) -> Iterator[None]:
    """Run the body outside any transaction block (each statement commits on its own).

    Raises MigrationError when called inside a transaction: its work would be
    committed early, so this is a bug in the caller, never something to paper over.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise MigrationError("autocommit_block entered inside a transaction")
    conn.autocommit = True
    try:
        yield
    finally:
        conn.autocommit = False


@contextmanager
def session_timeouts(conn: Connection[Any], lock: float, statement: float) -> Iterator[None]:
    """Inside an autocommit block: set both timeouts for the session, restore them after."""
    before = conn.execute(
        "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
    ).fetchone()
    assert before is not None
    conn.execute(
        "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
        (millis(lock), millis(statement)),
    )
    try:
        yield
    finally:
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false),"
                " set_config('statement_timeout', %s, false)",
                before,
            )


@contextmanager
def run_lock(conn: Connection[Any]) -> Iterator[None]:
    """Hold the server's migration lock (a session advisory lock) for the body.

    The server drops the lock with the session, so a killed runner never leaves
    it behind. Raises MigrationError (retryable) when another process holds it.
    """
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()
    conn.commit()
    if not got or not got[0]:
        raise MigrationError(
            "another process is migrating this server database; wait for it to finish",
            retryable=True,
        )
    try:
        yield
    finally:
        if not conn.closed:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK,))
            conn.commit()
