"""Safe DDL on PostgreSQL: bounded lock waits, retries with backoff, every attempt audited.

A DDL statement that waits for a lock makes every later query on the table
wait behind it, so one long transaction plus one ``ALTER TABLE`` can stall a
whole service. Here every DDL runs with ``lock_timeout`` and
``statement_timeout``; when it gives up on its lock (SQLSTATE 55P03, or a
deadlock) it rolls back, records the attempt, waits an exponentially growing,
jittered time and tries again, up to ``DdlPolicy.attempts`` times.

    ddl = SafeDDL(conn, policy, audit)
    ddl.run(where, lambda attempt: conn.execute("ALTER TABLE ..."))   # one transaction
    ddl.outside(where, "CREATE INDEX CONCURRENTLY ...")                # autocommit
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import Connection, errors
from psycopg.pq import TransactionStatus

from duru.errors import MigrationError
from duru.migrate.postgres.audit import PgAudit, Where
from duru.migrate.postgres.config import DdlPolicy
from duru.migrate.postgres.session import autocommit_block, session_timeouts, set_local_timeouts
from duru.model import now_ms

T = TypeVar("T")

# Errors that say "someone else held a lock": trying again later can succeed.
RETRYABLE = (errors.LockNotAvailable, errors.DeadlockDetected)


@dataclass
class SafeDDL:
    """Runs DDL on one connection under a :class:`DdlPolicy`, auditing failed attempts.

    ``audit`` None: attempts are not recorded (for callers outside a run).
    ``sleep`` and ``rng`` are the waiting and the jitter (seedable for tests).
    """

    conn: Connection[Any]
    policy: DdlPolicy
    audit: PgAudit | None = None
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def run(
        self,
        where: Where,
        body: Callable[[int], T],
        *,
        statement_timeout: float | None = None,
        repeatable_read: bool = False,
    ) -> tuple[T, int]:
        """Run ``body(attempt)`` in one transaction with both timeouts set; (result, attempt).

        ``body`` runs again from scratch after a lock timeout (its transaction was
        rolled back), so it must do all its work through this connection.
        ``repeatable_read``: every statement of the transaction sees one snapshot.
        Raises MigrationError (retryable) once every attempt timed out, and
        whatever ``body`` raised otherwise.
        """
        _require_idle(self.conn)
        stmt_timeout = (
            self.policy.statement_timeout if statement_timeout is None else statement_timeout
        )
        attempt = 1
        while True:
            started = now_ms()
            try:
                with self.conn.transaction():
                    if repeatable_read:
                        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    set_local_timeouts(self.conn, self.policy.lock_timeout, stmt_timeout)
                    return body(attempt), attempt
            except RETRYABLE as exc:
                attempt = self._retry_or_raise(where, attempt, started, exc)

    def outside(
        self,
        where: Where,
        statement: str,
        *,
        statement_timeout: float | None = None,
        before_attempt: Callable[[int], None] | None = None,
    ) -> int:
        """Run one statement outside any transaction block (autocommit); the attempt it took.

        For CREATE/DROP INDEX CONCURRENTLY, which PostgreSQL refuses inside a
        transaction. ``before_attempt(attempt)`` runs first on every attempt
        (still outside a transaction), e.g. to drop the invalid index a timed-out
        build left behind. Raises as :meth:`run` does.
        """
        stmt_timeout = self.policy.scan_timeout if statement_timeout is None else statement_timeout
        attempt = 1
        while True:
            if before_attempt is not None:
                before_attempt(attempt)
            started = now_ms()
            try:
                with (
                    autocommit_block(self.conn),
                    session_timeouts(self.conn, self.policy.lock_timeout, stmt_timeout),
                ):
                    self.conn.execute(statement)
                return attempt
            except RETRYABLE as exc:
                attempt = self._retry_or_raise(where, attempt, started, exc)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (from 1): doubling, capped, jittered."""
        base = min(self.policy.max_backoff, self.policy.backoff * 2.0 ** (attempt - 1))
        return float(base * (1.0 - self.policy.jitter * self.rng.random()))

    def _retry_or_raise(self, where: Where, attempt: int, started: int, exc: psycopg.Error) -> int:
        last = attempt >= self.policy.attempts
        wait = 0.0 if last else self.backoff(attempt)
        self._record_attempt(where, attempt, started, exc, wait)
        if last:
            raise MigrationError(
                f"{where.step}: gave up after {attempt} attempts, each waiting at most"
                f" {self.policy.lock_timeout:g}s for its lock ({_reason(exc)}); another session"
                " holds a conflicting lock: see pg_locks / pg_stat_activity, then run again",
                retryable=True,
            ) from exc
        self.sleep(wait)
        return attempt + 1

    def _record_attempt(
        self, where: Where, attempt: int, started: int, exc: psycopg.Error, wait: float
    ) -> None:
        if self.audit is None:
            return
        details = {
            "attempt": attempt,
            "sqlstate": exc.sqlstate,
            "lock_timeout_ms": round(self.policy.lock_timeout * 1000),
            "retry_in_ms": round(wait * 1000),
        }
        with self.conn.transaction():
            self.audit.record(
                where, started_at=started, status="failed", error=_reason(exc), details=details
            )


def _require_idle(conn: Connection[Any]) -> None:
    # Inside an open transaction, transaction() would only make a savepoint and the
    # SET LOCAL timeouts would outlive it: a bug in the caller, never to be worked around.
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise MigrationError("SafeDDL.run called inside an open transaction")


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
