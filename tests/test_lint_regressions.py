"""False positives and misses found by linting the realistic fixture folder, one test each.

Each test holds the smallest source showing the defect, and the case next to it that
must keep its finding, so that a fix cannot pass by switching a rule off.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from duru.migrate.lint import lint_source
from duru.migrate.lint.settings import LintSettings

QUIET = LintSettings(exclude=frozenset({"DURU221"}))
WRAPPED = LintSettings(assume_in_transaction=True, exclude=QUIET.exclude)
T = "SET lock_timeout = '5s';\n"


def _rules(
    text: str, name: str, dialect: str = "postgres", settings: LintSettings = QUIET
) -> list[str]:
    report = lint_source(text, Path(name), dialect=dialect, settings=settings)  # type: ignore[arg-type]
    return sorted(finding.rule for finding in report.active)


ALEMBIC = """\
from alembic import op

revision = "0002"


def upgrade() -> None:
    op.execute("SET lock_timeout = '3s'")
{upgrade}


def downgrade() -> None:
{downgrade}
"""


def _alembic(upgrade: str, downgrade: str = "    pass") -> str:
    return ALEMBIC.format(upgrade=upgrade, downgrade=downgrade)


# Python: downgrade code, alembic's transaction, host transaction blocks, run order ------------


def test_alembic_downgrade_is_not_linted() -> None:
    source = _alembic(
        '    op.execute("ALTER TABLE events ADD COLUMN source text")',
        '    op.execute("ALTER TABLE events DROP COLUMN source")',
    )
    assert _rules(source, "v.py") == []
    # The same DROP COLUMN in upgrade() is a breaking change.
    dropped = _alembic('    op.execute("ALTER TABLE events DROP COLUMN source")')
    assert _rules(dropped, "v.py") == ["DURU207"]


def test_alembic_runs_the_migration_in_one_transaction() -> None:
    backfill = _alembic(
        '    op.execute("ALTER TABLE events ADD COLUMN source text")\n'
        "    op.execute(\"UPDATE events SET source = 'app'\")"
    )
    assert _rules(backfill, "v.py") == ["DURU222"]
    concurrently = _alembic('    op.execute("CREATE INDEX CONCURRENTLY e_k ON events (kind)")')
    assert _rules(concurrently, "v.py") == ["DURU202"]
    # Without alembic, host code places its own transactions: none is assumed.
    plain = concurrently.replace("from alembic import op", "import op")
    assert _rules(plain, "v.py") == []


def test_alembic_autocommit_block_runs_outside_the_transaction() -> None:
    source = _alembic(
        "    with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE INDEX CONCURRENTLY e_k ON events (kind)")\n'
        '    op.execute("ALTER TABLE events ADD CONSTRAINT e_k_key UNIQUE USING INDEX e_k")'
    )
    assert _rules(source, "v.py") == []


def test_set_local_inside_a_host_transaction_block_counts() -> None:
    source = (
        "def up(conn):\n"
        "    with conn.transaction():\n"
        "        conn.execute(\"SET LOCAL lock_timeout = '5s'\")\n"
        '        conn.execute("ALTER TABLE devices ADD COLUMN seen timestamptz")\n'
    )
    assert _rules(source, "m.py") == []
    outside = source.replace("    with conn.transaction():\n        ", "    ")
    outside = outside.replace("\n        conn", "\n    conn")
    assert _rules(outside, "m.py") == ["DURU208"]


def test_statements_in_one_host_transaction_share_its_locks() -> None:
    source = (
        "def up(conn):\n"
        "    with conn.transaction():\n"
        "        conn.execute(\"SET LOCAL lock_timeout = '5s'\")\n"
        '        conn.execute("LOCK TABLE sync_log IN SHARE ROW EXCLUSIVE MODE")\n'
        '        conn.execute("DELETE FROM sync_log WHERE created_at < now()")\n'
    )
    assert _rules(source, "m.py") == ["DURU222"]


def test_module_constant_runs_where_the_function_uses_it() -> None:
    source = (
        'CREATE = "ALTER TABLE notes ADD COLUMN revision integer NOT NULL DEFAULT 0"\n'
        "\n"
        "def up(conn):\n"
        "    conn.execute(\"SET lock_timeout = '5s'\")\n"
        "    conn.execute(CREATE)\n"
    )
    assert _rules(source, "m.py") == []
    # A constant nobody uses keeps its place in the file (before the SET here).
    unused = source.replace("    conn.execute(CREATE)\n", "")
    assert _rules(unused, "m.py") == ["DURU208"]


def test_python_file_that_does_not_parse_keeps_source_order() -> None:
    source = 'conn.execute("SET lock_timeout = \'5s\'")\nconn.execute("ALTER TABLE a ADD b int")\n('
    report = lint_source(source, Path("m.py"), dialect="postgres", settings=QUIET)
    assert [f.rule for f in report.active] == ["DURU001"]  # the tokenizer's problem only


# Parsing ---------------------------------------------------------------------------------------


def test_sqlalchemy_named_binds_parse() -> None:
    source = (
        "import sqlalchemy as sa\n"
        "FILL = sa.text(\"UPDATE daily SET users = :n WHERE day = :day AND kind = 'a::b'\")\n"
    )
    assert _rules(source, "m.py") == []
    # A real syntax error next to a bind is still one.
    assert _rules('Q = "UPDATE daily SET users = :n WHERE"\n', "m.py") == ["DURU001"]


# Rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (
            "postgres",
            "INSERT INTO daily (day, n) SELECT $1, count(DISTINCT user_id) FROM events "
            "ON CONFLICT (day) DO UPDATE SET n = excluded.n",
        ),
        ("postgres", "INSERT INTO t (k, n) SELECT k, 1 FROM s GROUP BY k ON CONFLICT DO NOTHING"),
        (
            "sqlite",
            "INSERT OR REPLACE INTO daily (day, n) SELECT day, count(*) FROM e GROUP BY day",
        ),
    ],
)
def test_upsert_of_computed_totals_is_no_lossy_copy(dialect: str, sql: str) -> None:
    assert _rules(sql, "m.sql", dialect) == []


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (
            "postgres",
            "INSERT INTO t2 (a, n) SELECT a, count(*) OVER () FROM t ON CONFLICT DO NOTHING",
        ),
        (
            "postgres",
            "INSERT INTO t2 (a) SELECT (SELECT max(a) FROM u) FROM t ON CONFLICT DO NOTHING",
        ),
        ("sqlite", "INSERT OR IGNORE INTO t2 (a) SELECT a FROM t"),
    ],
)
def test_copy_of_rows_with_a_conflict_clause_is_still_lossy(dialect: str, sql: str) -> None:
    assert _rules(sql, "m.sql", dialect) == ["DURU101"]


def test_table_rename_behind_a_view_in_the_same_transaction() -> None:
    sql = T + "ALTER TABLE tags RENAME TO labels;\nCREATE VIEW tags AS SELECT * FROM labels;\n"
    assert _rules(sql, "m.sql", settings=WRAPPED) == []
    assert _rules("BEGIN;\n" + sql + "COMMIT;\n", "m.sql") == []
    # Statement by statement, clients querying tags fail between the two.
    assert _rules(sql, "m.sql") == ["DURU207"]
    # A view under another name, or one created after a COMMIT, keeps nothing working.
    other = sql.replace("CREATE VIEW tags", "CREATE VIEW tag_list")
    assert _rules(other, "m.sql", settings=WRAPPED) == ["DURU207"]
    later = "BEGIN;\n" + sql.replace("CREATE VIEW", "COMMIT;\nCREATE VIEW")
    assert _rules(later, "m.sql") == ["DURU207"]


def test_not_null_column_added_in_an_upgrade_step_of_a_source_file() -> None:
    dart = (
        "const create = 'CREATE TABLE notes (id TEXT PRIMARY KEY)';\n"
        "Future<void> up(db) async {\n"
        "  await db.execute('ALTER TABLE notes ADD COLUMN state TEXT NOT NULL');\n"
        "}\n"
    )
    assert _rules(dart, "m.dart", "sqlite") == ["DURU206"]
    # In one .sql migration the table is new and empty, and SQLite accepts it.
    sql = (
        "CREATE TABLE notes (id TEXT PRIMARY KEY);\n"
        "ALTER TABLE notes ADD COLUMN state TEXT NOT NULL;"
    )
    assert _rules(sql, "m.sql", "sqlite") == []


def test_suppression_next_to_the_column_inside_the_statement() -> None:
    sql = (
        T + "CREATE TABLE hooks (\n"
        "  id bigint PRIMARY KEY,\n"
        "  -- duru: allow DURU227 because the payload is kept as it was signed\n"
        "  payload json NOT NULL\n"
        ");\n"
        "CREATE TABLE other (body json);\n"
    )
    report = lint_source(sql, Path("m.sql"), dialect="postgres", settings=QUIET)
    assert [(f.rule, f.line, f.suppressed) for f in report.findings] == [
        ("DURU227", 2, True),
        ("DURU227", 7, False),
    ]


# The dangers are real ------------------------------------------------------------------------


def test_alembic_style_transaction_refuses_concurrently(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE lint_regress_events (kind text)")
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            conn.execute("CREATE INDEX CONCURRENTLY lint_regress_k ON lint_regress_events (kind)")
        conn.rollback()


def test_one_statement_alone_accepts_concurrently(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS lint_regress_alone (kind text)")
        # A simple query of one statement: PostgreSQL's implicit transaction is no block.
        conn.pgconn.exec_(
            b"CREATE INDEX CONCURRENTLY lint_regress_alone_k ON lint_regress_alone (kind)"
        )
        assert conn.execute("SELECT to_regclass('lint_regress_alone_k')").fetchone() == (
            "lint_regress_alone_k",
        )
        conn.execute("DROP TABLE lint_regress_alone")


def test_view_under_the_old_name_keeps_writes_working(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE lint_regress_tags (id int PRIMARY KEY, name text)")
        conn.execute("ALTER TABLE lint_regress_tags RENAME TO lint_regress_labels")
        conn.execute("CREATE VIEW lint_regress_tags AS SELECT id, name FROM lint_regress_labels")
        conn.execute("INSERT INTO lint_regress_tags (id, name) VALUES (1, 'work')")
        assert conn.execute("SELECT name FROM lint_regress_labels").fetchone() == ("work",)
        conn.rollback()
