"""duru.crypto's public surface and its import boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import duru.crypto

PACKAGE = Path(duru.crypto.__file__).parent

EXPECTED = {
    "AccountKeys",
    "AccountRecord",
    "BLIND_INDEX_BYTES",
    "BlindIndexKey",
    "DerivedKeys",
    "ENVELOPE_VERSION",
    "FieldKey",
    "KdfParams",
    "KeyRing",
    "MIN_ENVELOPE_BYTES",
    "WrappedKey",
    "binding_tag",
    "change_passphrase",
    "derive_keys",
    "keys_from_master",
    "make_auth_verifier",
    "new_account",
    "open_sealed",
    "seal",
    "unlock",
    "unwrap_master_key",
    "verifier_cost",
    "verify_auth_key",
    "wrap_master_key",
}


def test_exported_names() -> None:
    assert duru.crypto.__all__ == sorted(duru.crypto.__all__)
    assert set(duru.crypto.__all__) == EXPECTED
    for name in duru.crypto.__all__:
        assert hasattr(duru.crypto, name)


def test_imports_nothing_of_duru_but_errors() -> None:
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if (name == "duru" or name.startswith("duru.")) and name != "duru.errors":
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
