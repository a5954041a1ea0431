"""Hostile tests of the sync server and client: real processes, real PostgreSQL, real HTTP.

Every test runs ``duru serve --port 0`` as a subprocess on loopback over a fresh database
(``pg_url``, or one database per module for the many small malformed-input cases), talks
to it with httpx or with the real client, and keeps its devices in real SQLite files.

What is attacked:
- isolation: user A against user B's rows through every endpoint, with B's ids, B's
  user_id inside a pushed row, cursors, and every kind of bad token; then row level
  security alone, as the server's own role running a query without a WHERE;
- accounts: an unknown user and a wrong passphrase look alike; failed logins hit 429 per
  account and per address;
- malformed input: each case must be a 4xx JSON error (never a 500) and the server must
  keep answering;
- CJK / emoji / 1 MB bodies between two devices;
- SIGKILL of the client mid-push and mid-pull, and of the server mid-push: no op lost or
  applied twice;
- the server database holds none of the plaintext markers written in notes.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
from psycopg import sql

from duru.bridge import codec_for
from duru.crypto import AccountKeys, KdfParams
from duru.local.store import DeviceStore
from duru.model import entity
from duru.remote.layout import server_table
from duru.remote.roles import PASSWORD_KEY, server_role_name
from duru.sync import client as sync_client
from duru.sync import credentials as creds_file
from duru.sync import outbox
from duru.sync.wire import decode_row, encode_row

if TYPE_CHECKING:
    from conftest import PgDatabases

DURU = str(Path(sys.executable).with_name("duru"))
PASSPHRASE = "correct horse battery staple 🐎"
KDF = KdfParams.interactive()
# A plaintext marker every test writes into notes; none may reach the server database.
MARKER = "PLAINTEXT-MARKER-7c1e"
READY = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
USER_TABLES = (
    "notes",
    "folders",
    "note_folders",
    "note_tags",
    "note_links",
    "reminders",
    "tasks",
    "templates",
    "saved_searches",
    "attachments",
    "conflicts",
    "applied_ops",
    "sessions",
    "accounts",
)


# -- processes -------------------------------------------------------------------


@dataclass
class Server:
    """One ``duru serve`` subprocess over ``db_url``; ``url`` once it is listening."""

    db_url: str
    home: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    port: int = 0
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def start(self, port: int = 0) -> Server:
        env = _env(self.home)
        env["DURU_DATABASE_URL"] = self.db_url
        env.update(self.env_extra)
        self.proc = subprocess.Popen(
            [DURU, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        found: list[str] = []
        done = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.append(line)
                m = READY.search(line)
                if m and not found:
                    found.append(m.group(1))
                    done.set()
            done.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        done.wait(60)
        if not found:
            self.kill()
            raise AssertionError(f"duru serve did not start: {''.join(self.log)[-2000:]}")
        self.url = found[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self.reader is not None:
            self.reader.join(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def alive(self) -> None:
        r = httpx.get(f"{self.url}/v1/health", timeout=10)
        assert r.status_code == 200, r.text


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURU_")}
    env["DURU_HOME"] = str(home)
    env["NO_PROXY"] = "127.0.0.1"
    return env


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``duru serve`` processes; every one is killed after the test."""
    made: list[Server] = []

    def start(db_url: str, port: int = 0, **env: object) -> Server:
        extra = {f"DURU_SERVER_{k.upper()}": str(v) for k, v in env.items()}
        s = Server(db_url, tmp_path / f"server-home-{len(made)}", extra)
        made.append(s)
        return s.start(port)

    yield start
    for s in made:
        s.stop()


