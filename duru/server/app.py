"""The sync API (ASGI, Starlette): accounts, push and pull over a pool of the server role.

    GET  /v1/health           200 when the database answers
    POST /v1/register         {name, user_id, record}            -> 201 {user_id}
    POST /v1/login/params     {name}                             -> {kdf}
    POST /v1/login            {name, auth_key}                   -> {token, user_id, expires_at}
    POST /v1/logout           (bearer)                           -> 204
    GET  /v1/account          (bearer)                           -> {user_id, name, kdf, ...}
    POST /v1/push             (bearer) {device_id, entries, rebase} -> {results, head}
    GET  /v1/changes          (bearer) ?after=N&limit=M          -> {changes, cursor, head, more}
    POST /v1/conflicts/resolve (bearer) {resolutions: [{id, status, copy_id}]} -> {changed}
    PUT  /v1/snapshot         (bearer) ?cursor=N, sealed bytes   -> 201|200 {kept, cursor, bytes}
    GET  /v1/snapshot/info    (bearer)                           -> {cursor, bytes, created_at}
    GET  /v1/snapshot         (bearer) the bytes; Duru-Snapshot-Cursor: N (see ``snapshots``)
    GET  /openapi.json        the OpenAPI description of the above
    GET  /metrics             Prometheus metrics (see ``metrics``)
    GET  /dashboard           live latency and throughput, for the operator token (``dashboard``)

The process keeps no state another would need: sessions, rate limits and op ids live in
the database, so any number of workers and ``duru serve`` processes act as one server.
Every error is JSON ``{"error": {"code", "message"}}`` with a 4xx status for anything the
client did (malformed, oversized, unauthenticated, rate-limited, stale), 503 when the
database is unreachable or busy, and 500 only for a bug.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, NamedTuple

import anyio
import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from duru.crypto import AccountRecord
from duru.errors import (
    AlreadyExists,
    AuthFailed,
    CryptoError,
    DuruError,
    NotFound,
    RateLimited,
    ResyncNeeded,
    ServerUnavailable,
    UsageError,
)
from duru.remote import Pool, RemoteConfig, open_pool, pooled_connection
from duru.sync.protocol import MAX_OP_IDS, PROTOCOL_VERSION, PushEntry, canonical_id

from . import auth, snapshots
from .config import ServerConfig
from .conflicts import parse_resolutions, resolve_conflicts
from .dashboard import dashboard_routes
from .metrics import ServerMetrics
from .openapi import openapi_document
from .pull import read_page_json
from .push import apply_push
from .snapshots import SNAPSHOT_PART_BYTES

logger = logging.getLogger("duru.server")
APP_URL_VAR = "DURU_SERVER_APP_URL"
CURSOR_HEADER = "Duru-Snapshot-Cursor"
# A push body up to this size is read before its session is checked (see ``push``).
SMALL_BODY = 64 * 1024
Handler = Callable[[Request], Awaitable[Response]]


def create_app(pool_factory: Callable[[], Pool], config: ServerConfig | None = None) -> Starlette:
    """The ASGI app; ``pool_factory`` opens its pool at startup (closed at shutdown)."""
    settings = config or ServerConfig.from_env()
    api = _Api(settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        api.pool = await run_in_threadpool(pool_factory)
        try:
            yield
        finally:
            await run_in_threadpool(api.pool.close)

    endpoints: list[tuple[str, Handler, str]] = [
        ("/v1/health", api.health, "GET"),
        ("/v1/register", api.register, "POST"),
        ("/v1/login/params", api.login_params, "POST"),
        ("/v1/login", api.login, "POST"),
        ("/v1/logout", api.logout, "POST"),
        ("/v1/account", api.account, "GET"),
        ("/v1/push", api.push, "POST"),
        ("/v1/changes", api.changes, "GET"),
        ("/v1/conflicts/resolve", api.resolve, "POST"),
        ("/v1/snapshot", api.put_snapshot, "PUT"),
        ("/v1/snapshot", api.get_snapshot, "GET"),
        ("/v1/snapshot/info", api.snapshot_info, "GET"),
        ("/openapi.json", api.openapi, "GET"),
    ]
    routes = [Route(path, _guarded(fn), methods=[method]) for path, fn, method in endpoints]
    routes.append(Route("/metrics", api.metrics.endpoint, methods=["GET"]))
    if settings.operator_token:
        routes += dashboard_routes(settings.operator_token, api.metrics)
    app = Starlette(routes=routes, lifespan=lifespan)
    # No 307 to the same path with or without its last slash: the redirect would name
    # whatever host the request's Host header says.
    app.router.redirect_slashes = False
    app.add_middleware(api.metrics.middleware([r.path for r in routes]))
    app.add_exception_handler(404, _not_found)
    app.add_exception_handler(405, _not_allowed)
    return app


def app_from_env() -> Starlette:
    """The app of a ``duru serve`` worker: its pool is ``$DURU_SERVER_APP_URL``."""
    url = os.environ.get(APP_URL_VAR, "")
    if not url:
        raise UsageError(f"{APP_URL_VAR} is not set (start the server with `duru serve`)")
    remote = RemoteConfig.from_env()
    return create_app(lambda: server_pool(remote, url))


def server_pool(remote: RemoteConfig, url: str) -> Pool:
    """A pool of autocommit connections as the server role (each call is its own unit)."""
    return open_pool(remote, url, name="duru-serve", autocommit=True)


class _Api:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.pool: Pool
        self.metrics = ServerMetrics(lambda: getattr(self, "pool", None))

    # -- endpoints -------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        def work() -> dict[str, Any]:
            self._db(lambda c: c.execute("SELECT 1"))
            return {"status": "ok", "protocol": PROTOCOL_VERSION}

        return await self._run(request, work)

    async def register(self, request: Request) -> Response:
        if self.config.max_registrations_per_address == 0:
            raise _Refused(
                403,
                "registration_closed",
                "this server takes no new accounts (its operator closed registration):"
                " ask the operator for an account, then log in with it",
            )
        body = await self._json(request)
        name = _field(body, "name", str)
        user_id = canonical_id(body.get("user_id"), "user_id")
        record = _record(body.get("record"))
        address = request.client.host if request.client else "unknown"

        def work() -> dict[str, Any]:
            self._db(lambda c: auth.register(c, name, user_id, record, address, self.config))
            return {"user_id": user_id}

        return await self._run(request, work, 201)

    async def login_params(self, request: Request) -> Response:
        body = await self._json(request)
        name = _field(body, "name", str)
        return await self._run(
            request, lambda: {"kdf": self._db(lambda c: auth.login_params(c, name)).to_dict()}
        )

    async def login(self, request: Request) -> Response:
        body = await self._json(request)
        name = _field(body, "name", str)
        key = _b64_field(body, "auth_key")
        address = request.client.host if request.client else "unknown"

        def work() -> dict[str, Any]:
            attempt = self._db(lambda c: auth.begin_login(c, name, address, self.config))
            user_id = auth.check_login_key(attempt, key)  # slow: no connection held
            s = self._db(lambda c: auth.finish_login(c, attempt, user_id, self.config))
            return {"token": s.token, "user_id": s.user_id, "expires_at": s.expires_at.isoformat()}

        return await self._run(request, work)

    async def logout(self, request: Request) -> Response:
        token = _bearer(request)

        def work() -> None:
            with self._conn() as conn:
                auth.logout(conn, auth.authenticate(conn, token), token)

        return await self._run(request, work, 204)

    async def account(self, request: Request) -> Response:
        token = _bearer(request)

        def work() -> dict[str, Any]:
            with self._conn() as conn:
                return auth.account_info(conn, auth.authenticate(conn, token))

        return await self._run(request, work)

    async def push(self, request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) <= SMALL_BODY:
            # A small push (an edit or a few): its body is read before the session is
            # checked, and the check, the parsing and the work take one connection and
            # one thread: the separate check cost a pooled connection and its probe, a
            # query and three thread hops, a third of a one-note push. Reading a few KiB
            # for a client with no session costs less than that check; the session is
            # still checked before anything in the body is looked at.
            token = _bearer(request)
            raw = await self._body(request)

            def small() -> dict[str, Any]:
                with self._conn() as conn:
                    user = auth.authenticate(conn, token)
                    return self._apply_push(conn, user, self._push_request(_parse_json(raw)))

            return await self._run(request, small)
        token = await self._session(request)
        push = await run_in_threadpool(self._push_request, await self._json(request))

        def work() -> dict[str, Any]:
            with self._conn() as conn:
                return self._apply_push(conn, auth.authenticate(conn, token), push)

        return await self._run(request, work)

    def _push_request(self, body: dict[str, Any]) -> _Pushed:
        """What a push body asks; UsageError naming what is wrong."""
        device = _field(body, "device_id", str)
        if not 1 <= len(device) <= 64 or not device.isprintable() or not _utf8(device):
            raise UsageError("device_id must be 1 to 64 printable characters")
        raw = body.get("entries")
        if not isinstance(raw, list) or len(raw) > self.config.max_push_entries:
            raise UsageError(
                f"entries must be a list of at most {self.config.max_push_entries} entries"
            )
        rebase = body.get("rebase") is True  # a client that takes the "rebase" outcome
        return _Pushed(device, [PushEntry.from_json(e) for e in raw], rebase)

    def _apply_push(self, conn: Any, user: str, push: _Pushed) -> dict[str, Any]:
        results, head = apply_push(conn, user, push.device, push.entries, rebase=push.rebase)
        self.metrics.count_push(r.outcome for r in results)
        return {"results": [r.to_json() for r in results], "head": head}

    async def changes(self, request: Request) -> Response:
        token = _bearer(request)
        after = _int_param(request, "after", 0)
        limit = _int_param(request, "limit", self.config.default_page)
        if not 1 <= limit <= self.config.max_page:
            raise UsageError(f"limit must be 1 to {self.config.max_page}")

        def work() -> bytes:
            with self._conn() as conn:
                user = auth.authenticate(conn, token)
                body, count = read_page_json(conn, user, after, limit)
            self.metrics.count_pull(count)
            return body

        return await self._run(request, work)

    async def resolve(self, request: Request) -> Response:
        token = await self._session(request)
        body = await self._json(request)
        items = parse_resolutions(body.get("resolutions"))

        def work() -> dict[str, Any]:
            with self._conn() as conn:
                user = auth.authenticate(conn, token)
                return {"changed": resolve_conflicts(conn, user, items)}

        return await self._run(request, work)

    async def put_snapshot(self, request: Request) -> Response:
        token = _bearer(request)
        cursor = _int_param(request, "cursor", 0)
        limit = self.config.max_snapshot_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge(limit)
        # The session is checked before any of the body is read (see ``_session``).
        user = await self._call(lambda: self._db(lambda c: auth.authenticate(c, token)))
        snap = await self._call(lambda: self._db(lambda c: snapshots.begin_upload(c, user, cursor)))
        try:
            size = await self._store_parts(request, user, snap, limit)
            if size == 0:
                raise UsageError("the snapshot is empty: send its bytes as the request body")
            kept: snapshots.Kept = await self._call(
                lambda: self._db(lambda c: snapshots.finish_upload(c, user, snap, size))
            )
        except Exception:
            await self._discard(user, snap)
            raise
        return JSONResponse(kept.to_json(), status_code=201 if kept.kept else 200)

    async def snapshot_info(self, request: Request) -> Response:
        token = _bearer(request)
        return await self._run(request, lambda: self._snapshot(token)[1].to_json())

    async def get_snapshot(self, request: Request) -> Response:
        token = _bearer(request)
        user, found = await self._call(lambda: self._snapshot(token))
        parts = None if request.method == "HEAD" else self._read_parts(user, found)
        return _SnapshotStream(parts, found)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.config))

    # -- plumbing --------------------------------------------------------------

    def _conn(self) -> Any:
        return pooled_connection(self.pool)

    def _db(self, fn: Callable[[Any], Any]) -> Any:
        with self._conn() as conn:
            return fn(conn)

    async def _session(self, request: Request) -> str:
        """The request's bearer token, checked before its body is read: a client with no
        session cannot make the server take in and parse a body of up to the limit. The
        work checks it again (the session may end while a long body comes in)."""
        token = _bearer(request)
        await self._call(lambda: self._db(lambda c: auth.authenticate(c, token)))
        return token

    def _snapshot(self, token: str) -> tuple[str, snapshots.Snapshot]:
        """The session's user and their complete snapshot; NotFound when none is current."""
        with self._conn() as conn:
            user = auth.authenticate(conn, token)
            found = snapshots.current(conn, user)
        if found is None:
            raise NotFound("no snapshot")
        return user, found

    async def _store_parts(self, request: Request, user: str, snap: uuid.UUID, limit: int) -> int:
        """Read the body into parts of ``SNAPSHOT_PART_BYTES``, each stored in its own
        transaction: no connection is held while the client sends; the bytes taken."""
        pending = bytearray()
        size = part = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge(limit)
            pending += chunk
            while len(pending) >= SNAPSHOT_PART_BYTES:
                data = bytes(pending[:SNAPSHOT_PART_BYTES])
                del pending[:SNAPSHOT_PART_BYTES]
                await self._call(partial(self._db, partial(_write, user, snap, part, data)))
                part += 1
        if pending:
            data = bytes(pending)
            await self._call(partial(self._db, partial(_write, user, snap, part, data)))
        self.metrics.count_snapshot("up", size)
        return size

    async def _discard(self, user: str, snap: uuid.UUID) -> None:
        """Delete a failed upload, best effort: its own failure never hides the first."""
        try:
            await run_in_threadpool(self._db, lambda c: snapshots.discard(c, user, snap))
        except Exception as exc:  # noqa: BLE001 - cleared once its lease runs out
            logger.warning("could not delete a failed snapshot upload: %s", exc)

    async def _read_parts(self, user: str, found: snapshots.Snapshot) -> AsyncIterator[bytes]:
        """The parts of ONE snapshot in order, each read in its own short query; ends early
        when the snapshot was replaced meanwhile (its parts are gone)."""
        sent = part = 0
        while sent < found.bytes:
            read = partial(snapshots.read_part, user_id=user, snapshot=found.id, part=part)
            try:
                data = await run_in_threadpool(self._db, read)
            except Exception as exc:  # noqa: BLE001 - the answer began: it can only end short
                logger.warning("snapshot download ended early: %s", _pg_message(exc))
                return
            if data is None:
                return
            sent += len(data)
            part += 1
            self.metrics.count_snapshot("down", len(data))
            yield data

    async def _json(self, request: Request) -> dict[str, Any]:
        # Off the event loop: parsing a body near the limit takes a while, and every
        # other request waits on the loop meanwhile.
        return await run_in_threadpool(_parse_json, await self._body(request))

    async def _body(self, request: Request) -> bytes:
        """The request's body, up to ``max_body_bytes`` (else _TooLarge)."""
        declared = request.headers.get("content-length")
        limit = self.config.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge(limit)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _TooLarge(limit)
        return bytes(body)

    async def _call(self, work: Callable[[], Any]) -> Any:
        """``work()`` on a worker thread, its database failures as the client's answers."""
        try:
            return await run_in_threadpool(work)
        except psycopg.errors.ForeignKeyViolation as exc:
            raise _Refused(409, "missing_parent", _pg_message(exc)) from exc
        except psycopg.errors.QueryCanceled as exc:
            raise _Refused(503, "busy", "the server database took too long; retry") from exc
        except psycopg.OperationalError as exc:
            raise ServerUnavailable(_pg_message(exc)) from exc

    async def _run(self, request: Request, work: Callable[[], Any], status: int = 200) -> Response:
        result = await self._call(work)
        if status == 204:
            return Response(status_code=204)
        if isinstance(result, bytes):  # a body written as JSON already (a pull page)
            return Response(result, status_code=status, media_type="application/json")
        return JSONResponse(result, status_code=status)


