"""Checks before a server run changes anything: server version, role, long transactions, locks.

A long transaction holds locks and an old snapshot: every DDL would time out
behind it and a concurrent index build would wait for it to end. A session
already waiting for a lock means the tables are contended right now. Either
way the run refuses to start, naming the pid, its age and its query, so an
operator can end it (``pg_terminate_backend(pid)``) or wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from duru.errors import PreflightFailed

MIN_SERVER_VERSION = 150000
_QUERY_CHARS = 120


@dataclass(frozen=True)
class Session:
    """Another session, as pg_stat_activity shows it."""

    pid: int
    user: str
    application: str
    state: str
    age: float
    query: str
    blocked_by: tuple[int, ...] = ()

    def describe(self) -> str:
        who = f"pid {self.pid} ({self.user}"
        who += f", {self.application!r})" if self.application else ")"
        return f"{who} {self.state}, query {self.query!r}"


@dataclass(frozen=True)
class PreflightReport:
    """What the checks found (all passed)."""

    server_version: int
    role: str
    sessions: int

    def to_json(self) -> dict[str, object]:
        return {
            "server_version": self.server_version,
            "role": self.role,
            "other_sessions": self.sessions,
        }


def preflight(conn: Connection[Any], *, max_transaction_age: float) -> PreflightReport:
    """Run every check in one read-only look at the server; PreflightFailed on the first failure."""
    with conn.transaction():
        version = check_server(conn)
        role = check_role(conn)
        check_long_transactions(conn, max_transaction_age)
        check_lock_waiters(conn)
        others = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchone()
    return PreflightReport(version, role, int(others[0]) if others else 0)


def check_server(conn: Connection[Any]) -> int:
    found = conn.execute("SHOW server_version_num").fetchone()
    version = int(found[0]) if found else 0
    if version < MIN_SERVER_VERSION:
        raise PreflightFailed(
            f"the server runs PostgreSQL {version // 10000}; duru needs 15 or newer"
        )
    return version


def check_role(conn: Connection[Any]) -> str:
    """The run's role must see every user's rows: row level security must not apply to it."""
    found = conn.execute(
        "SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert found is not None
    if not found[1]:
        raise PreflightFailed(
            f"role {found[0]!r} is subject to row level security, so a migration would see only"
            " some users' rows; run it as a superuser or a role WITH BYPASSRLS"
        )
    return str(found[0])


def check_long_transactions(conn: Connection[Any], max_age: float) -> None:
    """PreflightFailed when another session's transaction is older than ``max_age`` seconds."""
    found = _sessions(
        conn,
        "a.xact_start IS NOT NULL AND now() - a.xact_start > make_interval(secs => %s)",
        "a.xact_start",
        (max_age,),
    )
    if found:
        listed = "; ".join(f"{s.describe()}, transaction open {s.age:.1f}s" for s in found)
        raise PreflightFailed(
            f"{len(found)} transaction(s) open longer than {max_age:g}s: {listed}. They would"
            " make the migration's DDL time out and its concurrent index builds wait; end them"
            " (SELECT pg_terminate_backend(<pid>)) or wait for them, then run again"
        )


def check_lock_waiters(conn: Connection[Any]) -> None:
    """PreflightFailed when any session is waiting for a lock right now."""
    found = _sessions(conn, "a.wait_event_type = 'Lock'", "a.query_start", ())
    if found:
        listed = "; ".join(
            f"{s.describe()} waiting {s.age:.1f}s for a lock held by pid"
            f" {', '.join(str(p) for p in s.blocked_by) or '?'}"
            for s in found
        )
        raise PreflightFailed(
            f"{len(found)} session(s) are waiting for locks: {listed}. The tables are contended;"
            " run the migration when the blocking sessions are done"
        )


def _sessions(
    conn: Connection[Any], condition: str, since: str, params: tuple[Any, ...]
) -> list[Session]:
    rows = conn.execute(
        "SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''),"
        f" coalesce(a.state, ''), extract(epoch FROM now() - {since})::float8,"
        " coalesce(a.query, ''), pg_blocking_pids(a.pid)"
        " FROM pg_stat_activity a"
        " WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()"
        f" AND a.backend_type = 'client backend' AND {condition}"
        f" ORDER BY {since}",
        params,
    ).fetchall()
    return [
        Session(
            int(r[0]),
            r[1],
            r[2],
            r[3],
            float(r[4] or 0.0),
            _short(r[5]),
            tuple(int(p) for p in r[6] or ()),
        )
        for r in rows
    ]


def _short(query: str) -> str:
    flat = " ".join(query.split())
    return flat if len(flat) <= _QUERY_CHARS else flat[: _QUERY_CHARS - 3] + "..."
