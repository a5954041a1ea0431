"""Hostile tests of the sync server's HTTP surface and of the client facing a bad server.

One ``duru serve`` subprocess per module (real PostgreSQL, real loopback HTTP, real httpx)
with a small body limit and an operator token. Two accounts: ``alice`` talks to it
directly; ``bob``'s device is logged in through ``Proxy``, an in-process HTTP server that
forwards to it or, per method and path, answers what a broken network, proxy or server
would (garbage, HTML, truncated JSON, redirects, 5xx, answers of the wrong shape, a
trickle, nothing at all).

Server side: bodies that are not plain JSON (wrong type, gzip bombs, chunked past the
limit, 10^5 levels, 1e400, 10^5-digit integers, NaN, duplicate keys, bad UTF-8, lone
surrogates), bad cursors and page sizes, tokens in the query string, methods not allowed,
HEAD and OPTIONS, long URLs and headers, half-sent requests; /metrics and /dashboard must
hold nothing of any user. Client side: ``duru sync`` must end non-zero with one line and
lose nothing; ``duru sync --watch`` must ride out a server that goes away and comes back,
and stop cleanly on SIGINT and SIGTERM.

A test marked xfail(strict) is a defect found on the code of its commit.
"""

from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from test_sync_attacks import (
    DURU,
    KDF,
    MARKER,
    PASSPHRASE,
    Device,
    Server,
    _env,
    assert_json_error,
    assert_no_plaintext,
    bearer,
    new_device,
    pull_all,
    register,
)

from duru.errors import SyncServerError, UsageError
from duru.sync import client as sync_client
from duru.sync import inbox
from duru.sync.http import SyncApi

if TYPE_CHECKING:
    from conftest import PgDatabases

BODY_LIMIT = 256 * 1024
OPERATOR = "operator-token-5b0d"

Rule = Callable[[BaseHTTPRequestHandler, bytes], None]


# -- a proxy that can misbehave --------------------------------------------------------


