"""Server migration 0003: the tables of encrypted snapshots, for a new device's first sync.

``snapshots`` (one row per upload: its cursor, size, whether it completed) and
``snapshot_parts`` (the ciphertext in 1 MiB parts), made exactly as a new server database
has them. Both start empty: no backfill, nothing for a client of the previous release to
miss (it never asks for a snapshot).
"""

from __future__ import annotations

from duru.migrate.migration import Migration
from duru.migrate.postgres.ops import CreateServerTable
from duru.remote.layout import SNAPSHOT_PARTS, SNAPSHOTS

MIGRATION = Migration(
    id="0003_snapshots",
    source="2",
    target="3",
    ops=(CreateServerTable(SNAPSHOTS), CreateServerTable(SNAPSHOT_PARTS)),
    description="snapshots and snapshot_parts: encrypted whole-device snapshots",
)
