"""Read one PostgreSQL statement with pglast (the PostgreSQL parser itself) into facts.

pglast declares every node attribute optional; the readers take nodes as Any and
read only the attributes the grammar guarantees for that node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError

from duru.migrate.lint.facts import (
    AddColumn,
    AddConstraint,
    AlterColumnType,
    Concurrently,
    ConflictAction,
    ConstraintKind,
    CopyRows,
    CreateIndex,
    CreateTable,
    CreateView,
    DetachPartition,
    DropColumn,
    DropIndex,
    DropNotNull,
    DropTable,
    Fact,
    JsonColumn,
    LocksTable,
    RenameColumn,
    RenameTable,
    SetNotNull,
    SetSetting,
    SqlType,
    Transaction,
    TransactionAction,
    Truncate,
    ValidateConstraint,
)
from duru.migrate.lint.pg_changes import delete, do_block, update
from duru.migrate.lint.pg_objects import OBJECT_READERS, rename_schema
from duru.migrate.lint.pg_select import ctes_of, shape_of
from duru.migrate.lint.reading import Reading

_PSYCOPG_PARAM = re.compile(r"%\(\w+\)s|%s")
_NAMED_PARAM = re.compile(r"(?<![:\w]):[A-Za-z_]\w*")

_TAT = enums.AlterTableType
_CONSTRAINT_KINDS: dict[Any, ConstraintKind] = {
    enums.ConstrType.CONSTR_CHECK: "check",
    enums.ConstrType.CONSTR_FOREIGN: "foreign_key",
    enums.ConstrType.CONSTR_UNIQUE: "unique",
    enums.ConstrType.CONSTR_PRIMARY: "primary_key",
    enums.ConstrType.CONSTR_EXCLUSION: "exclusion",
    enums.ConstrType.CONSTR_NOTNULL: "not_null",
}
_TRANSACTIONS: dict[Any, TransactionAction] = {
    enums.TransactionStmtKind.TRANS_STMT_BEGIN: "begin",
    enums.TransactionStmtKind.TRANS_STMT_START: "begin",
    enums.TransactionStmtKind.TRANS_STMT_COMMIT: "commit",
    enums.TransactionStmtKind.TRANS_STMT_ROLLBACK: "rollback",
    enums.TransactionStmtKind.TRANS_STMT_SAVEPOINT: "savepoint",
    enums.TransactionStmtKind.TRANS_STMT_RELEASE: "release",
    enums.TransactionStmtKind.TRANS_STMT_ROLLBACK_TO: "rollback_to",
}
# Taking these needs no lock that blocks readers or writers.
_GENTLE_ALTERS = {_TAT.AT_ValidateConstraint}
# Volatile functions: a DEFAULT calling one is evaluated per row, so ADD COLUMN rewrites.
_VOLATILE = {
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "gen_random_bytes",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
}
_AGGREGATES = {
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "bool_and",
    "bool_or",
    "every",
}
_SERIALS = {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"}


def read_postgres(sql: str) -> Reading:
    """Parse `sql` (one statement) and return its facts, or the parser's error."""
    if "\x00" in sql:
        # The parser reads C strings: it would stop at the NUL and miss what follows.
        return Reading(error="a NUL character in the statement")
    # psycopg placeholders are not SQL; $1 parses the same way.
    sql = _PSYCOPG_PARAM.sub("$1", sql)
    try:
        statements = parse_sql(sql)
    except ParseError as error:
        # SQLAlchemy's text() binds (:name) are not SQL either; tried only on failure,
        # since ":name" can be valid SQL inside a $$ body or an array slice.
        named = _NAMED_PARAM.sub("$1", sql)
        if named == sql:
            return Reading(error=str(error))
        try:
            statements = parse_sql(named)
        except ParseError:
            return Reading(error=str(error))
    facts: list[Fact] = []
    for raw in statements:
        facts.extend(_facts(raw.stmt))
    return Reading(tuple(facts))


def _facts(node: Any) -> Iterator[Fact]:
    if isinstance(node, ast.DoStmt):
        yield from do_block(node, _body_facts)
        return
    reader = _READERS.get(type(node))
    if reader is not None:
        yield from reader(node)


def _body_facts(sql: str) -> tuple[Fact, ...]:
    """Facts of one statement of a DO body (empty when it does not parse on its own)."""
    return read_postgres(sql).facts


def _rel(range_var: Any) -> str:
    return str(range_var.relname)


