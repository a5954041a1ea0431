"""Registers every command group on the app (import order = help order)."""

from __future__ import annotations

from duru.cli import demo, folder, io, note, search, tag, task  # noqa: F401  (registers them)
