"""A small helper both sides use to gather mismatches with uniform messages."""

from __future__ import annotations

import re

from .report import Mismatch, MismatchKind, Severity, Side


class Collector:
    """Mismatches of one side, in the order they were found."""

    def __init__(self, side: Side) -> None:
        self.side: Side = side
        self.items: list[Mismatch] = []

    @property
    def where(self) -> str:
        return "on the server" if self.side == "server" else "on the device"

    def add(
        self,
        kind: MismatchKind,
        table: str | None,
        column: str | None,
        what: str,
        *,
        expected: str | None = None,
        found: str | None = None,
        note: str | None = None,
        severity: Severity = "error",
    ) -> None:
        """Record ``<table>.<column>: <what> <side> (found ..., expected ...; <note>)``."""
        subject = ".".join(p for p in (table, column) if p) or "database"
        detail = ", ".join(
            part
            for part in (
                f"found {found}" if found is not None else "",
                f"expected {expected}" if expected is not None else "",
            )
            if part
        )
        if note:
            detail = f"{detail}; {note}" if detail else note
        message = f"{subject}: {what} {self.where}" + (f" ({detail})" if detail else "")
        self.items.append(
            Mismatch(self.side, kind, table, column, expected, found, message, severity)
        )


def same_expression(a: str | None, b: str | None) -> bool:
    """Whether two SQL predicates read the same, ignoring case, spaces and parentheses."""
    return _squash(a) == _squash(b)


def _squash(sql: str | None) -> str:
    return re.sub(r"[\s()\"]", "", (sql or "").lower())