def _last_name(names: Any) -> str:
    return str(names[-1].sval)


def sql_type(type_name: Any) -> SqlType:
    """The SqlType of a pglast TypeName (internal base name, integer modifiers)."""
    mods = tuple(
        int(mod.val.ival or 0)
        for mod in type_name.typmods or ()
        if isinstance(mod, ast.A_Const) and isinstance(mod.val, ast.Integer)
    )
    return SqlType(_last_name(type_name.names), mods, bool(type_name.arrayBounds))


# Statement readers -------------------------------------------------------------


def _insert(node: Any) -> Iterator[Fact]:
    select = node.selectStmt
    if not isinstance(select, ast.SelectStmt) or select.valuesLists:
        return
    shape = shape_of(select, ctes_of(node.withClause, {}))
    conflict: ConflictAction | None = None
    if node.onConflictClause is not None:
        nothing = node.onConflictClause.action == enums.OnConflictAction.ONCONFLICT_NOTHING
        conflict = "nothing" if nothing else "update"
    yield CopyRows(
        target=_rel(node.relation),
        sources=shape.sources,
        conflict=conflict,
        star=shape.star,
        target_columns=bool(node.cols),
        filters=shape.filters,
        summary=_aggregates(select),
    )


def _aggregates(select: Any) -> bool:
    """GROUP BY, or an aggregate call (not a window) in the select list of `select`."""
    if select.op != enums.SetOperation.SETOP_NONE:
        return False
    if select.groupClause:
        return True
    return any(
        isinstance(node, ast.FuncCall)
        and node.over is None
        and _last_name(node.funcname).lower() in _AGGREGATES
        for target in select.targetList or ()
        for node in _walk_nodes(target, skip=ast.SubLink)
    )


def _create_table(node: Any) -> Iterator[Fact]:
    name = _rel(node.relation)
    columns: list[tuple[str, SqlType | None]] = []
    parents: list[str] = []
    cascade: list[str] = []
    for element in node.tableElts or ():
        constraints: tuple[Any, ...] = ()
        if isinstance(element, ast.ColumnDef):
            columns.append((str(element.colname), sql_type(element.typeName)))
            if columns[-1][1] == SqlType("json"):
                yield JsonColumn(name, str(element.colname))
            constraints = element.constraints or ()
        elif isinstance(element, ast.Constraint):
            constraints = (element,)
        for constraint in constraints:
            if constraint.contype == enums.ConstrType.CONSTR_FOREIGN:
                parents.append(_rel(constraint.pktable))
                if constraint.fk_del_action == "c":
                    cascade.append(_rel(constraint.pktable))
    yield CreateTable(name, tuple(columns), tuple(cascade), bool(node.if_not_exists))
    # A foreign key locks its parent against writes while the table is created.
    yield from (LocksTable(parent) for parent in parents if parent != name)


def _create_table_as(node: Any) -> Iterator[Fact]:
    if node.objtype != enums.ObjectType.OBJECT_TABLE or not isinstance(node.query, ast.SelectStmt):
        return
    yield from _ctas(_rel(node.into.rel), node.query, bool(node.if_not_exists))


def _select(node: Any) -> Iterator[Fact]:
    if node.intoClause is not None:
        yield from _ctas(_rel(node.intoClause.rel), node, False)


def _ctas(name: str, query: Any, if_not_exists: bool) -> Iterator[Fact]:
    shape = shape_of(query)
    yield CreateTable(name, if_not_exists=if_not_exists)
    yield CopyRows(name, shape.sources, None, shape.star, True, shape.filters, created=True)


def _drop(node: Any) -> Iterator[Fact]:
    names = [_last_name(obj) for obj in node.objects or () if isinstance(obj, tuple)]
    if node.removeType == enums.ObjectType.OBJECT_TABLE:
        for name in names:
            yield DropTable(name)
            yield LocksTable(name)
    elif node.removeType == enums.ObjectType.OBJECT_INDEX:
        for name in names:
            yield DropIndex(name, bool(node.concurrent))
            if not node.concurrent:
                yield LocksTable(name, index=True)
        if node.concurrent:
            yield Concurrently("DROP INDEX CONCURRENTLY")


def _index(node: Any) -> Iterator[Fact]:
    table = _rel(node.relation)
    columns = len(node.indexParams or ())
    yield CreateIndex(node.idxname, table, bool(node.concurrent), columns)
    if node.concurrent:
        yield Concurrently("CREATE INDEX CONCURRENTLY")
    else:
        yield LocksTable(table)


