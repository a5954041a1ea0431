"""The demo's third act: two devices kept in sync through the sync server.

The server (the same ASGI app `duru serve` runs, on loopback, connected as the server
role that row level security binds) takes the demo's database; the demo notebook is
device A, a new file is device B. Each syncs, then both edit offline, the same note
included, and sync again: both end with the same notes and the same conflict revision.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from duru import sync
from duru.demo.context import DemoContext, Shown
from duru.demo.server_steps import DEMO_KDF, PASSPHRASE
from duru.local import DeviceStore, export_all
from duru.local.db import Database
from duru.remote import RemoteConfig
from duru.server import create_app, http_head, prepare, server_pool

SYNC_USER = "demo-sync"
SHARED_NOTE = "Design review: sync conflicts"
MERGED_NOTE = "Weekly planning"


def sync_server(ctx: DemoContext) -> Shown:
    """`duru serve`'s app on a free loopback port, as the server role (not the owner)."""
    remote = RemoteConfig.from_env()
    role_url = prepare(_owner_url(ctx), remote)
    app = create_app(lambda: server_pool(remote, role_url))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", http=http_head.PROTOCOL)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(15)
        sock.close()

    ctx.cleanup.callback(stop)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url)
    ctx.sync_url = url
    return Shown(
        "Sync server",
        lines=[
            f"listening on {url} (OpenAPI at {url}/openapi.json)",
            "connected as a non-superuser role that row level security binds",
        ],
    )


def two_devices(ctx: DemoContext) -> Shown:
    """Device A registers and pushes its notebook; device B logs in and pulls it."""
    a, b = ctx.store.path, ctx.folder / "duru-demo-device-b.sqlite"
    Database.open(b).close()
    home = ctx.folder / "home"
    sync.register(
        a, server=_sync_url(ctx), user=SYNC_USER, passphrase=PASSPHRASE, home=home, kdf=DEMO_KDF
    )
    pushed = sync.sync(a, home=home)
    sync.login(b, server=_sync_url(ctx), user=SYNC_USER, passphrase=PASSPHRASE, home=home)
    pulled = sync.sync(b, home=home)
    ctx.device_b = b
    rows = [
        {
            "device": "A",
            "pushed": pushed.pushed,
            "pulled": pushed.pulled,
            "seconds": round(pushed.seconds, 2),
        },
        {
            "device": "B",
            "pushed": pulled.pushed,
            "pulled": pulled.pulled,
            "seconds": round(pulled.seconds, 2),
        },
    ]
    same = _export(a) == _export(b)
    return Shown(
        "Two devices, one account",
        ("device", "pushed", "pulled", "seconds"),
        rows,
        [f"device B holds exactly what A holds: {same}"],
    )


def offline_edits(ctx: DemoContext) -> Shown:
    """Both devices edit offline: one note in different lines (merged), one title both
    ways (kept as a conflicted copy); a sync each way keeps every word."""
    a, b, home = ctx.store.path, _device_b(ctx), ctx.folder / "home"
    clash, merge = ctx.notes[SHARED_NOTE], ctx.notes[MERGED_NOTE]
    with DeviceStore.open(a) as store:
        store.notes.edit(clash, title="Design review: sync conflicts (A's agenda)")
        body = str(store.notes.get(merge)["body"])
        store.notes.edit(merge, body="Monday (moved to Tuesday on A).\n" + body)
        store.notes.create("Written on A while offline", tags=["offline"])
    with DeviceStore.open(b) as store:
        store.notes.edit(clash, title="Design review: sync conflicts (B's notes)")
        store.notes.edit(merge, body=body + "\nFriday: demo (added on B).")
        store.notes.create("Written on B while offline", tags=["offline"])
    for path in (a, b, a):
        sync.sync(path, home=home)
    rows = []
    for name, path in (("A", a), ("B", b)):
        with Database.open(path, create=False) as db:
            rows.append(
                {
                    "device": name,
                    "clashing title": db.scalar("SELECT title FROM notes WHERE id = ?", [clash]),
                    "conflicted copy": db.scalar(
                        "SELECT title FROM notes WHERE title LIKE '%(conflicted copy%'"
                    ),
                    "merged note": " / ".join(
                        line
                        for line in str(
                            db.scalar("SELECT body FROM notes WHERE id = ?", [merge])
                        ).splitlines()
                        if "(moved" in line or "(added" in line
                    ),
                    "offline notes": db.scalar(
                        "SELECT count(*) FROM notes WHERE title LIKE 'Written on %'"
                    ),
                }
            )
    same = _export(a) == _export(b)
    return Shown(
        "Offline edits on both devices",
        ("device", "clashing title", "conflicted copy", "merged note", "offline notes"),
        rows,
        [
            "edits to different lines of a note merge; a title changed both ways keeps the "
            "first write to reach the server, and the other becomes a conflicted copy "
            "(`duru conflicts list`): no word is lost",
            f"both devices hold the same notes: {same}",
        ],
    )


def _export(path: Any) -> dict[str, Any]:
    with Database.open(path, create=False) as db:
        return export_all(db)


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the sync server at {url} did not answer")


def _owner_url(ctx: DemoContext) -> str:
    if ctx.server_url is None:
        raise RuntimeError("the server step must run first")
    return ctx.server_url


def _sync_url(ctx: DemoContext) -> str:
    if ctx.sync_url is None:
        raise RuntimeError("the sync server step must run first")
    return ctx.sync_url


def _device_b(ctx: DemoContext) -> Any:
    if ctx.device_b is None:
        raise RuntimeError("the two devices step must run first")
    return ctx.device_b


SYNC_STEPS = (
    ("sync server", sync_server),
    ("two devices", two_devices),
    ("offline edits", offline_edits),
)
