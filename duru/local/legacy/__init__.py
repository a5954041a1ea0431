"""Importing a legacy (version 11) Duru Notes device database: ``duru import``.

``import_legacy(source, target)`` reads the app's old file read-only, by
column name, and writes a new device database through the model; every
source row is imported, merged or quarantined, and the returned
:class:`ImportReport` accounts for each table.

The decisions, each explained where it is made:

- ids: a uuid keeps its value (lower case); any other id becomes
  ``uuid5(LEGACY_NAMESPACE, "<table>:<id>")``, rows without an id of their own
  hash the values that identify them (:mod:`.values`);
- dates: seconds, milliseconds (told apart by magnitude) or ISO-8601, no
  zone meaning UTC (:mod:`.values`); a missing stamp takes the other stamp,
  else the import's time (:mod:`.rows`);
- a NULL where the model needs a value takes the model's default, or empty
  text; an empty tag is refused (:mod:`.rows`);
- duplicates: a row equal to an imported one in every column, after reading
  (tags stripped, ids mapped), is merged; a row with the same key and any
  other difference is quarantined (:mod:`.run`);
- orphans (their note or folder not imported) are quarantined; a reference
  that may be empty (a link's target, a task's reminder) is cleared instead
  (:mod:`.spec`); folders and tasks whose parent is gone, quarantined or in
  a cycle come through at the top level (:mod:`.trees`); a note in several
  folders keeps the most recent filing (:mod:`.filing`);
- unknown columns are named in the report's warnings, their values not
  imported (quarantined rows keep them); unknown tables are warned about;
- ``pending_ops`` and ``fts_notes`` are merged when their row is imported,
  else quarantined as stale (:mod:`.tables`).
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
