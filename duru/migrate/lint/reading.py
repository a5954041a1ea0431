"""The result of reading one statement with a dialect's parser."""

from __future__ import annotations

from dataclasses import dataclass

from duru.migrate.lint.facts import Fact


@dataclass(frozen=True)
class Reading:
    """Facts of a statement; `error` when the parser rejected it.

    `understood` is False when the statement is valid but the fact reader has no
    model of it (the rules then see no facts for it).
    """

    facts: tuple[Fact, ...] = ()
    error: str | None = None
    understood: bool = True


def unquote_name(name: str, quoted: bool) -> str:
    """The name rules compare: lower case unless it was quoted."""
    return name if quoted else name.lower()