def _write(user: str, snap: uuid.UUID, part: int, data: bytes, conn: Any) -> None:
    snapshots.write_part(conn, user, snap, part, data)


class _SnapshotStream(Response):
    """A snapshot's bytes under its Content-Length; ``parts`` None for a HEAD request.

    When the parts run out early (the snapshot was replaced), the answer is left
    unfinished, so the server closes the connection and the client sees a short body;
    finishing it would raise in the server (the body is shorter than declared).
    """

    media_type = "application/octet-stream"

    def __init__(self, parts: AsyncIterator[bytes] | None, found: snapshots.Snapshot) -> None:
        headers = {"Content-Length": str(found.bytes), CURSOR_HEADER: str(found.cursor)}
        super().__init__(None, 200, headers)
        self.parts, self.size = parts, found.bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tasks:

            async def stream() -> None:
                await self._stream(send)
                tasks.cancel_scope.cancel()

            tasks.start_soon(stream)
            # A client gone stops the reads (each one a query) instead of reading all.
            while (await receive())["type"] != "http.disconnect":
                pass
            tasks.cancel_scope.cancel()

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        sent = 0
        if self.parts is None:
            sent = self.size
        else:
            async for data in self.parts:
                sent += len(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})
        if sent == self.size:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise UsageError("the request body is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise UsageError("the request body must be a JSON object")
    return data


def _guarded(handler: Handler) -> Handler:
    """Every failure of ``handler`` as a JSON error answer (see ``error_response``)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001 - each kind is mapped in error_response
            return error_response(exc)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


class _Pushed(NamedTuple):
    """A push body, checked: the device, its entries, and whether it takes "rebase"."""

    device: str
    entries: list[PushEntry]
    rebase: bool


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_STATUS: list[tuple[type[DuruError], int, str]] = [
    (AuthFailed, 401, "unauthorized"),
    (RateLimited, 429, "rate_limited"),
    (AlreadyExists, 409, "exists"),
    (ResyncNeeded, 410, "resync_needed"),
    (NotFound, 404, "not_found"),
    (UsageError, 400, "bad_request"),
    (CryptoError, 400, "bad_request"),
    (ServerUnavailable, 503, "unavailable"),
]


def error_response(exc: Exception) -> Response:
    """The JSON error answer for ``exc`` (500, logged, for anything unexpected)."""
    if isinstance(exc, _TooLarge):
        return _error(413, "too_large", f"the request body is over {exc.limit} bytes")
    if isinstance(exc, _Refused):
        return _error(exc.status, exc.code, exc.message)
    if isinstance(exc, ClientDisconnect):  # gone before its body ended: no one reads this
        return _error(400, "incomplete", "the connection closed before the request body ended")
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            headers = {}
            if isinstance(exc, RateLimited):
                headers["Retry-After"] = str(exc.retry_after)
            elif status == 401:
                headers["WWW-Authenticate"] = "Bearer"
            elif status == 503:
                headers["Retry-After"] = "1"
            return _error(status, code, exc.message, headers)
    logger.exception("unexpected error", exc_info=exc)
    return _error(500, "internal", "the server failed on this request (a bug: see its log)")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": message, "protocol": PROTOCOL_VERSION}},
        status_code=status,
        headers=headers,
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, "not_found", f"no endpoint {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _error(405, "method_not_allowed", f"{request.method} is not allowed here")


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailed("no session: send 'Authorization: Bearer <token>' (log in first)")
    return token.strip()


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind):
        raise UsageError(f"{name!r} must be {kind.__name__}")
    return value


def _b64_field(body: dict[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(_field(body, name, str), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{name!r} must be standard base64") from None


def _record(data: object) -> AccountRecord:
    if not isinstance(data, dict):
        raise UsageError("'record' must be an object (kdf, wrapped_master_key, auth_verifier)")
    try:
        return AccountRecord.from_dict(data)
    except (CryptoError, UsageError) as exc:
        raise UsageError(f"'record' is not valid: {exc.message}") from None


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # 19 digits at most: int() refuses over 4300 (ValueError), and 2^63-1 has 19.
    if not (raw.isascii() and raw.isdigit()) or len(raw.lstrip("0")) > 19 or int(raw) >= 2**63:
        raise UsageError(f"{name} must be a whole number from 0 to 2^63-1")
    return int(raw)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry
        return False
    return True


def _pg_message(exc: BaseException) -> str:
    return " ".join(str(exc).split())


__all__ = ["APP_URL_VAR", "MAX_OP_IDS", "app_from_env", "create_app", "error_response"]
