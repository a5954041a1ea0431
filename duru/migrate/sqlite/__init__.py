"""The migration engine on a device file (SQLite): what differs from the server.

The DDL implementation (:mod:`.impl`: rebuild by shadow table, chunked copy,
transforms, raw SQL), the run's own steps (:mod:`.run_steps`: preflight,
verified backup, cleanup), rollback by restoring the backup image and replaying
to a point (:mod:`.rollback`), and the entry points (:mod:`.engine`). Kept
import-free so that ``import duru.migrate`` stays cheap.
"""
