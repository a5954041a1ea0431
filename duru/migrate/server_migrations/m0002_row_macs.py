"""Server migration 0002: every row of every model table gets its row MAC.

Prepare: the layout must be schema 1 apart from row MACs (a database an earlier build
stamped 1 but made without the sync tables is refused, not stamped current). Expand:
``row_mac bytea`` on each table. Backfill on the client side: each user's rows
get their MACs made with that user's keys (``duru.crypto.row_mac``), then every MAC is
checked. Contract, once every row has one: ``row_mac`` NOT NULL, so a row without a
MAC can no longer be written and devices refuse any row whose MAC does not match.
"""

from __future__ import annotations

from duru.migrate.migration import Migration
from duru.migrate.postgres.row_macs import AddRowMacs, CheckBeforeMacs, RequireRowMacs
from duru.model import ENTITIES

MIGRATION = Migration(
    id="0002_row_macs",
    source="1",
    target="2",
    ops=(
        CheckBeforeMacs(),
        *(AddRowMacs(e.table) for e in ENTITIES),
        *(RequireRowMacs(e.table) for e in ENTITIES),
    ),
    description="row_mac on every model table, made on the client side (expand/contract)",
)
