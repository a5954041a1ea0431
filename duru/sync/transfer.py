"""What a bulk upload or download did: rows and time per entity, and the progress hook.

``TransferReport.to_json()`` is what ``duru upload --json`` prints; ``Progress`` is the
callback a caller (the CLI's progress bar) passes to follow a transfer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Direction = Literal["upload", "download"]


class Progress(Protocol):
    """Called with an entity's name, the rows done so far and its row count.

    A transfer calls it once with ``done == 0`` before an entity's first chunk, then after
    every chunk; the last call of an entity has ``done == total``. It runs on the
    transferring thread: keep it quick.
    """

    def __call__(self, entity: str, done: int, total: int, /) -> None: ...


@dataclass(frozen=True, slots=True)
class EntityTransfer:
    """The rows of one entity a transfer moved, and how long that took."""

    entity: str
    table: str
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return _rate(self.rows, self.seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "table": self.table,
            "rows": self.rows,
            "seconds": round(self.seconds, 6),
            "rows_per_second": round(self.rows_per_second, 1),
        }


@dataclass(frozen=True, slots=True)
class TransferReport:
    """What ``upload`` or ``download`` did.

    ``seconds`` is the whole call (key derivation and connecting included);
    ``rows_per_second`` counts only the time spent moving rows.
    """

    direction: Direction
    user: str
    user_id: str
    account_created: bool
    entities: tuple[EntityTransfer, ...]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(e.rows for e in self.entities)

    @property
    def transfer_seconds(self) -> float:
        return sum(e.seconds for e in self.entities)

    @property
    def rows_per_second(self) -> float:
        return _rate(self.rows, self.transfer_seconds)

    def entity(self, name: str) -> EntityTransfer:
        """The line of entity ``name`` (``note``) or table ``name`` (``notes``); KeyError."""
        for e in self.entities:
            if name in (e.entity, e.table):
                return e
        raise KeyError(f"no entity {name!r} in this transfer")

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "user": self.user,
            "user_id": self.user_id,
            "account_created": self.account_created,
            "rows": self.rows,
            "seconds": round(self.seconds, 6),
            "transfer_seconds": round(self.transfer_seconds, 6),
            "rows_per_second": round(self.rows_per_second, 1),
            "entities": [e.to_dict() for e in self.entities],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """``to_dict`` as JSON text (keys in a fixed order)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


def _rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else 0.0
