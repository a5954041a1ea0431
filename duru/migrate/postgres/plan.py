"""The plan of a server run: versions, migrations, every step; and the server's migration chain.

Server migrations are the shared :class:`~duru.migrate.migration.Migration` and
:class:`~duru.migrate.migration.MigrationSet` (one chain of versions, one path
from a version to the current one). A server's version is not read through
``MigrationSet.detect`` (typed for device files) but from ``duru_meta`` with
:func:`server_version`; :func:`server_set` builds a set whose ``detect``
refuses to be used.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection

from duru.errors import SchemaMismatch, UsageError
from duru.migrate.migration import Migration, MigrationSet, render_plan, step_json
from duru.migrate.postgres.config import DdlPolicy
from duru.migrate.postgres.session import millis
from duru.migrate.postgres.steps import PgStep
from duru.remote.schema import read_meta


def server_set(migrations: Sequence[Migration], current: str) -> MigrationSet:
    """A migration chain for the server schema, ending at version ``current``."""
    return MigrationSet(tuple(migrations), current, detect=_no_file_detect, name="server")


def _no_file_detect(conn: sqlite3.Connection) -> str:
    raise UsageError("a server's schema version is read from duru_meta: use server_version()")


def server_version(conn: Connection[Any]) -> str:
    """The schema version ``duru_meta`` records; SchemaMismatch when there is no duru_meta."""
    with conn.transaction():
        meta = read_meta(conn)
    if meta is None or "schema_version" not in meta:
        raise SchemaMismatch(
            "this PostgreSQL database has no duru_meta schema_version: it is not a duru server"
            " database (check the URL; `duru serve` and `duru upload` give a new database"
            " duru's schema)"
        )
    return meta["schema_version"]


@dataclass(frozen=True)
class ServerPlan:
    """What a server run will do, step by step.

    ``run_id`` and ``done`` are set when the plan continues an unfinished run.
    ``users`` are the user ids whose keys this plan holds (their rows get
    sealed and checked); rows of other users wait for a run with their keys.
    """

    database: str
    source_version: str
    target_version: str
    migrations: tuple[str, ...]
    steps: tuple[PgStep, ...]
    users: tuple[str, ...] = ()
    run_id: str | None = None
    done: frozenset[str] = field(default_factory=frozenset)

    @property
    def up_to_date(self) -> bool:
        return not self.migrations

    @property
    def pending(self) -> tuple[PgStep, ...]:
        return tuple(s for s in self.steps if s.key not in self.done)

    def render(self) -> str:
        """The plan as text: one block per phase, one line per step with its row estimate."""
        head = f"{self.database}: server schema {self.source_version}"
        keys = [f"keys held for {len(self.users)} user(s)"]
        text = render_plan(
            head, self.target_version, self.migrations, self.steps, self.run_id, self.done, keys
        )
        if self.up_to_date:
            return text
        return "\n".join([text, *(f"  note: {n}" for n in self.notices)])

    @property
    def notices(self) -> tuple[str, ...]:
        """What an operator must know once the plan ran (e.g. where old plaintext remains)."""
        return tuple(s.notice for s in self.steps if s.notice)

    def script(self, policy: DdlPolicy | None = None) -> str:
        """Every statement the run executes, as one SQL text (for review and the linter)."""
        p = policy or DdlPolicy()
        out = [
            "-- the runner sets both per transaction (SET LOCAL) on every step",
            f"SET lock_timeout = '{millis(p.lock_timeout)}ms';",
            f"SET statement_timeout = '{millis(p.statement_timeout)}ms';",
        ]
        for s in self.steps:
            out.append(f"-- {s.key}: {s.title}")
            out += [stmt.rstrip() + ";" for stmt in s.sql]
        return "\n".join(out) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "source_version": self.source_version,
            "target_version": self.target_version,
            "migrations": list(self.migrations),
            "run_id": self.run_id,
            "users": list(self.users),
            "steps": [
                {**step_json(s), "undo_sql": list(s.undo_sql), "done": s.key in self.done}
                for s in self.steps
            ],
            "notices": list(self.notices),
        }
