"""`duru task`: tasks of notes, with subtasks, status, priority and due dates."""

from __future__ import annotations

from pathlib import Path

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import (
    JsonOption,
    device,
    for_table,
    friendly,
    parse_when,
    report_written,
    resolve,
)
from duru.cli.output import print_json, print_rows, visible
from duru.errors import UsageError

task_app = typer.Typer(
    help="Tasks of notes: subtasks of any depth, status, priority, due dates.",
    no_args_is_help=True,
)
app.add_typer(task_app, name="task")

TaskArg = typer.Argument(..., help="Task id: the full uuid or a unique prefix (4+ characters).")
TASK_COLUMNS = ("id", "content", "status", "priority", "due_date", "note_id")
# The model's names written out, so that building the help does not import the model
# (tests/test_cli_startup.py checks them against TASK_PRIORITY and TASK_STATUS).
PRIORITIES = "low, medium, high, urgent"
STATUSES = "open, in_progress, completed, cancelled"


@task_app.command("add")
def add(
    note: str = typer.Argument(..., help="The note (id or unique prefix) the task belongs to."),
    content: str = typer.Argument(..., help="What is to be done."),
    parent: str | None = typer.Option(
        None, "--parent", "-p", help="Make it a subtask of this task (id or prefix)."
    ),
    due: str | None = typer.Option(
        None, "--due", "-d", help="Due date, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)."
    ),
    priority: str = typer.Option("medium", "--priority", help=f"One of: {PRIORITIES}."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Add a task (or a subtask) to a note."""
    from duru.model import NOTE, TASK

    with device(db, writes=True) as store:
        note_id = resolve(store, NOTE, note)
        parent_id = None if parent is None else resolve(store, TASK, parent)
        when = None if due is None else parse_when(due, "--due")
        row = store.tasks.create(
            note_id, content, parent_task_id=parent_id, priority=priority, due_date=when
        )
        report_written(TASK, row, "added", visible(row["content"]), as_json)


@task_app.command("list")
def list_tasks(
    note: str | None = typer.Option(
        None, "--note", help="Show this note's tasks as a tree (done ones too) instead."
    ),
    limit: int = typer.Option(50, "--limit", "-n", help="Show at most this many open tasks."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """List open tasks of live notes, due soonest first (undated last)."""
    from duru.model import NOTE, TASK

    with device(db) as store:
        if note is None:
            rows, title = store.tasks.open_tasks(limit), "Open tasks"
        else:
            nodes = store.tasks.list_for_note(resolve(store, NOTE, note))
            rows = [{**n.task, "depth": n.depth} for n in nodes]
            title = "Tasks of the note"
    if as_json:
        print_json([friendly(TASK, r) for r in rows])
        return
    shown = for_table(TASK, rows)
    for row in shown:
        row["content"] = "  " * int(row.pop("depth", 0)) + row["content"]
    print_rows(shown, TASK_COLUMNS, title=title)


@task_app.command("done")
def done(task: str = TaskArg, as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """Mark a task completed."""
    from duru.model import TASK

    with device(db, writes=True) as store:
        row = store.tasks.set_status(resolve(store, TASK, task), "completed")
        report_written(TASK, row, "completed", visible(row["content"]), as_json)


@task_app.command("status")
def status(
    task: str = TaskArg,
    new_status: str = typer.Argument(..., help=f"One of: {STATUSES}."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Set a task's status (completing stamps completed_at, others clear it)."""
    from duru.model import TASK

    with device(db, writes=True) as store:
        row = store.tasks.set_status(resolve(store, TASK, task), new_status)
        report_written(TASK, row, "updated", f"{visible(row['content'])}: {new_status}", as_json)


@task_app.command("due")
def due(
    task: str = TaskArg,
    when: str | None = typer.Argument(
        None, help="Due date, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC); leave out with --clear."
    ),
    clear: bool = typer.Option(False, "--clear", help="Remove the due date."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Set or clear a task's due date."""
    from duru.model import TASK

    with device(db, writes=True) as store:
        if (when is None) == (not clear):
            raise UsageError("give either a due date or --clear, not both or neither")
        stamp = None if when is None else parse_when(when, "due date")
        row = store.tasks.set_due(resolve(store, TASK, task), stamp)
        report_written(TASK, row, "updated", visible(row["content"]), as_json)


@task_app.command("rm")
def remove(task: str = TaskArg, as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """Delete a task and all its subtasks."""
    from duru.model import TASK

    with device(db, writes=True) as store:
        removed = store.tasks.delete(resolve(store, TASK, task))
    if as_json:
        print_json({"deleted": removed})
        return
    typer.echo(f"deleted {removed} tasks (the task and its subtasks)")
