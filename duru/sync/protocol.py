"""The sync protocol's messages, as plain data both sides share (no I/O here).

Push: the client sends ``PushEntry``s, one per changed row (its outbox ops for that row,
coalesced): the row's current sealed server form, or a delete, with the server version
it was based on and the op ids it covers. The server answers one ``PushResult`` per entry:

    applied     the row (or its tombstone) is now the server's, at ``version``
    duplicate   the newest op id was applied before (a retried push): same answer as then
    conflict    the base was stale: the server kept its row and stored this write as a
                conflict revision that every device pulls; nothing was overwritten
    superseded  another live row already holds this row's unique key (the same tag on
                the same note, added on two devices): that row (``kept``) stays, this
                one goes; the device drops its copy and pulls the kept one (a retried
                push is answered so again, without ``kept``)
    adjusted    applied, but not as sent: a move that would have closed a loop in a tree
                (another device moved the parent under this row) kept the server's
                parent, and the move is a conflict revision; the device pulls the row
    revive      not applied: a row it points at is a tombstone (deleted on another
                device). ``revive`` names the dead rows (with their parents that are dead
                too) and their tombstones' versions; the device writes each of them again
                on top of its tombstone, then this row (the server never brings a row back
                itself: only a device can give it a row MAC, see ``duru.sync.inbox``)
    rebase      not applied: an earlier op id of the entry was applied at ``version`` (a
                push whose answer was lost), and the row is sealed on an older base. Its
                row MAC vouches for that base, so a device that saw ``version`` would
                refuse it as a replay: the device seals it again on ``version`` and
                pushes it again; ``kept`` names that earlier op id (the device's merge
                base is now that write). Only to a push that says it takes it
                (``"rebase": true``);
                to others the server applies the row on ``version`` as before.

Pull: ``Change``s ordered by the user's change sequence, after a cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from duru.errors import UsageError
from duru.model import BY_NAME
from duru.model.values import uuid_text

OpKind = Literal["upsert", "delete"]
Outcome = Literal["applied", "duplicate", "conflict", "superseded", "adjusted", "revive", "rebase"]
ChangeKind = Literal["upsert", "delete", "conflict"]
PROTOCOL_VERSION = 1
# The newest op ids a push entry carries: enough to recognise a push whose answer was lost.
MAX_OP_IDS = 64


# The most conflict revision outcomes one POST /v1/conflicts/resolve carries.
MAX_RESOLUTIONS = 1_000


@dataclass(frozen=True, slots=True)
class PushEntry:
    """One row's pending change; ``op_ids`` oldest first, the last one is the newest."""

    entity: str
    row_id: str
    kind: OpKind
    base_version: int
    op_ids: tuple[str, ...]
    row: dict[str, Any] | None  # wire form (``duru.sync.wire``); None for a delete

    @property
    def op_id(self) -> str:
        return self.op_ids[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "row_id": self.row_id,
            "kind": self.kind,
            "base_version": self.base_version,
            "op_ids": list(self.op_ids),
            "row": self.row,
        }

    @classmethod
    def from_json(cls, data: object) -> PushEntry:
        """Parse and check one entry; UsageError naming what is wrong."""
        if not isinstance(data, dict):
            raise UsageError("a push entry must be a JSON object")
        entity = data.get("entity")
        if not isinstance(entity, str) or entity not in BY_NAME:
            raise UsageError(f"unknown entity {entity!r}")
        kind = data.get("kind")
        if kind not in ("upsert", "delete"):
            raise UsageError(f"kind must be 'upsert' or 'delete', not {kind!r}")
        base = data.get("base_version")
        if isinstance(base, bool) or not isinstance(base, int) or not 0 <= base < 2**63:
            raise UsageError(f"base_version must be an integer >= 0, not {base!r}")
        op_ids = data.get("op_ids")
        if not isinstance(op_ids, list) or not 1 <= len(op_ids) <= MAX_OP_IDS:
            raise UsageError(f"op_ids must be a list of 1 to {MAX_OP_IDS} uuids")
        row = data.get("row")
        if kind == "upsert" and not isinstance(row, dict):
            raise UsageError("an upsert carries its row as a JSON object")
        if kind == "delete" and row is not None:
            raise UsageError("a delete carries no row")
        return cls(
            str(entity),
            canonical_id(data.get("row_id"), "row_id"),
            kind,
            base,
            tuple(canonical_id(o, "op_ids") for o in op_ids),
            row,
        )


@dataclass(frozen=True, slots=True)
class PushResult:
    """What the server did with one entry (see the module docstring)."""

    op_id: str
    entity: str
    row_id: str
    outcome: Outcome
    version: int
    kept: str | None = None
    revive: tuple[Tombstone, ...] = ()  # outcome "revive": the dead rows to write again

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "op_id": self.op_id,
            "entity": self.entity,
            "row_id": self.row_id,
            "outcome": self.outcome,
            "version": self.version,
        }
        if self.kept is not None:
            out["kept"] = self.kept
        if self.revive:
            out["revive"] = [t.to_json() for t in self.revive]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PushResult:
        return cls(
            str(data["op_id"]),
            str(data["entity"]),
            str(data["row_id"]),
            data["outcome"],
            int(data["version"]),
            data.get("kept"),
            tuple(Tombstone.from_json(t) for t in data.get("revive") or ()),
        )


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A dead row on the server and its tombstone's version."""

    entity: str
    row_id: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "row_id": self.row_id, "version": self.version}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tombstone:
        return cls(str(data["entity"]), str(data["row_id"]), int(data["version"]))


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a pull page.

    ``upsert``: ``row`` is the server row (wire form). ``delete``: the row is gone (a
    tombstone). ``conflict``: ``row`` is a conflict revision (``conflicts`` row, wire form).
    """

    seq: int
    entity: str
    kind: ChangeKind
    row_id: str
    version: int
    row: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "entity": self.entity,
            "kind": self.kind,
            "row_id": self.row_id,
            "version": self.version,
            "row": self.row,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(
            int(data["seq"]),
            str(data["entity"]),
            data["kind"],
            str(data["row_id"]),
            int(data["version"]),
            data.get("row"),
        )


def canonical_id(value: object, what: str) -> str:
    """``value`` as a canonical lower-case uuid; UsageError naming ``what`` otherwise."""
    if not isinstance(value, str):
        raise UsageError(f"{what}: expected a uuid, got {type(value).__name__}")
    found = uuid_text(value)
    if found is None:
        raise UsageError(f"{what}: {value[:60]!r} is not a uuid")
    return found