class Proxy:
    """Forwards to ``upstream``; ``rules[(method, path)]`` answers instead when set."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: dict[tuple[str, str], Rule] = {}
        self.seen: list[tuple[str, str, str]] = []  # method, path, authorization
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size) if size else b""
                path = self.path.split("?")[0]
                proxy.seen.append((self.command, path, self.headers.get("authorization", "")))
                rule = proxy.rules.get((self.command, path))
                if rule is not None:
                    rule(self, body)
                    return
                keep = ("authorization", "content-type")
                headers = {k: v for k, v in self.headers.items() if k.lower() in keep}
                r = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers,
                    timeout=60,
                )  # fmt: skip
                send(self, r.status_code, r.content, r.headers.get("content-type", ""))

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def forward_then_hang_up(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        """The server gets the request and answers; the answer is lost on the way back."""
        headers = {"Authorization": h.headers.get("authorization", "")}
        headers["Content-Type"] = "application/json"
        r = httpx.request(h.command, self.upstream + h.path, content=body, headers=headers)
        assert r.status_code == 200, r.text
        hang_up(h, body)


def send(
    h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, headers: tuple = ()
) -> None:
    h.send_response(status)
    if ctype:
        h.send_header("Content-Type", ctype)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def answer(status: int, body: bytes = b"", ctype: str = "application/json", **headers: str) -> Rule:
    return lambda h, _: send(h, status, body, ctype, tuple(headers.items()))


def hang_up(h: BaseHTTPRequestHandler, _: bytes) -> None:
    """The connection closes without an answer (a server going down mid-request)."""
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)


def results_for_other_rows(outcome: str = "applied", same_ids: bool = False) -> Rule:
    """A 200 push answer, one result per entry, but not about the rows sent (a cache or a
    proxy answering with another request's body; or an outcome this client never heard of)."""

    def rule(h: BaseHTTPRequestHandler, body: bytes) -> None:
        entries = json.loads(body)["entries"]
        results = [
            {
                "op_id": e["op_ids"][-1] if same_ids else str(uuid.uuid4()),
                "entity": e["entity"],
                "row_id": e["row_id"] if same_ids else str(uuid.uuid4()),
                "outcome": outcome,
                "version": 1,
            }
            for e in entries
        ]
        send(h, 200, json.dumps({"results": results, "head": 1}).encode(), "application/json")

    return rule


# -- the module's server and accounts --------------------------------------------------


@dataclass
class World:
    server: Server
    proxy: Proxy
    alice: Device
    alice_token: str
    alice_id: str
    bob: Device  # logged in through the proxy
    tmp: Path
    db_url: str


@pytest.fixture(scope="module")
def world(pg_databases: PgDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    db_url = pg_databases.create()
    tmp = tmp_path_factory.mktemp("http-attacks")
    env = {
        "DURU_SERVER_MAX_BODY_BYTES": str(BODY_LIMIT),
        "DURU_SERVER_OPERATOR_TOKEN": OPERATOR,
    }
    srv = Server(db_url, tmp / "server-home", env)
    proxy: Proxy | None = None
    try:
        srv.start()
        proxy = Proxy(srv.url)
        alice = new_device(tmp, "alice")
        a = register(alice, srv, "alice-http")
        with alice.store() as st:
            st.notes.create(f"{MARKER} alice", "body", tags=["t"])
        alice.sync()
        bob = new_device(tmp, "bob")
        sync_client.register(
            bob.path, server=proxy.url, user="bob-http", passphrase=PASSPHRASE, home=bob.home,
            kdf=KDF,
        )  # fmt: skip
        yield World(srv, proxy, alice, a.token, a.user_id, bob, tmp, db_url)
        assert_no_plaintext(pg_databases.inspect(db_url), [MARKER])
        # Nor in the server's log, with the sessions' tokens, after all those bad requests.
        srv.stop()
        log = "".join(srv.log)
        leaked = [s for s in (MARKER, a.token, bob.creds().token, OPERATOR) if s in log]
        assert not leaked, (leaked, log[-3000:])
        assert "Traceback" not in log, log[-5000:]
    finally:
        if proxy is not None:
            proxy.close()
        srv.stop()
        pg_databases.drop(db_url)


@pytest.fixture
def w(world: World) -> Iterator[World]:
    """The world, with the proxy forwarding again after each test and the server up."""
    yield world
    world.proxy.rules = {}
    world.server.alive()


def raw(w: World, method: str, path: str, content: Any = b"", **headers: str) -> httpx.Response:
    h = {"Content-Type": "application/json", **bearer(w.alice_token), **headers}
    return httpx.request(method, w.server.url + path, content=content, headers=h, timeout=60)


def cli_sync(dev: Device, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DURU, "sync", "--db", str(dev.path), *args],
        env=_env(dev.home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_failure(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("duru: "), out.stderr[-3000:]
    return lines[0]


def new_note(dev: Device, title: str) -> str:
    with dev.store() as st:
        return str(st.notes.create(f"{MARKER} {title}", "body")["id"])


def outbox_size(dev: Device) -> int:
    with dev.store() as st:
        return int(st.db.scalar("SELECT count(*) FROM outbox"))


def cursor(dev: Device) -> int | None:
    with dev.store() as st:
        inbox.ensure_tables(st.db)
        return inbox.cursor(st.db)


def notes_on_server(w: World, dev: Device) -> set[str]:
    token = dev.creds().token
    return {
        c["row_id"]
        for c in pull_all(w.server.url, token)
        if c["entity"] == "note" and c["kind"] == "upsert"
    }


def synced_through(w: World, dev: Device, *note_ids: str) -> None:
    """With the proxy forwarding, a sync ends well and every note is on the server."""
    w.proxy.rules = {}
    out = cli_sync(dev)
    assert out.returncode == 0, out.stderr[-3000:]
    assert outbox_size(dev) == 0
    assert set(note_ids) <= notes_on_server(w, dev)


# -- the server: bodies ----------------------------------------------------------------

PUSH = "/v1/push"
_ENTRY = '{"entity":"note","kind":"delete","row_id":"%s","op_ids":["%s"],"base_version":%s}'


def _push_with_base(base: str) -> bytes:
    entry = _ENTRY % (uuid.uuid4(), uuid.uuid4(), base)
    return ('{"device_id":"d","entries":[' + entry + "]}").encode()


def _chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * size
        sent += size


def bad_bodies() -> dict[str, tuple[str, Any, dict[str, str]]]:
    """Made when the test runs: the bombs take a moment to compress."""
    return {
        "gzip_claiming_json": (
            PUSH,
            gzip.compress(b'{"device_id":"d","entries":[]}'),
            {"Content-Encoding": "gzip"},
        ),
        # 64 MiB of spaces in 64 KB of gzip: must not be inflated.
        "gzip_bomb": (
            PUSH,
            gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9),
            {"Content-Encoding": "gzip"},
        ),
        "deflate_bomb": (
            PUSH,
            zlib.compress(b"[" * (8 * 1024 * 1024), 9),
            {"Content-Encoding": "deflate"},
        ),
        "chunked_past_the_limit": (PUSH, _chunks(4 * BODY_LIMIT), {}),
        "nested_10e5_arrays": (PUSH, b"[" * 100_000 + b"]" * 100_000, {}),
        "nested_objects": (PUSH, b'{"a":' * 20_000 + b"1" + b"}" * 20_000, {}),
        "number_1e400": (PUSH, _push_with_base("1e400"), {}),
        "int_of_100000_digits": (PUSH, _push_with_base("9" * 100_000), {}),
        "nan": (PUSH, _push_with_base("NaN"), {}),
        "infinity": (PUSH, _push_with_base("-Infinity"), {}),
        "float_base": (PUSH, _push_with_base("1.0"), {}),
        "duplicate_keys": (PUSH, b'{"device_id":"d","entries":[],"entries":{"a":1}}', {}),
        "invalid_utf8": (PUSH, b'{"device_id":"\xff\xfe","entries":[]}', {}),
        "lone_surrogate_device": (PUSH, b'{"device_id":"\\ud800","entries":[]}', {}),
        "lone_surrogate_name": ("/v1/login/params", b'{"name":"ab\\udfff"}', {}),
        "empty": (PUSH, b"", {}),
        "json_array": (PUSH, b"[]", {}),
        "json_string": (PUSH, b'"hello"', {}),
        "name_nan": ("/v1/login/params", b'{"name":NaN}', {}),
        "resolutions_of_nulls": ("/v1/conflicts/resolve", b'{"resolutions":[null]}', {}),
        "resolutions_object": ("/v1/conflicts/resolve", b'{"resolutions":{"id":1}}', {}),
    }


def test_bodies_that_are_not_plain_json_are_4xx_json_errors(w: World) -> None:
    wrong = {}
    for case, (path, body, headers) in bad_bodies().items():
        r = raw(w, "POST", path, body, **headers)
        try:
            assert_json_error(r, *range(400, 500))
        except AssertionError as exc:
            wrong[case] = str(exc)[:300]
    assert not wrong, wrong
    w.server.alive()


def test_a_body_of_another_content_type_is_read_as_json_and_no_harm(w: World) -> None:
    body = b'{"device_id":"d","entries":[]}'
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = raw(w, "POST", PUSH, body, **{"Content-Type": ctype})
        assert r.status_code == 200, r.text
        assert r.json()["results"] == []
    r = raw(w, "POST", PUSH, b"device_id=d&entries=", **{"Content-Type": "text/plain"})
    assert_json_error(r, 400)


def test_resolve_with_a_status_that_is_not_text_is_400(w: World) -> None:
    """Was a 500 (``item.get("status") in STATUSES`` on a list: unhashable); fixed."""
    for status in (["open"], {"open": 1}, 1, None, True):
        item = {"id": str(uuid.uuid4()), "status": status}
        r = raw(w, "POST", "/v1/conflicts/resolve", json.dumps({"resolutions": [item]}))
        assert_json_error(r, 400)


def test_register_with_a_malformed_record_names_the_field_in_plain_words(w: World) -> None:
    for record in ({}, {"kdf": []}, {"kdf": {}, "wrapped_master_key": [], "auth_verifier": {}}):
        body = {"name": "carol", "user_id": str(uuid.uuid4()), "record": record}
        err = assert_json_error(raw(w, "POST", "/v1/register", json.dumps(body)), 400)
        assert "Error(" not in err["message"] and "stored" not in err["message"], err


# -- the server: query strings, methods, heads -----------------------------------------


def test_bad_cursors_and_page_sizes_are_400_and_another_users_cursor_leaks_nothing(
    w: World,
) -> None:
    bad = [
        "after=-1", "after=1.5", "after=1e3", "after=0x10", "after=%201", "after=%EF%BC%91",
        "after=" + "9" * 30, "after=NaN", "after=", "limit=0", "limit=1000000000",
        "limit=-1", "limit=5.0",
        # Were a 500 before any token check (int() refuses over 4300 digits); fixed.
        "limit=" + "9" * 5000, "after=" + "9" * 5000,
    ]  # fmt: skip
    for query in bad:
        r = raw(w, "GET", f"/v1/changes?{query}")
        assert_json_error(r, 400)
    # A cursor far ahead (another account's, or made up) tells nothing but "resync".
    r = raw(w, "GET", f"/v1/changes?after={2**62}")
    err = assert_json_error(r, 410)
    assert w.alice_id not in err["message"]


def test_a_push_without_a_valid_token_is_refused_before_its_body_is_read(w: World) -> None:
    big = b'{"device_id":"d","entries":[' + b",".join([b"[0,0,0,0]"] * 20_000) + b"]}"
    assert len(big) < BODY_LIMIT
    for body in (b'{"device_id":"d","entries":"x"}', big):
        r = httpx.post(
            f"{w.server.url}/v1/push", content=body, headers=bearer("not-a-session"), timeout=30
        )
        assert_json_error(r, 401)
    # A small body is read before the session is checked (one connection for the check
    # and the work), but the session still answers first; a body sent in chunks, of no
    # declared length, is checked the long way. Either way a valid session gets a 400.
    for body in (b"{not json", b"\xff" * 100, b'{"device_id":"d","entries":"x"}'):
        for chunked in (False, True):
            for token, status in (("nope", 401), (w.alice_token, 400)):
                content = iter([body[:3], body[3:]]) if chunked else body
                r = httpx.post(
                    f"{w.server.url}/v1/push", content=content, headers=bearer(token), timeout=30
                )
                assert_json_error(r, status)


def test_a_token_anywhere_but_the_authorization_header_is_no_session(w: World) -> None:
    t = w.alice_token
    for query in (f"access_token={t}", f"token={t}", f"bearer={t}", f"Authorization=Bearer+{t}"):
        r = httpx.get(f"{w.server.url}/v1/account?{query}", timeout=30)
        assert_json_error(r, 401)
    r = httpx.get(f"{w.server.url}/v1/account", cookies={"token": t}, timeout=30)
    assert_json_error(r, 401)
    for header in (f"Basic {t}", f"Token {t}", t, f"Bearer {t}x", ("Bearer " + "é" * 300).encode()):
        r = httpx.get(f"{w.server.url}/v1/account", headers={"Authorization": header}, timeout=30)
        assert_json_error(r, 401)


def test_methods_not_allowed_are_405_json_and_head_has_no_body(w: World) -> None:
    paths = ["/v1/push", "/v1/changes", "/v1/health", "/v1/login", "/openapi.json", "/metrics"]
    for path in paths:
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
            err = assert_json_error(raw(w, method, path, b"{}"), 405)
            assert method in err["message"]
    for path in ("/v1/health", "/openapi.json", "/metrics"):
        r = httpx.head(w.server.url + path, timeout=30)
        assert r.status_code == 200 and r.content == b"", (path, r.status_code)
    r = httpx.head(w.server.url + "/v1/changes", timeout=30)
    assert r.status_code == 401 and r.content == b""
    # A method the parser does not know is refused at the door.
    r = raw(w, "BREW", "/v1/health")
    assert r.status_code in (400, 405, 501)


def _raw_socket(port: int, data: bytes, wait: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        try:
            s.sendall(data)
        except OSError:  # refused before all of it was sent: its answer is read below
            pass
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
        return out


def test_long_urls_and_headers_are_4xx_and_the_server_stays_up(w: World) -> None:
    # Each head is well past the bound and the one read it may pass it by (``http_head``).
    port = w.server.port
    head = b"GET /v1/health?x=" + b"a" * 600_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _raw_socket(port, head).startswith(b"HTTP/1.1 400")
    head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 600_000 + b"\r\n\r\n"
    assert _raw_socket(port, head).startswith(b"HTTP/1.1 400")
    # A length past the limit is refused on its word, before any of the body is read.
    auth = b"Authorization: Bearer " + w.alice_token.encode()
    head = b"POST /v1/push HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: 10000000000\r\n\r\n{" % auth
    answer_ = _raw_socket(port, head)
    assert answer_.startswith(b"HTTP/1.1 413") and b"too_large" in answer_, answer_[:300]
    lots = b"".join(b"X-%d: a\r\n" % i for i in range(60_000))
    head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + lots + b"\r\n"
    assert _raw_socket(port, head).startswith(b"HTTP/1.1 400")
    r = httpx.get(w.server.url + "/v1/" + "x" * 20_000, timeout=30)
    assert_json_error(r, 404)
    w.server.alive()


RAW_REQUESTS: dict[str, tuple[bytes, bytes]] = {
    # Request smuggling: a length and a chunked body, two lengths, a negative one.
    "te_and_cl": (
        b"POST /v1/login/params HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 400",
    ),
    "two_lengths": (
        b"POST /v1/login/params HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 40\r\n\r\n{}",
        b"HTTP/1.1 400",
    ),
    "negative_length": (
        b"POST /v1/login/params HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
        b"HTTP/1.1 400",
    ),
    "raw_ff_in_path": (b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 400"),
    "raw_ff_in_query": (b"GET /v1/changes?after=\xff HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 400"),
    "escaped_ff_in_path": (b"GET /v1/%ff%00 HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 404"),
    "escaped_ff_in_query": (
        b"GET /v1/changes?after=%ff HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\r\n",
        b"HTTP/1.1 400",
    ),
    "ff_in_token": (
        b"GET /v1/account HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\x80\r\n\r\n",
        b"HTTP/1.1 401",
    ),
    "connect": (b"CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n", b"HTTP/1.1 400"),
    "http2_preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"HTTP/1.1 400"),
    "options_asterisk": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 404"),
}


def test_smuggling_and_odd_bytes_in_the_request_line_are_4xx(w: World) -> None:
    for case, (request, status) in RAW_REQUESTS.items():
        got = _raw_socket(
            w.server.port, request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        )
        assert got.startswith(status), (case, got[:300])
    # Pipelined requests are answered in order, each on its own.
    two = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/nope HTTP/1.1\r\nHost: x\r\n"
    got = _raw_socket(w.server.port, two + b"Connection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1 404") == 1, got[:600]
    w.server.alive()


def test_a_trailing_slash_does_not_redirect_to_the_host_header(w: World) -> None:
    r = httpx.get(w.server.url + "/v1/health/", headers={"Host": "evil.example"}, timeout=30)
    assert "evil.example" not in r.headers.get("location", ""), r.headers


def test_half_sent_requests_do_not_stop_others_being_served(w: World) -> None:
    """Heads without their end and bodies shorter than their length: others still served,
    and a push with a body cut short applies nothing."""
    socks = []
    try:
        for i in range(150):
            s = socket.create_connection(("127.0.0.1", w.server.port), timeout=10)
            if i % 2:
                s.sendall(b"POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 10")
            else:
                s.sendall(
                    b"POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                    + b"Authorization: Bearer "
                    + w.alice_token.encode()
                    + b"\r\n\r\n"
                    + _push_with_base("0")[:-3]
                )
            socks.append(s)
        started = time.monotonic()
        for _ in range(5):
            w.server.alive()
            r = raw(w, "GET", "/v1/changes?after=0&limit=10")
            assert r.status_code == 200, r.text
        assert time.monotonic() - started < 10
    finally:
        for s in socks:
            s.close()
    w.server.alive()


def test_a_client_gone_mid_body_is_no_500_and_no_traceback(w: World) -> None:
    """Was a 500 with a traceback in the log for each (Starlette's ClientDisconnect), so
    anyone could fill the log and the dashboard's error rate; fixed (a quiet 400)."""
    auth = b"Authorization: Bearer " + w.alice_token.encode() + b"\r\n"
    for path in (b"/v1/push", b"/v1/login", b"/v1/register", b"/v1/conflicts/resolve"):
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", w.server.port), timeout=10) as s:
                s.sendall(
                    b'POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: 5000\r\n\r\n{"a"'
                    % (path, auth)
                )
                time.sleep(0.05)
    time.sleep(0.5)
    metrics = httpx.get(f"{w.server.url}/metrics", timeout=30).text
    assert 'status="500"' not in metrics, [x for x in metrics.splitlines() if '"500"' in x]
    log = "".join(w.server.log)
    assert "Traceback" not in log and "ClientDisconnect" not in log, log[-3000:]


def test_a_half_sent_head_is_dropped_after_a_while(w: World) -> None:
    socks = []
    try:
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", w.server.port), timeout=10)
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
            socks.append(s)
        time.sleep(12)  # uvicorn drops an idle kept-alive connection after 5 s
        still_open = 0
        for s in socks:
            s.settimeout(0.2)
            try:
                s.recv(1024)  # b"" (closed) or a 408: dropped
            except TimeoutError:
                still_open += 1
            except OSError:
                pass
        assert still_open == 0, f"{still_open} of 5 half-sent heads still held after 12 s"
    finally:
        for s in socks:
            s.close()


# -- the server: what it shows everyone -------------------------------------------------


def test_metrics_and_dashboard_show_no_user_row_or_token_and_dashboard_wants_the_operator(
    w: World,
) -> None:
    bob_note = new_note(w.bob, "for the metrics")
    synced_through(w, w.bob, bob_note)
    alice_rows = {c["row_id"] for c in pull_all(w.server.url, w.alice_token)}
    bob = w.bob.creds()
    secrets = {
        w.alice_id, w.alice_token, bob.user_id, bob.token, bob_note, "alice-http", "bob-http",
        *alice_rows,
    }  # fmt: skip
    url = w.server.url
    shown = {
        "metrics": httpx.get(f"{url}/metrics", timeout=30).text,
        "data": httpx.get(f"{url}/dashboard/data", headers=bearer(OPERATOR), timeout=30).text,
        "page": httpx.get(f"{url}/dashboard", headers=bearer(OPERATOR), timeout=30).text,
    }
    for name, text in shown.items():
        assert len(text) > 200, (name, text)
        low = text.lower()
        leaked = [s for s in secrets if s.lower() in low]
        assert not leaked, (name, leaked)
    assert "duru_request_seconds" in shown["metrics"]
    # The dashboard: the operator's token only, never a user's.
    for headers in (
        {},
        bearer(w.alice_token),
        bearer(OPERATOR + "x"),
        {"Authorization": "Basic !"},
    ):
        for path in ("/dashboard", "/dashboard/data"):
            r = httpx.get(url + path, headers=headers, timeout=30)
            assert r.status_code == 401, (path, headers, r.status_code)
            assert OPERATOR not in r.text
    # Unknown paths and methods do not grow /metrics (each label value is kept forever).
    before = httpx.get(f"{url}/metrics", timeout=30).text.count("\n")
    for i in range(30):
        httpx.get(f"{url}/v1/{uuid.uuid4()}", timeout=30)
        raw(w, "PATCH", f"/x{i}")
    after = httpx.get(f"{url}/metrics", timeout=30).text.count("\n")
    assert after - before <= 60, (before, after)


# -- the client: bad answers ---------------------------------------------------------------

PULL = ("GET", "/v1/changes")
PULL_ANSWERS: dict[str, Rule] = {
    "garbage": answer(200, b"garbage \x00\xff", "text/plain"),
    "html": answer(200, b"<!doctype html><title>Welcome to the hotel wifi</title>", "text/html"),
    "truncated_json": answer(200, b'{"changes": [{"seq": 1, "entity": "note"'),
    "json_null": answer(200, b"null"),
    "json_list": answer(200, b"[1, 2]"),
    "cursor_text": answer(200, b'{"changes": [], "cursor": "x", "head": 0, "more": false}'),
    "redirect_elsewhere": answer(302, location="http://example.invalid/v1/changes"),
    "500_html": answer(500, b"<h1>Internal Server Error</h1>", "text/html"),
    "502_empty": answer(502, b"", ""),
    "503_json": answer(503, b'{"error": {"message": "down for upgrade"}}'),
    "hang_up": hang_up,
    # JSON carries a lone surrogate, which SQLite cannot store: it stopped the pull as
    # "text that is not UTF-8 (bytes eda080) cannot be used here", blaming the user.
    "lone_surrogate": answer(
        200,
        b'{"changes": [{"seq": 1, "entity": "note", "kind": "delete", "row_id": "\\ud800",'
        b' "version": 1, "row": null}], "cursor": 1000000000, "head": 1000000000,'
        b' "more": false}',
    ),
}


_OTHER: dict[str, Device] = {}


def written_elsewhere(w: World, title: str) -> None:
    """A note from bob's other device (straight to the server): a sync of bob that pushes
    has a page to pull after it only when something besides its own rows is new."""
    if str(w.tmp) not in _OTHER:
        other = new_device(w.tmp, "bob-other")
        sync_client.login(
            other.path, server=w.server.url, user="bob-http", passphrase=PASSPHRASE,
            home=other.home,
        )  # fmt: skip
        _OTHER[str(w.tmp)] = other
    other = _OTHER[str(w.tmp)]
    new_note(other, f"written elsewhere: {title}")
    other.sync()


def test_bad_answers_to_a_pull_are_one_line_and_apply_nothing(w: World) -> None:
    note = new_note(w.bob, "before bad pulls")
    synced_through(w, w.bob, note)
    before = cursor(w.bob)
    for case, rule in PULL_ANSWERS.items():
        written_elsewhere(w, case)
        note = new_note(w.bob, f"pushed, then the pull failed: {case}")
        w.proxy.rules = {PULL: rule}
        out = cli_sync(w.bob)
        line = one_line_failure(out)
        assert w.proxy.url in line, (case, line)
        assert cursor(w.bob) == before, case
        w.proxy.rules = {}
        assert note in notes_on_server(w, w.bob), case  # the push before it went through
    synced_through(w, w.bob)


def test_a_servers_error_message_is_printed_on_one_line_without_control_characters(
    w: World,
) -> None:
    message = "line one\nduru: synced, all good\x1b]0;owned\x07\x1b[2J\r\u202eevil"
    body = json.dumps({"error": {"code": "bad_request", "message": message}}).encode()
    for status in (400, 401, 429, 503):
        w.proxy.rules = {PULL: answer(status, body)}
        line = one_line_failure(cli_sync(w.bob))
        for bad in ("\x1b", "\x07", "\r", "\u202e"):
            assert bad not in line, (status, repr(line))


def test_a_retry_after_that_int_refuses_is_one_line(w: World) -> None:
    """str.isdigit() takes "\xb2" (superscript two, a latin-1 header byte) and 5,000
    digits; int() refused both with a ValueError: `duru sync` ended in a traceback.
    The line names the server and the wait (a bare proxy's 429 said "duru: {}")."""
    body = json.dumps({"error": {"code": "rate_limited", "message": "slow down"}}).encode()
    for after, wait in (("\xb2", 60), ("9" * 5000, 60), ("7", 7)):
        w.proxy.rules = {PULL: answer(429, body, **{"Retry-After": after})}
        line = one_line_failure(cli_sync(w.bob))
        assert "slow down" in line and w.proxy.url in line, after[:9]
        assert f"(429, for {wait} s)" in line, line
    w.proxy.rules = {PULL: answer(429, b"{}")}
    line = one_line_failure(cli_sync(w.bob))
    assert w.proxy.url in line and "(429, for 60 s)" in line, line


def test_a_redirect_to_another_host_does_not_carry_the_token(w: World) -> None:
    evil = Proxy("http://127.0.0.1:9")  # records what reaches it, forwards nowhere
    try:
        evil.rules = {PULL: answer(200, b"{}"), ("POST", "/v1/push"): answer(200, b"{}")}
        for key in (PULL, ("POST", "/v1/push")):
            written_elsewhere(w, "before a redirect")
            new_note(w.bob, "redirected")
            w.proxy.rules = {key: answer(307, location=f"{evil.url}{key[1]}")}
            one_line_failure(cli_sync(w.bob))
        assert evil.seen == []
    finally:
        evil.close()
    synced_through(w, w.bob)


PUSH_KEY = ("POST", "/v1/push")


def test_failed_pushes_are_one_line_keep_the_outbox_and_apply_once(w: World) -> None:
    synced_through(w, w.bob)
    conflicts = len(_conflicts(w))
    rules: dict[str, Rule] = {
        "500_every_time": answer(500, b"<h1>Internal Server Error</h1>", "text/html"),
        "502_empty": answer(502, b"", ""),
        "503_retry_after": answer(503, b'{"error": {"message": "busy"}}', retry_after="1"),
        "hang_up": hang_up,
        "answer_lost": w.proxy.forward_then_hang_up,
    }
    notes = []
    for case, rule in rules.items():
        notes.append(new_note(w.bob, f"push answered {case}"))
        pending = outbox_size(w.bob)
        w.proxy.rules = {PUSH_KEY: rule}
        line = one_line_failure(cli_sync(w.bob))
        assert w.proxy.url in line, (case, line)
        assert outbox_size(w.bob) == pending, case
    synced_through(w, w.bob, *notes)
    # The push whose answer was lost went again, as a duplicate: not a conflict revision.
    assert len(_conflicts(w)) == conflicts


def _conflicts(w: World) -> list[dict[str, Any]]:
    return [c for c in pull_all(w.server.url, w.bob.creds().token) if c["kind"] == "conflict"]


PUSH_SHAPES: dict[str, Rule] = {
    "empty_object": answer(200, b"{}"),
    "list": answer(200, b"[]"),
    "no_results": answer(200, b'{"results": [], "head": 1}'),
    "head_text": answer(200, b'{"results": [], "head": "x"}'),
    "results_null": answer(200, b'{"results": null, "head": 1}'),
}


def test_a_push_answer_of_the_wrong_shape_is_one_line_and_keeps_the_outbox(w: World) -> None:
    synced_through(w, w.bob)
    for case, rule in PUSH_SHAPES.items():
        new_note(w.bob, f"push answered {case}")
        pending = outbox_size(w.bob)
        w.proxy.rules = {PUSH_KEY: rule}
        out = cli_sync(w.bob)
        assert outbox_size(w.bob) == pending, case
        one_line_failure(out)
    synced_through(w, w.bob)


def test_push_results_about_other_rows_do_not_empty_the_outbox(w: World) -> None:
    synced_through(w, w.bob)
    lost = []
    for case, rule in {
        "other_rows": results_for_other_rows(),
        "unknown_outcome": results_for_other_rows("stored-elsewhere", same_ids=True),
    }.items():
        note = new_note(w.bob, f"push answered {case}")
        w.proxy.rules = {PUSH_KEY: rule}
        out = cli_sync(w.bob)
        w.proxy.rules = {}
        cli_sync(w.bob)  # the server is fine again
        if note not in notes_on_server(w, w.bob):
            lost.append((case, out.returncode, out.stdout.strip()))
    assert not lost, f"notes never pushed, each sync said it went well: {lost}"


LOGIN_SHAPES: dict[str, tuple[tuple[str, str], Rule]] = {
    "login_without_token": (("POST", "/v1/login"), answer(200, b'{"user_id": 5}')),
    "params_without_kdf": (("POST", "/v1/login/params"), answer(200, b"{}")),
    "params_list": (("POST", "/v1/login/params"), answer(200, b"[]")),
    "account_without_key": (("GET", "/v1/account"), answer(200, b'{"user_id": "x"}')),
    "account_key_not_base64": (
        ("GET", "/v1/account"),
        answer(200, b'{"wrapped_master_key": "***"}'),
    ),
}


def test_login_answers_of_the_wrong_shape_are_one_line_and_save_nothing(w: World) -> None:
    wrong = {}
    for case, (key, rule) in LOGIN_SHAPES.items():
        dev = new_device(w.tmp, f"carol-{uuid.uuid4().hex[:6]}")
        w.proxy.rules = {key: rule}
        env = _env(dev.home) | {"DURU_PASSPHRASE": PASSPHRASE}
        out = subprocess.run(
            [DURU, "login", "--server", w.proxy.url, "--user", "bob-http", "--db", str(dev.path)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert not (dev.home / "sync").exists() or not any((dev.home / "sync").iterdir()), case
        try:
            one_line_failure(out)
        except AssertionError:
            wrong[case] = out.stderr.strip().splitlines()[-1:]
    assert not wrong, wrong


def bob_again(w: World) -> Device:
    """A new device of bob's account, logged in through the proxy, synced once."""
    dev = new_device(w.tmp, f"bob-{uuid.uuid4().hex[:6]}")
    sync_client.login(
        dev.path, server=w.proxy.url, user="bob-http", passphrase=PASSPHRASE, home=dev.home
    )
    synced_through(w, dev)
    return dev


def sync_or_hang(dev: Device, seconds: float = 10) -> subprocess.CompletedProcess[str]:
    try:
        return cli_sync(dev, timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"duru sync still running after {seconds:g} s (killed)")


def page(cursor: int, head: int, more: bool) -> Rule:
    body = {"changes": [], "cursor": cursor, "head": head, "more": more}
    return answer(200, json.dumps(body).encode())


def test_a_cursor_far_ahead_from_the_server_is_mended_by_a_resync(w: World) -> None:
    dev = bob_again(w)
    mine = new_note(dev, "before a cursor far ahead")
    written_elsewhere(w, "so that the sync pulls after its push")
    w.proxy.rules = {PULL: page(2**40, 2**40, False)}
    assert cli_sync(dev).returncode == 0
    assert cursor(dev) == 2**40
    note = new_note(w.bob, "written elsewhere meanwhile")
    synced_through(w, w.bob, note)
    synced_through(w, dev, mine)  # the real server says 410: a resync brings all back
    with dev.store() as st:
        assert st.notes.get(note) is not None and st.notes.get(mine) is not None


def test_a_cursor_below_the_one_asked_from_is_refused_and_the_device_syncs_on(
    w: World,
) -> None:
    dev = bob_again(w)
    before = cursor(dev)
    w.proxy.rules = {PULL: page(-3, 5, False)}
    out = cli_sync(dev)
    assert cursor(dev) == before, cursor(dev)
    one_line_failure(out)
    synced_through(w, dev)


def test_a_server_answering_410_to_every_pull_ends_with_one_line(w: World) -> None:
    dev = bob_again(w)
    w.proxy.rules = {PULL: answer(410, b'{"error": {"message": "resync"}}')}
    one_line_failure(sync_or_hang(dev))


def test_a_page_with_more_and_a_cursor_that_does_not_move_ends_with_one_line(
    w: World,
) -> None:
    dev = bob_again(w)
    at = cursor(dev) or 0
    w.proxy.rules = {PULL: page(at, at + 10, True)}
    one_line_failure(sync_or_hang(dev))


# -- the client: servers that never answer -----------------------------------------------


class Silent:
    """A TCP server that reads requests and answers nothing, or trickles ``trickle``
    bytes of an endless body (one each ``every`` seconds, for ``for_seconds``)."""

    def __init__(self, trickle: bool = False, every: float = 0.25, for_seconds: float = 8):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.trickle, self.every, self.for_seconds = trickle, every, for_seconds
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            if self.trickle:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            ends = time.monotonic() + self.for_seconds
            while time.monotonic() < ends and not self.stop.is_set():
                time.sleep(self.every)
                if self.trickle:
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_a_server_that_never_answers_is_a_one_line_retryable_error(w: World) -> None:
    silent = Silent()
    try:
        api = SyncApi(silent.url, token="t", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(SyncServerError) as caught:
            api.changes(0, 10)
        assert time.monotonic() - started < 4
        assert caught.value.retryable and "\n" not in caught.value.message
        assert silent.url in caught.value.message
        api.close()
    finally:
        silent.close()


def test_a_server_that_trickles_its_answer_times_out_too(w: World) -> None:
    silent = Silent(trickle=True, every=0.25, for_seconds=8)
    try:
        api = SyncApi(silent.url, token="t", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(SyncServerError):
            api.changes(0, 10)
        took = time.monotonic() - started
        api.close()
        assert took < 4, f"waited {took:.1f} s with a 1 s timeout"
    finally:
        silent.close()


def test_a_server_url_with_a_password_is_refused_without_printing_it(w: World) -> None:
    """httpx sends a URL's user and password as Basic authorization, in place of the
    session's Bearer token: `duru register` with one "worked", then every request of the
    session failed as "no session", and the messages showed the password."""
    port = w.server.url.rsplit(":", 1)[1]
    url = f"http://proxyuser:hunter2-secret@127.0.0.1:{port}"
    with pytest.raises(UsageError) as caught:
        SyncApi(url, token="t", timeout=0.5)
    assert "hunter2-secret" not in caught.value.message
    assert "proxyuser:***@127.0.0.1" in caught.value.message, caught.value.message
    dev = new_device(w.tmp, "url-pw")
    env = {**_env(dev.home), "DURU_PASSPHRASE": "a passphrase for the url test"}
    for command in ("register", "login"):
        out = subprocess.run(
            [DURU, command, "--server", url, "--user", "url-pw", "--db", str(dev.path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode != 0 and not out.stdout, out
        assert "hunter2-secret" not in out.stderr and "no user name or password" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not dev.home.exists() or not list(dev.home.rglob("*.json")), "credentials saved"


@pytest.mark.parametrize(
    "url",
    [
        "http://proxyuser:hunter2#secret@127.0.0.1:9",
        "http://proxyuser:hunter2/secret@127.0.0.1:9",
        "http://[::1",
        "http://127.0.0.1:9:9",
        "http://xn--zz",
    ],
)
def test_a_malformed_server_url_is_one_line_without_the_password(tmp_path: Path, url: str) -> None:
    """A URL httpx or urllib cannot parse was a traceback (httpx.InvalidURL, ValueError),
    and a password holding '#' or '/' ended the host early and was shown as its port:
    "Invalid port: 'hunter2'"."""
    dev = new_device(tmp_path, "bad-url")
    out = subprocess.run(
        [DURU, "login", "--server", url, "--user", "bad-url", "--db", str(dev.path)],
        env={**_env(dev.home), "DURU_PASSPHRASE": "a passphrase for the url test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and not out.stdout, out
    assert "Traceback" not in out.stderr and "hunter2" not in out.stderr, out.stderr
    assert out.stderr.startswith("duru: ") and len(out.stderr.strip().splitlines()) == 1, out


def test_ctrl_c_while_a_page_is_on_its_way_ends_at_once(w: World) -> None:
    dev = bob_again(w)
    at = cursor(dev) or 0
    calls: list[int] = []
    release = threading.Event()

    def first_page_then_hang(h: BaseHTTPRequestHandler, body: bytes) -> None:
        calls.append(1)
        if len(calls) == 1:
            # More to come: the next is fetched on a thread. The cursor moves (one that
            # does not is refused at once, see the test above).
            page(at + 1, at + 10, True)(h, body)
        else:
            release.wait(15)
            hang_up(h, body)

    w.proxy.rules = {PULL: first_page_then_hang}
    proc = subprocess.Popen(
        [DURU, "sync", "--db", str(dev.path)],
        env=_env(dev.home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: len(calls) >= 2, 15), calls
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        try:
            _, err = proc.communicate(timeout=25)
        finally:
            took = time.monotonic() - started
        assert took < 5, f"duru sync took {took:.1f} s to stop after Ctrl-C"
        assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


# -- duru sync --watch ---------------------------------------------------------------------


def _watch(dev: Device, every: str = "0.3") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [DURU, "sync", "--watch", "--every", every, "--db", str(dev.path)],
        env=_env(dev.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_watch_rides_out_a_server_that_goes_away_and_stops_cleanly_on_sigint(w: World) -> None:
    synced_through(w, w.bob)
    proc = _watch(w.bob)
    try:
        time.sleep(1.5)
        w.proxy.rules = {
            PULL: hang_up,
            PUSH_KEY: answer(502, b"<html>bad gateway</html>", "text/html"),
        }
        note = new_note(w.bob, "written while the server was away")
        time.sleep(2)
        assert proc.poll() is None, proc.communicate()
        w.proxy.rules = {}
        assert _wait_for(lambda: outbox_size(w.bob) == 0, 30)
        assert note in notes_on_server(w, w.bob)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert "Traceback" not in err, err[-3000:]
    assert "trying again" in err
    assert all(line.startswith("duru: ") for line in err.strip().splitlines()), err[-2000:]


def test_watch_stopped_by_sigterm_or_sigint_mid_sync_loses_nothing(w: World) -> None:
    synced_through(w, w.bob)
    notes = []
    for delay in (0.3, 0.6, 1.0, 1.5):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with w.bob.store() as st, st.db.transaction():
                notes += [
                    str(st.notes.create(f"{MARKER} {sig.name} {delay} {i}", "b" * 500)["id"])
                    for i in range(200)
                ]
            proc = _watch(w.bob, every="0.1")
            time.sleep(delay)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode in (-signal.SIGTERM, 130), (sig, proc.returncode, err[-2000:])
            assert "Traceback" not in err, err[-3000:]
            assert len(err.strip().splitlines()) <= 1, err[-2000:]
    synced_through(w, w.bob, *notes)


def test_watch_with_an_endless_interval_is_one_line(w: World) -> None:
    synced_through(w, w.bob)
    try:
        out = cli_sync(w.bob, "--watch", "--every", "inf", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("still running after 30 s")
    one_line_failure(out)


def test_watch_keeps_going_past_a_maintenance_page(w: World) -> None:
    synced_through(w, w.bob)
    proc = _watch(w.bob)
    try:
        time.sleep(1.5)
        page = answer(200, b"<html>back in five minutes</html>", "text/html")
        w.proxy.rules = {PULL: page, PUSH_KEY: page}
        note = new_note(w.bob, "written during maintenance")
        time.sleep(2)
        w.proxy.rules = {}
        assert _wait_for(lambda: proc.poll() is None and outbox_size(w.bob) == 0, 10), (
            proc.poll(),
            proc.stderr.read() if proc.poll() is not None and proc.stderr else "",
        )
        assert note in notes_on_server(w, w.bob)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
