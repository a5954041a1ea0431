"""The knobs of a server run: DDL timeouts and retries, preflight limits, chunking."""

from __future__ import annotations

from dataclasses import dataclass, field

from duru.migrate.config import RunConfig


@dataclass(frozen=True)
class DdlPolicy:
    """How every DDL statement runs: its timeouts and how it retries a lock timeout.

    Each statement runs with ``lock_timeout`` (seconds): a DDL that cannot get its
    lock in time gives up instead of queueing, because every query that arrives
    after it queues behind it. A give-up (SQLSTATE 55P03, or a deadlock) is
    retried up to ``attempts`` times in all, waiting ``backoff`` seconds doubled
    per attempt (at most ``max_backoff``) with random ``jitter`` (a fraction of
    the wait) so that retrying runners do not collide again. ``statement_timeout``
    bounds each DDL transaction; ``scan_timeout`` bounds statements that scan
    without blocking writers (CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT,
    snapshots); 0 means no limit.
    """

    lock_timeout: float = 2.0
    statement_timeout: float = 60.0
    scan_timeout: float = 0.0
    attempts: int = 8
    backoff: float = 0.25
    max_backoff: float = 15.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.lock_timeout <= 0:
            raise ValueError("lock_timeout must be > 0: a DDL must never wait for a lock unbounded")
        if self.attempts < 1 or self.backoff < 0 or self.max_backoff < self.backoff:
            raise ValueError("need attempts >= 1 and 0 <= backoff <= max_backoff")
        if not 0 <= self.jitter <= 1 or self.statement_timeout < 0 or self.scan_timeout < 0:
            raise ValueError("need 0 <= jitter <= 1 and timeouts >= 0")


@dataclass(frozen=True)
class ServerRunConfig:
    """Everything a server run can be told: DDL policy, preflight limits, chunks.

    Preflight refuses to start while a transaction has been open longer than
    ``max_transaction_age`` seconds or a session waits for a lock (both would
    stall the run's DDL and concurrent index builds). ``chunks`` sizes backfill
    chunks and sets the automatic stops (error budget, latency), as on devices.
    Snapshots taken before destructive steps are dropped when the run finishes
    unless ``keep_snapshots``.
    """

    ddl: DdlPolicy = field(default_factory=DdlPolicy)
    chunks: RunConfig = field(default_factory=RunConfig)
    max_transaction_age: float = 300.0
    keep_snapshots: bool = False
