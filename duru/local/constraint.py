"""Turn SQLite's terse constraint errors into messages a person can act on."""

from __future__ import annotations

import sqlite3

from duru.errors import ConstraintViolation
from duru.model import Entity


def explain_integrity_error(e: Entity, exc: sqlite3.IntegrityError) -> ConstraintViolation:
    """A ConstraintViolation that names what the write of an ``e`` row broke."""
    text = str(exc)
    if text.startswith("UNIQUE constraint failed"):
        cols = text.split(":", 1)[1].strip()
        return ConstraintViolation(f"a {e.name} with the same {cols} already exists")
    if text.startswith("FOREIGN KEY constraint failed"):
        parents = sorted({f.references or "" for f in e.foreign_keys})
        return ConstraintViolation(
            f"{e.name}: a referenced {' or '.join(parents)} does not exist, or rows still"
            " depend on this one"
        )
    if text.startswith("NOT NULL constraint failed"):
        col = text.split(":", 1)[1].strip()
        return ConstraintViolation(f"{col} may not be empty (null)")
    if text.startswith("CHECK constraint failed"):
        return ConstraintViolation(f"{e.name}: a value is outside what the model allows ({text})")
    return ConstraintViolation(f"{e.name}: {text}")
