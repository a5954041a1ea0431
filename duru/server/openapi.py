"""The OpenAPI 3.1 description of the sync API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from duru.model import BY_NAME
from duru.sync.protocol import MAX_OP_IDS, PROTOCOL_VERSION

from .config import ServerConfig

_ERROR = {"$ref": "#/components/schemas/Error"}
_UUID = {"type": "string", "format": "uuid"}
_OCTETS = "application/octet-stream"
_BYTES = {"type": "string", "format": "binary"}


def openapi_document(config: ServerConfig) -> dict[str, Any]:
    """The whole document; limits come from ``config``."""
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "duru sync API",
            "version": str(PROTOCOL_VERSION),
            "description": (
                "End-to-end encrypted sync for Duru Notes. The server stores what devices "
                "seal; it never receives a passphrase or a key. Bodies are at most "
                f"{config.max_body_bytes} bytes."
            ),
        },
        "paths": {
            "/v1/health": {"get": _op("Health", "The database answers.", {"200": _ok()})},
            "/v1/register": {
                "post": _op(
                    "Register",
                    "Create an account from a record the device made; a client address"
                    " registers a limited number of accounts per window (429 past it),"
                    " none when the operator closed registration (403).",
                    {"201": _ok(), "400": _err(), "403": _err(), "409": _err(), "429": _err()},
                    body=_obj(name={"type": "string"}, user_id=_UUID, record=_ref("Record")),
                )
            },
            "/v1/login/params": {
                "post": _op(
                    "Login parameters",
                    "KDF parameters (salt, cost) for a user name; made-up but stable for an "
                    "unknown name.",
                    {"200": _ok(_obj(kdf=_ref("Kdf")))},
                    body=_obj(name={"type": "string"}),
                )
            },
            "/v1/login": {
                "post": _op(
                    "Log in",
                    "Exchange the authentication key (base64) for a bearer token.",
                    {"200": _ok(_ref("Session")), "401": _err(), "429": _err()},
                    body=_obj(name={"type": "string"}, auth_key={"type": "string"}),
                )
            },
            "/v1/logout": {
                "post": _op(
                    "Log out", "End this token's session.", {"204": {"description": "done"}}, bearer
                )
            },
            "/v1/account": {
                "get": _op(
                    "Account", "The wrapped master key and KDF parameters.", {"200": _ok()}, bearer
                )
            },
            "/v1/push": {
                "post": _op(
                    "Push",
                    f"Apply up to {config.max_push_entries} entries in one transaction.",
                    {"200": _ok(), "400": _err(), "401": _err(), "409": _err(), "413": _err()},
                    bearer,
                    body=_also(
                        _obj(
                            device_id={"type": "string", "maxLength": 64},
                            entries={"type": "array", "items": _ref("PushEntry")},
                        ),
                        rebase={"type": "boolean"},  # takes the "rebase" outcome
                    ),
                )
            },
            "/v1/conflicts/resolve": {
                "post": _op(
                    "Resolve conflicts",
                    "Set what became of conflict revisions (merged, copied, revived, resolved).",
                    {"200": _ok(), "400": _err(), "401": _err()},
                    bearer,
                    body=_obj(resolutions={"type": "array", "items": {"type": "object"}}),
                )
            },
            "/v1/snapshot": {
                "put": {
                    **_op(
                        "Upload a snapshot",
                        "The device's whole database, sealed on the device (opaque bytes), at "
                        "a change cursor; streamed, chunked or not, at most "
                        f"{config.max_snapshot_bytes} bytes. 201 when kept; 200 with kept "
                        "false when a snapshot at that cursor or later is kept instead.",
                        {
                            "200": _ok(_ref("SnapshotKept")),
                            "201": _ok(_ref("SnapshotKept")),
                            "400": _err(),
                            "401": _err(),
                            "413": _err(),
                            "429": _err(),
                        },
                        bearer,
                    ),
                    "parameters": [
                        _query("cursor", "the change sequence number the snapshot is at")
                    ],
                    "requestBody": {"required": True, "content": {_OCTETS: {"schema": _BYTES}}},
                },
                "get": _op(
                    "Download the snapshot",
                    "The bytes of the account's snapshot; header Duru-Snapshot-Cursor is its "
                    "cursor. A body shorter than Content-Length: it was replaced meanwhile.",
                    {
                        "200": {"description": "success", "content": {_OCTETS: {"schema": _BYTES}}},
                        "401": _err(),
                        "404": _err(),
                    },
                    bearer,
                ),
            },
            "/v1/snapshot/info": {
                "get": _op(
                    "Snapshot info",
                    "The cursor, size and time of the account's snapshot (404: none usable).",
                    {"200": _ok(_ref("SnapshotInfo")), "401": _err(), "404": _err()},
                    bearer,
                )
            },
            "/v1/changes": {
                "get": {
                    **_op(
                        "Pull",
                        "Changes after a cursor, in change order.",
                        {"200": _ok(), "401": _err(), "410": _err()},
                        bearer,
                    ),
                    "parameters": [
                        _query("after", "the cursor: last change sequence number applied"),
                        _query("limit", f"page size, 1 to {config.max_page}"),
                    ],
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _obj(error=_obj(code={"type": "string"}, message={"type": "string"})),
                "Kdf": {"type": "object", "description": "Argon2id parameters and salt"},
                "Record": _obj(
                    kdf=_ref("Kdf"),
                    wrapped_master_key={"type": "string"},
                    auth_verifier={"type": "string"},
                ),
                "Session": _obj(
                    token={"type": "string"}, user_id=_UUID, expires_at={"type": "string"}
                ),
                "SnapshotKept": _obj(
                    kept={"type": "boolean"},
                    cursor={"type": "integer"},
                    bytes={"type": "integer"},
                ),
                "SnapshotInfo": _obj(
                    cursor={"type": "integer"},
                    bytes={"type": "integer"},
                    created_at={"type": "string", "format": "date-time"},
                ),
                "PushEntry": _obj(
                    entity={"enum": sorted(BY_NAME)},
                    row_id=_UUID,
                    kind={"enum": ["upsert", "delete"]},
                    base_version={"type": "integer", "minimum": 0},
                    op_ids={"type": "array", "items": _UUID, "maxItems": MAX_OP_IDS},
                    row={"type": ["object", "null"]},
                ),
            },
        },
    }


def _op(
    summary: str,
    description: str,
    responses: dict[str, Any],
    security: Any = None,
    *,
    body: Any = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "description": description, "responses": responses}
    if security is not None:
        out["security"] = security
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return out


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": sorted(props)}


def _also(obj: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """``obj`` with ``optional`` properties, which it does not require."""
    return {**obj, "properties": {**obj["properties"], **optional}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": "success"}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def _err() -> dict[str, Any]:
    return {"description": "error", "content": {"application/json": {"schema": _ERROR}}}


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": "integer"}}
