"""The sync API over HTTP (httpx): one method per endpoint, errors as duru's.

    api = SyncApi("http://127.0.0.1:8787", token=...)
    results, head = api.push(device_id, entries)

A server that cannot be reached, or answers 5xx, raises SyncServerError (retryable) with
one line naming the URL; 401 raises AuthFailed, 429 RateLimited, 409 AlreadyExists (or
SyncServerError for a refused push), 410 ResyncNeeded, any other 4xx SyncServerError with
the server's message. Each request has a deadline (``deadline``, three timeouts by
default) besides the timeout of each read.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, get_args
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from duru.crypto import AccountRecord, KdfParams
from duru.errors import (
    AlreadyExists,
    AuthFailed,
    NotFound,
    RateLimited,
    RequestTooLarge,
    ResyncNeeded,
    SyncServerError,
    UsageError,
)
from duru.model.values import uuid_text

from .protocol import Change, Outcome, PushEntry, PushResult

DEFAULT_TIMEOUT = 60.0
# A snapshot must come at least this fast, over each window: one trickled (each read
# within the timeout) kept a new device's first sync going for ever. Slower, the device
# pulls rows instead: pages, each kept as it comes, where a snapshot is all or nothing.
SNAPSHOT_MIN_RATE = 32 * 1024  # bytes a second
SNAPSHOT_RATE_WINDOW = 30.0  # seconds
OUTCOMES = frozenset(get_args(Outcome))
# What a malformed answer may raise on being read (1e400 is a float int() refuses).
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, OverflowError)
# The one way a lone surrogate comes in JSON: escaped (a pair, an emoji, is fine).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@cache
def _tls(verify: bool) -> ssl.SSLContext:
    """One TLS context per process, made as httpx makes it (CA bundle, SSL_CERT_FILE):
    given a bool, httpx builds a new one for every client, 0.6 ms even for plain http
    (which never uses it) and about 0.1 s with the CA bundle, on every ``duru sync``."""
    return httpx.create_ssl_context(verify=verify)


class SyncApi:
    """A client of one sync server; ``token`` is the session's bearer token, if any."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = base_url.rstrip("/")
        self.timeout = timeout
        self.deadline = 3 * timeout if deadline is None else deadline
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"a sync server URL starts with http:// or https://, not {url!r}")
        try:
            netloc = urlsplit(url).netloc
            # What the client parses: InvalidURL for a bad port, an IDNAError (a
            # ValueError) for a bad xn-- host, read as a request is built.
            httpx.URL(url).host  # noqa: B018
        except (ValueError, httpx.InvalidURL):
            # Not shown with an '@': a password holding '#', '/' or '?' ends the host
            # early, and the rest of the password then reads as the port.
            shown = "" if "@" in url else f" ({url})"
            raise UsageError(f"the sync server URL is not a valid URL{shown}") from None
        if "@" in netloc:
            # httpx would send it as Basic authorization in place of the session's Bearer
            # token: every request of a session then failed as "no session".
            raise UsageError(
                f"a sync server URL carries no user name or password ({without_password(url)}):"
                " duru signs in with the account's passphrase and its own session token"
            )
        self.base_url = url
        self.shown_url = without_password(url)  # for messages
        self.token = token
        tls = _tls(url.startswith("https:"))
        self._http = httpx.Client(base_url=url, timeout=timeout, transport=transport, verify=tls)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SyncApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts --------------------------------------------------------------

    def register(self, name: str, user_id: str, record: AccountRecord) -> None:
        self._call(
            "POST", "/v1/register", {"name": name, "user_id": user_id, "record": record.to_dict()}
        )

    def login_params(self, name: str) -> KdfParams:
        data = self._call("POST", "/v1/login/params", {"name": name})
        if not isinstance(data, dict) or not isinstance(data.get("kdf"), dict):
            raise self._malformed("/v1/login/params", "no kdf object")
        return KdfParams.from_dict(data["kdf"])

    def login(self, name: str, auth_key: bytes) -> dict[str, Any]:
        """The session: its ``token`` and ``user_id`` (both checked to be text)."""
        key = base64.b64encode(auth_key).decode("ascii")
        data = self._call("POST", "/v1/login", {"name": name, "auth_key": key})
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) and data[k] for k in ("token", "user_id")
        ):
            raise self._malformed("/v1/login", "no token or user_id")
        self.token = data["token"]
        return data

    def logout(self) -> None:
        self._call("POST", "/v1/logout", None, auth=True)

    def account(self) -> dict[str, Any]:
        data = self._call("GET", "/v1/account", None, auth=True)
        if not isinstance(data, dict) or not _is_base64(data.get("wrapped_master_key")):
            raise self._malformed("/v1/account", "no wrapped_master_key in base64")
        return data

    # -- sync ------------------------------------------------------------------

    def push(self, device_id: str, entries: list[PushEntry]) -> tuple[list[PushResult], int]:
        body = {
            "device_id": device_id,
            "entries": [e.to_json() for e in entries],
            "rebase": True,  # this client takes the "rebase" outcome (duru.sync.protocol)
        }
        # orjson: the standard encoder spent 9 us a note on a body that is mostly base64
        # (a tenth of a push's client time), orjson under 1. Rows come from the bridge,
        # which refuses what JSON cannot carry exactly (a NaN, a lone surrogate).
        data = self._call("POST", "/v1/push", orjson.dumps(body), auth=True)
        try:
            return _push_results(entries, data)
        except _MALFORMED as exc:
            raise self._malformed(
                "/v1/push", f"{type(exc).__name__}: {exc}", "nothing of it was recorded"
            ) from None

    def changes(self, after: int, limit: int) -> tuple[list[Change], int, int, bool]:
        """(changes, next cursor, head, more) after cursor ``after``."""
        data = self._call("GET", f"/v1/changes?after={after}&limit={limit}", None, auth=True)
        try:
            changes = [Change.from_json(c) for c in data["changes"]]
            cursor, head, more = data["cursor"], data["head"], data["more"]
            if type(cursor) is not int or cursor < after or type(head) is not int:
                raise ValueError(f"cursor {cursor!r:.40} after {after}, head {head!r:.40}")
            if type(more) is not bool or (more and cursor == after):
                # Asked again from the same cursor, it would send the same page forever.
                raise ValueError(f"more {more!r:.40} with the cursor still at {after}")
            return changes, cursor, head, more
        except _MALFORMED as exc:
            raise SyncServerError(
                f"the sync server at {self.shown_url} sent a malformed page of changes"
                f" ({type(exc).__name__}: {exc}); nothing of it was applied"
            ) from None

    def resolve(self, items: list[dict[str, Any]]) -> int:
        """Send conflict revisions' new statuses; the number the server changed."""
        data = self._call("POST", "/v1/conflicts/resolve", {"resolutions": items}, auth=True)
        return int(data["changed"])

    # -- snapshots -------------------------------------------------------------

    def snapshot_info(self) -> int | None:
        """The cursor of the account's snapshot on the server, None when it has none."""
        try:
            data = self._call("GET", "/v1/snapshot/info", None, auth=True)
        except NotFound:  # none, or a server from before snapshots
            return None
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if type(cursor) is not int or cursor < 0:
            raise self._malformed("/v1/snapshot/info", f"cursor {cursor!r:.40}")
        return cursor

    @contextmanager
    def snapshot(self) -> Iterator[tuple[int, Iterator[bytes]] | None]:
        """The account's snapshot as (its size, its bytes as they come), None when the
        server has none. Each read has the timeout, and the bytes must come at
        ``SNAPSHOT_MIN_RATE`` over each ``SNAPSHOT_RATE_WINDOW`` (SyncServerError when
        not); the whole has no deadline (a big account's takes a while on a slow link)."""
        path = "/v1/snapshot"
        try:
            # The sealed bytes as stored: compressing them gains nothing, and a proxy
            # that would is told not to (what comes encoded all the same is decoded).
            headers = {**self._auth(), "Accept-Encoding": "identity"}
            request = self._http.build_request("GET", path, headers=headers)
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        try:
            if response.status_code >= 400:
                response.read()
                failure = _error(response, self.shown_url)
                if isinstance(failure, NotFound):
                    yield None
                    return
                raise failure
            size = response.headers.get("content-length", "")
            yield (int(size) if size.isdigit() else 0), self._pieces(response)
        finally:
            response.close()

    def put_snapshot(self, cursor: int, body: Iterable[bytes]) -> int:
        """Send a snapshot at ``cursor``; the cursor of the one the server keeps (its
        own when it holds a newer one already)."""
        path = f"/v1/snapshot?cursor={cursor}"
        headers = {**self._auth(), "Content-Type": "application/octet-stream"}
        try:
            response = self._http.request("PUT", path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise _error(response, self.shown_url)
        try:
            kept = response.json()["cursor"]
            if type(kept) is not int or kept <= 0:
                raise ValueError(f"cursor {kept!r:.40}")
        except (*_MALFORMED, ValueError) as exc:
            raise self._malformed("/v1/snapshot", f"{type(exc).__name__}: {exc}") from None
        return kept

    def _pieces(self, response: httpx.Response) -> Iterator[bytes]:
        pieces = self._at_floor_rate(response.iter_raw())
        if response.headers.get("content-encoding", "identity") != "identity":
            # Decoded after the rate is measured on the bytes that come: a trickle that
            # decodes to nothing (a gzip header's endless comment) gave nothing to measure.
            decoding = httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=_Stream(pieces),
                request=response.request,
            )
            pieces = decoding.iter_bytes()
        try:
            yield from pieces
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def _at_floor_rate(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        since, got = time.monotonic(), 0
        for piece in pieces:
            got += len(piece)
            took = time.monotonic() - since
            if took >= SNAPSHOT_RATE_WINDOW:
                if got < SNAPSHOT_MIN_RATE * took:
                    raise SyncServerError(
                        f"the sync server at {self.shown_url} sent the snapshot at"
                        f" {got / took / 1024:,.1f} KiB/s, under"
                        f" {SNAPSHOT_MIN_RATE / 1024:g} KiB/s",
                        retryable=True,
                    )
                since, got = time.monotonic(), 0
            yield piece

    def _auth(self) -> dict[str, str]:
        if not self.token:
            raise AuthFailed("this device is not logged in: run `duru login`")
        return {"Authorization": f"Bearer {self.token}"}

    def _unreachable(self, exc: httpx.HTTPError) -> SyncServerError:
        return SyncServerError(
            f"cannot reach the sync server at {self.shown_url}: {self._reason(exc)}",
            retryable=True,
        )

    # -- plumbing --------------------------------------------------------------

    def _malformed(self, path: str, why: str, then: str = "nothing was saved") -> SyncServerError:
        return SyncServerError(
            f"the sync server at {self.shown_url} answered {path} with something malformed"
            f" ({' '.join(why.split())[:200]}); {then}"
        )

    def _call(self, method: str, path: str, body: Any, *, auth: bool = False) -> Any:
        """``body``: a JSON value, or bytes already encoded as JSON."""
        headers = self._auth() if auth else {}
        started = time.monotonic()
        try:
            if isinstance(body, bytes):
                headers = {**headers, "content-type": "application/json"}
                request = self._http.build_request(method, path, content=body, headers=headers)
            else:
                request = self._http.build_request(method, path, json=body, headers=headers)
            try:
                streamed = self._http.send(request, stream=True)
            except httpx.RemoteProtocolError:
                # A kept-alive connection the server closed as this request went out
                # (nothing of an answer came): a read goes again, once, on a new one.
                if method != "GET":
                    raise
                streamed = self._http.send(request, stream=True)
            try:
                # The timeout is per read: a server that sends a byte now and then would
                # never time out. The body gets at least a timeout after the head came.
                deadline = max(started + self.deadline, time.monotonic() + self.timeout)
                response = _read_before(streamed, deadline)
            finally:
                streamed.close()
        except _TooSlow:
            raise SyncServerError(
                f"the sync server at {self.shown_url} took over {self.deadline:g} s to answer"
                f" {path}",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise _error(response, self.shown_url)
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            # A proxy's maintenance page, say: the next try may go through.
            raise SyncServerError(
                f"the sync server at {self.shown_url} answered {path} with something not JSON",
                retryable=True,
            ) from None
        if _SURROGATE_ESCAPE.search(response.content) and not _unicode(data):
            # SQLite cannot store one: it stopped a pull as a UnicodeEncodeError.
            raise SyncServerError(
                f"the sync server at {self.shown_url} answered {path} with text that is not"
                " valid Unicode (a lone surrogate); nothing of it was used"
            )
        return data

    def _reason(self, exc: httpx.HTTPError) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        password = urlsplit(self.base_url).password
        return text.replace(password, "***") if password else text


class _Stream(httpx.SyncByteStream):
    """Bytes already coming, for httpx to decode."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces


class _TooSlow(Exception):
    """An answer still coming at its deadline."""


def _read_before(response: httpx.Response, deadline: float) -> httpx.Response:
    """``response`` (streamed) with its body read, or _TooSlow once past ``deadline``."""
    raw = []
    for chunk in response.iter_raw():
        raw.append(chunk)
        if time.monotonic() > deadline:
            raise _TooSlow
    done = httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(b"".join(raw)),
        request=response.request,
        extensions=response.extensions,
    )
    done.read()
    return done


def _push_results(entries: list[PushEntry], data: Any) -> tuple[list[PushResult], int]:
    """The results of a push answer, each checked to answer the entry at its place (op
    id, entity, row) with an outcome this client knows: a cache or proxy could answer
    with another request's body, and its results taken by position would empty the
    outbox of rows the server never got."""
    head, raw = data["head"], data["results"]
    if type(head) is not int or head < 0:
        raise ValueError(f"head {head!r} is not a cursor")
    if not isinstance(raw, list) or len(raw) != len(entries):
        raise ValueError(f"{len(entries)} entries sent, results are {str(raw)[:40]}")
    results = [PushResult.from_json(r) for r in raw]
    for e, r in zip(entries, results, strict=True):
        if (_canonical(r.op_id), r.entity, _canonical(r.row_id)) != (
            _canonical(e.op_id),
            e.entity,
            _canonical(e.row_id),
        ):
            raise ValueError(f"a result about op {r.op_id[:40]}, not the op sent there")
        if r.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {r.outcome!r:.40}")
        if r.kept is not None and not isinstance(r.kept, str):
            raise TypeError("kept is not text")
    return results, head


def _is_base64(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(base64.b64decode(value, validate=True))
    except binascii.Error:
        return False


def _canonical(some_id: str) -> str:
    return uuid_text(some_id) or some_id


def _error(response: httpx.Response, base_url: str) -> Exception:
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text[:200] or response.reason_phrase
    status = response.status_code
    if status == 401:
        return AuthFailed(message)
    if status == 429:
        after = response.headers.get("retry-after", "60")
        # Not str.isdigit(): it takes "\xb2" (superscript two) and 5,000 digits, which
        # int() refuses with a ValueError (a traceback).
        ok = after.isascii() and after.isdigit() and len(after) <= 9
        wait = int(after) if ok else 60
        # Named: a bare proxy's 429 said "duru: {}" and nothing else.
        return RateLimited(
            f"the sync server at {base_url} is limiting requests (429, for {wait} s): {message}",
            retry_after=wait,
        )
    if status == 409 and response.request.url.path.endswith("/register"):
        return AlreadyExists(message)
    if status == 410:
        return ResyncNeeded(message)
    if status == 404 and "/v1/snapshot" in response.request.url.path:
        return NotFound(message)  # no snapshot (or a server from before them)
    if status == 413:  # from the server or a proxy before it (whose answer may be HTML)
        return RequestTooLarge(
            f"the sync server at {base_url} refused a request as too large (413): {message}",
            retryable=False,
        )
    return SyncServerError(
        f"the sync server at {base_url} refused ({status}): {message}", retryable=status >= 500
    )


def _unicode(data: Any) -> bool:
    """Whether the JSON value ``data`` holds no lone surrogate."""
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def without_password(url: str) -> str:
    """``url`` with the password it may carry (https://user:password@host) left out."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if ":" not in userinfo:
        return url
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***{at}{host}"))
