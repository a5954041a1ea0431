"""A change of a pull page that no server of this version writes is refused and kept, and
the rest of the page goes in: an unknown kind or entity, a conflict revision of another
shape. Before, such a change stopped the pull (AttributeError, KeyError) on that page and
on every later sync, or (an unknown kind) vanished unseen. A page that is not a page at
all is one clear error, with nothing of it applied.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_wire_read import _note, _wire

from duru.crypto import AccountKeys, KdfParams, new_account
from duru.errors import SyncServerError
from duru.local import DeviceStore
from duru.local.db import Database
from duru.model import ENTITIES, new_id
from duru.sync import inbox
from duru.sync.http import SyncApi
from duru.sync.protocol import Change

NOTE = ENTITIES[0]


@pytest.fixture(scope="module")
def keys() -> AccountKeys:
    return new_account("pass phrase", new_id(), KdfParams.for_tests())[0]


def _revision(**changed: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "entity": NOTE.name,
        "row_id": new_id(),
        "kind": "upsert",
        "base_version": 1,
        "server_version": 2,
        "row": None,
        "device_id": "device-b",
        "created_at": "2026-12-07T00:00:00+00:00",
        "status": "open",
        "copy_id": None,
        **changed,
    }


BAD = {
    "unknown kind": Change(2, NOTE.name, "rename", new_id(), 1, None),  # type: ignore[arg-type]
    "unknown entity": Change(2, "notebook", "upsert", new_id(), 1, {"id": new_id()}),
    "unknown entity delete": Change(2, "notebook", "delete", new_id(), 1, None),
    "revision a list": Change(2, NOTE.name, "conflict", new_id(), 1, ["x"]),  # type: ignore[arg-type]
    "revision without id": Change(
        2, NOTE.name, "conflict", new_id(), 1, {k: v for k, v in _revision().items() if k != "id"}
    ),
    "revision version as text": Change(
        2, NOTE.name, "conflict", new_id(), 1, _revision(server_version="2")
    ),
    "revision row a string": Change(2, NOTE.name, "conflict", new_id(), 1, _revision(row="x")),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_change_of_another_shape_is_refused_and_the_page_goes_in(
    tmp_path: Path, keys: AccountKeys, name: str
) -> None:
    with DeviceStore.open(tmp_path / "device.db"):
        pass
    row = _note({f.name: None for f in NOTE.fields})
    good = Change(1, NOTE.name, "upsert", row["id"], 1, _wire(NOTE, row, keys))
    genuine_revision = Change(3, NOTE.name, "conflict", row["id"], 1, _revision())
    with Database.open(tmp_path / "device.db") as db:
        inbox.ensure_tables(db)
        applied = inbox.Applied()
        inbox.apply_page(db, keys, [good, BAD[name], genuine_revision], 9, applied)
        assert inbox.cursor(db) == 9
        assert db.find(NOTE, row["id"]) is not None
        assert applied.quarantined == 1 and applied.conflicts == 1
        [(reason,)] = db.conn.execute("SELECT reason FROM quarantine WHERE source = 'sync'")
        assert reason.startswith("UsageError: ")


def test_a_page_that_is_not_a_page_is_one_clear_error() -> None:
    """A real HTTP server on loopback answers with a page whose change lacks its fields."""
    body = json.dumps({"changes": [{"seq": 1}], "cursor": 1, "head": 1, "more": False})

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with SyncApi(f"http://127.0.0.1:{server.server_address[1]}", token="t") as api:
            with pytest.raises(SyncServerError, match="malformed page of changes"):
                api.changes(0, 10)
    finally:
        server.shutdown()
        server.server_close()