@dataclass
class Device:
    path: Path
    home: Path

    def store(self) -> DeviceStore:
        return DeviceStore.open(self.path)

    def creds(self) -> creds_file.Credentials:
        with self.store() as st:
            device = st.db.meta("device_id")
        assert device
        return creds_file.load(self.home, device)

    def sync(self) -> sync_client.SyncReport:
        return sync_client.sync(self.path, home=self.home)

    def export(self) -> dict[str, Any]:
        out = subprocess.run(
            [DURU, "export", "--db", str(self.path)],
            env=_env(self.home),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


def new_device(tmp_path: Path, name: str) -> Device:
    path = tmp_path / f"{name}.sqlite"
    with DeviceStore.open(path):
        pass
    return Device(path, tmp_path / f"home-{name}")


def register(dev: Device, server: Server, user: str) -> creds_file.Credentials:
    saved = sync_client.register(
        dev.path, server=server.url, user=user, passphrase=PASSPHRASE, home=dev.home, kdf=KDF
    )
    KEYS[saved.user_id] = saved.keys()
    return saved


def login(dev: Device, server: Server, user: str) -> creds_file.Credentials:
    return sync_client.login(
        dev.path, server=server.url, user=user, passphrase=PASSPHRASE, home=dev.home
    )


def pending_entries(dev: Device) -> list[dict[str, Any]]:
    """The push entries (wire JSON) the device would send now, without sending them."""
    keys = dev.creds().keys()
    with dev.store() as st:
        from duru.sync import inbox

        inbox.ensure_tables(st.db)
        rows = outbox.pending(st.db)
        return [e.to_json() for _, e in outbox.entries(st.db, rows, keys)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def push(url: str, token: str, entries: list[dict[str, Any]], device: str = "attacker") -> Any:
    return httpx.post(
        f"{url}/v1/push",
        json={"device_id": device, "entries": entries},
        headers=bearer(token),
        timeout=30,
    )


def pull_all(url: str, token: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        r = httpx.get(
            f"{url}/v1/changes", params={"after": after, "limit": 5000}, headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        data = r.json()
        out += data["changes"]
        after = data["cursor"]
        if not data["more"]:
            return out


def assert_json_error(r: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    body = r.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert isinstance(body["error"]["code"], str), body
    return body["error"]


# -- the server database ---------------------------------------------------------


def stored_rows(
    inspect_url: str, query: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """What the server stored, as the superuser (``pg_inspect_url``): every user's rows."""
    with psycopg.connect(inspect_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def server_role_url(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        dbname = str(conn.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
        found = conn.execute(
            "SELECT value FROM duru_secrets WHERE key = %s", (PASSWORD_KEY,)
        ).fetchone()
    assert found is not None
    password = bytes(found[0]).decode("ascii")
    from duru.remote.config import with_role

    return with_role(db_url, server_role_name(dbname), password)


def assert_no_plaintext(inspect_url: str, markers: list[str]) -> None:
    """Scan every text, bytea and jsonb column of every table for each marker.

    As the superuser (``pg_inspect_url``): row level security must not hide a row from it.
    """
    hits = []
    with psycopg.connect(inspect_url, autocommit=True) as conn:
        cols = conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
            " AND c.data_type IN ('text', 'bytea', 'jsonb', 'character varying', 'json')"
        ).fetchall()
        assert len(cols) > 20, cols
        for table, col, kind in cols:
            for marker in markers:
                if kind == "bytea":
                    cond = sql.SQL("position(%s::bytea in {}) > 0").format(sql.Identifier(col))
                    arg: Any = marker.encode("utf-8")
                else:
                    cond = sql.SQL("strpos({}::text, %s) > 0").format(sql.Identifier(col))
                    arg = marker
                n = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), cond),
                    (arg,),
                ).fetchone()
                if n and n[0]:
                    hits.append((table, col, marker, n[0]))
    assert not hits, f"plaintext on the server: {hits}"


# -- isolation ---------------------------------------------------------------------


def test_user_a_cannot_read_change_delete_or_detect_user_b_rows(
    pg_url: str, servers: Callable[..., Server], tmp_path: Path, pg_inspect_url: str
) -> None:
    srv = servers(pg_url)
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    ca = register(a, srv, "alice")
    cb = register(b, srv, "bob")
    with b.store() as st:
        folder = st.folders.create(f"{MARKER} bob folder")
        b_notes = [
            st.notes.create(f"{MARKER} bob secret {i}", f"body {MARKER} {i}", tags=["bobtag"])
            for i in range(5)
        ]
        st.notes.create(f"{MARKER} filed", "x", folder_id=folder["id"])
    with a.store() as st:
        a_note = st.notes.create(f"{MARKER} alice", "alice body")
    b.sync()
    # What A would push for its own note: a well-formed, sealed row to forge from.
    a_entries = pending_entries(a)
    a.sync()
    b_ids = {n["id"] for n in b_notes}
    b_before = stored_rows(
        pg_inspect_url,
        "SELECT id, version, title_enc, change_seq FROM notes WHERE user_id = %s ORDER BY id",
        (uuid.UUID(cb.user_id),),
    )
    assert len(b_before) == 6

    # Pull: A sees only its own rows, from any cursor, with any page size.
    changes = pull_all(srv.url, ca.token)
    assert {c["row_id"] for c in changes if c["entity"] == "note"} == {a_note["id"]}
    for after in (0, 1, 2, 3, 5, 10, 100, 2**62):
        r = httpx.get(
            f"{srv.url}/v1/changes", params={"after": after, "limit": 1}, headers=bearer(ca.token)
        )
        # A cursor past A's own head is "resync needed", whatever B's numbers are.
        assert r.status_code in (200, 410), r.text
        if r.status_code == 200:
            assert not {c["row_id"] for c in r.json()["changes"]} & b_ids
        assert str(cb.user_id) not in r.text
    account = httpx.get(f"{srv.url}/v1/account", headers=bearer(ca.token)).json()
    assert account["user_id"] == ca.user_id and account["name"] == "alice"

    note_entry = next(e for e in a_entries if e["entity"] == "note")
    random_id = str(uuid.uuid4())

    def forged_delete(row_id: str, base: int) -> dict[str, Any]:
        return {
            "entity": "note",
            "row_id": row_id,
            "kind": "delete",
            "base_version": base,
            "op_ids": [str(uuid.uuid4())],
            "row": None,
        }

    # Delete B's notes by id, at B's real versions: answers look like those for a random id.
    for row_id, version, *_ in b_before:
        r_b = push(srv.url, ca.token, [forged_delete(str(row_id), int(version))])
        r_x = push(srv.url, ca.token, [forged_delete(random_id, int(version))])
        assert r_b.status_code == r_x.status_code == 200, (r_b.text, r_x.text)
        res_b, res_x = r_b.json()["results"][0], r_x.json()["results"][0]
        assert {k: v for k, v in res_b.items() if k not in ("op_id", "row_id")} == {
            k: v for k, v in res_x.items() if k not in ("op_id", "row_id")
        }

    # Upsert B's row ids (all but one, kept as an untouched parent below) with A's own
    # (forged) ciphertext, at B's versions: A gets rows of its own, B's stay B's.
    for row_id, version, *_ in b_before[1:]:
        forged = json.loads(json.dumps(note_entry))
        forged.update(row_id=str(row_id), base_version=int(version), op_ids=[str(uuid.uuid4())])
        forged["row"] = resealed(note_entry, str(row_id))
        r = push(srv.url, ca.token, [forged])
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["outcome"] in ("applied", "conflict")
        # The same ciphertext moved to B's id (sealed for another row): refused outright.
        moved = json.loads(json.dumps(forged))
        moved["op_ids"] = [str(uuid.uuid4())]
        moved["row"]["title_enc"] = note_entry["row"]["title_enc"]
        assert_json_error(push(srv.url, ca.token, [moved]), 400)

    # B's user_id inside a pushed row: refused.
    forged = json.loads(json.dumps(note_entry))
    forged["op_ids"] = [str(uuid.uuid4())]
    forged["row"]["user_id"] = cb.user_id
    r = push(srv.url, ca.token, [forged])
    err = assert_json_error(r, 400, 403)
    assert "another user" in err["message"]
    # ... also for a row id of B's.
    victim = str(b_before[0][0])
    forged.update(row_id=victim)
    forged["row"] = {**resealed(note_entry, victim), "user_id": cb.user_id}
    assert_json_error(push(srv.url, ca.token, [forged]), 400, 403)

    # A tag on B's note, a note filed in B's folder: the same answer as for a random parent.
    with a.store() as st:
        st.tags.add(a_note["id"], "mine")
    tag_entry = next(e for e in pending_entries(a) if e["entity"] == "note_tag")

    def tag_on(note_id: str) -> tuple[httpx.Response, str]:
        e = json.loads(json.dumps(tag_entry))
        e["row_id"] = str(uuid.uuid4())
        e["row"] = resealed(tag_entry, e["row_id"], note_id=note_id)
        e["op_ids"] = [str(uuid.uuid4())]
        return push(srv.url, ca.token, [e]), e["row_id"]

    # A has no note of either id: both are kept as conflict revisions of A's, alike.
    (r_b, _), (r_x, _) = tag_on(victim), tag_on(random_id)
    assert r_b.status_code == r_x.status_code == 200, (r_b.text, r_x.text)
    assert r_b.json()["results"][0]["outcome"] == "conflict"
    same = ("entity", "outcome", "version")
    assert [{k: r[k] for k in same} for r in r_b.json()["results"]] == [
        {k: r[k] for k in same} for r in r_x.json()["results"]
    ]
    srv.alive()

    # Nothing of B's changed, B's pull does not see A's forgeries.
    b_after = stored_rows(
        pg_inspect_url,
        "SELECT id, version, title_enc, change_seq FROM notes WHERE user_id = %s ORDER BY id",
        (uuid.UUID(cb.user_id),),
    )
    assert b_after == b_before
    b_changes = pull_all(srv.url, cb.token)
    assert {c["row_id"] for c in b_changes if c["entity"] == "note"} == {
        str(r[0]) for r in b_before
    }
    assert not [c for c in b_changes if c["kind"] != "upsert"]
    assert ca.user_id not in json.dumps(b_changes)
    report = b.sync()
    assert report.conflicts_received == 0
    with b.store() as st:
        assert st.notes.count() == 6
    assert_no_plaintext(pg_inspect_url, [MARKER, "bob secret", "alice body"])


def test_tokens_none_garbage_other_logged_out_and_expired(
    pg_url: str, servers: Callable[..., Server], tmp_path: Path, pg_inspect_url: str
) -> None:
    ttl = 10
    srv = servers(pg_url, token_ttl=ttl)
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    ca = register(a, srv, "alice")
    cb = register(b, srv, "bob")
    logged_in = time.monotonic()
    with b.store() as st:
        st.notes.create(f"{MARKER} bob", "bob")
    b.sync()
    b_token = cb.token

    def every_endpoint(headers: dict[str, str]) -> list[httpx.Response]:
        return [
            httpx.get(f"{srv.url}/v1/account", headers=headers),
            httpx.get(f"{srv.url}/v1/changes", params={"after": 0}, headers=headers),
            httpx.post(
                f"{srv.url}/v1/push", json={"device_id": "x", "entries": []}, headers=headers
            ),
            httpx.post(f"{srv.url}/v1/logout", headers=headers),
        ]

    bad = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer \t x"},
        {"Authorization": "Basic " + base64.b64encode(b"alice:x").decode()},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer " + "A" * 5000},
        {"Authorization": "Bearer " + b_token[:-1] + ("A" if b_token[-1] != "A" else "B")},
        {"Authorization": "Bearer " + b_token.upper()},
        {"Authorization": f"Bearer {cb.user_id}"},
    ]
    for headers in bad:
        for r in every_endpoint(headers):
            err = assert_json_error(r, 401)
            assert "bob" not in err["message"]
            assert r.headers.get("www-authenticate", "").lower().startswith("bearer")

    # Logged out: the token is dead everywhere, the other device's token still works.
    second = new_device(tmp_path, "b2")
    c2 = login(second, srv, "bob")
    r = httpx.post(f"{srv.url}/v1/logout", headers=bearer(c2.token))
    assert r.status_code == 204, r.text
    for r in every_endpoint(bearer(c2.token)):
        assert_json_error(r, 401)
    assert httpx.get(f"{srv.url}/v1/account", headers=bearer(b_token)).status_code == 200

    # Expired (DURU_SERVER_TOKEN_TTL): refused on every endpoint, and sync says so.
    time.sleep(max(0.0, logged_in + ttl + 0.5 - time.monotonic()))
    for token in (ca.token, b_token):
        for r in every_endpoint(bearer(token)):
            assert_json_error(r, 401)
    from duru.errors import AuthFailed

    with pytest.raises(AuthFailed):
        a.sync()
    srv.alive()
    assert_no_plaintext(pg_inspect_url, [MARKER])


def test_row_level_security_is_the_second_wall(
    pg_url: str, servers: Callable[..., Server], tmp_path: Path, pg_inspect_url: str
) -> None:
    srv = servers(pg_url)
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    ca = register(a, srv, "alice")
    cb = register(b, srv, "bob")
    for dev, who in ((a, "alice"), (b, "bob")):
        with dev.store() as st:
            f = st.folders.create(f"{who} folder")
            for i in range(3):
                st.notes.create(f"{MARKER} {who} {i}", "b", tags=[who], folder_id=f["id"])
        dev.sync()
    role_url = server_role_url(pg_url)
    with psycopg.connect(role_url, autocommit=True) as conn:
        who = conn.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert who is not None and who[1] is False and who[2] is False
        # No user set: a query without a WHERE sees nothing in any per-user table.
        for table in USER_TABLES:
            n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            assert n.fetchone() == (0,), table
        conn.execute("SELECT set_config('duru.user_id', '', false)")
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)
        # A set: only A's rows, whatever the query forgets.
        conn.execute("SELECT set_config('duru.user_id', %s, false)", (ca.user_id,))
        rows = conn.execute("SELECT * FROM notes").fetchall()
        assert len(rows) == 3
        users = {r[0] for r in conn.execute("SELECT user_id FROM notes")}
        assert users == {uuid.UUID(ca.user_id)}
        for table in USER_TABLES:
            found = conn.execute(
                sql.SQL("SELECT DISTINCT user_id FROM {}").format(sql.Identifier(table))
            ).fetchall()
            assert {r[0] for r in found} <= {uuid.UUID(ca.user_id)}, table
    # Writes without a WHERE cannot reach B's rows either (rolled back).
    with psycopg.connect(role_url) as conn:
        conn.execute("SELECT set_config('duru.user_id', %s, true)", (ca.user_id,))
        n = conn.execute(
            "UPDATE notes SET is_pinned = true WHERE user_id = %s", (uuid.UUID(cb.user_id),)
        ).rowcount
        assert n == 0
        assert conn.execute("UPDATE notes SET is_pinned = true").rowcount == 3
        conn.rollback()
        conn.execute("SELECT set_config('duru.user_id', %s, true)", (ca.user_id,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE notes SET user_id = %s WHERE true", (uuid.UUID(cb.user_id),))
        conn.rollback()
    # The secrets and meta tables are not the server role's at all.
    with psycopg.connect(role_url, autocommit=True) as conn:
        for table in ("duru_secrets", "duru_meta"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
    assert_no_plaintext(pg_inspect_url, [MARKER])


# -- accounts: unknown user vs wrong passphrase, rate limits ---------------------------


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _flood_head(port: int, total: int, pipelined: bytes = b"") -> tuple[int, bytes]:
    """Send ``pipelined`` then a request whose head grows by 8 KB header lines up to
    ``total`` bytes, no login; (bytes of the head sent before the server closed the
    connection, what it answered)."""
    line = b"X-Pad: " + b"a" * 8000 + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(pipelined + b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        try:
            while sent < total:
                s.sendall(line)
                sent += len(line)
        except OSError:  # reset: the server closed the connection
            pass
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:
            pass
    return sent, answer


def test_a_request_head_without_end_is_refused_before_it_fills_the_servers_memory(
    pg_url: str, servers: Callable[..., Server]
) -> None:
    """Header after header, from anyone: the server answers 400 and closes once the head
    passes its bound, as h11 did, rather than keep every byte (httptools sets no bound).
    Until then the socket buffers take a few MB; the server keeping it all takes 64."""
    srv = servers(pg_url)
    total = 64 * 2**20
    for pipelined in (b"", b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"):
        sent, answer = _flood_head(srv.port, total, pipelined)
        assert sent < total // 4, f"the server read {sent} bytes of one request head"
        if answer:  # the 400 may be lost to the reset
            assert b"HTTP/1.1 400 " in answer, answer[:300]
    srv.alive()
    # A request with a large head within the bound still goes through.
    r = httpx.get(f"{srv.url}/v1/health", headers={"X-Pad": "a" * 30_000}, timeout=10)
    assert r.status_code == 200, r.text


def test_unknown_user_and_wrong_passphrase_look_alike_and_failures_are_rate_limited(
    pg_url: str, servers: Callable[..., Server], tmp_path: Path
) -> None:
    from duru.crypto import derive_keys

    srv = servers(pg_url, max_failures_per_account=3, max_failures_per_address=10)
    a = new_device(tmp_path, "a")
    ca = register(a, srv, "alice")

    def params(name: str) -> httpx.Response:
        return httpx.post(f"{srv.url}/v1/login/params", json={"name": name}, timeout=30)

    def attempt(name: str, key: bytes) -> httpx.Response:
        body = {"name": name, "auth_key": base64.b64encode(key).decode()}
        return httpx.post(f"{srv.url}/v1/login", json=body, timeout=30)

    real, ghost, ghost2 = params("alice"), params("nobody"), params("nobody")
    assert real.status_code == ghost.status_code == 200, (real.text, ghost.text)
    assert _shape(real.json()) == _shape(ghost.json())
    assert ghost.json() == ghost2.json()  # stable: asking twice does not tell
    salt = lambda r: base64.b64decode(r.json()["kdf"]["salt"])  # noqa: E731
    assert len(salt(real)) == len(salt(ghost))
    assert set(real.headers) - {"date", "content-length"} == set(ghost.headers) - {
        "date",
        "content-length",
    }

    wrong = bytes(32)
    r_real, r_ghost = attempt("alice", wrong), attempt("nobody", wrong)
    assert r_real.status_code == r_ghost.status_code == 401
    assert r_real.json() == r_ghost.json()
    assert r_real.headers.get("www-authenticate") == r_ghost.headers.get("www-authenticate")
    for _ in range(2):
        assert attempt("alice", wrong).status_code == 401
        assert attempt("nobody", wrong).status_code == 401

    # Per account: past the limit even the right key is refused, for a real and an
    # unknown name alike; a session already open keeps working.
    good = derive_keys(PASSPHRASE, KdfParams.from_dict(real.json()["kdf"])).auth_key
    limited_real, limited_ghost = attempt("alice", good), attempt("nobody", wrong)
    for r in (limited_real, limited_ghost):
        assert_json_error(r, 429)
        assert int(r.headers["retry-after"]) >= 1
    assert limited_real.json() == limited_ghost.json()
    assert httpx.get(f"{srv.url}/v1/account", headers=bearer(ca.token)).status_code == 200

    # Per address: 6 failures so far; 4 more on fresh names, then a fresh name is refused.
    for i in range(4):
        assert attempt(f"fresh{i}", wrong).status_code == 401
    assert_json_error(attempt("never-tried", wrong), 429)
    srv.alive()


# -- CJK, emoji, 1 MB bodies between two devices ---------------------------------------


def _comparable(export: dict[str, Any]) -> dict[str, Any]:
    """An export without what is the device's own (its quarantine, the export header)."""
    return {k: v for k, v in export.items() if k not in ("quarantine", "duru_export")}


def test_cjk_emoji_and_1mb_bodies_round_trip_between_devices(
    pg_url: str, servers: Callable[..., Server], tmp_path: Path, pg_inspect_url: str
) -> None:
    srv = servers(pg_url)
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    register(a, srv, "ユーザー")
    login(b, srv, "ユーザー")
    mb = 1024 * 1024
    bodies = {
        f"日本語のノート {MARKER}": ("漢字かなカナ한국어中文" * (mb // 30))[: mb // 3],
        f"emoji 👩‍👩‍👧‍👦🏳️‍🌈 {MARKER}": "🎉👍🏽🇯🇵" * (mb // 40),
        f"long ascii {MARKER}": (f"{MARKER} " * (mb // 20))[:mb],
        f"mixed עברית العربية e\u0301 {MARKER}": "Zalgo: " + "a\u0300\u0301\u0302" * 50000,
    }
    with a.store() as st:
        ids = {st.notes.create(t, body, tags=["日本", "🏷️"])["id"]: t for t, body in bodies.items()}
    a.sync()
    b.sync()
    with b.store() as st:
        for note_id, title in ids.items():
            got = st.notes.get(note_id)
            assert got["title"] == title
            assert got["body"] == bodies[title], title
    # Edited on B, back to A.
    first = next(iter(ids))
    edited = "改訂 " + bodies[next(iter(bodies))][::-1]
    with b.store() as st:
        st.notes.edit(first, body=edited)
    b.sync()
    a.sync()
    with a.store() as st:
        assert st.notes.get(first)["body"] == edited
    b.sync()
    assert _comparable(a.export()) == _comparable(b.export())
    assert_no_plaintext(
        pg_inspect_url, [MARKER, "漢字かなカナ", "🎉👍🏽", "改訂", "日本語のノート"]
    )


# -- malformed input: a 4xx JSON error, never a 500, and the server keeps working -------

SMALL_BODY = 64 * 1024
MAX_ENTRIES = 50


@dataclass
class Target:
    server: Server
    token: str
    user_id: str
    note: dict[str, Any]  # a pushed, applied note entry (wire JSON)
    tag: dict[str, Any]  # its tag entry
    db_url: str


@pytest.fixture(scope="module")
def target(pg_databases: PgDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One server (small limits) with one account and one pushed note, for many cases."""
    db_url = pg_databases.create()
    tmp = tmp_path_factory.mktemp("malformed")
    env = {
        "DURU_SERVER_MAX_BODY_BYTES": str(SMALL_BODY),
        "DURU_SERVER_MAX_PUSH_ENTRIES": str(MAX_ENTRIES),
    }
    srv = Server(db_url, tmp / "server-home", env)
    try:
        srv.start()
        dev = new_device(tmp, "dev")
        creds = register(dev, srv, "mallory")
        with dev.store() as st:
            st.notes.create(f"{MARKER} mallory", "body", tags=["t"])
        entries = pending_entries(dev)
        r = push(srv.url, creds.token, entries)
        assert r.status_code == 200, r.text
        assert {x["outcome"] for x in r.json()["results"]} == {"applied"}
        note = next(e for e in entries if e["entity"] == "note")
        tag = next(e for e in entries if e["entity"] == "note_tag")
        yield Target(srv, creds.token, creds.user_id, note, tag, db_url)
        assert_no_plaintext(pg_databases.inspect(db_url), [MARKER])
    finally:
        srv.stop()
        pg_databases.drop(db_url)


# The keys of every account a test made, by user id: a forged row must still be sealed
# for its own place, or the server refuses it before anything else is checked.
KEYS: dict[str, AccountKeys] = {}


def resealed(entry: dict[str, Any], row_id: str, **local: Any) -> dict[str, Any]:
    """``entry``'s row as a new row ``row_id`` (with device-side ``local`` changes), sealed."""
    e = entity(entry["entity"])
    codec, table = codec_for(e), server_table(e)
    keys = KEYS[entry["row"]["user_id"]]
    row = codec.to_local(decode_row(table, entry["row"], codec.columns), keys)
    row.update({e.key: row_id, **local})
    return encode_row(table, codec.to_remote(row, keys, keys.user_id))


def fresh(entry: dict[str, Any], **row: Any) -> dict[str, Any]:
    """A copy of ``entry`` for a new row (new id, new op id, base 0), with ``row`` changes."""
    out = json.loads(json.dumps(entry))
    new = str(uuid.uuid4())
    out.update(row_id=new, base_version=0, op_ids=[str(uuid.uuid4())])
    out["row"] = resealed(entry, new)
    out["row"].update(row)
    return out


def entry_with(t: Target, **changes: Any) -> dict[str, Any]:
    e = fresh(t.note)
    e.update(changes)
    return e


def raw(t: Target, method: str, path: str, content: bytes | str, auth: bool = True) -> Any:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers.update(bearer(t.token))
    return httpx.request(
        method, f"{t.server.url}{path}", content=content, headers=headers, timeout=30
    )


def post(t: Target, path: str, body: Any, auth: bool = True) -> Any:
    return raw(t, "POST", path, json.dumps(body), auth)


def push_body(t: Target, entries: list[Any], device: Any = "dev") -> Any:
    return post(t, "/v1/push", {"device_id": device, "entries": entries})


def changes(t: Target, query: str) -> Any:
    return httpx.get(f"{t.server.url}/v1/changes?{query}", headers=bearer(t.token), timeout=30)


def _record(**kdf: Any) -> dict[str, Any]:
    from duru.crypto import new_account

    _, record = new_account("pw", str(uuid.uuid4()), KDF)
    out = record.to_dict()
    out["kdf"].update(kdf)
    return out


def _op_reused(t: Target) -> Any:
    first = fresh(t.note)
    assert push_body(t, [first]).status_code == 200
    second = fresh(t.note)
    second["op_ids"] = first["op_ids"]
    return push_body(t, [second])


def _streamed_too_large(t: Target) -> Any:
    def chunks() -> Iterator[bytes]:
        yield b'{"device_id": "dev", "entries": ['
        for _ in range(SMALL_BODY // 1000 + 5):
            yield b" " * 1000
        yield b"]}"

    return httpx.post(
        f"{t.server.url}/v1/push", content=chunks(), headers=bearer(t.token), timeout=30
    )


MALFORMED: dict[str, Callable[[Target], Any]] = {
    # accounts
    "register_not_json": lambda t: raw(t, "POST", "/v1/register", b"{not json", auth=False),
    "register_invalid_utf8": lambda t: raw(t, "POST", "/v1/register", b'{"name": "\xff\xfe"}'),
    "register_array": lambda t: raw(t, "POST", "/v1/register", b"[1, 2]", auth=False),
    "register_string": lambda t: raw(t, "POST", "/v1/register", b'"name"', auth=False),
    "register_bad_uuid": lambda t: post(
        t, "/v1/register", {"name": "x1", "user_id": "not-a-uuid", "record": _record()}
    ),
    "register_bad_record": lambda t: post(
        t, "/v1/register", {"name": "x2", "user_id": str(uuid.uuid4()), "record": {"kdf": "x"}}
    ),
    "register_record_list": lambda t: post(
        t, "/v1/register", {"name": "x3", "user_id": str(uuid.uuid4()), "record": [1]}
    ),
    "register_kdf_below_floor": lambda t: post(
        t,
        "/v1/register",
        {"name": "x4", "user_id": str(uuid.uuid4()), "record": _record(opslimit=1)},
    ),
    "register_kdf_not_int": lambda t: post(
        t,
        "/v1/register",
        {"name": "x5", "user_id": str(uuid.uuid4()), "record": _record(opslimit="9")},
    ),
    "register_name_taken": lambda t: post(
        t, "/v1/register", {"name": "mallory", "user_id": str(uuid.uuid4()), "record": _record()}
    ),
    "register_user_id_taken": lambda t: post(
        t, "/v1/register", {"name": "x6", "user_id": t.user_id, "record": _record()}
    ),
    "login_params_int_name": lambda t: post(t, "/v1/login/params", {"name": 5}),
    "login_params_nul_name": lambda t: post(t, "/v1/login/params", {"name": "a\u0000b"}),
    "login_params_surrogate_name": lambda t: raw(
        t, "POST", "/v1/login/params", b'{"name": "\\ud800"}'
    ),
    "login_params_long_name": lambda t: post(t, "/v1/login/params", {"name": "n" * 10_000}),
    "login_params_blank_name": lambda t: post(t, "/v1/login/params", {"name": " "}),
    "login_bad_base64": lambda t: post(t, "/v1/login", {"name": "mallory", "auth_key": "!!!"}),
    "login_short_key": lambda t: post(t, "/v1/login", {"name": "mallory", "auth_key": "AAAA"}),
    "login_key_not_text": lambda t: post(t, "/v1/login", {"name": "mallory", "auth_key": 7}),
    # push: the body
    "push_not_json": lambda t: raw(t, "POST", "/v1/push", b"entries=1"),
    "push_empty_body": lambda t: raw(t, "POST", "/v1/push", b""),
    "push_array_body": lambda t: raw(t, "POST", "/v1/push", b"[]"),
    "push_entries_not_list": lambda t: post(t, "/v1/push", {"device_id": "d", "entries": {}}),
    "push_entries_missing": lambda t: post(t, "/v1/push", {"device_id": "d"}),
    "push_entry_not_object": lambda t: push_body(t, [1]),
    "push_device_not_text": lambda t: push_body(t, [], device=5),
    "push_device_empty": lambda t: push_body(t, [], device=""),
    "push_device_too_long": lambda t: push_body(t, [], device="d" * 65),
    "push_too_many_entries": lambda t: push_body(
        t, [fresh(t.note) for _ in range(MAX_ENTRIES + 1)]
    ),
    "push_body_too_large": lambda t: push_body(t, [], device="d" * SMALL_BODY),
    "push_body_too_large_streamed": _streamed_too_large,
    # push: one entry
    "push_unknown_entity": lambda t: push_body(t, [entry_with(t, entity="secrets")]),
    "push_bad_kind": lambda t: push_body(t, [entry_with(t, kind="drop")]),
    "push_base_negative": lambda t: push_body(t, [entry_with(t, base_version=-1)]),
    "push_base_huge": lambda t: push_body(t, [entry_with(t, base_version=2**63)]),
    "push_base_huger": lambda t: push_body(t, [entry_with(t, base_version=10**400)]),
    "push_base_float": lambda t: push_body(t, [entry_with(t, base_version=1.5)]),
    "push_base_text": lambda t: push_body(t, [entry_with(t, base_version="0")]),
    "push_base_bool": lambda t: push_body(t, [entry_with(t, base_version=True)]),
    "push_base_nan": lambda t: raw(
        t,
        "POST",
        "/v1/push",
        json.dumps({"device_id": "d", "entries": [entry_with(t)]}).replace(
            '"base_version": 0', '"base_version": NaN'
        ),
    ),
    "push_op_ids_empty": lambda t: push_body(t, [entry_with(t, op_ids=[])]),
    "push_op_ids_too_many": lambda t: push_body(
        t, [entry_with(t, op_ids=[str(uuid.uuid4()) for _ in range(65)])]
    ),
    "push_op_ids_not_uuid": lambda t: push_body(t, [entry_with(t, op_ids=["op-1"])]),
    "push_op_ids_not_list": lambda t: push_body(t, [entry_with(t, op_ids=str(uuid.uuid4()))]),
    "push_row_id_not_uuid": lambda t: push_body(t, [entry_with(t, row_id="1; DROP TABLE notes")]),
    "push_row_id_int": lambda t: push_body(t, [entry_with(t, row_id=12)]),
    "push_row_id_mismatch": lambda t: push_body(t, [entry_with(t, row_id=str(uuid.uuid4()))]),
    "push_row_not_object": lambda t: push_body(t, [entry_with(t, row="AAAA")]),
    "push_upsert_without_row": lambda t: push_body(t, [entry_with(t, row=None)]),
    "push_delete_with_row": lambda t: push_body(t, [entry_with(t, kind="delete")]),
    "push_row_missing_column": lambda t: push_body(
        t,
        [
            {
                **fresh(t.note),
                "row": {k: v for k, v in fresh(t.note)["row"].items() if k != "title_enc"},
            }
        ],
    ),
    "push_row_extra_column": lambda t: push_body(t, [fresh(t.note, change_seq=1)]),
    "push_row_user_id_null": lambda t: push_body(t, [fresh(t.note, user_id=None)]),
    "push_row_wrong_type": lambda t: push_body(t, [fresh(t.note, is_pinned="yes")]),
    "push_row_int_for_text": lambda t: push_body(t, [fresh(t.note, note_type=0)]),
    "push_row_nul_in_text": lambda t: push_body(t, [fresh(t.note, note_type="no\u0000te")]),
    "push_row_invalid_base64": lambda t: push_body(t, [fresh(t.note, title_enc="*** not b64")]),
    "push_row_base64_no_padding": lambda t: push_body(t, [fresh(t.note, title_enc="QUJDRA")]),
    "push_row_naive_time": lambda t: push_body(
        t, [fresh(t.note, created_at="2024-01-01T00:00:00")]
    ),
    "push_row_bad_time": lambda t: push_body(t, [fresh(t.note, created_at="yesterday")]),
    "push_row_huge_int": lambda t: push_body(t, [fresh(t.note, version=10**30)]),
    "push_row_user_id_not_uuid": lambda t: push_body(t, [fresh(t.note, user_id="me")]),
    "push_duplicate_rows": lambda t: push_body(t, [t.note | {"op_ids": [str(uuid.uuid4())]}] * 2),
    "push_op_id_reused_for_another_row": _op_reused,
    # pull
    "changes_after_negative": lambda t: changes(t, "after=-1"),
    "changes_after_text": lambda t: changes(t, "after=abc"),
    "changes_after_float": lambda t: changes(t, "after=1.5"),
    "changes_after_20_digits": lambda t: changes(t, "after=" + "9" * 20),
    "changes_after_empty": lambda t: changes(t, "after="),
    "changes_limit_zero": lambda t: changes(t, "limit=0"),
    "changes_limit_huge": lambda t: changes(t, "limit=1000000000"),
    "changes_limit_negative": lambda t: changes(t, "limit=-5"),
    # routing
    "unknown_endpoint": lambda t: httpx.get(f"{t.server.url}/v1/secrets"),
    "wrong_method": lambda t: httpx.delete(f"{t.server.url}/v1/push"),
}


def _stale(t: Target, device: Any) -> Any:
    """A stale write of the pushed note (a conflict revision), from device ``device``."""
    e = json.loads(json.dumps(t.note))
    e.update(base_version=0, op_ids=[str(uuid.uuid4())])
    return push_body(t, [e], device=device)


def _same_op_two_rows(t: Target) -> Any:
    one, two = fresh(t.note), fresh(t.note)
    two["op_ids"] = one["op_ids"]
    return push_body(t, [one, two])


def _raw_push(t: Target, entry: dict[str, Any], old: str, new: str) -> Any:
    text = json.dumps({"device_id": "d", "entries": [entry]})
    assert old in text
    return raw(t, "POST", "/v1/push", text.replace(old, new))


def _huge_verifier(t: Target) -> Any:
    record = _record()
    # Argon2id at 4 GiB and 1000 passes: every later login of this name would make the
    # server try to allocate that and spin (the verifier's cost is the client's choice).
    record["auth_verifier"] = (
        "$argon2id$v=19$m=4194304,t=1000,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
    )
    return post(t, "/v1/register", {"name": "x7", "user_id": str(uuid.uuid4()), "record": record})


# Each of these is a 500 (or a 2xx) on the current code: see the report of this file.
BUGS: dict[str, Callable[[Target], Any]] = {
    "deeply_nested_json": lambda t: raw(t, "POST", "/v1/push", b"[" * 30_000 + b"]" * 30_000),
    "push_entity_not_text": lambda t: push_body(t, [entry_with(t, entity=["note"])]),
    "push_entity_object": lambda t: push_body(t, [entry_with(t, entity={"note": 1})]),
    "changes_after_unicode_digit": lambda t: changes(t, "after=%C2%B2"),
    "changes_after_over_int64": lambda t: changes(t, "after=9999999999999999999"),
    "push_row_enum_violation": lambda t: push_body(t, [fresh(t.note, note_type="bogus")]),
    "push_row_lone_surrogate": lambda t: _raw_push(
        t, fresh(t.note, note_type="XX"), '"XX"', '"\\ud800"'
    ),
    "push_device_nul_on_conflict": lambda t: _stale(t, "dev\u0000ice"),
    "push_device_surrogate_on_conflict": lambda t: _stale(t, "\ud800"),
    "push_same_op_id_for_two_rows": _same_op_two_rows,
    "push_garbage_ciphertext": lambda t: push_body(
        t, [fresh(t.note, title_enc=base64.b64encode(b"garbage, not an envelope").decode())]
    ),
    "push_row_time_year_1": lambda t: push_body(
        t, [fresh(t.note, created_at="0001-01-01T00:00:00+14:00")]
    ),
    "register_verifier_of_huge_cost": _huge_verifier,
}


@pytest.mark.parametrize("case", sorted(BUGS))
def test_malformed_request_bug_is_a_4xx_json_error(target: Target, case: str) -> None:
    r = BUGS[case](target)
    assert_json_error(r, *range(400, 500))
    target.server.alive()


def test_a_tag_on_a_note_the_server_never_had_is_kept_not_refused(target: Target) -> None:
    r = push_body(target, [fresh(target.tag, note_id=str(uuid.uuid4()))])
    assert r.status_code == 200, r.text
    assert [x["outcome"] for x in r.json()["results"]] == ["conflict"]
    target.server.alive()


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_a_4xx_json_error(target: Target, case: str) -> None:
    r = MALFORMED[case](target)
    assert_json_error(r, *range(400, 500))
    target.server.alive()
    # The account still works after it.
    good = fresh(target.note)
    r = push_body(target, [good])
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["outcome"] == "applied"


# -- SIGKILL of the client mid-push and mid-pull, of the server mid-push ------------------


def run_sync(dev: Device) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [DURU, "sync", "--db", str(dev.path), "--json"],
        env=_env(dev.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_after(proc: subprocess.Popen[str], seconds: float) -> tuple[bool, str]:
    """SIGKILL ``proc`` after ``seconds`` unless it ended; (killed, its stderr)."""
    try:
        _, err = proc.communicate(timeout=seconds)
        return False, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        return True, err


def outbox_size(dev: Device) -> int:
    with dev.store() as st:
        return int(st.db.scalar("SELECT count(*) FROM outbox"))


def fill(dev: Device, n: int, tag_every: int = 3) -> None:
    with dev.store() as st, st.db.transaction():
        folder = st.folders.create("inbox")
        for i in range(n):
            st.notes.create(
                f"{MARKER} note {i}",
                f"body {i} " * 20,
                tags=[f"t{i % 7}"] if i % tag_every == 0 else [],
                folder_id=folder["id"] if i % 5 == 0 else None,
            )


def server_counts(inspect_url: str, user_id: str) -> dict[str, int]:
    out = {}
    for table in ("notes", "note_tags", "note_folders", "folders", "conflicts", "applied_ops"):
        rows = stored_rows(
            inspect_url,
            f"SELECT count(*) FROM {table} WHERE user_id = %s",  # noqa: S608 - constant names
            (uuid.UUID(user_id),),
        )
        out[table] = int(rows[0][0])
    return out


def test_client_killed_mid_push_and_mid_pull_loses_nothing_and_applies_nothing_twice(
    pg_url: str, servers: Callable[..., Server], tmp_path: Path, pg_inspect_url: str
) -> None:
    n = 4000
    rnd = random.Random(9)
    srv = servers(pg_url)
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    ca = register(a, srv, "alice")
    login(b, srv, "alice")
    fill(a, n)
    total_ops = outbox_size(a)
    # Mid-push: kill `duru sync` at random points until the outbox drains.
    kills, partial = 0, 0
    for _ in range(12):
        before = outbox_size(a)
        if before == 0:
            break
        killed, err = kill_after(run_sync(a), rnd.uniform(0.3, 1.2))
        after = outbox_size(a)
        kills += killed
        partial += killed and 0 < after < before
        assert "Traceback" not in err, err
    assert kills >= 1
    done = run_sync(a)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert outbox_size(a) == 0
    counts = server_counts(pg_inspect_url, ca.user_id)
    assert counts["notes"] == n
    assert counts["folders"] == 1
    assert counts["note_tags"] == len(range(0, n, 3))
    assert counts["note_folders"] == len(range(0, n, 5))
    assert counts["conflicts"] == 0, "a retried op became a conflict revision"
    # Each row changed once: every row is at its first version, one applied op per row.
    assert counts["applied_ops"] == n + 1 + counts["note_tags"] + counts["note_folders"]
    assert total_ops >= counts["applied_ops"]

    # Mid-pull on the second device.
    pulled_kills = 0
    for _ in range(8):
        killed, err = kill_after(run_sync(b), rnd.uniform(0.8, 3.0))
        pulled_kills += killed
        assert "Traceback" not in err, err
        if not killed:
            break
    done = run_sync(b)
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    # Both sync once more (nothing to do) and hold the same rows.
    for dev in (a, b):
        report = json.loads(
            subprocess.run(
                [DURU, "sync", "--db", str(dev.path), "--json"],
                env=_env(dev.home),
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
        )
        assert report["pushed"] == 0 and report["conflicts_received"] == 0, report
    ea, eb = _comparable(a.export()), _comparable(b.export())
    assert len(ea["notes"]) == n
    assert ea == eb
    assert server_counts(pg_inspect_url, ca.user_id)["conflicts"] == 0
    assert_no_plaintext(pg_inspect_url, [MARKER, "body 1 body"])
    print(f"push kills {kills} (partial {partial}), pull kills {pulled_kills}")


def test_server_killed_mid_push_then_restarted_and_resynced(
    pg_url: str, servers: Callable[..., Server], tmp_path: Path, pg_inspect_url: str
) -> None:
    n = 4000
    srv = servers(pg_url)
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    ca = register(a, srv, "alice")
    login(b, srv, "alice")
    fill(a, n)
    before = outbox_size(a)
    proc = run_sync(a)
    # Kill the server once the first chunks went in.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and outbox_size(a) == before:
        time.sleep(0.05)
    time.sleep(0.3)
    srv.kill()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 or outbox_size(a) == 0, (out, err)
    if proc.returncode != 0:
        assert "Traceback" not in err, err
        assert len(err.strip().splitlines()) <= 2, err
    left = outbox_size(a)
    assert left < before
    # Restart on the same port (the devices keep the server's URL) and sync again.
    again = servers(pg_url, port=srv.port)
    assert again.url == srv.url
    done = run_sync(a)
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert outbox_size(a) == 0
    counts = server_counts(pg_inspect_url, ca.user_id)
    assert counts["notes"] == n and counts["conflicts"] == 0, counts
    b.sync()
    a.sync()
    assert _comparable(a.export()) == _comparable(b.export())
    assert_no_plaintext(pg_inspect_url, [MARKER])


@pytest.mark.parametrize(
    "column, value",
    [
        ("created_at", "0001-01-01T00:00:00+14:00"),
        ("title_enc", base64.b64encode(b"garbage, not an envelope").decode()),
    ],
)
def test_an_accepted_odd_row_does_not_break_pulls_of_the_account(
    pg_url: str, servers: Callable[..., Server], tmp_path: Path, column: str, value: str
) -> None:
    """Whatever push accepts, the account's pulls (server and device) keep working."""
    srv = servers(pg_url)
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    ca = register(a, srv, "alice")
    login(b, srv, "alice")
    with a.store() as st:
        st.notes.create(f"{MARKER} fine", "fine")
    entry = fresh(next(e for e in pending_entries(a) if e["entity"] == "note"), **{column: value})
    a.sync()
    r = push(srv.url, ca.token, [entry])
    if r.status_code != 200:
        assert_json_error(r, *range(400, 500))
        return
    r = httpx.get(f"{srv.url}/v1/changes", params={"after": 0}, headers=bearer(ca.token))
    assert r.status_code == 200, r.text
    report = b.sync()  # must not fail for ever on one row it cannot use
    assert report.pulled >= 1
    with b.store() as st:
        assert st.notes.count() >= 1
