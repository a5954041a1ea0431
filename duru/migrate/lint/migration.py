"""One migration as the rules see it: statements in order, with their facts and comments.

A `.sql` file is one migration. In a host-language file, all SQL strings of the
file form one migration, in source order: an app keeps one schema upgrade per
file or function far more often than one per string, and the dangerous patterns
(copy in one string, DROP in the next) span strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from duru.migrate.lint.facts import Fact
from duru.migrate.lint.reading import Reading
from duru.migrate.lint.sqltext import Dialect

F = TypeVar("F", bound=Fact)


@dataclass(frozen=True)
class Statement:
    """One statement: its text as written (trimmed), source lines and facts.

    `open_line` is the line where the host string holding it opens (None in a
    `.sql` file); a host comment there applies to the whole string. `column` and
    `end_column` (1-based, the end inclusive) are known in `.sql` files only, where
    the text is the source itself. `frame` is the host code's transaction frame
    around it, when known (see `sources.pyframe`).
    """

    index: int
    text: str
    line: int
    end_line: int
    open_line: int | None
    reading: Reading
    column: int | None = None
    end_column: int | None = None
    frame: str | None = None

    @property
    def facts(self) -> tuple[Fact, ...]:
        return self.reading.facts


@dataclass(frozen=True)
class Comment:
    """A comment of the migration, SQL or host; `own_line` when no code precedes it."""

    line: int
    text: str
    own_line: bool
    host: bool


@dataclass(frozen=True)
class Migration:
    """The statements and comments of one file, in the order they run.

    `wrapped` when the file's framework runs it in one transaction (alembic).
    """

    path: str
    dialect: Dialect
    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...]
    wrapped: bool = False

    def each(self, kind: type[F]) -> Iterator[tuple[Statement, F]]:
        """Every fact of type `kind`, with its statement, in order."""
        for statement in self.statements:
            for fact in statement.facts:
                if isinstance(fact, kind):
                    yield statement, fact
