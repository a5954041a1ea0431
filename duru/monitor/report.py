"""One monitoring pass: the server's and the device's figures, and the alerts they raise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from duru.errors import UsageError
from duru.remote import RemoteConfig, connect

from .device import device_report
from .rules import Thresholds, alerts
from .server import server_report


def monitor(
    server_db: str | None = None,
    db: Path | None = None,
    limits: Thresholds | None = None,
    config: RemoteConfig | None = None,
) -> dict[str, Any]:
    """``{"server", "device", "alerts"}`` for the PostgreSQL at ``server_db`` and the device ``db``.

    Either may be None (its section is then null); UsageError when both are. The server is
    read over one autocommit connection with the configured timeouts (ServerUnavailable when
    it cannot be reached); nothing is written to either database.
    """
    if server_db is None and db is None:
        raise UsageError("nothing to watch: give --server-db URL, --db PATH or both")
    limits = limits or Thresholds()
    report: dict[str, Any] = {"server": None, "device": None}
    if server_db is not None:
        with connect(config or RemoteConfig.from_env(), server_db, autocommit=True) as conn:
            report["server"] = server_report(conn, min_table_bytes=limits.min_table_bytes)
    if db is not None:
        report["device"] = device_report(db)
    report["alerts"] = alerts(report, limits)
    return report
