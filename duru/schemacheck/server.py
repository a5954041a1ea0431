"""Compare a live server (PostgreSQL) schema with the layout the model derives."""

from __future__ import annotations

import re
from collections.abc import Mapping

from duru.model import ENTITIES, PROPS_COLUMN, Entity, Field, entity
from duru.remote.introspect import LiveSchema, LiveTable
from duru.remote.layout import BYTEA, META, ServerColumn, ServerTable, server_tables
from duru.remote.schema import RESERVE_FUNCTION, USER_SETTING, expected_meta

from .collect import Collector, same_expression
from .report import Mismatch, MismatchKind

K = MismatchKind
_OWNER_POLICY = re.compile(
    r"^\(*user_id\s*=.*current_setting\(\s*'" + re.escape(USER_SETTING) + "'", re.IGNORECASE
)


def compare_server(
    live: LiveSchema, meta: Mapping[str, str] | None, entities: tuple[Entity, ...] = ENTITIES
) -> list[Mismatch]:
    """Every difference between ``live`` (and its ``duru_meta`` rows) and the model."""
    out = Collector("server")
    expected = server_tables(entities)
    for table in expected:
        found = live.tables.get(table.name)
        if found is None:
            out.add(K.MISSING_TABLE, table.name, None, "table missing")
            continue
        _compare_table(out, table, found)
    names = {t.name for t in expected}
    for name in sorted(set(live.tables) - names):
        out.add(K.EXTRA_TABLE, name, None, "table not in the model", severity="warning")
    if RESERVE_FUNCTION not in live.functions:
        out.add(K.MISSING_FUNCTION, None, RESERVE_FUNCTION, "function missing")
    if META in live.tables:
        _compare_meta(out, meta or {})
    return out.items


def _compare_table(out: Collector, table: ServerTable, live: LiveTable) -> None:
    explained = _plaintext_secrets(out, table, live)
    for col in table.columns:
        if col.name not in explained:
            _compare_column(out, table.name, col, live)
    known = {c.name for c in table.columns} | explained
    for name in live.columns:
        if name not in known:
            out.add(K.EXTRA_COLUMN, table.name, name, "column not in the model", found=name)
    _compare_primary_key(out, table, live)
    _compare_indexes(out, table, live)
    _compare_foreign_keys(out, table, live)
    if table.row_security:
        _compare_row_security(out, table, live)


def _plaintext_secrets(out: Collector, table: ServerTable, live: LiveTable) -> set[str]:
    """Report every secret field that has a column of its own name; the names to skip after.

    The column the field should have had (``title_enc``) is not reported missing as well:
    the one message says both.
    """
    if table.entity is None:
        return set()
    skip: set[str] = set()
    for f in entity(table.entity).secret_fields:
        col = live.columns.get(f.name)
        if col is None:
            continue
        skip.add(f.name)
        if f.remote is not None and f.remote not in live.columns:
            skip.add(f.remote)
        out.add(
            K.PLAINTEXT_SECRET,
            table.name,
            f.name,
            "secret field stored as plaintext",
            found=f'{col.type} column "{f.name}"',
            expected=_sealed_home(f),
        )
    return skip


def _sealed_home(f: Field) -> str:
    if f.remote is not None:
        return f'{BYTEA} "{f.remote}"'
    return f'it sealed inside {BYTEA} "{PROPS_COLUMN}"'


def _compare_column(out: Collector, table: str, col: ServerColumn, live: LiveTable) -> None:
    found = live.columns.get(col.name)
    if found is None:
        out.add(K.MISSING_COLUMN, table, col.name, "column missing", expected=col.type)
        return
    if found.type != col.type:
        what = "type differs"
        if col.type == BYTEA:
            what = "ciphertext column is not bytea"
        elif col.enum is not None:
            what = f"enum stored as {found.type}, not as its member names"
        expected = col.type
        if col.enum is not None:
            expected = f"{col.type} holding {', '.join(col.enum)}"
        out.add(K.TYPE, table, col.name, what, found=found.type, expected=expected)
        return
    if found.not_null == col.nullable:
        out.add(
            K.NULLABILITY,
            table,
            col.name,
            "nullability differs",
            found=_null_word(not found.not_null),
            expected=_null_word(col.nullable),
        )
    if col.enum is not None:
        _compare_enum(out, table, col, live)


def _compare_enum(out: Collector, table: str, col: ServerColumn, live: LiveTable) -> None:
    want = ", ".join(col.enum or ())
    checks = [c for c in live.checks if c.columns == (col.name,) and c.text_values]
    if not checks:
        out.add(
            K.ENUM_VALUES, table, col.name, "no CHECK limits the enum", found="none", expected=want
        )
    for check in checks:
        if sorted(check.text_values) != sorted(col.enum or ()):
            out.add(
                K.ENUM_VALUES,
                table,
                col.name,
                f"enum values differ (CHECK {check.name})",
                found=", ".join(check.text_values),
                expected=want,
            )


def _compare_primary_key(out: Collector, table: ServerTable, live: LiveTable) -> None:
    want = table.primary_key.columns
    if live.primary_key != want:
        out.add(
            K.PRIMARY_KEY,
            table.name,
            None,
            "primary key differs",
            found=_cols(live.primary_key) if live.primary_key else "none",
            expected=_cols(want),
        )


