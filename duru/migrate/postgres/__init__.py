"""The migration engine on the server (PostgreSQL): safe DDL, expand/contract, sealing.

    print(server_plan(url).render())
    server_run(url, passphrases={"alice": "..."})   # preflight, expand, backfill, contract
    print(server_status(url).render())
    server_rollback(url)                            # undo the last run

Operations are the shared ones of :mod:`duru.migrate.ops` plus the server's
own (:mod:`.ops`); :mod:`.impl` turns each into audited, resumable steps.
"""

from __future__ import annotations

from duru.migrate.postgres.config import DdlPolicy, ServerRunConfig
from duru.migrate.postgres.engine import (
    build_plan,
    server_history,
    server_plan,
    server_rollback,
    server_run,
    server_status,
)
from duru.migrate.postgres.ops import (
    AddConstraint,
    ContractColumn,
    CreateServerTable,
    DropConstraint,
    DropNotNull,
    DropPlaintext,
    DropServerTable,
    ExpandColumn,
    SealColumn,
    SetNotNull,
)
from duru.migrate.postgres.plan import ServerPlan, server_set, server_version
from duru.migrate.postgres.preflight import preflight
from duru.migrate.postgres.reports import ServerRunReport, ServerStatus
from duru.migrate.postgres.rollback import ServerRollbackReport
from duru.migrate.postgres.safe_ddl import SafeDDL

__all__ = [
    "AddConstraint",
    "ContractColumn",
    "CreateServerTable",
    "DdlPolicy",
    "DropConstraint",
    "DropNotNull",
    "DropPlaintext",
    "DropServerTable",
    "ExpandColumn",
    "SafeDDL",
    "SealColumn",
    "ServerPlan",
    "ServerRollbackReport",
    "ServerRunConfig",
    "ServerRunReport",
    "ServerStatus",
    "SetNotNull",
    "build_plan",
    "preflight",
    "server_history",
    "server_plan",
    "server_rollback",
    "server_run",
    "server_set",
    "server_status",
    "server_version",
]