def _reindex_concurrently(node: Any) -> Iterator[Fact]:
    if any(param.defname == "concurrently" for param in node.params or ()):
        yield Concurrently("REINDEX CONCURRENTLY")
    yield from OBJECT_READERS[ast.ReindexStmt](node)


def _rename(node: Any) -> Iterator[Fact]:
    if node.relation is None:
        yield from rename_schema(node)
        return
    table = _rel(node.relation)
    if node.renameType == enums.ObjectType.OBJECT_TABLE:
        yield RenameTable(table, str(node.newname))
        yield LocksTable(table)
    elif node.renameType == enums.ObjectType.OBJECT_COLUMN:
        yield RenameColumn(table, str(node.subname), str(node.newname))
        yield LocksTable(table)


def _alter_table(node: Any) -> Iterator[Fact]:
    if node.objtype != enums.ObjectType.OBJECT_TABLE:
        return
    table = _rel(node.relation)
    locks = False
    for cmd in node.cmds or ():
        yield from _alter_command(table, cmd)
        concurrent = isinstance(cmd.def_, ast.PartitionCmd) and bool(cmd.def_.concurrent)
        if concurrent:
            yield Concurrently("DETACH PARTITION CONCURRENTLY")
        locks = locks or not (cmd.subtype in _GENTLE_ALTERS or concurrent)
    if locks:
        yield LocksTable(table)


def _alter_command(table: str, cmd: Any) -> Iterator[Fact]:
    subtype = cmd.subtype
    if subtype == _TAT.AT_AddColumn:
        yield from _add_column(table, cmd.def_)
    elif subtype == _TAT.AT_AddConstraint:
        yield from _add_constraint(table, cmd.def_)
    elif subtype == _TAT.AT_ValidateConstraint:
        yield ValidateConstraint(table, str(cmd.name))
    elif subtype == _TAT.AT_AlterColumnType:
        column_def = cmd.def_
        new_type = sql_type(column_def.typeName)
        using = _real_using(column_def.raw_default, str(cmd.name), new_type)
        yield AlterColumnType(table, str(cmd.name), new_type, using)
    elif subtype == _TAT.AT_SetNotNull:
        yield SetNotNull(table, str(cmd.name))
    elif subtype == _TAT.AT_DropColumn:
        yield DropColumn(table, str(cmd.name))
    elif subtype == _TAT.AT_DropNotNull:
        yield DropNotNull(table, str(cmd.name))
    elif subtype == _TAT.AT_DetachPartition:
        part = cmd.def_
        yield DetachPartition(table, _rel(part.name), bool(part.concurrent))


def _real_using(expr: Any, column: str, new_type: SqlType) -> bool:
    """False for no USING, ``USING col`` and ``USING col::<the new type>``.

    Those convert exactly as the plain type change does, so whether the table is
    rewritten depends on the types alone; any other expression rewrites it.
    """
    if expr is None:
        return False
    if isinstance(expr, ast.TypeCast):
        if sql_type(expr.typeName) != new_type:
            return True
        expr = expr.arg
    fields = (expr.fields or ()) if isinstance(expr, ast.ColumnRef) else ()
    return not (len(fields) == 1 and isinstance(fields[0], ast.String) and fields[0].sval == column)


def _add_column(table: str, column: Any) -> Iterator[Fact]:
    constraints = column.constraints or ()
    kinds = {constraint.contype for constraint in constraints}
    not_null = enums.ConstrType.CONSTR_NOTNULL in kinds or bool(column.is_not_null)
    has_default = bool(
        kinds
        & {
            enums.ConstrType.CONSTR_DEFAULT,
            enums.ConstrType.CONSTR_IDENTITY,
            enums.ConstrType.CONSTR_GENERATED,
        }
    )
    kind = sql_type(column.typeName)
    name = str(column.colname)
    yield AddColumn(
        table,
        name,
        kind,
        not_null,
        has_default or kind.name in _SERIALS,
        volatile_default=_volatile_default(constraints),
        stored_generated=enums.ConstrType.CONSTR_GENERATED in kinds,
        references=next(
            (_rel(c.pktable) for c in constraints if c.contype == enums.ConstrType.CONSTR_FOREIGN),
            None,
        ),
        key=_inline_key(kinds),
        auto_increment=kind.name in _SERIALS or enums.ConstrType.CONSTR_IDENTITY in kinds,
    )
    if kind == SqlType("json"):
        yield JsonColumn(table, name)


