"""The building blocks of the model: fields, indexes and entities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Literal

from duru.model.types import EnumType, Kind

OnDelete = Literal["CASCADE", "SET NULL", "RESTRICT"]
Side = Literal["both", "local", "remote"]


class Default(Enum):
    """Defaults that are not literal values."""

    NONE = "none"  # no default: the writer must supply a value
    NOW = "now"  # the current time, in the side's timestamp form


PROPS_COLUMN = "props_enc"


@dataclass(frozen=True)
class Field:
    """One field of an entity, as both sides and the bridge see it.

    ``secret`` fields never reach the server in plaintext: a secret field with
    ``remote`` set gets its own bytea column (``title`` -> ``title_enc``); the
    others are packed together into the entity's encrypted ``props_enc``.
    ``blind_index`` adds a keyed hash column (``tag`` -> ``tag_hmac``) so the
    server can test equality and uniqueness without seeing the value.
    """

    name: str
    type: Kind | EnumType
    nullable: bool = False
    default: object = Default.NONE
    secret: bool = False
    remote: str | None = None
    references: str | None = None
    on_delete: OnDelete | None = None
    blind_index: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.remote is not None and not self.secret:
            raise ValueError(f"{self.name}: only secret fields get their own *_enc column")
        if self.blind_index and not self.secret:
            raise ValueError(f"{self.name}: a blind index is for secret fields")
        if self.on_delete is not None and self.references is None:
            raise ValueError(f"{self.name}: on_delete without references")

    @property
    def kind(self) -> Kind:
        return Kind.ENUM if isinstance(self.type, EnumType) else self.type

    @property
    def enum(self) -> EnumType:
        """The enum of an enum field; TypeError for any other kind."""
        if not isinstance(self.type, EnumType):
            raise TypeError(f"{self.name} is not an enum field")
        return self.type

    @property
    def packed(self) -> bool:
        """True when this field travels inside the encrypted ``props_enc``."""
        return self.secret and self.remote is None

    @property
    def has_default(self) -> bool:
        return self.default is not Default.NONE


@dataclass(frozen=True)
class Index:
    """An access path, declared once and rendered by each side.

    ``where`` maps field -> value for a partial index (``{"deleted": False}``),
    so each side renders the predicate in its own types. ``query`` names the
    query the index serves; an index without one does not get in.
    """

    columns: tuple[str, ...]
    query: str
    where: Mapping[str, object] = field(default_factory=dict)
    unique: bool = False
    side: Side = "both"
    name: str = ""

    def __post_init__(self) -> None:
        if not self.query:
            raise ValueError(f"index on {self.columns} does not say which query it serves")


@dataclass(frozen=True)
class Search:
    """Full-text search over some text fields of an entity (device side only)."""

    fields: tuple[str, ...]
    # Rows matching this {field: value} filter are indexed; the others (trash) are not.
    only: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Entity:
    """One entity of the app, its fields in storage order, its keys and indexes."""

    name: str
    table: str
    fields: tuple[Field, ...]
    key: str = "id"
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[Index, ...] = ()
    search: Search | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name} repeats a field name")
        known = set(names)
        referenced = [self.key]
        referenced += [c for cols in self.unique for c in cols]
        referenced += [c for ix in self.indexes for c in (*ix.columns, *ix.where)]
        if self.search is not None:
            referenced += [*self.search.fields, *self.search.only]
        missing = sorted(set(referenced) - known)
        if missing:
            raise ValueError(f"{self.name} refers to unknown fields {missing}")

    def field(self, name: str) -> Field:
        """The field called ``name``; KeyError when the entity has none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    # These are made once per entity (``cached_property`` keeps them beside the frozen
    # fields): a sync asks for them per row.
    @cached_property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def secret_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.secret)

    @cached_property
    def packed_fields(self) -> tuple[Field, ...]:
        """Secret fields that travel together in ``props_enc``."""
        return tuple(f for f in self.fields if f.packed)

    @cached_property
    def foreign_keys(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.references is not None)

    def index_name(self, index: Index) -> str:
        """The index's name: declared, else ``ix_<table>_<columns>``."""
        return index.name or f"ix_{self.table}_{'_'.join(index.columns)}"
