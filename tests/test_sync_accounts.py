"""Accounts against a hostile or locked-down server database (issue 11, items 3 to 5).

The direct-database tools (`upload`, `download`) as a role that row level security binds;
a record whose verifier does not match; KDF costs a tampered server record names.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from test_bulk_transfer import unversioned

from duru.crypto import KdfParams, make_auth_verifier
from duru.errors import CryptoError, WrongPassphrase
from duru.local import DeviceStore, export_json
from duru.local.db import Database
from duru.remote.config import with_role
from duru.remote.roles import ensure_server_role
from duru.remote.schema import apply_server_schema
from duru.sync import download, upload
from duru.sync.server_account import KDF_CEILING, check_kdf_ceiling

PASS = "correct horse battery"
KDF = KdfParams.interactive()


def _device(tmp_path: Path) -> Path:
    path = tmp_path / "device.sqlite"
    with DeviceStore.open(path) as s:
        s.notes.create("東京 note 🎉", body="body", tags=["work"])
    return path


@pytest.fixture
def operator_url(pg_url: str) -> str:
    """A NOSUPERUSER role with the server role's grants and read access to duru_meta."""
    name = f"duru_op_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as owner:
        apply_server_schema(owner)
        server_role, _ = ensure_server_role(owner)
        owner.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'op'").format(
                sql.Identifier(name)
            )
        )
        owner.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(server_role), sql.Identifier(name))
        )
        owner.execute(sql.SQL("GRANT SELECT ON duru_meta TO {}").format(sql.Identifier(name)))
    return with_role(pg_url, name, "op")


def test_upload_and_download_work_as_a_role_row_level_security_binds(
    tmp_path: Path, operator_url: str
) -> None:
    device = _device(tmp_path)
    first = upload(device, server_url=operator_url, passphrase=PASS, user="ada", kdf=KDF)
    # The second upload has to find the account that RLS hides until a user is set.
    second = upload(device, server_url=operator_url, passphrase=PASS, user="ada", kdf=KDF)
    assert first.account_created and not second.account_created
    copy = tmp_path / "copy.sqlite"
    download(copy, server_url=operator_url, passphrase=PASS, user="ada")
    with Database.open(device) as a, Database.open(copy) as b:
        assert unversioned(export_json(a)) == unversioned(export_json(b))


def test_a_verifier_that_does_not_match_refuses_the_passphrase(tmp_path: Path, pg_url: str) -> None:
    upload(_device(tmp_path), server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    other = make_auth_verifier(b"\x01" * 32, opslimit=KDF.opslimit, memlimit=KDF.memlimit).decode(
        "ascii"
    )
    with psycopg.connect(pg_url, autocommit=True) as owner:
        owner.execute("UPDATE accounts SET auth_verifier = %s WHERE name = 'ada'", (other,))
    with pytest.raises(WrongPassphrase):
        download(tmp_path / "copy.sqlite", server_url=pg_url, passphrase=PASS, user="ada")
    assert not (tmp_path / "copy.sqlite").exists()


def test_a_kdf_cost_above_the_ceiling_is_refused_before_deriving(
    tmp_path: Path, pg_url: str
) -> None:
    upload(_device(tmp_path), server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    with psycopg.connect(pg_url, autocommit=True) as owner:
        owner.execute(
            "UPDATE accounts SET kdf_params = jsonb_set(kdf_params, '{opslimit}', %s::jsonb)"
            " WHERE name = 'ada'",
            (str(KDF_CEILING.opslimit * 5),),
        )
    with pytest.raises(CryptoError, match="ceiling"):
        download(tmp_path / "copy.sqlite", server_url=pg_url, passphrase=PASS, user="ada")


def test_the_ceiling_admits_every_cost_duru_offers() -> None:
    for params in (KdfParams.interactive(), KdfParams.moderate(), KdfParams.sensitive()):
        check_kdf_ceiling(params)
    with pytest.raises(CryptoError):
        check_kdf_ceiling(KdfParams(KDF_CEILING.opslimit, KDF_CEILING.memlimit * 2, b"s" * 16))
