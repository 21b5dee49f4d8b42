"""A secret value never appears in a response, a log line or the database, and key rotation keeps every
secret readable."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from credflow.cli.main import app as cli
from credflow.persistence.tables import DataKey
from credflow.services.core import Core
from tests.conftest import Api

VALUE = "Plaintext-Canary-7f3a9c1e5b"


def _db_dump(core: Core, tmp: Path) -> bytes:
    """Every byte the database holds: the SQLite files, or every row of every table on PostgreSQL."""
    if core.db.is_sqlite:
        db = Path(core.db.engine.url.database or "")
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    chunks = []
    with core.db.engine.connect() as c:
        for table in c.execute(text("select tablename from pg_tables where schemaname = current_schema()")):
            for row in c.execute(text(f'select * from "{table[0]}"')):
                chunks.append(repr(tuple(row)).encode())
    return b"\n".join(chunks)


def test_a_secret_value_is_nowhere_in_plaintext(admin: Api, core: Core, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    def call(resp: Any) -> Any:
        bodies.append(resp.text)
        return resp

    call(admin.post(admin.e("/secret-stores"), {"name": "vault", "kind": "builtin"}))
    call(admin.put(admin.e("/secret-stores/vault/secrets/pw"), {"value": VALUE}))
    call(admin.put(admin.e("/secret-stores/vault/secrets/pw"), {"value": VALUE + "-2"}))
    call(admin.post(admin.e("/environment-variables"), {"schema_name": "u", "type": "text", "value": "robot"}))
    call(admin.post(admin.e("/environment-variables"),
                    {"schema_name": "p", "type": "secret", "secret_reference": {"store": "vault", "name": "pw"}}))
    call(admin.post(admin.e("/credentials"), {"name": "c", "username_variable": "u", "password_variable": "p"}))
    for path in ("/credentials", "/environment-variables", "/environment-variables/p", "/secret-stores",
                 "/secret-stores/vault/secrets"):
        call(admin.get(admin.e(path)))
    call(admin.put(admin.e("/secret-stores/vault/secrets/x"), {"value": VALUE * 3000}))  # refused: too large
    assert len(bodies) == 12 and all(VALUE not in b for b in bodies)
    assert VALUE not in caplog.text
    dump = _db_dump(core, tmp_path)
    assert len(dump) > 1000 and VALUE.encode() not in dump
    with core.db.read() as s:
        assert s.scalar(select(DataKey.id)) is not None  # values are sealed, not absent


def test_key_rotation_keeps_every_secret_readable(admin: Api, core: Core) -> None:
    admin.store("vault")
    for i in range(3):
        admin.secret("vault", f"s{i}", f"value-{i}")
    old_kek = core.keyring.active_id
    env = {"CREDFLOW_DATA_DIR": str(core.settings.data_dir),
           "CREDFLOW_DATABASE_URL": core.settings.resolved_database_url()}
    result = CliRunner().invoke(cli, ["keys", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    assert "re-wrapped" in result.output
    with core.db.read() as s:
        keks = set(s.scalars(select(DataKey.kek_id)).all())
    assert old_kek not in keks and len(keks) == 1
    assert oct(os.stat(core.settings.key_file).st_mode & 0o777) == "0o600"
    # The running server has never seen the new key: it finds it in the key file when it needs it.
    core.barrier._deks.clear()
    for i in range(3):
        var = admin.secret_var(f"v{i}", "vault", f"s{i}")
        assert var["secret_reference"]["name"] == f"s{i}"
    from credflow.services.secrets.secret_stores import BuiltinBackend

    store_id = admin.ok(admin.get(admin.e("/secret-stores/vault")))["id"]
    assert BuiltinBackend(core).get(store_id, "s2", None) == ("value-2", 1)
