"""`duru monitor`: the sync server's PostgreSQL and a device database, and alerts on them."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from duru.cli.app import EXIT_FAILED, app, reported, resolve_db
from duru.cli.output import print_json, print_rows, visible

ServerDb = Annotated[
    str | None,
    typer.Option(
        "--server-db",
        help="PostgreSQL URL of the sync server's database (default: $DURU_DATABASE_URL).",
    ),
]
DeviceDb = Annotated[
    Path | None,
    typer.Option(
        "--db", help="Device database file (default: $DURU_DB or the usual file, when present)."
    ),
]


@app.command("monitor")
def monitor_command(
    server_db: ServerDb = None,
    db: DeviceDb = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Print only the alerts; exit 1 when there is one (for cron)."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Thresholds file (default: [tool.duru.monitor] of ./pyproject.toml,"
            " or [monitor] of ./duru.toml).",
        ),
    ] = None,
    watch: Annotated[
        float, typer.Option("--watch", help="Repeat every this many seconds (0: once).")
    ] = 0.0,
) -> None:
    """Slow queries, bloat, unused indexes, locks, sync backlog; device pages, WAL, outbox."""
    from duru.monitor import load_thresholds, monitor

    with reported():
        limits = load_thresholds(config)
        server, device = _targets(server_db, db)
        while True:
            report = monitor(server, device, limits)
            _show(report, as_json, check)
            if watch <= 0:
                break
            time.sleep(watch)
    if check and report["alerts"]:
        raise typer.Exit(EXIT_FAILED)


def _targets(server_db: str | None, db: Path | None) -> tuple[str | None, Path | None]:
    """What to watch: the options given, else $DURU_DATABASE_URL and the usual device file."""
    if server_db is not None or db is not None:
        return server_db, db
    env = os.environ.get("DURU_DATABASE_URL", "").strip() or None
    usual = resolve_db(None)
    return env, usual if usual.is_file() else None


def _show(report: dict[str, Any], as_json: bool, check: bool) -> None:
    if as_json:
        print_json({"alerts": report["alerts"]} if check else report)
        return
    if not check:
        if report["server"] is not None:
            _server(report["server"])
        if report["device"] is not None:
            _device(report["device"])
    alerts = report["alerts"]
    for a in alerts:
        typer.echo(f"alert {a['rule']}: {visible(str(a['subject']))}: {visible(a['message'])}")
    if not alerts:
        typer.echo("no alerts")


def _server(s: dict[str, Any]) -> None:
    for hint in s["hints"]:
        typer.echo(f"hint: {hint}")
    queries = ("calls", "total_ms", "mean_ms", "max_ms", "query")
    print_rows(s["queries"]["by_total"], queries, title="Top queries by total time")
    print_rows(s["queries"]["by_mean"], queries, title="Top queries by mean time")
    print_rows(s["bloat"], ("name", "bytes", "ratio", "source"), title="Bloat")
    print_rows(s["unused_indexes"], ("name", "table_name", "bytes"), title="Unused indexes")
    print_rows(
        s["seq_scans"],
        ("name", "live_rows", "seq_scans", "rows_read_by_seq_scans", "index_scans"),
        title="Sequential scans on large tables",
    )
    session = ("pid", "seconds", "query")
    print_rows(s["long_transactions"], ("state", *session), title="Open transactions")
    print_rows(s["blocked"], ("blocked_by", *session), title="Waiting on locks")
    print_rows(
        s["sync"]["users"],
        ("name", "head", "horizon", "open_conflicts", "oldest_open_conflict", "tombstones"),
        title="Sync per user",
    )
    if s["migrations"]:
        print_rows(
            s["migrations"],
            ("run_id", "status", "rows", "rows_per_second", "error_rate"),
            title="Migrations not done",
        )


def _device(d: dict[str, Any]) -> None:
    box = d["outbox"]
    typer.echo(f"device {d['path']}")
    typer.echo(
        f"  pages {d['pages']} of {d['page_size']} bytes, {d['free_pages']} free;"
        f" WAL {d['wal_bytes']} bytes"
    )
    typer.echo(f"  search segments: {d['search_segments']}")
    typer.echo(
        f"  outbox: {box['depth']} changes, oldest {box['oldest_age_seconds'] or 0} s old;"
        f" sync cursor {d['sync_cursor'] or 'none (never synced)'}"
    )
    for p in d["unfinished_imports"]:
        typer.echo(
            f"  unfinished {p['kind']}: {p['path']} ({'running' if p['running'] else 'abandoned'})"
        )
    for r in d["unfinished_migrations"]:
        typer.echo(f"  migration {r['run_id']} {r['status']}: {r['rows']} rows")
