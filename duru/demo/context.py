"""What the demo's steps share and what each one gives back to be shown."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duru.local import DeviceStore


@dataclass
class Shown:
    """What one step shows: a table (``columns`` of ``rows``) and lines of text.

    Values in ``rows`` are plain JSON values (text, numbers, booleans), so a
    result prints as a table for people and as JSON for machines.
    """

    title: str
    columns: tuple[str, ...] = ()
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@dataclass
class DemoContext:
    """The state steps share: the open store, its folder, and what seeding made.

    ``notes`` maps each sample note's title to its id, ``folders`` each folder
    path (names from the top) to its id. A step that starts something that
    must be stopped (a server, a thread) registers it on ``cleanup``; the
    runner closes it when the demo ends, however it ends.
    """

    store: DeviceStore
    folder: Path
    extra_notes: int
    cleanup: ExitStack
    notes: dict[str, str] = field(default_factory=dict)
    folders: dict[tuple[str, ...], str] = field(default_factory=dict)
    server_url: str | None = None
    sync_url: str | None = None
    device_b: Path | None = None

    def title_of(self, note_id: str) -> str:
        """The title of the note ``note_id``."""
        return str(self.store.notes.get(note_id)["title"])


Step = Callable[[DemoContext], Shown]
"""One step of the demo: does its work on the context and returns what it shows."""
