"""What ``duru schema check`` found: one ``Mismatch`` per difference, in a ``SchemaReport``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from duru.errors import SchemaCheckError
from duru.model import MODEL_FINGERPRINT

Side = Literal["device", "server"]
Severity = Literal["error", "warning"]


class MismatchKind(StrEnum):
    """The kinds of difference between a live database and the model."""

    MISSING_TABLE = "missing_table"
    EXTRA_TABLE = "extra_table"  # warning: duru never reads it
    MISSING_COLUMN = "missing_column"
    EXTRA_COLUMN = "extra_column"
    TYPE = "type"
    NULLABILITY = "nullability"
    ENUM_VALUES = "enum_values"
    PLAINTEXT_SECRET = "plaintext_secret"  # a secret field readable on the server
    PRIMARY_KEY = "primary_key"
    UNIQUE = "unique"
    FOREIGN_KEY = "foreign_key"
    MISSING_INDEX = "missing_index"
    EXTRA_INDEX = "extra_index"  # warning: costs writes, breaks nothing
    INDEX_DEFINITION = "index_definition"
    ROW_SECURITY = "row_security"
    NOT_STRICT = "not_strict"
    MISSING_TRIGGER = "missing_trigger"
    MISSING_FUNCTION = "missing_function"
    FINGERPRINT = "fingerprint"


@dataclass(frozen=True)
class Mismatch:
    """One difference; ``message`` is the sentence to show a person."""

    side: Side
    kind: MismatchKind
    table: str | None
    column: str | None
    expected: str | None
    found: str | None
    message: str
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        return out


@dataclass(frozen=True)
class SchemaReport:
    """Every mismatch of a device file and/or a server database against the model.

    ``ok`` is true when no mismatch is an error: the databases are compatible with the
    model (warnings, such as an extra index, do not break duru).
    """

    device: str | None
    server: str | None
    mismatches: tuple[Mismatch, ...] = ()
    model_fingerprint: str = MODEL_FINGERPRINT
    checked: tuple[Side, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Mismatch, ...]:
        return tuple(m for m in self.mismatches if m.severity == "error")

    @property
    def warnings(self) -> tuple[Mismatch, ...]:
        return tuple(m for m in self.mismatches if m.severity == "warning")

    def of_kind(self, kind: MismatchKind | str, side: Side | None = None) -> list[Mismatch]:
        """The mismatches of one kind (and side)."""
        return [m for m in self.mismatches if m.kind == kind and side in (None, m.side)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "model_fingerprint": self.model_fingerprint,
            "device": self.device,
            "server": self.server,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "mismatches": [m.to_dict() for m in self.mismatches],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def render_text(self) -> str:
        """A report for a terminal: one line per mismatch, grouped by side."""
        lines = []
        for side, where in (("device", self.device), ("server", self.server)):
            if side not in self.checked:
                continue
            found = [m for m in self.mismatches if m.side == side]
            lines.append(f"{side} {where}: {_summary(found)}")
            lines += [f"  {m.severity:<7} {m.message}" for m in found]
        verdict = "compatible with" if self.ok else "NOT compatible with"
        lines.append(f"{verdict} model {self.model_fingerprint}")
        return "\n".join(lines)

    def raise_for_errors(self) -> None:
        """Raise SchemaCheckError listing the errors, unless ``ok``."""
        if not self.ok:
            listed = "; ".join(m.message for m in self.errors[:5])
            more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
            raise SchemaCheckError(f"{len(self.errors)} schema error(s): {listed}{more}")


def _summary(found: list[Mismatch]) -> str:
    errors = sum(1 for m in found if m.severity == "error")
    warnings = len(found) - errors
    if not found:
        return "matches the model"
    return f"{errors} error(s), {warnings} warning(s)"
