"""Registers every command group on the app (import order = help order)."""

from __future__ import annotations
