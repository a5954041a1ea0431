"""Canonical field types of the model, and the enums of the app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """A canonical type; each side of the bridge stores it its own way."""

    UUID = "uuid"
    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    JSON = "json"
    ENUM = "enum"


@dataclass(frozen=True)
class EnumType:
    """An enum: the device stores the app's integer, the server the name."""

    name: str
    members: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        names = [n for n, _ in self.members]
        codes = [c for _, c in self.members]
        if len(set(names)) != len(names) or len(set(codes)) != len(codes):
            raise ValueError(f"enum {self.name} repeats a name or a code")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.members)

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(c for _, c in self.members)

    def code(self, name: str) -> int:
        """The device integer for ``name``; KeyError when it is not a member."""
        for n, c in self.members:
            if n == name:
                return c
        raise KeyError(name)

    def name_of(self, code: int) -> str:
        """The member name for the device integer ``code``; KeyError when unknown."""
        for n, c in self.members:
            if c == code:
                return n
        raise KeyError(code)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)


NOTE_TYPE = EnumType("note_type", (("note", 0), ("template", 1)))
TASK_STATUS = EnumType(
    "task_status", (("open", 0), ("in_progress", 1), ("completed", 2), ("cancelled", 3))
)
TASK_PRIORITY = EnumType("task_priority", (("low", 0), ("medium", 1), ("high", 2), ("urgent", 3)))
REMINDER_TYPE = EnumType("reminder_type", (("time", 0), ("location", 1), ("recurring", 2)))
RECURRENCE = EnumType(
    "recurrence",
    (("none", 0), ("daily", 1), ("weekly", 2), ("monthly", 3), ("yearly", 4)),
)
