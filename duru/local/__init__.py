"""The device store: a plaintext SQLite database derived from the model."""

from duru.local.db import Database
from duru.local.export import export_all, export_json, write_export
from duru.local.folders import FolderNode
from duru.local.maintenance import Maintainer, maintain
from duru.local.notes import RecentPage
from duru.local.schema import SCHEMA_VERSION, device_ddl
from duru.local.search import Search, SearchHit
from duru.local.store import DeviceStore
from duru.local.tasks import TaskNode

__all__ = [
    "Database",
    "DeviceStore",
    "FolderNode",
    "Maintainer",
    "RecentPage",
    "SCHEMA_VERSION",
    "Search",
    "SearchHit",
    "TaskNode",
    "device_ddl",
    "export_all",
    "export_json",
    "maintain",
    "write_export",
]
