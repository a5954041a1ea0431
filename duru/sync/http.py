"""The sync API over HTTP (httpx): one method per endpoint, errors as duru's.

    api = SyncApi("http://127.0.0.1:8787", token=...)
    results, head = api.push(device_id, entries)

A server that cannot be reached, or answers 5xx, raises SyncServerError (retryable) with
one line naming the URL; 401 raises AuthFailed, 429 RateLimited, 409 AlreadyExists (or
SyncServerError for a refused push), 410 ResyncNeeded, any other 4xx SyncServerError with
the server's message.
"""

from __future__ import annotations

import base64
import ssl
from functools import cache
from typing import Any

import httpx

from duru.crypto import AccountRecord, KdfParams
from duru.errors import (
    AlreadyExists,
    AuthFailed,
    RateLimited,
    RequestTooLarge,
    ResyncNeeded,
    SyncServerError,
    UsageError,
)

from .protocol import Change, PushEntry, PushResult

DEFAULT_TIMEOUT = 60.0


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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = base_url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"a sync server URL starts with http:// or https://, not {url!r}")
        self.base_url = url
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
        return KdfParams.from_dict(data["kdf"])

    def login(self, name: str, auth_key: bytes) -> dict[str, Any]:
        key = base64.b64encode(auth_key).decode("ascii")
        data: dict[str, Any] = self._call("POST", "/v1/login", {"name": name, "auth_key": key})
        self.token = str(data["token"])
        return data

    def logout(self) -> None:
        self._call("POST", "/v1/logout", None, auth=True)

    def account(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/v1/account", None, auth=True)
        return data

    # -- sync ------------------------------------------------------------------

    def push(self, device_id: str, entries: list[PushEntry]) -> tuple[list[PushResult], int]:
        body = {"device_id": device_id, "entries": [e.to_json() for e in entries]}
        data = self._call("POST", "/v1/push", body, auth=True)
        return [PushResult.from_json(r) for r in data["results"]], int(data["head"])

    def changes(self, after: int, limit: int) -> tuple[list[Change], int, int, bool]:
        """(changes, next cursor, head, more) after cursor ``after``."""
        data = self._call("GET", f"/v1/changes?after={after}&limit={limit}", None, auth=True)
        try:
            changes = [Change.from_json(c) for c in data["changes"]]
            return changes, int(data["cursor"]), int(data["head"]), bool(data["more"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SyncServerError(
                f"the sync server at {self.base_url} sent a malformed page of changes"
                f" ({type(exc).__name__}: {exc}); nothing of it was applied"
            ) from None

    def resolve(self, items: list[dict[str, Any]]) -> int:
        """Send conflict revisions' new statuses; the number the server changed."""
        data = self._call("POST", "/v1/conflicts/resolve", {"resolutions": items}, auth=True)
        return int(data["changed"])

    # -- plumbing --------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any, *, auth: bool = False) -> Any:
        headers = {}
        if auth:
            if not self.token:
                raise AuthFailed("this device is not logged in: run `duru login`")
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SyncServerError(
                f"cannot reach the sync server at {self.base_url}: {_reason(exc)}", retryable=True
            ) from None
        if response.status_code >= 400:
            raise _error(response, self.base_url)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise SyncServerError(
                f"the sync server at {self.base_url} answered {path} with something not JSON"
            ) from None


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
        return RateLimited(message, retry_after=int(after) if after.isdigit() else 60)
    if status == 409 and response.request.url.path.endswith("/register"):
        return AlreadyExists(message)
    if status == 410:
        return ResyncNeeded(message)
    if status == 413:  # from the server or a proxy before it (whose answer may be HTML)
        return RequestTooLarge(
            f"the sync server at {base_url} refused a request as too large (413): {message}",
            retryable=False,
        )
    return SyncServerError(
        f"the sync server at {base_url} refused ({status}): {message}", retryable=status >= 500
    )


def _reason(exc: httpx.HTTPError) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
