"""Monitoring: what PostgreSQL and SQLite expose about duru's databases, and alerts on it.

``monitor(server_db, db)`` reads both (``duru monitor``); ``load_thresholds`` and
``alerts`` turn the figures into alerts (``duru monitor --check``). ``/metrics`` of
``duru serve`` is the server's own (``duru.server.metrics``).
"""

from duru.monitor.device import device_report
from duru.monitor.report import monitor
from duru.monitor.rules import Thresholds, alerts, load_thresholds
from duru.monitor.server import server_report

__all__ = [
    "Thresholds",
    "alerts",
    "device_report",
    "load_thresholds",
    "monitor",
    "server_report",
]
