"""The demo's steps after seeding: each does one thing with the store and says what it saw.

:data:`STEPS` is the demo in order. To extend it, write a function taking the
:class:`DemoContext` and returning a :class:`Shown`, and add it to a list
(``[*STEPS, ("upload", upload)]``) passed to :func:`duru.demo.run_demo`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from duru.demo.context import DemoContext, Shown, Step
from duru.demo.seed import seed
from duru.local import write_export
from duru.model import TASK, from_local

TRASHED_NOTE = "Lisbon itinerary"
TRASH_QUERY = "sintra"
SEARCHES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("prefix", "desig*", {}),
    ("phrase", '"design review"', {}),
    ("accents folded", "sao", {}),
    ("tag filter", "sync", {"tag": "design"}),
)


def folder_tree(ctx: DemoContext) -> Shown:
    """The folder tree, depth first, with the notes filed directly in each folder."""
    rows = [
        {
            "folder": "  " * node.depth + node.folder["name"],
            "notes": len(ctx.store.folders.notes_in(node.folder["id"])),
        }
        for node in ctx.store.folders.tree()
    ]
    return Shown("Folder tree", ("folder", "notes"), rows)


def recent(ctx: DemoContext) -> Shown:
    """The recent list: pinned notes first, then the most recently changed."""
    rows = [
        {"title": n["title"], "pinned": bool(n["is_pinned"]), "updated": _when(n["updated_at"])}
        for n in ctx.store.notes.list_recent(8)
    ]
    return Shown("Recent notes (pinned first)", ("title", "pinned", "updated"), rows)


def searches(ctx: DemoContext) -> Shown:
    """A prefix, a phrase, an accent-folded and a tag-filtered search; the best 3 of each."""
    rows: list[dict[str, Any]] = []
    for kind, query, filters in SEARCHES:
        started = time.perf_counter()
        hits = ctx.store.search.query(query, limit=3, **filters)
        ms = round((time.perf_counter() - started) * 1000, 2)
        label = query + "".join(f"  --{k} {v}" for k, v in filters.items())
        for rank, hit in enumerate(hits, 1):
            rows.append(
                {
                    "search": f"{kind}: {label}" if rank == 1 else "",
                    "rank": rank,
                    "title": hit.title_marked,
                    "snippet": hit.snippet,
                    "ms": ms if rank == 1 else "",
                }
            )
    return Shown("Full-text search", ("search", "rank", "title", "snippet", "ms"), rows)


def open_tasks(ctx: DemoContext) -> Shown:
    """Open tasks of live notes, due soonest first."""
    rows = [
        {
            "task": t["content"],
            "due": _when(t["due_date"]) if t["due_date"] is not None else "",
            "priority": from_local(TASK.field("priority"), t["priority"]),
            "note": ctx.title_of(t["note_id"]),
        }
        for t in ctx.store.tasks.open_tasks(8)
    ]
    return Shown("Open tasks, due soonest first", ("task", "due", "priority", "note"), rows)


def tag_counts(ctx: DemoContext) -> Shown:
    """The most used tags with how many live notes carry each."""
    counts = ctx.store.tags.counts()
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
    rows = [{"tag": tag, "notes": n} for tag, n in top]
    return Shown("Tags", ("tag", "notes"), rows, [f"{len(counts)} tags in all"])


def links(ctx: DemoContext) -> Shown:
    """Backlinks: which notes link to the sync protocol note."""
    target = ctx.notes["Sync protocol v2"]
    rows = [
        {"linked from": ctx.title_of(b["source_id"])} for b in ctx.store.links.backlinks(target)
    ]
    return Shown("Links to 'Sync protocol v2'", ("linked from",), rows)


def trash_and_restore(ctx: DemoContext) -> Shown:
    """Trash a note and restore it; search follows each change at once."""
    note_id = ctx.notes[TRASHED_NOTE]
    rows = [_search_state(ctx, "before", note_id)]
    ctx.store.notes.trash(note_id)
    rows.append(_search_state(ctx, "after trash", note_id))
    ctx.store.notes.restore(note_id)
    rows.append(_search_state(ctx, "after restore", note_id))
    return Shown(
        f"Trash and restore {TRASHED_NOTE!r}",
        ("stage", "hits", "found", "in trash"),
        rows,
        [f"searching {TRASH_QUERY!r}: the trash is never searched"],
    )


def _search_state(ctx: DemoContext, stage: str, note_id: str) -> dict[str, Any]:
    hits = ctx.store.search.query(TRASH_QUERY, limit=50)
    return {
        "stage": stage,
        "hits": len(hits),
        "found": any(h.id == note_id for h in hits),
        "in trash": ctx.store.notes.count(trashed=True),
    }


def export(ctx: DemoContext) -> Shown:
    """A full backup written atomically beside the database; rows per table."""
    path = ctx.folder / "duru-demo-export.json"
    counts = write_export(ctx.store.db, path)
    rows = [{"table": table, "rows": n} for table, n in counts.items()]
    size = path.stat().st_size / 1024
    return Shown("Export", ("table", "rows"), rows, [f"backup: {path} ({size:.0f} KiB)"])


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


STEPS: tuple[tuple[str, Step], ...] = (
    ("seed", seed),
    ("folder tree", folder_tree),
    ("recent", recent),
    ("search", searches),
    ("open tasks", open_tasks),
    ("tags", tag_counts),
    ("links", links),
    ("trash and restore", trash_and_restore),
    ("export", export),
)
"""The device-store story."""
