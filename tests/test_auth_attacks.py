"""Hostile tests of accounts: register, login, logout, sessions, rate limits, the
credentials file and the `duru register|login|sync|logout` commands.

Real `duru serve` processes over real PostgreSQL (both roles, see conftest), real SQLite
device files and real HTTP; the commands run in-process (CliRunner) or as processes.
What test_sync_attacks and test_sync cover already (bad tokens, expiry, unknown user vs
wrong passphrase, sequential rate limits, malformed bodies, A against B's rows) is not
repeated here; this file attacks what they leave:

- user names and passphrases in other scripts and normal forms, blank, padded, too long;
- a credentials file that is corrupt, of the wrong shape, or readable by others;
- a device database moved between accounts (register on a logged-in device, log in to
  another account after logging out);
- concurrent wrong logins against the per-account limit, a forged X-Forwarded-For
  against the per-address one, concurrent registrations of one name on two workers, two
  syncs of one device and a `sync --watch` killed with SIGKILL;
- user A's token against user B's conflict revisions;
- server durations out of range.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
from test_sync import snapshot
from test_sync_attacks import (
    DURU,
    KDF,
    PASSPHRASE,
    Device,
    Server,
    _env,
    assert_json_error,
    bearer,
    login,
    new_device,
    register,
    servers,  # noqa: F401  (a fixture)
)
from typer.testing import CliRunner, Result

import duru.cli.commands  # noqa: F401  (registers the commands)
from duru.cli import app
from duru.crypto import new_account
from duru.errors import AlreadyExists, AuthFailed, UsageError
from duru.server.config import ServerConfig
from duru.sync import client as sync_client
from duru.sync import credentials as creds_file

if TYPE_CHECKING:
    from conftest import PgDatabases

ACCOUNT_LIMIT = 3
DEAD_SERVER = "http://127.0.0.1:9"  # nothing listens: a command must fail before it asks


@pytest.fixture(scope="module")
def srv(pg_databases: PgDatabases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: a small per-account limit, per-address ones no test
    here reaches (every request comes from 127.0.0.1)."""
    db_url = pg_databases.create()
    env = {
        "DURU_SERVER_MAX_FAILURES_PER_ACCOUNT": str(ACCOUNT_LIMIT),
        "DURU_SERVER_MAX_FAILURES_PER_ADDRESS": "100000",
        "DURU_SERVER_MAX_REGISTRATIONS_PER_ADDRESS": "100000",
    }
    server = Server(db_url, tmp_path_factory.mktemp("auth-server"), env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        pg_databases.drop(db_url)


def unique(name: str) -> str:
    """``name`` made unique on the module's server."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def device_id(dev: Device) -> str:
    with dev.store() as st:
        found = st.db.meta("device_id")
    assert found
    return found


def run_cli(dev: Device, *args: str, **env: str | None) -> Result:
    """`duru ARGS --db DEV` in-process, with the device's home and ``env``."""
    base: dict[str, str | None] = {"DURU_HOME": str(dev.home), "NO_PROXY": "127.0.0.1"}
    base.setdefault("DURU_PASSPHRASE", None)
    return CliRunner().invoke(app, [*args, "--db", str(dev.path)], env={**base, **env})


def assert_one_line(result: Result, code: int | None = None, *, contains: str = "") -> str:
    """The command failed with one line on stderr and no traceback; that line."""
    assert isinstance(result.exception, SystemExit), (result.exception, result.output)
    assert result.exit_code != 0 if code is None else result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("duru: "), result.stderr
    assert contains in lines[0], lines[0]
    return lines[0]


def both_succeed(command: list[str], env: dict[str, str]) -> None:
    """Run ``command`` as two processes at once; both must exit 0."""
    procs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs


def accounts_named(inspect_url: str, name: str) -> int:
    """How many accounts the server stored under ``name`` (past row level security)."""
    with psycopg.connect(inspect_url, autocommit=True) as conn:
        found = conn.execute("SELECT count(*) FROM accounts WHERE name = %s", (name,)).fetchone()
    assert found is not None
    return int(found[0])


# -- names and passphrases ------------------------------------------------------------


def test_a_name_in_any_unicode_normal_form_is_one_account(srv: Server, tmp_path: Path) -> None:
    """'é' as one code point and as e + U+0301 (and Hangul as jamo) name one account:
    registered in one form, it logs in with the other, and cannot be registered twice."""
    base = unique("José 한국 日本 🐎")
    nfc, nfd = unicodedata.normalize("NFC", base), unicodedata.normalize("NFD", base)
    assert nfc != nfd
    a, b, c = (new_device(tmp_path, n) for n in "abc")
    ca = register(a, srv, nfd)
    assert ca.user == nfc  # kept in one form
    assert login(b, srv, nfc).user_id == ca.user_id
    with pytest.raises(AlreadyExists) as taken:
        register(c, srv, nfc)
    # Most often one's own account, made by a register whose answer was lost.
    assert f"duru login --server {srv.url} --user {shlex.quote(nfc)}" in taken.value.message
    # The raw API normalises as well: the same salt, the same refusal.
    params = [
        httpx.post(f"{srv.url}/v1/login/params", json={"name": n}, timeout=30).json()
        for n in (nfc, nfd)
    ]
    assert params[0] == params[1]
    _, record = new_account("another one", str(uuid.uuid4()), KDF)
    body = {"name": nfc, "user_id": str(uuid.uuid4()), "record": record.to_dict()}
    assert_json_error(httpx.post(f"{srv.url}/v1/register", json=body, timeout=30), 409)
    # The passphrase too: typed decomposed on a third device, it is the same passphrase.
    pw = unicodedata.normalize("NFD", "crème brûlée ünïcödé")
    d, e = new_device(tmp_path, "d"), new_device(tmp_path, "e")
    name = unique("pw-forms")
    sync_client.register(d.path, server=srv.url, user=name, passphrase=pw, home=d.home, kdf=KDF)
    nfc_pw = unicodedata.normalize("NFC", pw)
    sync_client.login(e.path, server=srv.url, user=name, passphrase=nfc_pw, home=e.home)


@pytest.mark.parametrize(
    ("user", "passphrase", "says"),
    [
        ("", "pw", "empty"),
        (" ada", "pw", "space"),
        ("ada\u3000", "pw", "space"),  # an ideographic space
        ("ada\u00a0", "pw", "space"),  # a no-break space
        ("a\nb", "pw", "control"),
        ("a\u200bb", "pw", "control"),  # a zero-width space (format character)
        ("x" * 201, "pw", "200"),
        ("🐎" * 201, "pw", "200"),
        ("ada", "", "passphrase"),
        ("ada", " \t ", "passphrase"),
    ],
)
def test_bad_names_and_passphrases_are_one_line_before_the_server_is_asked(
    tmp_path: Path, user: str, passphrase: str, says: str
) -> None:
    dev = new_device(tmp_path, "a")
    for command in ("register", "login"):
        result = run_cli(
            dev, command, "--server", DEAD_SERVER, "--user", user, DURU_PASSPHRASE=passphrase
        )
        assert_one_line(result, 2, contains=says)
    assert not (dev.home / "sync").exists() or not list((dev.home / "sync").glob("*.json"))


def test_no_passphrase_and_no_terminal_is_one_line(tmp_path: Path) -> None:
    dev = new_device(tmp_path, "a")
    for command in ("register", "login"):
        result = run_cli(dev, command, "--server", DEAD_SERVER, "--user", "ada")
        assert_one_line(result, 2, contains="DURU_PASSPHRASE")


def test_a_wrong_passphrase_or_unknown_name_on_the_cli_is_one_line_and_keeps_nothing(
    srv: Server, tmp_path: Path
) -> None:
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    name = unique("ユーザー")
    register(a, srv, name)
    for user, pw in ((name, "wrong " + PASSPHRASE), (unique("nobody"), PASSPHRASE)):
        result = run_cli(b, "login", "--server", srv.url, "--user", user, DURU_PASSPHRASE=pw)
        assert_one_line(result, 1, contains="wrong user name or passphrase")
    assert_one_line(run_cli(b, "sync"), 1, contains="not logged in")
    result = run_cli(b, "login", "--server", srv.url, "--user", name, DURU_PASSPHRASE=PASSPHRASE)
    assert result.exit_code == 0, result.output


# -- the credentials file --------------------------------------------------------------


def _damaged(good: dict[str, Any]) -> dict[str, str | bytes]:
    """Ways a credentials file is found broken: cut short by a crash or a full disk,
    emptied, overwritten, edited by hand."""
    text = json.dumps(good)
    return {
        "empty": "",
        "truncated": text[: len(text) // 2],
        "not json": "token=abc",
        "a list": "[]",
        "null": "null",
        "no token": json.dumps({k: v for k, v in good.items() if k != "token"}),
        "an extra field": json.dumps({**good, "passphrase": "x"}),
        "not utf-8": b"\xff\xfe{}",
    }


def test_a_corrupt_credentials_file_is_replaced_by_logging_in_again(
    srv: Server, tmp_path: Path
) -> None:
    """Every command says 'log in again' of a corrupt credentials file: then logging in
    again (and logging out) must work, not refuse for the same file."""
    a = new_device(tmp_path, "a")
    name = unique("corrupt")
    saved = register(a, srv, name)
    path = creds_file.credentials_path(a.home, device_id(a))
    good = json.loads(path.read_text())
    for what, content in _damaged(good).items():
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        assert_one_line(run_cli(a, "sync"), contains="log in again")
        result = run_cli(
            a, "login", "--server", srv.url, "--user", name, DURU_PASSPHRASE=PASSPHRASE
        )
        assert result.exit_code == 0, (what, result.output)
        assert creds_file.load(a.home, device_id(a)).user_id == saved.user_id
        assert path.stat().st_mode & 0o777 == 0o600
        assert run_cli(a, "sync").exit_code == 0, what
    # Logging out of a device whose file is corrupt forgets the file.
    path.write_text("")
    result = run_cli(a, "logout")
    assert result.exit_code == 0, result.output
    assert not path.exists()


def test_a_credentials_file_with_fields_of_the_wrong_type_is_one_line(
    srv: Server, tmp_path: Path
) -> None:
    """Valid JSON of the right keys whose values are not what duru wrote: `duru sync`
    names the file, without a traceback (and without reaching out to a server)."""
    a = new_device(tmp_path, "a")
    name = unique("types")
    register(a, srv, name)
    path = creds_file.credentials_path(a.home, device_id(a))
    good = json.loads(path.read_text())
    bad: dict[str, Any] = {
        "master_key": 5,
        "server": 5,
        "token": ["a"],
        "user_id": None,
        "user": {"name": "x"},
    }
    for field, value in bad.items():
        path.write_text(json.dumps({**good, field: value}))
        result = run_cli(a, "sync")
        line = assert_one_line(result, contains=str(path))
        assert "log in again" in line, (field, line)
        # ... and logging in again mends it.
        result = run_cli(
            a, "login", "--server", srv.url, "--user", name, DURU_PASSPHRASE=PASSPHRASE
        )
        assert result.exit_code == 0, (field, result.output)
        assert run_cli(a, "sync").exit_code == 0


def test_a_credentials_file_others_can_read_is_refused_and_not_used(
    srv: Server, tmp_path: Path
) -> None:
    a = new_device(tmp_path, "a")
    register(a, srv, unique("perm"))
    path = creds_file.credentials_path(a.home, device_id(a))
    for mode in (0o640, 0o604, 0o620, 0o666):
        path.chmod(mode)
        assert_one_line(run_cli(a, "sync"), 2, contains="chmod 600")
    path.chmod(0o600)
    assert run_cli(a, "sync").exit_code == 0


# -- a device database and its account ------------------------------------------------


def test_register_on_a_device_that_cannot_take_the_account_makes_no_account(
    srv: Server, tmp_path: Path, pg_databases: PgDatabases
) -> None:
    """`duru register` on a device already logged in to another account, or on a file
    that is not a device database, is refused; the name must not be taken on the server
    by an account no device holds (no one could register it again, or log in to it)."""
    inspect = pg_databases.inspect(srv.db_url)
    a = new_device(tmp_path, "a")
    register(a, srv, unique("first"))
    second = unique("second")
    result = run_cli(a, "register", "--server", srv.url, "--user", second, DURU_PASSPHRASE="pw")
    assert_one_line(result, 2, contains="already")
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("my shopping list\n" * 100)
    third = unique("third")
    result = CliRunner().invoke(
        app,
        ["register", "--server", srv.url, "--user", third, "--db", str(not_a_db)],
        env={"DURU_HOME": str(tmp_path / "home-x"), "DURU_PASSPHRASE": "pw"},
    )
    assert_one_line(result)
    assert not_a_db.read_text() == "my shopping list\n" * 100
    assert accounts_named(inspect, second) == 0
    assert accounts_named(inspect, third) == 0
    # The names are free for the device that registers them properly.
    register(new_device(tmp_path, "b"), srv, second)


def test_a_device_database_does_not_move_to_another_account_after_logout(
    srv: Server, tmp_path: Path
) -> None:
    """A device synced with alice logs out and logs in as bob. Its cursor is alice's, so
    bob's first rows would never reach it, and alice's notes would sit among bob's, never
    sent. Refused, as while it is logged in; logging in to alice again still works."""
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    alice, bob = unique("alice"), unique("bob")
    register(a, srv, alice)
    with a.store() as st:
        for i in range(3):
            st.notes.create(f"alice {i}")
    a.sync()
    register(b, srv, bob)
    with b.store() as st:
        for i in range(6):
            st.notes.create(f"bob {i}")
    b.sync()
    assert sync_client.logout(a.path, home=a.home)
    with pytest.raises(UsageError, match="another account"):
        login(a, srv, bob)
    with pytest.raises(UsageError, match="another account"):
        register(a, srv, unique("carol"))
    login(a, srv, alice)
    a.sync()
    with a.store() as st:
        titles = sorted(n["title"] for n in st.db.rows("SELECT title FROM notes"))
    assert titles == ["alice 0", "alice 1", "alice 2"]


def test_a_device_synced_after_a_login_killed_before_its_commit_stays_the_accounts(
    srv: Server, tmp_path: Path
) -> None:
    """`duru login` writes the credentials file inside the device database's transaction
    that records the account: killed after the file's rename and before the commit, it
    leaves a device that syncs with the account, which its database does not name. Once
    it synced, after a logout another account could log in to it (its cursor and rows
    alice's): the sync must record the account it syncs with."""
    a, d = new_device(tmp_path, "a"), new_device(tmp_path, "d")
    alice = unique("alice")
    register(a, srv, alice)
    with a.store() as st:
        st.notes.create("alice's 私の note")
    a.sync()
    register(new_device(tmp_path, "b"), srv, bob := unique("bob"))
    login(d, srv, alice)
    with sqlite3.connect(d.path) as conn:  # what the killed login left: the file only
        conn.execute("DELETE FROM duru_meta WHERE key = 'sync_account'")
    conn.close()
    assert d.sync().pulled == 1
    assert sync_client.logout(d.path, home=d.home)
    with pytest.raises(UsageError, match="another account"):
        login(d, srv, bob)
    login(d, srv, alice)
    assert d.sync().pulled == 0


def test_a_login_killed_while_it_writes_its_credentials_leaves_no_copy_of_them(
    srv: Server, tmp_path: Path
) -> None:
    """`duru login` writes the credentials (token, master key) to a temporary file, then
    renames it into place: killed in between, the copy stayed in the sync folder for
    good, named by no device and removed by no logout. The next login or logout of the
    device removes what a dead process left."""
    name = unique("alice")
    register(new_device(tmp_path, "a"), srv, name)
    d = new_device(tmp_path, "d")
    folder = d.home / "sync"
    folder.mkdir(parents=True, mode=0o700)

    def left() -> list[str]:
        return [p for p in os.listdir(folder) if p.endswith(".tmp")]

    for _ in range(30):
        proc = subprocess.Popen(
            [DURU, "login", "--server", srv.url, "--user", name, "--db", str(d.path)],
            env={**_env(d.home), "DURU_PASSPHRASE": PASSPHRASE},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None and not left():
            pass
        proc.kill()
        proc.wait()
        if left():
            break
    else:
        pytest.skip("no login was killed while it wrote its credentials (a busy machine)")
    [copy] = left()
    login(d, srv, name)
    assert left() == []
    assert d.sync().pushed == 0
    (folder / copy).write_text("{}")  # another such copy: logging out removes it too
    (folder / copy).chmod(0o600)
    assert sync_client.logout(d.path, home=d.home)
    assert os.listdir(folder) == [f"{device_id(d)}.lock"]


def _sessions_of(inspect_url: str, user_id: str) -> int:
    with psycopg.connect(inspect_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM sessions WHERE user_id = %s", (uuid.UUID(user_id),)
        ).fetchone()
    assert found is not None
    return int(found[0])


def test_two_logins_of_different_accounts_racing_on_one_device_let_one_win(
    srv: Server, tmp_path: Path, pg_databases: PgDatabases
) -> None:
    """Each login checked that the device was no other account's, then claimed it and
    saved its credentials, apart: two `duru login` of different accounts at once both
    passed the check and both succeeded, and the device could be left tied to one
    account with the credentials (keys, token) of the other. The device's database is
    held locked here until both have their sessions, so both reach the claim together;
    one must win and the other be refused, with nothing of its own left behind."""
    inspect = pg_databases.inspect(srv.db_url)
    names = {unique("alice"): new_device(tmp_path, "x"), unique("bob"): new_device(tmp_path, "y")}
    accounts = {name: register(dev, srv, name) for name, dev in names.items()}
    d = new_device(tmp_path, "d")
    holder = sqlite3.connect(d.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    procs = {
        name: subprocess.Popen(
            [DURU, "login", "--server", srv.url, "--user", name, "--db", str(d.path)],
            env={**_env(d.home), "DURU_PASSPHRASE": PASSPHRASE},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in accounts
    }
    deadline = time.monotonic() + 60
    while any(_sessions_of(inspect, a.user_id) < 2 for a in accounts.values()):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs.values())
        time.sleep(0.02)
    time.sleep(0.5)  # both past their last request: at the device, waiting for its lock
    holder.execute("COMMIT")
    holder.close()
    outs = {name: p.communicate(timeout=60) for name, p in procs.items()}
    won = [name for name, p in procs.items() if p.returncode == 0]
    assert len(won) == 1, outs
    [lost] = [name for name in accounts if name not in won]
    assert "already" in outs[lost][1] and outs[lost][1].startswith("duru: "), outs[lost]
    winner = accounts[won[0]]
    saved = d.creds()
    assert (saved.user, saved.user_id, saved.master_key) == (
        winner.user,
        winner.user_id,
        winner.master_key,
    )
    with d.store() as st:
        assert st.db.meta("sync_account") == winner.user_id
    assert _sessions_of(inspect, accounts[lost].user_id) == 1  # its own device's only
    with names[won[0]].store() as st:
        st.notes.create("the winner's note 勝者 🏆")
    names[won[0]].sync()
    assert d.sync().quarantined == 0
    with d.store() as st:
        assert [n["title"] for n in st.db.rows("SELECT title FROM notes")] == [
            "the winner's note 勝者 🏆"
        ]


def test_a_login_whose_credentials_cannot_be_written_ends_its_session(
    srv: Server, tmp_path: Path, pg_databases: PgDatabases
) -> None:
    """The credentials file cannot be written (its disk full: the temporary file it is
    written to first is /dev/full here). `duru login` and `duru register` fail with one
    line, the device stays as it was, and the session each opened on the server is
    ended: no token of a failed login is left behind for anyone to find."""
    inspect = pg_databases.inspect(srv.db_url)
    name = unique("alice")
    account = register(new_device(tmp_path, "a"), srv, name)
    d = new_device(tmp_path, "d")
    folder = d.home / "sync"
    folder.mkdir(parents=True, mode=0o700)
    full = folder / f"{device_id(d)}.{os.getpid()}.tmp"
    full.symlink_to("/dev/full")
    result = run_cli(d, "login", "--server", srv.url, "--user", name, DURU_PASSPHRASE=PASSPHRASE)
    assert_one_line(result, contains="space")
    assert _sessions_of(inspect, account.user_id) == 1  # its own device's only
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".json") == []
    with d.store() as st:
        assert st.db.meta("sync_account") is None
    full.symlink_to("/dev/full")  # the failed write took it away with its temporary file
    other = unique("bob")
    result = run_cli(d, "register", "--server", srv.url, "--user", other, DURU_PASSPHRASE="pw")
    assert_one_line(result, contains="space")
    with psycopg.connect(inspect, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM sessions s JOIN accounts a USING (user_id) WHERE a.name = %s",
            (other,),
        ).fetchone()
    assert found == (0,)
    with d.store() as st:
        assert st.db.meta("sync_account") is None
    # Once the file can be written, the device logs in to the account.
    full.unlink(missing_ok=True)
    assert login(d, srv, name).user_id == account.user_id
    assert d.sync().pushed == 0


def test_logging_in_again_ends_the_session_it_replaces(
    srv: Server, tmp_path: Path, pg_databases: PgDatabases
) -> None:
    """Each `duru login` opens a session and saves its token over the device's one
    before, which stayed valid on the server, held by no device: after a login again,
    or two logins of the account at once. The replaced session is ended."""
    inspect = pg_databases.inspect(srv.db_url)
    name = unique("alice")
    account = register(new_device(tmp_path, "a"), srv, name)
    d = new_device(tmp_path, "d")
    first = login(d, srv, name)
    again = login(d, srv, name)
    assert _sessions_of(inspect, account.user_id) == 2  # a's and d's
    r = httpx.get(f"{srv.url}/v1/account", headers=bearer(first.token), timeout=30)
    assert r.status_code == 401, r.text
    assert d.creds().token == again.token
    d.sync()
    both_succeed(
        [DURU, "login", "--server", srv.url, "--user", name, "--db", str(d.path)],
        {**_env(d.home), "DURU_PASSPHRASE": PASSPHRASE},
    )
    assert _sessions_of(inspect, account.user_id) == 2
    assert d.sync().pushed == 0


def test_a_login_does_not_wait_long_on_the_server_its_old_session_was_on(
    srv: Server, tmp_path: Path
) -> None:
    """Ending the replaced session is best effort: when the device's old server takes
    connections and never answers (gone for good, the reason to log in elsewhere), the
    new login goes on after a few seconds, not a request's full timeout (60 s, thrice)."""
    name = unique("mover")
    d = new_device(tmp_path, "d")
    register(d, srv, name)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing ever answers
        old = d.creds()
        dead = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with d.store() as st:
            device = st.db.meta("device_id")
        assert device
        creds_file.save(d.home, device, replace(old, server=dead))
        began = time.monotonic()
        again = login(d, srv, name)
        took = time.monotonic() - began
    assert took < sync_client.REPLACED_LOGOUT_SECONDS + 20, took
    assert d.creds().token == again.token and d.creds().server == srv.url.rstrip("/")
    assert d.sync().pushed == 0


# -- rate limits and concurrency on the server ----------------------------------------


def test_concurrent_wrong_logins_do_not_pass_the_per_account_limit(srv: Server) -> None:
    """The limit is checked before the (slow) verifier and the failure counted after it,
    so wrong guesses sent at once all pass the check. At most ACCOUNT_LIMIT may be tried
    within a window, at once or one by one."""
    name = unique("target")
    _, record = new_account(PASSPHRASE, str(uuid.uuid4()), KDF)
    body = {"name": name, "user_id": str(uuid.uuid4()), "record": record.to_dict()}
    assert httpx.post(f"{srv.url}/v1/register", json=body, timeout=30).status_code == 201
    guesses = 16
    barrier = threading.Barrier(guesses)

    def guess(i: int) -> int:
        key = base64.b64encode(i.to_bytes(32, "big")).decode()
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            r = http.post(f"{srv.url}/v1/login", json={"name": name, "auth_key": key})
        return r.status_code

    with ThreadPoolExecutor(guesses) as pool:
        codes = Counter(pool.map(guess, range(guesses)))
    assert set(codes) <= {401, 429}, codes
    assert codes[401] <= ACCOUNT_LIMIT, f"{codes[401]} guesses checked, limit {ACCOUNT_LIMIT}"
    srv.alive()


def test_a_forwarded_for_header_does_not_reset_the_per_address_limit(
    pg_url: str,
    servers: Callable[..., Server],  # noqa: F811  (the fixture imported above)
) -> None:
    """Every connection here comes from 127.0.0.1, as every client's does behind a TCP
    forwarder (stunnel, ssh -L) on the server's host: a made-up X-Forwarded-For must
    not make each guess come from a fresh address."""
    server = servers(pg_url, max_failures_per_address=3)
    codes = _spray(server)
    assert codes == [401, 401, 401, 429, 429, 429], codes


def _spray(server: Server, address: str = "198.51.100.{}") -> list[int]:
    """Six wrong logins, each of another name and another forwarded address: the codes."""
    codes = []
    for i in range(6):
        body = {"name": unique("spray"), "auth_key": base64.b64encode(bytes(32)).decode()}
        r = httpx.post(
            f"{server.url}/v1/login",
            json=body,
            headers={"X-Forwarded-For": address.format(i)},
            timeout=30,
        )
        codes.append(r.status_code)
    return codes


def test_a_trusted_proxy_names_the_address(
    pg_url: str,
    servers: Callable[..., Server],  # noqa: F811  (the fixture imported above)
) -> None:
    """Behind a reverse proxy the operator names (`--trusted-proxy`), each forwarded
    address is its own: one client's guesses do not lock out the others."""
    server = servers(pg_url, max_failures_per_address=3, trusted_proxies="10.0.0.0/8 127.0.0.1")
    codes = _spray(server)
    assert codes == [401] * 6, codes


def test_wrong_logins_from_one_ipv6_network_count_as_one_address(
    pg_url: str,
    servers: Callable[..., Server],  # noqa: F811  (the fixture imported above)
) -> None:
    """An IPv6 client holds a whole /64 and may send each guess from a new address of
    it: counted per address, it guessed (other names) without end."""
    server = servers(pg_url, max_failures_per_address=3, trusted_proxies="127.0.0.1")
    codes = _spray(server, "2001:db8:7:8::{}")
    assert codes == [401, 401, 401, 429, 429, 429], codes


def test_a_trusted_proxy_that_is_not_an_address_is_refused(tmp_path: Path) -> None:
    r = subprocess.run(
        [DURU, "serve", "--port", "0", "--trusted-proxy", "proxy.example"],
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "--trusted-proxy 'proxy.example' is not an IP address or network" in r.stderr, r
    assert "Traceback" not in r.stderr


def _registration(name: str) -> dict[str, Any]:
    uid = str(uuid.uuid4())
    _, record = new_account("pw", uid, KDF)
    return {"name": name, "user_id": uid, "record": record.to_dict()}


def _registered_at_once(url: str, bodies: list[dict[str, Any]]) -> list[int]:
    """POST each body to /v1/register, all released at the same moment: the codes."""
    barrier = threading.Barrier(len(bodies))

    def send(body: dict[str, Any]) -> int:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            return http.post(f"{url}/v1/register", json=body).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_registrations_from_one_address_are_limited(
    pg_url: str,
    servers: Callable[..., Server],  # noqa: F811  (the fixture imported above)
) -> None:
    """One address could create accounts without end (filling the database) and test
    names for being taken at full speed. Three per window here: a name already taken
    counts too; past the limit a 429 with Retry-After, the account not made, and other
    addresses (named by a trusted proxy) still register."""
    server = servers(pg_url, max_registrations_per_address=3, trusted_proxies="127.0.0.1")
    taken = unique("taken")

    def send(name: str, address: str = "198.51.100.7") -> httpx.Response:
        return httpx.post(
            f"{server.url}/v1/register",
            json=_registration(name),
            headers={"X-Forwarded-For": address},
            timeout=30,
        )

    codes = [send(n).status_code for n in (taken, taken, unique("two"))]
    assert codes == [201, 409, 201], codes
    refused = send(unique("four"))
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 3601
    assert "too many accounts registered from this address" in refused.text
    assert send(unique("other"), "198.51.100.8").status_code == 201
    # The refused name was not made: it registers from another address.
    name = unique("later")
    assert send(name).status_code == 429
    assert send(name, "198.51.100.9").status_code == 201


def test_a_server_with_registration_closed_makes_no_account_and_still_logs_in(
    pg_url: str,
    tmp_path: Path,
    servers: Callable[..., Server],  # noqa: F811  (the fixture imported above)
) -> None:
    """DURU_SERVER_MAX_REGISTRATIONS_PER_ADDRESS=0: a private server whose accounts are
    all made. `duru register` there is refused (403, one line, non-zero exit) and makes
    nothing; an account made before logs in and syncs. 0 was refused as a setting."""
    open_server = servers(pg_url)
    closed = servers(pg_url, max_registrations_per_address=0)
    a = new_device(tmp_path, "a")
    name = unique("made-before")
    register(a, open_server, name)
    refused = httpx.post(f"{closed.url}/v1/register", json=_registration(unique("x")), timeout=30)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "registration_closed"
    b = new_device(tmp_path, "b")
    other = unique("new")
    result = run_cli(b, "register", "--server", closed.url, "--user", other, DURU_PASSPHRASE="pw")
    assert_one_line(result, contains="closed registration")
    assert httpx.post(
        f"{closed.url}/v1/login/params", json={"name": other}, timeout=30
    ).is_success  # an unknown name still gets made-up parameters: nothing tells
    c = new_device(tmp_path, "c")
    login(c, closed, name)
    with a.store() as st:
        st.notes.create("made on a")
    a.sync()
    c.sync()
    assert snapshot(c.path)["notes"] == snapshot(a.path)["notes"]
    with pytest.raises(UsageError, match="0 or more"):
        ServerConfig.from_env({"DURU_SERVER_MAX_REGISTRATIONS_PER_ADDRESS": "-1"})
    with pytest.raises(UsageError, match="positive integer"):
        ServerConfig.from_env({"DURU_SERVER_MAX_FAILURES_PER_ACCOUNT": "0"})


def test_registrations_from_one_ipv6_network_are_limited_together(
    pg_url: str,
    servers: Callable[..., Server],  # noqa: F811  (the fixture imported above)
) -> None:
    """An IPv6 client holds a whole /64 (2^64 addresses) and may send from a new one each
    time: counted per address, it registered without end. Its /64 counts as one
    address, however written; another /64 is another address."""
    server = servers(pg_url, max_registrations_per_address=3, trusted_proxies="127.0.0.1")

    def send(address: str) -> int:
        return httpx.post(
            f"{server.url}/v1/register",
            json=_registration(unique("v6")),
            headers={"X-Forwarded-For": address},
            timeout=30,
        ).status_code

    sent = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:0db8:0001:0002:ffff::9", "2001:db8:1:2::3"]
    codes = [send(a) for a in sent]
    assert codes == [201, 201, 201, 429], codes
    assert send("2001:db8:1:3::1") == 201


def test_concurrent_registrations_from_one_address_do_not_pass_the_limit(
    pg_url: str,
    servers: Callable[..., Server],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    server = servers(pg_url, max_registrations_per_address=3)
    codes = _registered_at_once(server.url, [_registration(unique(f"b{i}")) for i in range(10)])
    assert sorted(codes) == [201] * 3 + [429] * 7, codes
    # `duru register` past the limit: one line, exit 1, the device not logged in.
    dev = new_device(tmp_path, "late")
    out = subprocess.run(
        [DURU, "register", "--server", server.url, "--user", unique("cli"), "--db", str(dev.path)],
        env={**_env(dev.home), "DURU_PASSPHRASE": "a passphrase long enough"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and not out.stdout, out
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out
    assert "too many accounts registered" in out.stderr, out.stderr
    assert not creds_file.credentials_path(dev.home, device_id(dev)).exists()


def test_concurrent_registrations_of_one_name_on_two_workers(pg_url: str, tmp_path: Path) -> None:
    """`duru serve --workers 2`: the same name (and the same user id under other names)
    sent at once; exactly one of each wins, the rest are 409, never a 500."""
    env = _env(tmp_path / "server-home")
    env["DURU_DATABASE_URL"] = pg_url
    proc = subprocess.Popen(
        [DURU, "serve", "--host", "127.0.0.1", "--port", "0", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        url = line.split("listening on ")[1].split()[0]
        bodies = []
        for _ in range(8):
            uid = str(uuid.uuid4())
            _, record = new_account("pw", uid, KDF)
            bodies.append({"name": "same", "user_id": uid, "record": record.to_dict()})
        uid = str(uuid.uuid4())
        _, record = new_account("pw", uid, KDF)
        bodies += [{"name": f"n{i}", "user_id": uid, "record": record.to_dict()} for i in range(8)]
        codes = _registered_at_once(url, bodies)
        assert sorted(codes[:8]) == [201] + [409] * 7, codes
        assert sorted(codes[8:]) == [201] + [409] * 7, codes
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        if proc.stdout is not None:
            proc.stdout.close()


def test_user_a_token_cannot_resolve_user_b_conflict_revisions(srv: Server, tmp_path: Path) -> None:
    a = new_device(tmp_path, "a")
    b1, b2 = new_device(tmp_path, "b1"), new_device(tmp_path, "b2")
    ca = register(a, srv, unique("alice"))
    bob = unique("bob")
    cb = register(b1, srv, bob)
    login(b2, srv, bob)
    with b1.store() as st:
        note = st.notes.create("shared", "line one")
    b1.sync()
    b2.sync()
    with b1.store() as st:
        st.notes.edit(note["id"], title="b1 title")
    with b2.store() as st:
        st.notes.edit(note["id"], title="b2 title")
    b1.sync()
    b2.sync()
    b1.sync()
    with b1.store() as st:
        ids = [r["id"] for r in st.db.rows("SELECT id FROM sync_conflicts WHERE seq > 0")]
    assert ids, "no conflict revision on the server to attack"
    before = httpx.get(f"{srv.url}/v1/changes", headers=bearer(cb.token), timeout=30).json()
    for status in ("resolved", "open", "merged"):
        items = [{"id": i, "status": status, "copy_id": None} for i in ids]
        r = httpx.post(
            f"{srv.url}/v1/conflicts/resolve",
            json={"resolutions": items},
            headers=bearer(ca.token),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"changed": 0}
    after = httpx.get(f"{srv.url}/v1/changes", headers=bearer(cb.token), timeout=30).json()
    assert after == before
    mine = httpx.get(f"{srv.url}/v1/changes", headers=bearer(ca.token), timeout=30).json()
    assert mine["changes"] == []


def test_out_of_range_server_durations_are_refused_at_start(tmp_path: Path) -> None:
    """A token lifetime or login window past what dates can hold made every login a
    500 (Python's datetime, PostgreSQL's timestamp overflow); `duru serve` must refuse
    them at start, in one line, before it touches a database."""
    for var in ("DURU_SERVER_TOKEN_TTL", "DURU_SERVER_LOGIN_WINDOW"):
        env = _env(tmp_path)
        env[var] = str(10**12)
        env["DURU_DATABASE_URL"] = DEAD_SERVER.replace("http", "postgresql")
        run = subprocess.run(
            [DURU, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 2, (var, run.stdout, run.stderr)
        assert run.stderr.count("\n") == 1 and var.split("_SERVER_")[1].lower() in run.stderr


@pytest.mark.parametrize("var", ["DURU_SERVER_REGISTRATION_WINDOW", "DURU_SERVER_LOGIN_WINDOW"])
def test_a_limit_window_past_a_day_is_refused_in_a_day_not_100_years(
    tmp_path: Path, var: str
) -> None:
    """The windows' ceiling is a day (the housekeeping drops older counts), but the
    refusal said "must be at most 86400 (100 years)"; and a login window of two days was
    taken, and counted one."""
    env = {**_env(tmp_path), var: "90000"}
    env["DURU_DATABASE_URL"] = DEAD_SERVER.replace("http", "postgresql")
    run = subprocess.run(
        [DURU, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.count("\n") == 1 and "at most 86400 (a day)" in run.stderr, run.stderr


# -- two syncs of one device, a killed --watch ----------------------------------------


def test_two_sync_processes_and_a_killed_watch_lose_nothing(srv: Server, tmp_path: Path) -> None:
    a, b = new_device(tmp_path, "a"), new_device(tmp_path, "b")
    name = unique("busy")
    register(a, srv, name)
    login(b, srv, name)
    with a.store() as st:
        for i in range(400):
            st.notes.create(f"n{i}", "body " * 20, tags=[f"t{i % 7}"])
    both_succeed([DURU, "sync", "--db", str(a.path)], _env(a.home))
    with a.store() as st:
        for i in range(400):
            st.notes.create(f"m{i}", "body " * 20)
    watch = subprocess.Popen(
        [DURU, "sync", "--watch", "--every", "0.05", "--db", str(b.path)],
        env=_env(b.home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pusher = subprocess.Popen([DURU, "sync", "--db", str(a.path)], env=_env(a.home))
    time.sleep(1.5)
    watch.send_signal(signal.SIGKILL)
    watch.wait(10)
    assert pusher.wait(120) == 0
    run = subprocess.run(
        [DURU, "sync", "--db", str(b.path)],
        env=_env(b.home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    a.sync()
    b.sync()
    sa, sb = snapshot(a.path), snapshot(b.path)
    assert sa == sb and len(sa["notes"]) == 800


def test_verifier_checks_at_once_are_bounded_and_the_right_key_still_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forty logins at once (64 MiB each) ran forty verifier checks at once: the memory
    of a small server, taken by anyone. At most VERIFY_SLOTS run now; the rest wait."""
    from duru.crypto import KdfParams, make_auth_verifier, verify_auth_key
    from duru.server import auth

    params = KdfParams.interactive()
    key = os.urandom(32)
    verifier = make_auth_verifier(key, opslimit=params.opslimit, memlimit=params.memlimit)
    running, peak, lock = 0, 0, threading.Lock()

    def counted(v: bytes, k: bytes) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return verify_auth_key(v, k)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(auth, "verify_auth_key", counted)
    attempt = auth.LoginAttempt(("account:x", "address:y"), str(uuid.uuid4()), verifier)

    def one(i: int) -> str:
        try:
            return auth.check_login_key(attempt, key if i % 8 == 0 else os.urandom(32))
        except AuthFailed:
            return "refused"

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(one, range(24)))
    assert 1 < peak <= auth.VERIFY_SLOTS, peak
    assert answers.count(attempt.user_id) == 3 and answers.count("refused") == 21
