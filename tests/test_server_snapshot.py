"""Encrypted snapshots on `duru serve`: PUT /v1/snapshot, GET /v1/snapshot/info, GET /v1/snapshot.

Two ``duru serve`` subprocesses over one database per module (real PostgreSQL, real
loopback HTTP): ``main`` with an 8 MiB snapshot limit, ``tiny`` with 1.5 MiB (so a part
is stored before the limit is passed). Two accounts, alice and bob, registered by the
real client; each test starts with no snapshots and both accounts at change 100. What
the server stored is read as the superuser (past row level security, on purpose); what
row level security lets the server's own role see is read as that role.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
from test_sync_attacks import (
    Server,
    bearer,
    new_device,
    register,
    server_role_url,
    stored_rows,
)

from duru.server.snapshots import LEASE_SECONDS, SNAPSHOT_PART_BYTES
from duru.sync.server_account import set_user

if TYPE_CHECKING:
    from conftest import PgDatabases

MiB = 1024 * 1024
TINY = 3 * MiB // 2
LAST = 100


@dataclass
class World:
    main: Server
    tiny: Server
    db_url: str
    inspect: str
    alice: str  # token
    alice_id: str
    bob: str
    bob_id: str


@pytest.fixture(scope="module")
def world(pg_databases: PgDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    db_url = pg_databases.create()
    tmp = tmp_path_factory.mktemp("snapshots")
    main = Server(db_url, tmp / "main-home", {"DURU_SERVER_MAX_SNAPSHOT_BYTES": str(8 * MiB)})
    tiny = Server(db_url, tmp / "tiny-home", {"DURU_SERVER_MAX_SNAPSHOT_BYTES": str(TINY)})
    try:
        main.start()
        tiny.start()
        a = register(new_device(tmp, "alice"), main, "alice-snap")
        b = register(new_device(tmp, "bob"), main, "bob-snap")
        yield World(
            main, tiny, db_url, pg_databases.inspect(db_url), a.token, a.user_id, b.token, b.user_id
        )
        # No request of the module made a server fail (a 500 or a traceback in its log).
        for server in (main, tiny):
            logged = "".join(server.log)
            assert "Traceback" not in logged and " 500 " not in logged, logged[-3000:]
    finally:
        tiny.stop()
        main.stop()
        pg_databases.drop(db_url)


@pytest.fixture
def w(world: World) -> World:
    """``world`` with no snapshots, both accounts at change ``LAST``, horizon 0."""
    with psycopg.connect(world.inspect, autocommit=True) as conn:
        conn.execute("DELETE FROM snapshots")
        conn.execute("UPDATE accounts SET last_change_seq = %s, horizon_seq = 0", (LAST,))
    return world


def put(w: World, token: str, body: Any, cursor: object, server: Server | None = None) -> Any:
    return httpx.put(
        f"{(server or w.main).url}/v1/snapshot",
        params={"cursor": str(cursor)},
        content=body,
        headers={**bearer(token), "Content-Type": "application/octet-stream"},
        timeout=60,
    )


def get(w: World, token: str, path: str = "/v1/snapshot") -> httpx.Response:
    return httpx.get(f"{w.main.url}{path}", headers=bearer(token), timeout=60)


def stored(w: World) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every snapshot row (user, id, cursor, bytes, complete) and part (user, id, part, size)."""
    snaps = stored_rows(
        w.inspect,
        "SELECT user_id::text, id, change_seq, bytes, complete FROM snapshots ORDER BY 1, 3",
    )
    parts = stored_rows(
        w.inspect,
        "SELECT user_id::text, snapshot_id, part, length(data) FROM snapshot_parts"
        " ORDER BY 1, 2, 3",
    )
    return snaps, parts


