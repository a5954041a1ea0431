"""Server migration 0001: seal ``notes.title`` (version 0, the crisis era) into ``title_enc``.

Expand: add ``title_enc bytea`` and a trigger so clients of the previous
release (plaintext) and of this one (sealed) both keep working. Backfill on
the client side: each user's titles sealed with that user's keys, checked by
opening every one. Contract, once every row is sealed: refuse new plaintext,
``title_enc`` NOT NULL, snapshot and drop ``notes.title``.
"""

from __future__ import annotations

from duru.migrate.migration import Migration
from duru.migrate.postgres.ops import DropPlaintext, SealColumn

MIGRATION = Migration(
    id="0001_seal_note_titles",
    source="0",
    target="1",
    ops=(SealColumn("notes", "title"), DropPlaintext("notes", "title")),
    description="notes.title plaintext -> title_enc sealed on the client side (expand/contract)",
)
