"""One legacy row read into the model's terms, or the reason it cannot be.

A :class:`RowReader` is made once per table from the columns the file really
has (matched by name, in any case and any order) and then reads each row:
ids and references become uuids, each mapped column is read as its model
field's type, and the row's key is worked out. It does not look at other
rows; whether the referenced rows were imported is the importer's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from duru.errors import InvalidValue
from duru.local.legacy.reader import SourceRow
from duru.local.legacy.report import Reason
from duru.local.legacy.spec import LegacyTable, Ref
from duru.local.legacy.values import (
    composite_id,
    legacy_key,
    map_id,
    normalize_tag,
    read_bool,
    read_enum,
    read_int,
    read_json,
    read_real,
    read_text,
    read_timestamp,
)
from duru.model import NOTE_TAG, Field, Kind, Row

Read = Callable[[object], object]

_READERS: dict[Kind, Read] = {
    Kind.TEXT: read_text,
    Kind.UUID: read_text,
    Kind.INT: read_int,
    Kind.FLOAT: read_real,
    Kind.BOOL: read_bool,
    Kind.TIMESTAMP: read_timestamp,
}


@dataclass(slots=True)
class Prepared:
    """A legacy row in model form, not yet written.

    ``normal`` holds every source column (unknown ones as stored) in the form
    two rows are compared in to call one an exact duplicate of the other.
    ``refs`` maps each reference column (lower case) to the uuid it points at.
    """

    source: SourceRow
    key: str | None
    normal: dict[str, object]
    values: Row
    refs: dict[str, str | None]
    notices: list[str]


@dataclass(frozen=True)
class _Mapped:
    """A file column that fills model field ``target``, read with ``read``."""

    column: str
    target: Field
    read: Read

    @property
    def parts(self) -> tuple[str, str, Read, bool, bool, bool]:
        """What the per-row loop needs, unpacked once (this runs for every value)."""
        t = self.target
        # Only the tag has to see a NULL: an empty tag is refused, not defaulted.
        skip_null = self.read is not _read_tag
        return self.column, t.name, self.read, t.nullable, t.kind is Kind.JSON, skip_null


class RowReader:
    """Reads the rows of one legacy table whose file has ``columns``."""

    def __init__(self, spec: LegacyTable, columns: tuple[str, ...]) -> None:
        self.spec = spec
        self.id_column: str | None = None
        self.refs: list[tuple[str, Ref, str | None]] = []  # column, ref, model field
        self.mapped: list[_Mapped] = []
        self.raw: list[str] = []
        for column in columns:
            self._place(column)
        self._loop = [m.parts for m in self.mapped]
        self._needed = [m for m in self.mapped if not m.target.nullable]
        spelled = {c.lower(): c for c in columns}
        self.key_columns = [spelled.get(k, k) for k in spec.key]

    def prepare(self, row: SourceRow, now: int) -> Prepared | Reason:
        """Read ``row`` into model values; a Reason when a value cannot be read.

        ``now`` stands in for timestamps the file does not have at all.
        """
        values = row.values
        out = Prepared(row, None, {}, {}, {}, [])
        if self.id_column is not None:
            try:
                key = legacy_key(values[self.id_column])
            except InvalidValue as exc:
                return Reason("unparseable", f"{self.id_column}: {exc.message}")
            if key is None:
                return Reason("missing", "the row has no id")
            out.key = out.normal[self.id_column] = map_id(self.spec.name, key)
        problem = self._take_refs(out) or self._take_mapped(out)
        if problem is not None:
            return problem
        for column in self.raw:
            out.normal[column] = values[column]
        if self.spec.entity is None:
            return out
        _fill_stamps(out, now)
        self._fill_nulls(out)
        return self._with_key(out)

    def label(self, row: SourceRow) -> str:
        """How a row is named in quarantine and messages: its legacy id, else its rowid."""
        key = self._legacy_id(row)
        return key if key is not None else f"rowid {row.rowid}"

    def own_key(self, row: SourceRow) -> str | None:
        """The uuid a row with an id of its own maps to, whether or not it can be imported."""
        key = self._legacy_id(row)
        return None if key is None else map_id(self.spec.name, key)

    def _place(self, column: str) -> None:
        name, spec = column.lower(), self.spec
        ref = spec.ref(name)
        target = spec.field_for(name)
        if spec.own_id and name == "id":
            self.id_column = column
        elif ref is not None:
            self.refs.append((column, ref, None if target is None else target.name))
        elif target is not None:
            self.mapped.append(_Mapped(column, target, _reader(target)))
        else:
            self.raw.append(column)

    def _take_refs(self, out: Prepared) -> Reason | None:
        for column, ref, target in self.refs:
            try:
                key = legacy_key(out.source.values[column])
            except InvalidValue as exc:
                return Reason("unparseable", f"{column}: {exc.message}")
            mapped = None if key is None else map_id(ref.table, key)
            out.refs[ref.column] = out.normal[column] = mapped
            if target is not None:
                out.values[target] = mapped
        return None

    def _take_mapped(self, out: Prepared) -> Reason | None:
        values, normal, model = out.source.values, out.normal, out.values
        for column, name, read, nullable, is_json, skip_null in self._loop:
            raw = values[column]
            if raw is None and skip_null:
                normal[column] = None
                if nullable:
                    model[name] = None
                continue
            try:
                value = read(raw)
            except InvalidValue as exc:
                return Reason("unparseable", f"{column}: {exc.message}")
            if is_json:
                assert isinstance(value, tuple)
                value, was_json = value
                if not was_json:
                    out.notices.append(f"{column} is not JSON: kept as a JSON string")
            normal[column] = value
            if value is not None or nullable:
                model[name] = value
        return None

    def _fill_nulls(self, out: Prepared) -> None:
        # A NULL where the model needs a value: its default, or empty text.
        for m in self._needed:
            if m.target.name in out.values:
                continue
            if m.target.has_default:
                out.notices.append(f"{m.column} was NULL: took the model's default")
            elif m.target.kind is Kind.TEXT:
                out.values[m.target.name] = ""
                out.notices.append(f"{m.column} was NULL: took empty text")

    def _with_key(self, out: Prepared) -> Prepared:
        entity = self.spec.entity
        assert entity is not None
        if self.spec.own_id:
            out.values["id"] = out.key
        elif entity.key == "id":
            parts = [out.normal.get(c) for c in self.key_columns]
            out.key = out.values["id"] = composite_id(self.spec.name, parts)
        else:
            out.key = out.refs.get(entity.key)
        return out

    def _legacy_id(self, row: SourceRow) -> str | None:
        if self.id_column is None:
            return None
        try:
            return legacy_key(row.values[self.id_column])
        except InvalidValue:
            return None


def _reader(target: Field) -> Read:
    if target.kind is Kind.ENUM:
        return partial(read_enum, target.enum)
    if target.kind is Kind.JSON:
        return read_json
    if target is NOTE_TAG.field("tag"):
        return _read_tag
    return _READERS[target.kind]


def _read_tag(raw: object) -> str:
    tag = normalize_tag(raw)
    if tag is None:
        raise InvalidValue("a tag may not be empty")
    return tag


def _fill_stamps(out: Prepared, now: int) -> None:
    # Version 11 keeps one of the two stamps at most; the other takes its value.
    created, updated = out.values.get("created_at"), out.values.get("updated_at")
    if created is None:
        created = updated if updated is not None else now
    out.values["created_at"] = created
    out.values["updated_at"] = updated if updated is not None else created
