"""Sync fuzzer: random interleavings over three devices and a real `duru serve`.

A hypothesis state machine drives three SQLite devices of one account through edits,
trash and purge, tags, folders, syncs (in process, and as `duru sync` processes killed
with SIGKILL at a random moment) and server SIGKILLs and restarts on the same
PostgreSQL database. At the end every device syncs until two full rounds move nothing,
and then:

1. every device holds the same export of every entity table (and nothing waits,
   is queued or quarantined);
2. no text was lost: every title and every body line a device wrote is still in a
   note (a title in some title, a line in some body, merged or not) or in a conflict
   record's row, unless a device replaced or deleted it after having seen it (the
   model tracks what each device saw: its own row just before its write).

Every text carries a unique token, and every word of a title carries it too, so a word
merge of two titles can only keep one whole or clash, and presence checks are exact.

CI runs a few examples (derandomized: the same ones every run); DURU_FUZZ_EXAMPLES=N
runs N (the slow lane), DURU_FUZZ_STEPS=N sets the steps per example (25),
DURU_FUZZ_SHRINK=1 lets hypothesis shrink a failure, DURU_FUZZ_VERBOSE=1 prints the steps,
DURU_FUZZ_STRICT_FOLDERS=0 leaves out folder deletes, free moves and the acyclic-tree
check. The bugs it found are regression tests at the end of this file.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from duru import sync
from duru.crypto import KdfParams
from duru.local import DeviceStore
from duru.local.db import Database
from duru.local.export import export_all

if TYPE_CHECKING:
    from conftest import PgDatabases

PASS = "correct horse battery"
KDF = KdfParams.interactive()
DEVICES = ("a", "b", "c")
EXAMPLES = int(os.environ.get("DURU_FUZZ_EXAMPLES", "3"))
STEPS = int(os.environ.get("DURU_FUZZ_STEPS", "25"))
# Folder deletes, moves anywhere and the acyclic-tree check (DURU_FUZZ_STRICT_FOLDERS=0
# leaves them out, to tell folder trouble from the rest).
STRICT_FOLDERS = os.environ.get("DURU_FUZZ_STRICT_FOLDERS", "1") == "1"
SHRINK = os.environ.get("DURU_FUZZ_SHRINK", "") == "1"
QUIET_ROUNDS, MAX_ROUNDS = 2, 12
PROCESS_TIMEOUT = 60

WORDS = ("meeting", "東京", "会議", "🎉", "naïve", "日本語", "👩‍💻", "notes", "✓", "中文")
TAGS = ("work", "家", "🎉", "todo", "naïve")
VERBOSE = os.environ.get("DURU_FUZZ_VERBOSE", "") == "1"
# Weighted: edits and syncs make the conflicts; faults are rarer (and cost seconds).
ACTIONS = (
    ["create_note"] * 2
    + ["edit_note"] * 5
    + ["trash_note", "restore_note", "purge_note", "add_tag", "remove_tag"]
    + ["create_folder", "rename_folder", "move_folder", "move_folder"]
    + (["delete_folder"] if STRICT_FOLDERS else [])
    + ["file_note"] * 2
    + ["sync_device"] * 4
    + ["sync_every_device", "sync_killed", "restart_server"]
)
_COPY_SUFFIX = re.compile(r" \(conflicted copy, [^)]*\)")


def fuzz_settings() -> settings:
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[*phases, Phase.shrink] if SHRINK else phases,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


class Server:
    """A `duru serve` subprocess on 127.0.0.1; restarts keep its first port."""

    def __init__(self, db_url: str, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "DURU_DATABASE_URL": db_url, "DURU_HOME": str(home)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""

    def start(self) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "serve.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "duru.cli", "serve", "--host", "127.0.0.1"]
                + ["--port", str(self.port)],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        line = self._first_line(self.proc)
        if b"listening on " not in line:
            self.kill()
            log_text = (self.home / "serve.log").read_text(errors="replace")
            raise AssertionError(f"server did not start: {line!r}\n{log_text[-3000:]}")
        self.url = line.decode().split("listening on ")[1].split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    @staticmethod
    def _first_line(proc: subprocess.Popen[bytes]) -> bytes:
        assert proc.stdout is not None
        fd, line, deadline = proc.stdout.fileno(), b"", time.monotonic() + PROCESS_TIMEOUT
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                line += chunk
            elif proc.poll() is not None:
                break
        return line

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        end_process(proc, sig)
        if proc.stdout is not None:
            proc.stdout.close()


def end_process(proc: subprocess.Popen[Any], sig: signal.Signals = signal.SIGKILL) -> None:
    """Send ``sig`` unless it ended; wait (bounded), then SIGKILL if it still runs."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def note_key(note: dict[str, Any]) -> tuple[str, str, int]:
    """An order of a device's notes that does not depend on random ids or clock times."""
    title = note["title"] or ""
    return (_COPY_SUFFIX.sub(" (copy)", title), note["body"] or "", len(title))


