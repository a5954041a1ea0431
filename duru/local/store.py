"""The device store: one object that opens a device database and offers the notes API.

>>> with DeviceStore.open("notes.db") as store:          # doctest: +SKIP
...     note = store.notes.create("Groceries", "milk", tags=["home"])
...     store.tasks.create(note["id"], "buy milk", due_date=datetime.now(UTC))

Rows come back as local rows: dicts of model field name -> stored value
(uuid text, 0/1, epoch ms, enum integers, JSON text). Inputs may use the
friendly form (enum names, bools, datetimes). Every write puts its outbox
row in the same transaction; wrap several calls in ``store.db.transaction()``
to make them one.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from duru.errors import DuruError
from duru.local.db import Database
from duru.local.extras import Attachments, SavedSearches, Templates
from duru.local.folders import Folders
from duru.local.links import Links
from duru.local.maintenance import Maintainer, configure_writer, tune_index
from duru.local.notes import Notes
from duru.local.reminders import Reminders
from duru.local.search import Search
from duru.local.tags import Tags
from duru.local.tasks import Tasks


class DeviceStore:
    """A device database with its notes API as attributes (``store.notes``, ...)."""

    def __init__(self, db: Database, maintainer: Maintainer | None = None) -> None:
        self.db = db
        self.maintainer = maintainer
        self.notes = Notes(db)
        self.folders = Folders(db)
        self.tags = Tags(db)
        self.links = Links(db)
        self.tasks = Tasks(db)
        self.reminders = Reminders(db)
        self.templates = Templates(db)
        self.saved_searches = SavedSearches(db)
        self.attachments = Attachments(db)
        self.search = Search(db)

    @classmethod
    def open(
        cls, path: str | Path, *, create: bool = True, background: bool = False
    ) -> DeviceStore:
        """Open (and with ``create``, make) the device database at ``path``.

        Writes never checkpoint the WAL or merge the search index inside COMMIT
        (that is where their latency tail came from). With ``background`` a
        :class:`Maintainer` thread does that work while writes pause, on a
        connection of its own (it never touches ``store.db.conn``) — what a
        long-lived app wants; a short-lived process calls ``maintain(store.db)``
        after its writes instead (the CLI does). Raises NotFound,
        CorruptDatabase or SchemaMismatch as :meth:`Database.open` does.
        """
        db = Database.open(path, create=create)
        try:
            tune_index(db)
            configure_writer(db)
            maintainer = Maintainer(db).start() if background else None
        except BaseException:
            db.close()
            raise
        return cls(db, maintainer)

    @property
    def path(self) -> Path:
        return self.db.path

    def close(self) -> None:
        """Stop the maintainer (if any) and wait for it, then close the database.

        Then raises the error that stopped the maintainer early, if one did
        (StoreError or CorruptDatabase naming the file, see
        :meth:`Maintainer.check`): a background thread has no caller of its own.
        """
        try:
            if self.maintainer is not None:
                self.maintainer.stop()
        finally:
            self.db.close()
        if self.maintainer is not None:
            self.maintainer.check()

    def __enter__(self) -> DeviceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except DuruError as failure:
            if exc is None:
                raise
            exc.add_note(str(failure))  # cleanup never hides the original error
