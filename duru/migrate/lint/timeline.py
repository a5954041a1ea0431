"""The state of the database session before each statement of a migration.

Rules ask "was this table created in this migration?", "are we inside BEGIN ...
COMMIT?", "is a lock timeout set?", "does this name still denote the table it
denoted three statements ago?". The timeline answers by replaying the facts in
order. Assumptions, since the linter sees no live database:

- every table the migration did not create exists and holds rows, and so does
  one it created with CREATE TABLE IF NOT EXISTS (it may have existed already);
- SQLite foreign key enforcement starts ON (the app and duru turn it on), and a
  ``PRAGMA foreign_keys`` inside a transaction changes nothing, as in SQLite;
- there is no lock or statement timeout until the migration sets one; ``SET
  LOCAL`` lasts to the end of its transaction and does nothing outside one, as in
  PostgreSQL;
- with `assume_in_transaction` (or an alembic migration, `Migration.wrapped`)
  the runner wraps the file in one transaction (`implicit`), which an explicit
  COMMIT or ROLLBACK ends;
- host code frames (`Statement.frame`): statements of one ``with x.transaction()``
  block share an implicit transaction; an alembic ``autocommit_block`` ends the
  runner's transaction, runs outside any, and a new one starts after it.

Each transaction gets a number (`transaction`), so rules can ask whether two
statements ran in the same one; outside a transaction it is None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from duru.migrate.lint.facts import (
    CreateIndex,
    CreateTable,
    DropIndex,
    DropTable,
    Fact,
    Pragma,
    RenameTable,
    SetSetting,
    Transaction,
)
from duru.migrate.lint.migration import Migration
from duru.migrate.lint.sources.pyframe import AUTOCOMMIT

_ZERO_DURATION = re.compile(r"0+\s*(?:us|ms|s|min|h|d)?", re.IGNORECASE)
_OFF = {"off", "0", "false", "no"}
_ON = {"on", "1", "true", "yes"}


@dataclass(frozen=True)
class Moment:
    """Session state just before one statement runs."""

    depth: int = 0
    implicit: bool = False
    transaction: int | None = None
    transactions: int = 0
    new_tables: frozenset[str] = frozenset()
    new_indexes: frozenset[str] = frozenset()
    identities: tuple[tuple[str, str], ...] = ()
    fk_enforced: bool = True
    session_lock_timeout: bool = False
    local_lock_timeout: bool | None = None
    session_statement_timeout: bool = False
    local_statement_timeout: bool | None = None

    @property
    def in_transaction(self) -> bool:
        return self.depth > 0

    @property
    def lock_timeout(self) -> bool:
        local = self.local_lock_timeout
        return self.session_lock_timeout if local is None else local

    @property
    def statement_timeout(self) -> bool:
        local = self.local_statement_timeout
        return self.session_statement_timeout if local is None else local

    def identity(self, name: str) -> str:
        """A key that stays with a table through renames and changes when it is replaced."""
        return dict(self.identities).get(name, name)


@dataclass
class _Replay:
    moment: Moment = field(default_factory=Moment)
    index: int = 0

    def apply(self, fact: Fact) -> None:
        moment = self.moment
        if isinstance(fact, Transaction):
            self.moment = _transaction(moment, fact)
        elif isinstance(fact, CreateTable) and not fact.if_not_exists:
            ids = dict(moment.identities) | {fact.name: f"{fact.name}@{self.index}"}
            self.moment = replace(
                moment, new_tables=moment.new_tables | {fact.name}, identities=_items(ids)
            )
        elif isinstance(fact, DropTable):
            ids = dict(moment.identities) | {fact.name: f"{fact.name}#dropped@{self.index}"}
            self.moment = replace(
                moment, new_tables=moment.new_tables - {fact.name}, identities=_items(ids)
            )
        elif isinstance(fact, RenameTable):
            self.moment = _rename(moment, fact, self.index)
        elif isinstance(fact, CreateIndex) and fact.name:
            self.moment = replace(moment, new_indexes=moment.new_indexes | {fact.name})
        elif isinstance(fact, DropIndex):
            self.moment = replace(moment, new_indexes=moment.new_indexes - {fact.name})
        elif isinstance(fact, Pragma) and fact.name == "foreign_keys":
            self.moment = _foreign_keys(moment, fact)
        elif isinstance(fact, SetSetting) and fact.name in ("lock_timeout", "statement_timeout"):
            self.moment = _timeout(moment, fact, fact.name)


def _items(ids: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(ids.items()))


def _transaction(moment: Moment, fact: Transaction) -> Moment:
    depth, implicit = moment.depth, moment.implicit
    number, count = moment.transaction, moment.transactions
    if fact.action == "begin" and depth == 0:
        depth, number, count = 1, count + 1, count + 1
    elif fact.action == "savepoint":
        depth += 1
    elif fact.action == "release":
        depth = max(depth - 1, 0)
    elif fact.action in ("commit", "rollback"):
        depth, implicit, number = 0, False, None
    return replace(
        moment,
        depth=depth,
        implicit=implicit,
        transaction=number,
        transactions=count,
        local_lock_timeout=moment.local_lock_timeout if depth else None,
        local_statement_timeout=moment.local_statement_timeout if depth else None,
    )


def _rename(moment: Moment, fact: RenameTable, index: int) -> Moment:
    ids = dict(moment.identities)
    ids[fact.new] = moment.identity(fact.old)
    ids[fact.old] = f"{fact.old}#renamed@{index}"
    new_tables = moment.new_tables - {fact.old}
    if fact.old in moment.new_tables:
        new_tables |= {fact.new}
    else:
        new_tables -= {fact.new}
    return replace(moment, new_tables=new_tables, identities=_items(ids))


def _foreign_keys(moment: Moment, fact: Pragma) -> Moment:
    if moment.in_transaction or fact.value is None:
        return moment
    if fact.value in _OFF:
        return replace(moment, fk_enforced=False)
    if fact.value in _ON:
        return replace(moment, fk_enforced=True)
    return moment


def _timeout(moment: Moment, fact: SetSetting, name: str) -> Moment:
    """SET [LOCAL] lock_timeout / statement_timeout; zero means no timeout."""
    enabled = fact.value is not None and not _ZERO_DURATION.fullmatch(fact.value.strip())
    lock = name == "lock_timeout"
    current_local = moment.local_lock_timeout if lock else moment.local_statement_timeout
    if fact.local:
        if not moment.in_transaction:
            return moment
        local: bool | None = enabled
        session = moment.session_lock_timeout if lock else moment.session_statement_timeout
    else:
        local = enabled if current_local is not None else None
        session = enabled
    if lock:
        return replace(moment, session_lock_timeout=session, local_lock_timeout=local)
    return replace(moment, session_statement_timeout=session, local_statement_timeout=local)


_RUNNER = "runner"


def _owner(frame: str | None, wrapped: bool) -> str | None:
    """Who holds the implicit transaction a statement runs in (None: no such transaction)."""
    if frame == AUTOCOMMIT:
        return None
    return frame or (_RUNNER if wrapped else None)


def _switch(moment: Moment, owner: str | None) -> Moment:
    """End the implicit transaction open now (if any) and open `owner`'s (if any).

    An explicit BEGIN ... COMMIT of the migration's own is left alone.
    """
    if moment.implicit:
        moment = replace(
            moment,
            depth=0,
            implicit=False,
            transaction=None,
            local_lock_timeout=None,
            local_statement_timeout=None,
        )
    if owner is None or moment.depth:
        return moment
    count = moment.transactions + 1
    return replace(moment, depth=1, implicit=True, transaction=count, transactions=count)


class Timeline:
    """The `Moment` before every statement of a migration, and after the last."""

    def __init__(self, migration: Migration, *, assume_in_transaction: bool = False) -> None:
        wrapped = assume_in_transaction or migration.wrapped
        start = Moment(depth=1, implicit=True, transaction=0) if wrapped else Moment()
        replay = _Replay(start)
        owner = _RUNNER if wrapped else None
        self._moments: list[Moment] = []
        for statement in migration.statements:
            replay.index = statement.index
            wanted = _owner(statement.frame, wrapped)
            if wanted != owner:
                replay.moment, owner = _switch(replay.moment, wanted), wanted
            self._moments.append(replay.moment)
            for fact in statement.facts:
                replay.apply(fact)
        self._moments.append(replay.moment)

    def before(self, index: int) -> Moment:
        """The state just before statement `index` (len(statements) gives the final state)."""
        return self._moments[index]

    def after(self, index: int) -> Moment:
        return self._moments[index + 1]
