"""Realistic sample content for `duru demo`: what a real user's notebook holds."""

from __future__ import annotations

import random
from dataclasses import dataclass

# (path of folder names, from the root)
FOLDERS: tuple[tuple[str, ...], ...] = (
    ("Work",),
    ("Work", "Duru"),
    ("Work", "Duru", "Design"),
    ("Work", "Duru", "Design", "Sync"),
    ("Work", "Duru", "Design", "Sync", "Conflicts"),
    ("Work", "Meetings"),
    ("Personal",),
    ("Personal", "Travel"),
    ("Personal", "Travel", "Lisbon 2026"),
    ("Personal", "Recipes"),
    ("Reading",),
)


@dataclass(frozen=True)
class SampleNote:
    title: str
    body: str
    folder: tuple[str, ...] | None
    tags: tuple[str, ...] = ()
    pinned: bool = False
    tasks: tuple[str, ...] = ()
    links: tuple[str, ...] = ()


NOTES: tuple[SampleNote, ...] = (
    SampleNote(
        "Design review: sync conflicts",
        "Agenda for the design review. When two devices edit the same note offline, "
        "the server keeps the newer write and stores the other as a conflict revision. "
        "Nothing is overwritten unseen. Open question: how do we show revisions in the UI?",
        ("Work", "Duru", "Design", "Sync", "Conflicts"),
        ("design", "sync", "review"),
        pinned=True,
        tasks=("Write up the conflict revision format", "Ask Ana about the revision UI"),
        links=("Sync protocol v2", "Weekly planning"),
    ),
    SampleNote(
        "Sync protocol v2",
        "Push sends the outbox in chunks; every op has an op id so a retried push "
        "applies once. Pull pages by a per-user change sequence, never by timestamp, "
        "so a row that committed late is never skipped.",
        ("Work", "Duru", "Design", "Sync"),
        ("design", "sync"),
        tasks=("Benchmark pull pages of 500 rows",),
    ),
    SampleNote(
        "Migration 12 post-mortem",
        "INSERT OR IGNORE with SELECT * lost duplicate tags, orphan tasks and every folder "
        "deeper than one level. Lessons: back up first, match columns by name, quarantine "
        "instead of dropping, and count rows before and after.",
        ("Work", "Duru"),
        ("post-mortem", "migrations"),
        pinned=True,
        links=("Design review: sync conflicts",),
    ),
    SampleNote(
        "Weekly planning",
        "Monday: triage the sync bugs. Tuesday: pair on the migration engine. "
        "Thursday: design review with the mobile team. Friday: write the changelog.",
        ("Work", "Meetings"),
        ("planning",),
        tasks=("Triage sync bugs", "Prepare design review slides", "Write the changelog"),
    ),
    SampleNote(
        "1:1 with Ana",
        "Talked about the encryption envelope: versioned header, key id, nonce. "
        "She wants key rotation to run through the migration engine, chunked and resumable.",
        ("Work", "Meetings"),
        ("people", "encryption"),
        links=("Key rotation plan",),
    ),
    SampleNote(
        "Lisbon itinerary",
        "Day 1: Alfama, São Jorge castle, fado in the evening. Day 2: Belém, pastéis, "
        "the tower. Day 3: Sintra by train; Pena palace opens at 9:30.",
        ("Personal", "Travel", "Lisbon 2026"),
        ("travel", "lisbon"),
        tasks=("Book the Sintra train", "Reserve a fado dinner"),
    ),
    SampleNote(
        "Packing list",
        "Passport, adapters, light jacket, walking shoes, the good camera, a paperback "
        "for the plane. Café money: euros in coins for the trams.",
        ("Personal", "Travel"),
        ("travel",),
        tasks=("Buy a power adapter",),
    ),
    SampleNote(
        "Crème brûlée",
        "Six yolks, 80 g sugar, 500 ml cream, one vanilla pod. Bake at 150 °C in a water "
        "bath for 35 minutes, chill overnight, caramelise just before serving.",
        ("Personal", "Recipes"),
        ("recipes", "dessert"),
    ),
    SampleNote(
        "Reading: Designing Data-Intensive Applications",
        "Chapter 5 on replication: leader-based, multi-leader, leaderless. "
        "Conflict resolution by last write wins loses data silently; keep both versions.",
        ("Reading",),
        ("books", "sync"),
        links=("Sync protocol v2",),
    ),
    SampleNote(
        "Key rotation plan",
        "Rotate the account master key by re-wrapping; rotate field keys by re-encrypting "
        "in chunks through the migration engine, resumable after a crash.",
        ("Work", "Duru", "Design"),
        ("encryption", "design"),
    ),
    SampleNote(
        "Inbox",
        "Ideas without a home yet: dark mode for the editor, export to Markdown, "
        "a widget for pinned notes.",
        None,
        ("ideas",),
    ),
)

_WORDS = (
    "sync device server schema migration folder tag task reminder search index backup "
    "rollback quarantine outbox cursor conflict revision encryption envelope key nonce "
    "passphrase chunk audit review planning travel recipe reading meeting draft idea"
).split()


def extra_notes(count: int, seed: int = 7) -> list[SampleNote]:
    """``count`` more plausible notes, deterministic for a given seed."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        words = rng.choices(_WORDS, k=rng.randint(40, 120))
        title = " ".join(rng.sample(_WORDS, 3)).capitalize()
        folder = rng.choice(FOLDERS) if rng.random() < 0.8 else None
        tags = tuple(sorted(set(rng.sample(_WORDS[:12], rng.randint(1, 3)))))
        out.append(SampleNote(f"{title} #{i + 1}", " ".join(words) + ".", folder, tags))
    return out
