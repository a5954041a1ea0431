"""Table specs of the device schema, derived from the model (never written by hand)."""

from __future__ import annotations

from duru.local.schema import (
    DOC_ID,
    create_search,
    create_table,
    fts_table,
    has_doc_id,
    quote,
    where_sql,
)
from duru.migrate.ops import IndexSpec, TableSpec
from duru.model import Entity


def index_specs(entity: Entity) -> tuple[IndexSpec, ...]:
    """The device-side indexes of ``entity`` as data (they render as the schema does)."""
    return tuple(
        IndexSpec(
            entity.index_name(ix),
            entity.table,
            ix.columns,
            unique=ix.unique,
            where=where_sql(entity, ix.where) or None,
        )
        for ix in entity.indexes
        if ix.side != "remote"
    )


def table_spec(entity: Entity) -> TableSpec:
    """``entity``'s device table as a rebuild or a create needs it."""
    doc = has_doc_id(entity)
    return TableSpec(
        name=entity.table,
        create=create_table(entity),
        columns=((DOC_ID,) if doc else ()) + entity.field_names,
        key=entity.key,
        rowid_alias=DOC_ID if doc else None,
        indexes=index_specs(entity),
        after=tuple(create_search(entity)),
        fts=(fts_table(entity),) if entity.search is not None else (),
        fill=search_fill(entity),
    )


def search_fill(entity: Entity) -> tuple[str, ...]:
    """Index every row the search triggers would index (live rows only), in one statement."""
    if entity.search is None:
        return ()
    cols = ", ".join(quote(c) for c in entity.search.fields)
    where = where_sql(entity, entity.search.only) or "1"
    return (
        f"INSERT INTO {quote(fts_table(entity))} (rowid, {cols})"
        f" SELECT {DOC_ID}, {cols} FROM {quote(entity.table)} WHERE {where}",
    )
