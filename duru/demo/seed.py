"""The demo's first step: fill the device database with the sample notebook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from duru.demo.content import FOLDERS, NOTES, SampleNote, extra_notes
from duru.demo.context import DemoContext, Shown
from duru.local import DeviceStore

_DAY = timedelta(days=1)
_PRIORITIES = ("high", "medium", "urgent", "low", "medium")


def seed(ctx: DemoContext) -> Shown:
    """Folders, the sample notes (tags, tasks, links), a reminder, a template,
    a saved search, then ``ctx.extra_notes`` generated notes; one transaction."""
    store = ctx.store
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    samples = [*NOTES, *extra_notes(ctx.extra_notes)]
    with store.db.transaction():
        for path in FOLDERS:
            parent = ctx.folders.get(path[:-1])
            ctx.folders[path] = store.folders.create(path[-1], parent)["id"]
        tasks = 0
        for sample in samples:
            tasks += _add_note(ctx, sample, today, tasks)
        links = sum(_add_links(ctx, sample) for sample in NOTES)
        _add_extras(ctx, today)
    counts = {
        "folders": len(ctx.folders),
        "deepest folder": max(len(p) for p in FOLDERS),
        "sample notes": len(NOTES),
        "generated notes": ctx.extra_notes,
        "pinned notes": sum(s.pinned for s in samples),
        "tasks (with subtasks)": tasks,
        "links between notes": links,
        "reminders": 1,
        "templates": 1,
        "saved searches": 1,
    }
    return Shown(
        "Sample notebook",
        ("what", "count"),
        [{"what": k, "count": v} for k, v in counts.items()],
        [f"device database: {store.path}"],
    )


def _add_note(ctx: DemoContext, sample: SampleNote, today: datetime, done_before: int) -> int:
    """Create one note and its tasks (later tasks are subtasks of its first); returns tasks."""
    store = ctx.store
    folder = None if sample.folder is None else ctx.folders[sample.folder]
    note = store.notes.create(
        sample.title, sample.body, folder_id=folder, tags=sample.tags, pinned=sample.pinned
    )
    ctx.notes[sample.title] = note["id"]
    first: str | None = None
    for i, content in enumerate(sample.tasks):
        k = done_before + i
        # Spread due dates over the next two weeks; every fourth task has none.
        due = None if k % 4 == 3 else today + _DAY * (k * 5 % 13 + 1)
        task = store.tasks.create(
            note["id"],
            content,
            parent_task_id=first,
            priority=_PRIORITIES[k % len(_PRIORITIES)],
            due_date=due,
        )
        first = first or task["id"]
    return len(sample.tasks)


def _add_links(ctx: DemoContext, sample: SampleNote) -> int:
    for title in sample.links:
        ctx.store.links.add(ctx.notes[sample.title], title)
    return len(sample.links)


def _add_extras(ctx: DemoContext, today: datetime) -> None:
    store: DeviceStore = ctx.store
    review = ctx.notes[NOTES[0].title]
    store.reminders.create(
        review, remind_at=today + 2 * _DAY, title="Design review", body="Bring the revision UI"
    )
    store.templates.create(
        "Meeting notes",
        "## Agenda\n\n## Decisions\n\n## Action items\n",
        tags=["meeting"],
        category="work",
    )
    store.saved_searches.create("Design notes", "desig*", is_pinned=True)