def _volatile_default(constraints: Any) -> str | None:
    for constraint in constraints:
        if constraint.contype != enums.ConstrType.CONSTR_DEFAULT:
            continue
        for node in _walk_nodes(constraint.raw_expr):
            names = node.funcname if isinstance(node, ast.FuncCall) else None
            if names and str(names[-1].sval).lower() in _VOLATILE:
                return str(names[-1].sval).lower()
    return None


def _walk_nodes(node: Any, skip: type[Any] | None = None) -> Iterator[Any]:
    """`node` and every node below it (pglast nodes, tuples of them), not entering `skip`."""
    if isinstance(node, tuple):
        for item in node:
            yield from _walk_nodes(item, skip)
    elif isinstance(node, ast.Node) and not (skip is not None and isinstance(node, skip)):
        yield node
        for name in node:
            yield from _walk_nodes(getattr(node, name), skip)


def _inline_key(kinds: set[Any]) -> str | None:
    if enums.ConstrType.CONSTR_PRIMARY in kinds:
        return "primary_key"
    return "unique" if enums.ConstrType.CONSTR_UNIQUE in kinds else None


def _add_constraint(table: str, constraint: Any) -> Iterator[Fact]:
    kind = _CONSTRAINT_KINDS.get(constraint.contype)
    if kind is None:
        return
    yield AddConstraint(
        table,
        constraint.conname,
        kind,
        not_valid=bool(constraint.skip_validation),
        not_null_column=_not_null_column(constraint),
        using_index=bool(constraint.indexname),
    )
    if kind == "foreign_key":
        yield LocksTable(_rel(constraint.pktable))


def _not_null_column(constraint: Any) -> str | None:
    """The column of ``CHECK (col IS NOT NULL)``, else None."""
    expr = constraint.raw_expr
    if constraint.contype != enums.ConstrType.CONSTR_CHECK or not isinstance(expr, ast.NullTest):
        return None
    if expr.nulltesttype != enums.NullTestType.IS_NOT_NULL:
        return None
    arg = expr.arg
    fields = (arg.fields or ()) if isinstance(arg, ast.ColumnRef) else ()
    if len(fields) == 1 and isinstance(fields[0], ast.String):
        return str(fields[0].sval)
    return None


def _transaction(node: Any) -> Iterator[Fact]:
    action = _TRANSACTIONS.get(node.kind)
    if action is not None:
        yield Transaction(action)


def _variable(node: Any) -> Iterator[Fact]:
    if node.name is None:
        return
    value = None
    if node.kind == enums.VariableSetKind.VAR_SET_VALUE and node.args:
        const = node.args[0]
        # A bound parameter sets some value the linter cannot see.
        value = "?"
        if isinstance(const, ast.A_Const) and const.val is not None:
            inner = const.val
            value = str(getattr(inner, "sval", None) or getattr(inner, "ival", ""))
    yield SetSetting(str(node.name).lower(), value, local=bool(node.is_local))


def _view(node: Any) -> Iterator[Fact]:
    yield CreateView(_rel(node.view))


def _trigger(node: Any) -> Iterator[Fact]:
    yield LocksTable(_rel(node.relation))


def _truncate(node: Any) -> Iterator[Fact]:
    cascade = node.behavior == enums.DropBehavior.DROP_CASCADE
    for relation in node.relations or ():
        yield Truncate(_rel(relation), cascade)
        yield LocksTable(_rel(relation))


_READERS: dict[type[Any], Callable[[Any], Iterator[Fact]]] = {
    **OBJECT_READERS,
    ast.AlterTableStmt: _alter_table,
    ast.CreateStmt: _create_table,
    ast.CreateTableAsStmt: _create_table_as,
    ast.CreateTrigStmt: _trigger,
    ast.DropStmt: _drop,
    ast.IndexStmt: _index,
    ast.InsertStmt: _insert,
    ast.ReindexStmt: _reindex_concurrently,
    ast.DeleteStmt: delete,
    ast.UpdateStmt: update,
    ast.RenameStmt: _rename,
    ast.SelectStmt: _select,
    ast.TransactionStmt: _transaction,
    ast.TruncateStmt: _truncate,
    ast.VariableSetStmt: _variable,
    ast.ViewStmt: _view,
}