def error_code(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    return str(r.json()["error"]["code"])


def raw_request(server: Server, head: str, body: Iterable[bytes] = (), pause: float = 0) -> bytes:
    """Send a request head and body pieces on a socket (ignoring a peer that stops reading);
    the answer, as far as the server sends one within 20 seconds."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        s.sendall(head.encode("latin-1"))
        try:
            for piece in body:
                s.sendall(piece)
                if pause:
                    time.sleep(pause)
        except OSError:
            pass  # the server answered and closed: read what it said
        out = b""
        try:
            while not out.endswith(b"}") and (piece := s.recv(65536)):
                out += piece
        except OSError:
            pass
        return out


def head(token: str | None, cursor: int, *lines: str) -> str:
    auth = [f"Authorization: Bearer {token}"] if token else []
    all_lines = [f"PUT /v1/snapshot?cursor={cursor} HTTP/1.1", "Host: x", *auth, *lines]
    return "\r\n".join(all_lines) + "\r\n\r\n"


def wait_until(check: Any, seconds: float = 15) -> None:
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


# -- round trips -------------------------------------------------------------------------


def test_round_trip_of_several_parts(w: World) -> None:
    data = os.urandom(5 * MiB + 123)
    r = put(w, w.alice, data, 50)
    assert r.status_code == 201, r.text
    assert r.json() == {"kept": True, "cursor": 50, "bytes": len(data)}
    info = get(w, w.alice, "/v1/snapshot/info")
    assert info.status_code == 200
    assert info.json()["cursor"] == 50 and info.json()["bytes"] == len(data)
    assert info.json()["created_at"]
    got = get(w, w.alice)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["duru-snapshot-cursor"] == "50"
    assert got.content == data
    snaps, parts = stored(w)
    assert [(s[2], s[3], s[4]) for s in snaps] == [(50, len(data), True)]
    assert [p[3] for p in parts] == [SNAPSHOT_PART_BYTES] * 5 + [123]


def test_chunked_upload_without_a_content_length(w: World) -> None:
    data = os.urandom(3 * MiB + 7)
    sent: list[httpx.Request] = []

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 100_000):  # not aligned with the server's parts
            yield data[i : i + 100_000]

    with httpx.Client(event_hooks={"request": [sent.append]}, timeout=60) as client:
        r = client.put(
            f"{w.main.url}/v1/snapshot",
            params={"cursor": "7"},
            content=pieces(),
            headers=bearer(w.alice),
        )
    assert "content-length" not in sent[0].headers
    assert sent[0].headers["transfer-encoding"] == "chunked"
    assert r.status_code == 201, r.text
    assert get(w, w.alice).content == data


def test_a_newer_cursor_replaces_the_snapshot_and_an_older_one_is_not_kept(w: World) -> None:
    first, second = os.urandom(MiB + 1), os.urandom(2 * MiB + 5)
    assert put(w, w.alice, first, 10).status_code == 201
    r = put(w, w.alice, second, 20)
    assert r.status_code == 201 and r.json() == {"kept": True, "cursor": 20, "bytes": len(second)}
    older = put(w, w.alice, os.urandom(100), 15)
    assert older.status_code == 200, older.text
    assert older.json() == {"kept": False, "cursor": 20, "bytes": len(second)}
    same = put(w, w.alice, os.urandom(100), 20)
    assert same.json() == {"kept": False, "cursor": 20, "bytes": len(second)}
    assert get(w, w.alice).content == second
    snaps, parts = stored(w)
    assert [(s[2], s[4]) for s in snaps] == [(20, True)]
    assert {p[1] for p in parts} == {snaps[0][1]} and len(parts) == 3


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", [0, LAST + 1, "abc", "-1", "", "1e3", 2**63])
def test_a_cursor_out_of_bounds_is_refused(w: World, cursor: object) -> None:
    r = put(w, w.alice, b"sealed", cursor)
    assert error_code(r, 400) == "bad_request"
    assert "cursor" in r.json()["error"]["message"]
    assert stored(w) == ([], [])


def test_a_cursor_before_the_tombstone_horizon_is_refused(w: World) -> None:
    with psycopg.connect(w.inspect, autocommit=True) as conn:
        conn.execute("UPDATE accounts SET horizon_seq = 30")
    assert error_code(put(w, w.alice, b"sealed", 29), 400) == "bad_request"
    assert put(w, w.alice, b"sealed", 30).status_code == 201


def test_an_empty_body_is_refused_and_leaves_nothing(w: World) -> None:
    assert error_code(put(w, w.alice, b"", 5), 400) == "bad_request"
    assert stored(w) == ([], [])


@pytest.mark.parametrize("token", [None, "not-a-session", "expired"])
def test_no_valid_session_is_refused_before_the_body_is_read(w: World, token: str | None) -> None:
    if token == "expired":
        with psycopg.connect(w.inspect, autocommit=True) as conn:
            expired = "expired-session-token"
            from duru.server.auth import token_hash

            conn.execute(
                "INSERT INTO sessions (user_id, token_hash, expires_at)"
                " VALUES (%s, %s, now() - interval '1 second')",
                (w.alice_id, token_hash(expired)),
            )
        token = expired
    # The head declares 5 MiB and none of it is sent: the answer must not wait for it.
    start = time.monotonic()
    answer = raw_request(w.main, head(token, 5, f"Content-Length: {5 * MiB}"))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert time.monotonic() - start < 10
    for path in ("/v1/snapshot", "/v1/snapshot/info"):
        headers = bearer(token) if token else {}
        r = httpx.get(f"{w.main.url}{path}", headers=headers, timeout=30)
        assert error_code(r, 401) == "unauthorized"
    assert stored(w) == ([], [])


def test_too_many_uploads_at_once_are_refused_and_abandoned_ones_are_cleared(w: World) -> None:
    with psycopg.connect(w.inspect, autocommit=True) as conn:
        for _ in range(2):
            conn.execute(
                "INSERT INTO snapshots (user_id, id, change_seq, bytes) VALUES (%s, %s, 5, 0)",
                (w.alice_id, uuid.uuid4()),
            )
    r = put(w, w.alice, b"sealed", 5)
    assert error_code(r, 429) == "rate_limited" and r.headers["retry-after"]
    assert put(w, w.bob, b"bob's", 5).status_code == 201  # per user
    with psycopg.connect(w.inspect, autocommit=True) as conn:
        conn.execute("UPDATE snapshots SET created_at = now() - interval '61 minutes'")
    assert put(w, w.alice, b"sealed", 5).status_code == 201
    snaps, _ = stored(w)
    assert sorted((s[0], s[4]) for s in snaps) == sorted([(w.alice_id, True), (w.bob_id, True)])


def _part_count(w: World) -> int:
    return len(stored(w)[1])


def _upload_cut_by_a_killed_server(w: World, home: Path, parts_before: int) -> None:
    """An upload of alice's on a server of its own, killed once a part is stored."""
    doomed = Server(w.db_url, home, {"DURU_SERVER_MAX_SNAPSHOT_BYTES": str(8 * MiB)}).start()
    try:
        with socket.create_connection(("127.0.0.1", doomed.port), timeout=20) as s:
            s.sendall(head(w.alice, 5, f"Content-Length: {4 * MiB}").encode("latin-1"))
            s.sendall(os.urandom(MiB + 1))
            wait_until(lambda: _part_count(w) > parts_before)
            doomed.kill()
    finally:
        doomed.kill()


def _lease_runs_out(w: World) -> None:
    """Every upload's last part (or start) ``LEASE_SECONDS`` older: time passes."""
    with psycopg.connect(w.inspect, autocommit=True) as conn:
        conn.execute(
            "UPDATE snapshots SET created_at = created_at - make_interval(secs => %s)"
            " WHERE NOT complete",
            (LEASE_SECONDS + 1,),
        )


def test_uploads_cut_by_a_killed_server_free_their_slots_when_their_lease_runs_out(
    w: World, tmp_path: Path
) -> None:
    """Each upload held one of the account's two slots for an hour from its start,
    whatever became of it: two cut by a killed server kept the account from uploading
    any snapshot for that hour. A slot is now held while the upload stores parts (each
    renews its lease); one that stored none for ``LEASE_SECONDS`` lets it go, and a live
    upload, however long, keeps it."""
    for n in range(2):
        _upload_cut_by_a_killed_server(w, tmp_path / f"doomed-{n}", _part_count(w))
    assert error_code(put(w, w.alice, b"sealed", 5), 429) == "rate_limited"
    _lease_runs_out(w)
    with socket.create_connection(("127.0.0.1", w.main.port), timeout=20) as live:
        live.sendall(head(w.alice, 6, f"Content-Length: {2 * MiB + 5}").encode("latin-1"))
        live.sendall(os.urandom(MiB + 1))
        wait_until(lambda: _part_count(w) == 1, 30)  # the killed ones' parts are gone
        _lease_runs_out(w)
        live.sendall(os.urandom(MiB))  # a second part: the live upload renews its lease
        wait_until(lambda: _part_count(w) == 2)
        assert put(w, w.alice, b"sealed", 5).status_code == 201
        live.sendall(os.urandom(4))
        answer = b""
        while not answer.endswith(b"}") and (piece := live.recv(65536)):
            answer += piece
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    snaps, parts = stored(w)
    assert [(s[2], s[3], s[4]) for s in snaps] == [(6, 2 * MiB + 5, True)]
    assert [p[3] for p in parts] == [MiB, MiB, 5]
    assert len(parts) == 3


# -- limits and broken uploads -----------------------------------------------------------


def test_a_declared_size_over_the_limit_is_refused_before_reading(w: World) -> None:
    answer = raw_request(w.tiny, head(w.alice, 5, f"Content-Length: {TINY + 1}"))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert stored(w) == ([], [])


def test_a_stream_over_the_limit_is_refused_and_its_parts_deleted(w: World) -> None:
    chunk = os.urandom(64 * 1024)
    pieces = [b"%x\r\n%b\r\n" % (len(chunk), chunk)] * (2 * MiB // len(chunk)) + [b"0\r\n\r\n"]
    answer = raw_request(w.tiny, head(w.alice, 5, "Transfer-Encoding: chunked"), pieces)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer
    assert stored(w) == ([], [])
    # Under the limit, the same server keeps it.
    assert put(w, w.alice, os.urandom(TINY), 5, server=w.tiny).status_code == 201


def test_a_client_gone_mid_upload_leaves_no_snapshot_and_no_parts(w: World) -> None:
    assert put(w, w.alice, b"the old one", 3).status_code == 201
    chunk = os.urandom(256 * 1024)
    with socket.create_connection(("127.0.0.1", w.main.port), timeout=20) as s:
        s.sendall(head(w.alice, 9, f"Content-Length: {5 * MiB}").encode())
        for _ in range(10):  # 2.5 MiB: two parts stored
            s.sendall(chunk)
        wait_until(lambda: len(stored(w)[1]) >= 3)
    wait_until(lambda: len(stored(w)[0]) == 1)
    snaps, parts = stored(w)
    assert [(s[2], s[4]) for s in snaps] == [(3, True)] and len(parts) == 1
    assert get(w, w.alice).content == b"the old one"


# -- isolation ---------------------------------------------------------------------------


def test_another_user_cannot_see_read_or_replace_a_snapshot(w: World) -> None:
    mine = os.urandom(MiB + 10)
    assert put(w, w.alice, mine, 40).status_code == 201
    for path in ("/v1/snapshot", "/v1/snapshot/info"):
        r = get(w, w.bob, path)
        assert error_code(r, 404) == "not_found" and "no snapshot" in r.text
    # Bob's upload at a later cursor is his own: alice's stays, untouched.
    assert put(w, w.bob, b"bob's", LAST).json() == {"kept": True, "cursor": LAST, "bytes": 5}
    assert get(w, w.alice).content == mine
    assert get(w, w.bob).content == b"bob's"
    assert get(w, w.alice, "/v1/snapshot/info").json()["cursor"] == 40


def test_row_level_security_alone_hides_other_users_parts(w: World) -> None:
    assert put(w, w.alice, os.urandom(MiB + 1), 10).status_code == 201
    assert put(w, w.bob, b"bob's", 10).status_code == 201
    with psycopg.connect(server_role_url(w.db_url)) as conn:
        set_user(conn, w.alice_id)
        # Deliberately unscoped: no WHERE user_id.
        rows = conn.execute("SELECT user_id::text FROM snapshot_parts").fetchall()
        assert rows and {r[0] for r in rows} == {w.alice_id}
        assert {r[0] for r in conn.execute("SELECT user_id::text FROM snapshots")} == {w.alice_id}
        assert conn.execute("DELETE FROM snapshots WHERE user_id = %s", (w.bob_id,)).rowcount == 0
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM snapshot_parts").fetchone() == (0,)
        bobs = stored(w)[0]
        bob_snapshot = next(s[1] for s in bobs if s[0] == w.bob_id)
        set_user(conn, w.alice_id)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO snapshot_parts (user_id, snapshot_id, part, data)"
                " VALUES (%s, %s, 99, 'x')",
                (w.bob_id, bob_snapshot),
            )


# -- staleness and replacement mid-download ------------------------------------------------


def test_a_snapshot_older_than_the_tombstone_horizon_is_gone(w: World) -> None:
    assert put(w, w.alice, os.urandom(MiB + 1), 10).status_code == 201
    with psycopg.connect(w.inspect, autocommit=True) as conn:
        conn.execute("UPDATE accounts SET horizon_seq = 11 WHERE user_id = %s", (w.alice_id,))
    assert error_code(get(w, w.alice, "/v1/snapshot/info"), 404) == "not_found"
    assert error_code(get(w, w.alice), 404) == "not_found"
    assert stored(w) == ([], [])


def test_a_download_while_the_snapshot_is_replaced_is_the_old_one_or_short(w: World) -> None:
    old, new = os.urandom(6 * MiB), os.urandom(6 * MiB)
    assert put(w, w.alice, old, 10).status_code == 201
    got = bytearray()
    ended_short = False
    with httpx.stream("GET", f"{w.main.url}/v1/snapshot", headers=bearer(w.alice)) as r:
        assert r.status_code == 200 and r.headers["duru-snapshot-cursor"] == "10"
        chunks = r.iter_raw(64 * 1024)
        got += next(chunks)
        assert put(w, w.alice, new, 20).status_code == 201
        try:
            for chunk in chunks:
                got += chunk
        except httpx.RemoteProtocolError:
            ended_short = True
    # Never a mix: a prefix of the old snapshot, or all of it.
    assert bytes(got) == old[: len(got)]
    assert ended_short == (len(got) < len(old))
    assert get(w, w.alice).content == new
    w.main.alive()


def test_a_download_cut_by_a_replacement_ends_short_and_the_server_carries_on(w: World) -> None:
    """A slow reader (small receive buffer): the server has sent at most its socket buffer
    (4 MiB on Linux) and a part when the snapshot is replaced, so the rest is gone."""
    old, new = os.urandom(15 * MiB // 2), os.urandom(100)
    assert put(w, w.alice, old, 10).status_code == 201
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.settimeout(30)
        s.connect(("127.0.0.1", w.main.port))
        request = f"GET /v1/snapshot HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {w.alice}"
        s.sendall(f"{request}\r\n\r\n".encode())
        got = s.recv(4096)
        time.sleep(0.5)  # the server fills the buffers and waits
        assert put(w, w.alice, new, 20).status_code == 201
        while piece := s.recv(1 << 20):
            got += piece
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and f"content-length: {len(old)}".encode() in head
    assert 0 < len(body) < len(old) and body == old[: len(body)]
    assert get(w, w.alice).content == new
    w.main.alive()


def test_the_openapi_document_lists_the_snapshot_endpoints(w: World) -> None:
    paths = httpx.get(f"{w.main.url}/openapi.json", timeout=10).json()["paths"]
    assert set(paths["/v1/snapshot"]) == {"put", "get"}
    assert "get" in paths["/v1/snapshot/info"]


def test_snapshot_bytes_are_counted_in_the_metrics(w: World) -> None:
    assert put(w, w.alice, b"0123456789", 5).status_code == 201
    assert get(w, w.alice).content == b"0123456789"
    text = httpx.get(f"{w.main.url}/metrics", timeout=10).text
    assert 'duru_snapshot_bytes_total{direction="up"}' in text
    assert 'duru_snapshot_bytes_total{direction="down"}' in text
