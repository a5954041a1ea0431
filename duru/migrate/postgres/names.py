"""Identifiers the engine makes up (triggers, functions, snapshots), kept within 63 bytes."""

from __future__ import annotations

import hashlib

MAX_IDENTIFIER = 63


def identifier(name: str) -> str:
    """``name``, or its first part plus a short hash when PostgreSQL would truncate it."""
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name.encode()[: MAX_IDENTIFIER - 13].decode(errors='ignore')}_{digest}"


def sync_function(table: str, column: str) -> str:
    """The trigger function (and trigger) keeping ``table.column`` and its expansion in step."""
    return identifier(f"duru_sync_{table}_{column}")
