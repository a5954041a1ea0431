"""A stable hash of the model, stored in every database duru creates."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from duru.model.schema import Default, Entity, Field, Index
from duru.model.types import EnumType


def describe(entities: Iterable[Entity]) -> list[dict[str, Any]]:
    """The model as plain data: what the fingerprint hashes and what tools print."""
    return [_entity(e) for e in entities]


def fingerprint(entities: Iterable[Entity]) -> str:
    """A short hex digest that changes whenever any stored aspect of the model does."""
    text = json.dumps(describe(entities), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _entity(e: Entity) -> dict[str, Any]:
    return {
        "name": e.name,
        "table": e.table,
        "key": e.key,
        "fields": [_field(f) for f in e.fields],
        "unique": [list(u) for u in e.unique],
        "indexes": [_index(e, ix) for ix in e.indexes],
        "search": list(e.search.fields) if e.search else None,
    }


def _field(f: Field) -> dict[str, Any]:
    kind = f.type
    return {
        "name": f.name,
        "type": {kind.name: [list(m) for m in kind.members]}
        if isinstance(kind, EnumType)
        else kind.value,
        "nullable": f.nullable,
        "default": _default(f.default),
        "secret": f.secret,
        "remote": f.remote,
        "references": f.references,
        "on_delete": f.on_delete,
        "blind_index": f.blind_index,
    }


def _index(e: Entity, ix: Index) -> dict[str, Any]:
    return {
        "name": e.index_name(ix),
        "columns": list(ix.columns),
        "where": {k: v if not isinstance(v, tuple) else list(v) for k, v in ix.where.items()},
        "unique": ix.unique,
        "side": ix.side,
    }


def _default(d: object) -> object:
    return d.value if isinstance(d, Default) else d