def _compare_indexes(out: Collector, table: ServerTable, live: LiveTable) -> None:
    for ix in table.indexes:
        found = live.indexes.get(ix.name)
        if found is None:
            out.add(
                K.MISSING_INDEX,
                table.name,
                None,
                f"index {ix.name} missing",
                note=f"serves: {ix.query}",
                expected=_index_text(ix.columns, ix.method, ix.unique, ix.where),
            )
            continue
        want = _index_text(ix.columns, ix.method, ix.unique, ix.where)
        got = _index_text(found.columns, found.method, found.unique, found.predicate or "")
        same = (
            found.columns == ix.columns
            and found.method == ix.method
            and found.unique == ix.unique
            and same_expression(found.predicate, ix.where)
        )
        if not same:
            out.add(
                K.INDEX_DEFINITION,
                table.name,
                None,
                f"index {ix.name} differs",
                found=got,
                expected=want,
            )
        elif not found.valid:
            out.add(
                K.INDEX_DEFINITION,
                table.name,
                None,
                f"index {ix.name} is invalid (a failed CREATE INDEX CONCURRENTLY?)",
            )
    names = {ix.name for ix in table.indexes}
    for name, found in live.indexes.items():
        if name not in names:
            got = _index_text(found.columns, found.method, found.unique, found.predicate or "")
            out.add(
                K.EXTRA_INDEX,
                table.name,
                None,
                f"index {name} not in the model",
                found=got,
                severity="warning",
            )


def _compare_foreign_keys(out: Collector, table: ServerTable, live: LiveTable) -> None:
    by_columns = {fk.columns: fk for fk in live.foreign_keys}
    for fk in table.foreign_keys:
        want = _fk_text(fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete, fk.set_null)
        found = by_columns.pop(fk.columns, None)
        if found is None:
            out.add(K.FOREIGN_KEY, table.name, fk.columns[-1], "foreign key missing", expected=want)
            continue
        got = _fk_text(
            found.columns, found.ref_table, found.ref_columns, found.on_delete, found.set_null
        )
        if got != want:
            out.add(
                K.FOREIGN_KEY,
                table.name,
                fk.columns[-1],
                "foreign key differs",
                found=got,
                expected=want,
            )
    for found in by_columns.values():
        got = _fk_text(
            found.columns, found.ref_table, found.ref_columns, found.on_delete, found.set_null
        )
        out.add(
            K.FOREIGN_KEY, table.name, found.columns[-1], "foreign key not in the model", found=got
        )


def _compare_row_security(out: Collector, expected: ServerTable, live: LiveTable) -> None:
    table = expected.name
    if not live.row_security:
        out.add(
            K.ROW_SECURITY,
            table,
            None,
            "row level security is not enabled",
            expected="ENABLE ROW LEVEL SECURITY",
        )
    if expected.force_row_security and not live.force_row_security:
        out.add(
            K.ROW_SECURITY,
            table,
            None,
            "row level security is not forced",
            expected="FORCE ROW LEVEL SECURITY",
        )
    owner = [p for p in live.policies if _is_owner_policy(p.command, p.using, p.with_check)]
    if not owner:
        out.add(
            K.ROW_SECURITY,
            table,
            None,
            "no policy limits rows to the session's user",
            expected=f"user_id = current_setting('{USER_SETTING}')::uuid",
        )
    for p in live.policies:
        if p.permissive and p not in owner:
            out.add(
                K.ROW_SECURITY,
                table,
                None,
                f"permissive policy {p.name} may widen access",
                found=p.using or "true",
            )


def _is_owner_policy(command: str, using: str | None, with_check: str | None) -> bool:
    if command != "ALL" or using is None or not _OWNER_POLICY.match(using):
        return False
    return with_check is None or bool(_OWNER_POLICY.match(with_check))


def _compare_meta(out: Collector, meta: Mapping[str, str]) -> None:
    for key, want in expected_meta().items():
        if meta.get(key) != want:
            out.add(
                K.FINGERPRINT,
                META,
                key,
                f"{key} differs (made by another duru?)",
                found=meta.get(key, "none"),
                expected=want,
            )


def _index_text(cols: tuple[str | None, ...], method: str, unique: bool, where: str) -> str:
    text = f"{'UNIQUE ' if unique else ''}{method} ({', '.join(c or '<expr>' for c in cols)})"
    return f"{text} WHERE {where}" if where else text


def _fk_text(
    cols: tuple[str, ...],
    ref: str,
    ref_cols: tuple[str, ...],
    action: str,
    set_null: tuple[str, ...],
) -> str:
    clear = f" ({', '.join(set_null)})" if set_null else ""
    return f"({', '.join(cols)}) -> {ref} ({', '.join(ref_cols)}) ON DELETE {action}{clear}"


def _cols(cols: tuple[str, ...]) -> str:
    return f"({', '.join(cols)})"


def _null_word(nullable: bool) -> str:
    return "NULL allowed" if nullable else "NOT NULL"
