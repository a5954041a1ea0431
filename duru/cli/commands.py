"""Registers every command group on the app (import order = help order)."""

from __future__ import annotations

from duru.cli import (  # noqa: F401  (importing registers them)
    attachment,
    conflicts,
    demo,
    folder,
    io,
    link,
    migrate,
    monitor,
    note,
    reminder,
    saved_search,
    schema,
    search,
    sync,
    tag,
    task,
    template,
    transfer,
)
