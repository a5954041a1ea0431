"""Importing a legacy (version 11) Duru Notes device database: ``duru import``.

``import_legacy(source, target)`` reads the app's old file read-only, by
column name, and writes a new device database through the model; every
source row is imported, merged or quarantined, and the returned
:class:`ImportReport` accounts for each table.
"""

from duru.local.legacy.importer import import_legacy
from duru.local.legacy.report import QUARANTINE_SOURCE, ImportReport, Reason, TableReport
from duru.local.legacy.run import Progress
from duru.local.legacy.spec import LEGACY_TABLES, LEGACY_VERSION, LegacyTable
from duru.local.legacy.values import LEGACY_NAMESPACE, composite_id, map_id

__all__ = [
    "ImportReport",
    "LEGACY_NAMESPACE",
    "LEGACY_TABLES",
    "LEGACY_VERSION",
    "LegacyTable",
    "Progress",
    "QUARANTINE_SOURCE",
    "Reason",
    "TableReport",
    "composite_id",
    "import_legacy",
    "map_id",
]
