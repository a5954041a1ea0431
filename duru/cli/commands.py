"""Registers every command group on the app (import order = help order)."""

from __future__ import annotations

from duru.cli import (  # noqa: F401  (importing registers them)
    demo,
    folder,
    io,
    migrate,
    note,
    schema,
    search,
    sync,
    tag,
    task,
    transfer,
)