def subtree(folders: list[dict[str, Any]], root: str) -> set[str]:
    """``root`` and every folder below it (a cycle, should one come, ends the walk)."""
    below, todo = {root}, [root]
    while todo:
        parent = todo.pop()
        for f in folders:
            if f["parent_id"] == parent and f["id"] not in below:
                below.add(f["id"])
                todo.append(f["id"])
    return below


def folder_cycles(folders: list[dict[str, Any]]) -> list[str]:
    """Names of folders whose chain of parents comes back to them."""
    parent = {f["id"]: f["parent_id"] for f in folders}
    looped = []
    for f in folders:
        seen, at = set(), f["parent_id"]
        while at is not None and at not in seen and at != f["id"]:
            seen.add(at)
            at = parent.get(at)
        if at == f["id"]:
            looped.append(f["name"])
    return sorted(looped)


def differences(
    table: str, rows: list[dict[str, Any]], name: str, other: list[dict[str, Any]]
) -> str:
    """Which rows of ``table`` device a and device ``name`` disagree on."""

    def by_key(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {json.dumps([r.get("id"), r.get("note_id")]): r for r in found}

    mine, theirs = by_key(rows), by_key(other)
    out = [f"{table} differs on a and {name}:"]
    for key in sorted(mine.keys() | theirs.keys()):
        if mine.get(key) != theirs.get(key):
            out.append(f"  a: {mine.get(key)}\n  {name}: {theirs.get(key)}")
    return "\n".join(out)


class Texts:
    """Every title and body line written, and which of them a device later dropped."""

    def __init__(self) -> None:
        self.titles: dict[str, str] = {}  # text -> who wrote it
        self.lines: dict[str, str] = {}
        self.excused: set[str] = set()

    def wrote(self, who: str, title: str | None, body: str | None) -> None:
        if title:
            self.titles[title] = who
        for line in (body or "").splitlines():
            if line:
                self.lines[line] = who

    def dropped(self, old_title: str, old_body: str, new_title: str, new_body: str) -> None:
        """A device rewrote a note it held as (old_title, old_body)."""
        for text in self.titles:
            if text in old_title and text not in new_title:
                self.excused.add(text)
        for text in self.lines:
            if text in old_body and text not in new_body:
                self.excused.add(text)

    def missing(self, titles: list[str], bodies: list[str]) -> list[str]:
        all_titles, all_bodies = "\n\0".join(titles), "\n\0".join(bodies)
        lost = [
            f"title {t!r} (written by {w})"
            for t, w in self.titles.items()
            if t not in self.excused and t not in all_titles
        ]
        lost += [
            f"body line {t!r} (written by {w})"
            for t, w in self.lines.items()
            if t not in self.excused and t not in all_bodies
        ]
        return lost


class SyncFuzz(RuleBasedStateMachine):
    databases: ClassVar[PgDatabases | None] = None
    steps_run: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="duru-fuzz-"))
        self.home = self.tmp / "home"
        self.db_url = ""
        self.server: Server | None = None
        self.in_step = False
        self.counter = 0
        self.texts = Texts()
        self.rank: dict[str, int] = {}  # folder id -> order of creation
        try:
            assert self.databases is not None
            self.db_url = self.databases.create("duru_fuzz")
            self.server = Server(self.db_url, self.home)
            self.server.start()
            self.paths = [self.tmp / f"{d}.sqlite" for d in DEVICES]
            for p in self.paths:
                Database.open(p).close()
            sync.register(
                self.paths[0],
                server=self.server.url,
                user="ada",
                passphrase=PASS,
                home=self.home,
                kdf=KDF,
            )
            for p in self.paths[1:]:
                sync.login(p, server=self.server.url, user="ada", passphrase=PASS, home=self.home)
        except BaseException:
            self.cleanup()
            raise

    @initialize(data=st.data())
    def shared_notes(self, data: st.DataObject) -> None:
        """Notes every device holds before the run, so edits clash early."""
        self.in_step = True
        with self.step(0) as s:
            for _ in range(2):
                self.new_folder(s, None)
            for _ in range(2):
                self.create(s, data, DEVICES[0])
        for p in self.paths:
            sync.sync(p, home=self.home)
        self.in_step = False

    # One rule picks the action: hypothesis' swarm testing would otherwise switch off
    # most rules in each of the few examples CI runs.
    @rule(action=st.sampled_from(ACTIONS), dev=st.integers(0, 2), data=st.data())
    def act(self, action: str, dev: int, data: st.DataObject) -> None:
        SyncFuzz.steps_run += 1
        if VERBOSE:
            print(f"  {action} on {DEVICES[dev]}")
        self.in_step = True
        getattr(self, action)(dev, data)
        self.in_step = False

    # -- helpers -------------------------------------------------------------

    def token(self) -> int:
        self.counter += 1
        return self.counter

    def title(self, data: st.DataObject) -> str:
        n = self.token()
        words = data.draw(st.lists(st.sampled_from(WORDS), max_size=3), label="title words")
        return " ".join([f"T~{n}~", *(f"{w}~{n}~" for w in words)])

    def line(self, data: st.DataObject) -> str:
        n = self.token()
        words = data.draw(st.lists(st.sampled_from(WORDS), max_size=4), label="line words")
        return " ".join([f"L~{n}~", *words])

    def body(self, data: st.DataObject) -> str:
        count = data.draw(st.integers(0, 4), label="lines")
        lines = [self.line(data) for _ in range(count)]
        if not lines:
            return ""
        end = "\n" if data.draw(st.booleans(), label="final newline") else ""
        return "\n".join(lines) + end

    def notes(self, s: DeviceStore, *, trashed: bool = False) -> list[dict[str, Any]]:
        rows = s.db.rows("SELECT id, title, body, deleted FROM notes")
        return sorted((r for r in rows if bool(r["deleted"]) == trashed), key=note_key)

    def folders(self, s: DeviceStore) -> list[dict[str, Any]]:
        rows = s.db.rows("SELECT id, name, parent_id FROM folders WHERE deleted = 0")
        return sorted(rows, key=lambda f: f["name"])

    def pick(self, data: st.DataObject, items: list[Any], label: str) -> Any:
        return items[data.draw(st.integers(0, len(items) - 1), label=label)]

    def sync_cli(self, path: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, "DURU_HOME": str(self.home)}
        return subprocess.Popen(
            [sys.executable, "-m", "duru.cli", "sync", "--db", str(path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def step(self, dev: int) -> DeviceStore:
        return DeviceStore.open(self.paths[dev])

    def new_folder(self, s: DeviceStore, parent: str | None) -> None:
        n = self.token()
        self.rank[s.folders.create(f"F~{n}~ 文件夹", parent_id=parent)["id"]] = n

    def create(self, s: DeviceStore, data: st.DataObject, who: str) -> None:
        title, body = self.title(data), self.body(data)
        tags = data.draw(st.lists(st.sampled_from(TAGS), max_size=2), label="tags")
        folders = self.folders(s)
        folder = None
        if folders and data.draw(st.booleans(), label="filed"):
            folder = self.pick(data, folders, "folder")["id"]
        s.notes.create(title, body, tags=tags, folder_id=folder)
        self.texts.wrote(who, title, body)

    # -- rules: notes --------------------------------------------------------

    def create_note(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            self.create(s, data, DEVICES[dev])

    def edit_note(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            notes = self.notes(s)
            if not notes:
                return self.create(s, data, DEVICES[dev])
            note = self.pick(data, notes, "note")
            old_title, old_body = note["title"] or "", note["body"] or ""
            what = data.draw(st.sampled_from(["title", "body", "both"]), label="field")
            title = self.title(data) if what != "body" else None
            body = self.edit_body(data, old_body) if what != "title" else None
            s.notes.edit(note["id"], title=title, body=body)
            new = s.notes.get(note["id"])
            self.texts.wrote(DEVICES[dev], title, body)
            self.texts.dropped(old_title, old_body, new["title"] or "", new["body"] or "")

    def edit_body(self, data: st.DataObject, old: str) -> str:
        lines = old.splitlines(keepends=True)
        ops = ["append", "rewrite"] + (["replace", "insert", "delete"] if lines else [])
        op = data.draw(st.sampled_from(ops), label="body edit")
        if op == "rewrite":
            return self.body(data)
        if op == "append":
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            return "".join(lines) + self.line(data) + "\n"
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        if op == "delete":
            del lines[i]
        elif op == "insert":
            lines.insert(i, self.line(data) + "\n")
        else:
            end = "\n" if lines[i].endswith("\n") else ""
            lines[i] = self.line(data) + end
        return "".join(lines)

    def trash_note(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            notes = self.notes(s)
            if notes:
                s.notes.trash(self.pick(data, notes, "note")["id"])

    def restore_note(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            notes = self.notes(s, trashed=True)
            if notes:
                s.notes.restore(self.pick(data, notes, "note")["id"])

    def purge_note(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            notes = self.notes(s, trashed=True) + self.notes(s)
            if not notes:
                return
            note = self.pick(data, notes, "note")
            with s.db.transaction():
                s.notes.trash(note["id"])
                s.notes.purge(note["id"])
            self.texts.dropped(note["title"] or "", note["body"] or "", "", "")

    # -- rules: tags and folders ---------------------------------------------

    def add_tag(self, dev: int, data: st.DataObject) -> None:
        tag = data.draw(st.sampled_from(TAGS), label="tag")
        with self.step(dev) as s:
            notes = self.notes(s)
            if notes:
                s.tags.add(self.pick(data, notes, "note")["id"], tag)

    def remove_tag(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            tagged = s.db.rows(
                "SELECT t.note_id, t.tag, n.title, n.body FROM note_tags t"
                " JOIN notes n ON n.id = t.note_id WHERE n.deleted = 0"
            )
            if tagged:
                tagged.sort(key=lambda r: (note_key(r), r["tag"]))
                row = self.pick(data, tagged, "tag")
                s.tags.remove(row["note_id"], row["tag"])

    def create_folder(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            folders = self.folders(s)
            parent = None
            if folders and data.draw(st.booleans(), label="nested"):
                parent = self.pick(data, folders, "parent")["id"]
            self.new_folder(s, parent)

    def rename_folder(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            folders = self.folders(s)
            if folders:
                word = data.draw(st.sampled_from(WORDS), label="word")
                s.folders.rename(
                    self.pick(data, folders, "folder")["id"], f"F~{self.token()}~ {word}"
                )

    def move_folder(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            folders = self.folders(s)
            if not folders:
                return
            folder = self.pick(data, folders, "folder")
            below = subtree(folders, folder["id"])
            rank = self.rank.get(folder["id"], 0)
            parents = [None] + [
                f["id"]
                for f in folders
                if f["id"] not in below
                # Without the strict lane, only under an older folder: concurrent moves
                # then never close a cycle.
                and (STRICT_FOLDERS or self.rank.get(f["id"], 0) < rank)
            ]
            s.folders.move(folder["id"], self.pick(data, parents, "new parent"))

    def delete_folder(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            folders = self.folders(s)
            if folders:
                notes_to = data.draw(st.sampled_from(["parent", "trash"]), label="notes to")
                s.folders.delete(self.pick(data, folders, "folder")["id"], notes_to=notes_to)

    def file_note(self, dev: int, data: st.DataObject) -> None:
        with self.step(dev) as s:
            notes, folders = self.notes(s), self.folders(s)
            if not notes:
                return
            note = self.pick(data, notes, "note")
            if folders and data.draw(st.integers(0, 3), label="unfile?") > 0:
                s.folders.file_note(note["id"], self.pick(data, folders, "folder")["id"])
            else:
                s.folders.unfile(note["id"])

    # -- rules: sync and faults ----------------------------------------------

    def sync_device(self, dev: int, data: st.DataObject) -> None:
        sync.sync(self.paths[dev], home=self.home)

    def sync_every_device(self, dev: int, data: st.DataObject) -> None:
        order = data.draw(st.permutations(range(3)), label="order")
        for dev in order:
            sync.sync(self.paths[dev], home=self.home)

    def sync_killed(self, dev: int, data: st.DataObject) -> None:
        """A `duru sync` process, SIGKILLed at a random moment (or done before)."""
        delay_ms = data.draw(st.integers(0, 2500), label="kill after ms")
        proc = self.sync_cli(self.paths[dev])
        try:
            try:
                proc.wait(delay_ms / 1000)
            except subprocess.TimeoutExpired:
                pass
        finally:
            end_process(proc)

    def restart_server(self, dev: int, data: st.DataObject) -> None:
        """Stop the server (SIGTERM or SIGKILL), maybe while device ``dev`` syncs; start
        it again on the same database and port."""
        graceful = data.draw(st.booleans(), label="graceful")
        during_sync = data.draw(st.booleans(), label="while a device syncs")
        delay_ms = data.draw(st.integers(0, 2000), label="stop after ms")
        assert self.server is not None
        proc = None
        if during_sync:
            proc = self.sync_cli(self.paths[dev])
            time.sleep(delay_ms / 1000)
        try:
            if graceful:
                self.server.stop()
            else:
                self.server.kill()
        finally:
            if proc is not None:
                try:
                    proc.wait(PROCESS_TIMEOUT)
                finally:
                    end_process(proc)
        self.server.start()

    # -- the end -------------------------------------------------------------

    def sync_until_quiet(self) -> int:
        quiet = 0
        for rounds in range(1, MAX_ROUNDS + 1):
            moved = 0
            for p in self.paths:
                r = sync.sync(p, home=self.home)
                moved += r.pushed + r.pulled
            quiet = quiet + 1 if moved == 0 else 0
            if quiet == QUIET_ROUNDS:
                return rounds
        raise AssertionError(f"devices still push or pull after {MAX_ROUNDS} rounds")

    def check(self) -> None:
        self.sync_until_quiet()
        exports, titles, bodies = [], [], []
        for p in self.paths:
            with Database.open(p, create=False) as db:
                exports.append(export_all(db))
                left = {
                    t: db.scalar(f"SELECT count(*) FROM {t}")
                    for t in ("outbox", "sync_waiting", "quarantine")
                }
                assert left == dict.fromkeys(left, 0), (p.name, left)
                for raw in db.rows("SELECT row_json FROM sync_conflicts WHERE entity = 'note'"):
                    if raw["row_json"]:
                        row = json.loads(raw["row_json"])
                        titles.append(row.get("title") or "")
                        bodies.append(row.get("body") or "")
        for name, export in zip(DEVICES[1:], exports[1:], strict=True):
            for table in export:
                assert export[table] == exports[0][table], differences(
                    table, exports[0][table], name, export[table]
                )
        if STRICT_FOLDERS:
            assert not folder_cycles(exports[0]["folders"]), folder_cycles(exports[0]["folders"])
        titles += [n["title"] or "" for n in exports[0]["notes"]]
        bodies += [n["body"] or "" for n in exports[0]["notes"]]
        if VERBOSE:
            copies = sum("(conflicted copy" in n["title"] for n in exports[0]["notes"])
            print(f"end: {len(exports[0]['notes'])} notes, {copies} copies, {len(titles)} records")
        lost = self.texts.missing(titles, bodies)
        assert not lost, "texts lost:\n" + "\n".join(lost)

    def teardown(self) -> None:
        failed = self.in_step  # a step raised: hypothesis reports that, we only clean up
        try:
            if not failed:
                failed = True
                self.check()
                failed = False
                if VERBOSE:
                    print(f"example: {self.counter} tokens, {len(self.texts.excused)} excused")
        finally:
            log = self.home / "serve.log"
            if failed and log.exists():  # the server's side of it, before the folder goes
                print("serve.log (end):\n" + log.read_text(errors="replace")[-6000:])
            self.cleanup()

    def cleanup(self) -> None:
        try:
            if self.server is not None:
                self.server.kill()
        finally:
            try:
                if self.db_url and self.databases is not None:
                    self.databases.drop(self.db_url)
            finally:
                shutil.rmtree(self.tmp, ignore_errors=True)


def test_random_interleavings_over_three_devices_converge_and_lose_no_text(
    pg_databases: PgDatabases,
) -> None:
    SyncFuzz.databases = pg_databases
    SyncFuzz.steps_run = 0
    run_state_machine_as_test(SyncFuzz, settings=fuzz_settings())
    print(f"sync fuzz: {EXAMPLES} examples, {SyncFuzz.steps_run} steps")


# -- regressions the fuzzer found --------------------------------------------------


class Devices:
    """Three devices of one account on a `duru serve` over a fresh database."""

    def __init__(self, pg_url: str, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.server = Server(pg_url, self.home)
        self.server.start()
        self.paths = [tmp_path / f"{d}.sqlite" for d in DEVICES]
        for p in self.paths:
            Database.open(p).close()
        url = self.server.url
        sync.register(
            self.paths[0], server=url, user="ada", passphrase=PASS, home=self.home, kdf=KDF
        )
        for p in self.paths[1:]:
            sync.login(p, server=url, user="ada", passphrase=PASS, home=self.home)

    def store(self, dev: int) -> DeviceStore:
        return DeviceStore.open(self.paths[dev])

    def sync(self, *devs: int) -> None:
        for dev in devs:
            sync.sync(self.paths[dev], home=self.home)

    def folders(self, dev: int) -> list[dict[str, Any]]:
        with Database.open(self.paths[dev], create=False) as db:
            return export_all(db)["folders"]


@pytest.fixture
def devices(pg_url: str, tmp_path: Path) -> Iterator[Devices]:
    found = Devices(pg_url, tmp_path)
    try:
        yield found
    finally:
        found.server.kill()


def test_folders_moved_into_each_other_on_two_devices_stay_a_tree(devices: Devices) -> None:
    with devices.store(0) as s:
        x, y = s.folders.create("x"), s.folders.create("y")
    devices.sync(0, 1)
    with devices.store(0) as s:
        s.folders.move(x["id"], y["id"])
    with devices.store(1) as s:
        s.folders.move(y["id"], x["id"])
    devices.sync(0, 1, 0, 1)
    assert devices.folders(0) == devices.folders(1)
    # Today x and y point at each other on every device: both drop out of the tree.
    assert not folder_cycles(devices.folders(0))


def test_a_stale_edit_of_a_folder_on_a_cycle_is_a_conflict_not_a_server_error(
    devices: Devices,
) -> None:
    with devices.store(0) as s:
        x, y = s.folders.create("x"), s.folders.create("y")
    devices.sync(0, 1, 2)
    with devices.store(0) as s:
        s.folders.move(x["id"], y["id"])
    with devices.store(1) as s:
        s.folders.move(y["id"], x["id"])
    devices.sync(0, 1)  # the server now holds the cycle x -> y -> x
    with devices.store(2) as s:  # device 2 never saw either move
        s.folders.rename(x["id"], "x renamed")
    # Today the push answers 500: its conflict restamps the rows below x, and
    # duru/server/push.py _restamp recurses around the cycle (RecursionError).
    devices.sync(2, 0, 1, 2)
    assert devices.folders(2) == devices.folders(0)


def test_a_folder_moved_into_a_folder_deleted_elsewhere_syncs(devices: Devices) -> None:
    with devices.store(0) as s:
        x, y = s.folders.create("x"), s.folders.create("y")
    devices.sync(0, 1)
    with devices.store(0) as s:
        s.folders.delete(x["id"])
    with devices.store(1) as s:
        s.folders.move(y["id"], x["id"])
    # Today device 0's pull raises sqlite3.IntegrityError (FOREIGN KEY) in
    # duru/sync/inbox.py _update, on every sync: y's row (parent x, revived by the server)
    # is updated before x is inserted, and an update has no waiting room.
    devices.sync(0, 1, 0, 1)
    assert devices.folders(0) == devices.folders(1)


def test_a_folder_deleted_on_two_devices_is_gone_from_the_third(devices: Devices) -> None:
    with devices.store(0) as s:
        x = s.folders.create("x")
        s.folders.create("sub", parent_id=x["id"])
    devices.sync(0, 1, 2)
    for dev in (0, 1):
        with devices.store(dev) as s:
            s.folders.delete(x["id"])
    devices.sync(0, 1, 2, 0, 1, 2)
    # Today device 2 keeps x: its pull tried the delete before moving "sub" out of x
    # (RESTRICT refused it) and duru/sync/inbox.py _delete dropped the delete for good.
    assert devices.folders(2) == devices.folders(0)
