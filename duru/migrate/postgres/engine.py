"""Entry points of the migration engine for the server: plan, run, status, rollback.

Each call connects to ``url``, holds the server's migration lock (an advisory
lock) for its duration, and disconnects; the CLI formats what they return.

    print(server_plan(url).render())
    report = server_run(url, passphrases={"alice": "..."}, progress=on_progress)
    print(server_status(url).render())
    server_rollback(url)                 # undo the last run, back to its start
    server_rollback(url, to=point_id)    # or to one of its rollback points; then resume

Sealing steps need the keys of the users whose rows they seal (the server
never holds them): pass unlocked ``keys``, or ``passphrases`` by account name
or user id. Rows of users without keys wait for a later run with theirs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from psycopg import Connection

from duru.bridge import account_record, account_user_id
from duru.crypto import AccountKeys, unlock
from duru.errors import MigrationError, NotFound
from duru.migrate.audit import AuditRow
from duru.migrate.migration import MigrationSet
from duru.migrate.ops import Operation
from duru.migrate.postgres import audit, state
from duru.migrate.postgres.audit import PgAudit, Where
from duru.migrate.postgres.config import ServerRunConfig
from duru.migrate.postgres.impl import migration_steps
from duru.migrate.postgres.plan import ServerPlan, server_version
from duru.migrate.postgres.preflight import preflight
from duru.migrate.postgres.reports import ServerRunReport, ServerStatus
from duru.migrate.postgres.rollback import (
    ServerRollbackReport,
    rollback_run,
    rollback_to_point,
)
from duru.migrate.postgres.run_steps import cleanup_steps
from duru.migrate.postgres.runner import ServerRunner
from duru.migrate.postgres.safe_ddl import SafeDDL
from duru.migrate.postgres.session import run_lock
from duru.migrate.postgres.snapshot import snapshots
from duru.migrate.postgres.steps import PgContext
from duru.migrate.progress import Progress
from duru.migrate.state import RunRecord
from duru.migrate.steps import StopRun
from duru.model import now_ms
from duru.remote.config import RemoteConfig, describe_url
from duru.remote.pool import connect
from duru.schemacheck.check import check_server_connection

APPLICATION = "duru-migrate"


def server_plan(
    url: str, *, keys: Sequence[AccountKeys] = (), migrations: MigrationSet | None = None
) -> ServerPlan:
    """What ``server_run`` would do with these keys (or the rest of the unfinished run)."""
    mset = migrations or _shipped()
    with _connect(url) as conn:
        with conn.transaction():
            active = state.active_run(conn) if state.exists(conn) else None
        return build_plan(conn, mset, tuple(k.user_id for k in keys), active, describe_url(url))


def server_run(
    url: str,
    *,
    keys: Sequence[AccountKeys] = (),
    passphrases: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    config: ServerRunConfig | None = None,
    contract: bool = True,
    stop_after: str | None = None,
    migrations: MigrationSet | None = None,
) -> ServerRunReport:
    """Bring the server schema to this build's version; continue an unfinished run first.

    ``passphrases`` (account name or user id -> passphrase) are unlocked with
    the accounts' records. ``contract`` False stops before the contract
    (cleanup phase) so clients of the previous release keep working;
    ``stop_after`` pauses after that step. Raises PreflightFailed before
    anything changes (long transactions, lock waiters, role, version),
    MigrationError when the run stopped itself (rolled back to its start, or
    paused) and the step's error otherwise (the run stays resumable).
    """
    mset = migrations or _shipped()
    cfg = config or ServerRunConfig()
    with _connect(url) as conn, run_lock(conn):
        checked = preflight(conn, max_transaction_age=cfg.max_transaction_age)
        held = _unlock(conn, keys, passphrases or {})
        with conn.transaction():
            active = state.active_run(conn) if state.exists(conn) else None
        the_plan = build_plan(conn, mset, tuple(held), active, describe_url(url))
        if active is None and the_plan.up_to_date:
            return ServerRunReport("up_to_date", the_plan)
        run_id = active.run_id if active is not None else _new_run_id()
        with conn.transaction():
            if active is None:
                state.ensure_tables(conn)
                state.create_run(
                    conn,
                    run_id,
                    the_plan.source_version,
                    the_plan.target_version,
                    list(the_plan.migrations),
                    {"keep_snapshots": cfg.keep_snapshots},
                )
            else:
                state.set_status(conn, run_id, "running")
            _event(conn, run_id, "run/resume" if active else "run/start", checked.to_json())
        ctx = PgContext(conn, SafeDDL(conn, cfg.ddl, PgAudit(conn, run_id)), run_id, cfg, held)
        return _drive(ctx, the_plan, progress, contract, stop_after)


def server_status(url: str, *, migrations: MigrationSet | None = None) -> ServerStatus:
    """The server's schema version, pending migrations, runs and snapshots.

    At the current version with nothing pending, the live schema is also checked
    against the model (as ``duru schema check`` does): a version stamp says what a
    run made, not what a hand edit changed since.
    """
    mset = migrations or _shipped()
    with _connect(url) as conn:
        version = server_version(conn)
        with conn.transaction():
            active = state.active_run(conn) if state.exists(conn) else None
            last = state.last_run(conn) if state.exists(conn) else None
            shown = active or last
            rows = len(audit.rows_of(conn, shown.run_id)) if shown is not None else 0
            found = tuple(snapshots(conn))
        pending = active.migrations if active else tuple(m.id for m in mset.path(version))
        drift: tuple[str, ...] = ()
        if not pending and version == mset.current:
            with conn.transaction():
                checked = check_server_connection(conn)
            drift = tuple(m.message for m in checked if m.severity == "error")
        return ServerStatus(
            describe_url(url), version, mset.current, pending, active, last, found, rows, drift
        )


def server_history(url: str, run_id: str | None = None) -> list[AuditRow]:
    """The audit trail on the server (of one run, or of all), oldest first."""
    with _connect(url) as conn, conn.transaction():
        return audit.rows_of(conn, run_id)


def server_rollback(
    url: str,
    *,
    config: ServerRunConfig | None = None,
    migrations: MigrationSet | None = None,
    reason: str = "asked for",
    to: int | None = None,
) -> ServerRollbackReport:
    """Undo the last run that was not rolled back yet, back to its start or to point ``to``.

    ``to`` is an audit row id of that run (a done step's row or a chunk's, as
    ``server_history`` lists them): only what the run did after it is undone,
    and the run stays paused there for ``server_run`` to resume (see
    :func:`rollback_to_point`). Raises NotFound when there is no such run or
    point, UsageError when ``to`` is no rollback point, and RollbackFailed
    when a step cannot be undone without losing rows (see :mod:`rollback`).
    """
    mset = migrations or _shipped()
    cfg = config or ServerRunConfig()
    with _connect(url) as conn, run_lock(conn):
        with conn.transaction():
            found = [r for r in state.runs(conn) if r.status != "rolled_back"]
        if not found:
            raise NotFound("this server has no migration run to roll back")
        run = found[-1]
        users = _users_of(conn, run.run_id, every=to is not None)
        the_plan = build_plan(conn, mset, users, run, describe_url(url))
        ctx = PgContext(conn, SafeDDL(conn, cfg.ddl, PgAudit(conn, run.run_id)), run.run_id, cfg)
        if to is not None:
            return rollback_to_point(ctx, the_plan, to, reason)
        return rollback_run(ctx, the_plan, reason)


def build_plan(
    conn: Connection[Any],
    mset: MigrationSet,
    users: tuple[str, ...],
    run: RunRecord | None,
    database: str = "server",
) -> ServerPlan:
    """The plan: a new run from the server's version, or the rest of ``run``.

    Raises SchemaMismatch for a database without duru_meta and MigrationError
    when no migration path leads to the current version.
    """
    if run is not None:
        source = run.source_version
        chain = [mset.by_id(i) for i in run.migrations]
    else:
        source = server_version(conn)
        chain = mset.path(source)
    if not chain:
        return ServerPlan(database, source, source, (), ())
    steps = []
    for m in chain:
        steps += migration_steps(conn, m, users)
    rewrote = any(s.key.endswith(".rewrite") for s in steps)
    steps += cleanup_steps(
        (t for m in chain for op in m.ops for t in _tables(op)), checkpoint=rewrote
    )
    done: frozenset[str] = frozenset()
    if run is not None:
        with conn.transaction():
            done = frozenset(state.done_steps(conn, run.run_id))
    return ServerPlan(
        database,
        source,
        chain[-1].target,
        tuple(m.id for m in chain),
        tuple(steps),
        users,
        None if run is None else run.run_id,
        done,
    )


# -- internals ---------------------------------------------------------------------------


def _shipped() -> MigrationSet:
    # Imported here: the shipped migrations are built from this package's operations.
    from duru.migrate.server_migrations import SERVER_MIGRATIONS

    return SERVER_MIGRATIONS


def _drive(
    ctx: PgContext,
    the_plan: ServerPlan,
    progress: Progress | None,
    contract: bool,
    stop_after: str | None,
) -> ServerRunReport:
    start = time.perf_counter()
    runner = ServerRunner(ctx, the_plan, progress, contract, stop_after)
    try:
        outcome = runner.drive()
    except StopRun as stop:
        raise _stopped(ctx, the_plan, stop) from None
    return ServerRunReport(
        outcome,
        the_plan,
        ctx.run_id,
        tuple(runner.done),
        time.perf_counter() - start,
        runner.reason,
    )


def _stopped(ctx: PgContext, the_plan: ServerPlan, stop: StopRun) -> MigrationError:
    """Roll back (or pause) a run that stopped itself; the error to raise."""
    if stop.action == "pause":
        with ctx.conn.transaction():
            _event(ctx.conn, ctx.run_id, "run/pause", {"reason": stop.reason, "step": stop.step})
            state.set_status(ctx.conn, ctx.run_id, "paused", stop.reason)
        return MigrationError(
            f"{stop.step}: {stop.reason}; the run paused at its last rollback point"
            " (resume when the server is less busy)",
            retryable=True,
        )
    report = rollback_run(ctx, the_plan, f"{stop.step}: {stop.reason}")
    return MigrationError(
        f"{stop.step}: {stop.reason}; the run stopped and rolled back to its start"
        f" ({len(report.undone)} steps undone): the server schema is as it was before the run"
    )


def _unlock(
    conn: Connection[Any], keys: Sequence[AccountKeys], passphrases: Mapping[str, str]
) -> dict[str, AccountKeys]:
    held = {k.user_id: k for k in keys}
    for who, passphrase in passphrases.items():
        with conn.transaction():
            cur = conn.execute(
                "SELECT user_id, salt, kdf_params, wrapped_master_key, auth_verifier"
                " FROM accounts WHERE user_id::text = %s OR name = %s",
                (who.lower(), who),
            )
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no account {who!r} on this server")
        record = dict(zip([c.name for c in cur.description or ()], row, strict=True))
        user = account_user_id(record)
        held[user] = unlock(passphrase, account_record(record), user)
    return held


def _users_of(conn: Connection[Any], run_id: str, every: bool = False) -> tuple[str, ...]:
    # Per-user steps have keys like "<migration>/<n>.seal[<user id>]": the users a run covered
    # (``every``: also those of steps begun but not done, which a rollback to a point may reset).
    with conn.transaction():
        if every:
            keys = [p.step for p in state.progressed(conn, run_id)]
        else:
            keys = state.done_steps(conn, run_id)
    return tuple(dict.fromkeys(k[k.index("[") + 1 : -1] for k in keys if k.endswith("]")))


def _tables(op: Operation) -> list[str]:
    for attr in ("table", "index", "expansion"):
        value = getattr(op, attr, None)
        if isinstance(value, str):
            return [value]
        if value is not None and isinstance(getattr(value, "table", None), str):
            return [value.table]
    return []


def _event(conn: Connection[Any], run_id: str, step: str, details: dict[str, Any]) -> None:
    PgAudit(conn, run_id).record(
        Where("run", "prepare", step), started_at=now_ms(), kind="event", details=details
    )


@contextmanager
def _connect(url: str) -> Iterator[Connection[Any]]:
    conn = connect(RemoteConfig(application_name=APPLICATION), url)
    try:
        yield conn
    finally:
        conn.close()


def _new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"
