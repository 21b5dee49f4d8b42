"""``credflow backup`` and ``credflow restore`` with real processes, on SQLite and on PostgreSQL.

A server with secrets, shares, credentials, connections and a machine is backed up while a thread keeps
writing secrets and variables through the API; the backup is restored into a fresh data directory (or an
empty database), a server started on it, and everything checked through the API, through runs that open the
delivered values, and with ``credflow audit verify --head``. The backup holds no plaintext secret and no
master key, and restore refuses a newer schema, missing master keys and a target that holds a database.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect, make_url, text

import credflow.persistence
from credflow.crypto.sealing import open_sealed
from tests.conftest import PG_URL, Api, new_machine
from tests.e2e.server import CREDFLOW, clean_env, running_server

# The newest migration's number, read off the files (0001_..., 0002_...): the revision a new database is at.
NEWEST_MIGRATION = sorted(p.name[:4] for p in (Path(credflow.persistence.__file__).parent / "migrations" / "versions")
                          .glob("[0-9][0-9][0-9][0-9]_*.py"))[-1]

TOKEN = "cfu_backup-admin-token-0123456789"
ALPHA, BETA = "Backup-Alpha-Secret-7Qx!", "Backup-Beta-Secret-9Wz!"
TYPED_USER, TYPED_PASSWORD = "svc-typed-robot@corp.example", "Backup-Typed-Secret-4Kp!"


@dataclass
class Target:
    """Where one credflow keeps its data: a data directory and, on PostgreSQL, a database of its own."""

    data_dir: Path
    database_url: str | None = None
    master_key: str | None = None  # CREDFLOW_MASTER_KEY, else the key file in the data directory
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, **more: str) -> dict[str, str]:
        env = {"CREDFLOW_CONFIG_DIR": str(self.data_dir.parent / "cli-config"), **self.extra, **more}
        if self.database_url:
            env["CREDFLOW_DATABASE_URL"] = self.database_url
        if self.master_key:
            env["CREDFLOW_MASTER_KEY"] = self.master_key
        return env

    def is_empty(self) -> bool:
        if self.database_url is None:
            return not (self.data_dir / "credflow.db").exists()
        engine = create_engine(self.database_url)
        try:
            return inspect(engine).get_table_names() == []
        finally:
            engine.dispose()


def credflow(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CREDFLOW, *args], env=clean_env(**env), capture_output=True, text=True, check=False,
                          timeout=timeout)


def said(done: subprocess.CompletedProcess[str]) -> str:
    """What a command printed, on one line (the console wraps long messages)."""
    return " ".join((done.stdout + done.stderr).split())


@pytest.fixture
def scratch_databases(pg_available: bool) -> Iterator[list[str]]:
    """Two PostgreSQL databases of their own (source and target), dropped afterwards."""
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    names = [f"credflow_backup_{uuid.uuid4().hex[:10]}_{role}" for role in ("src", "dst")]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for name in names:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield [make_url(PG_URL).set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        with admin.connect() as c:
            for name in names:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def targets(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Target, Target]:
    """The source credflow and the fresh target of the restore. SQLite keeps its master key in the data
    directory's key file; the PostgreSQL pair takes it from CREDFLOW_MASTER_KEY."""
    if request.param == "sqlite":
        return Target(tmp_path / "source"), Target(tmp_path / "restored")
    src_url, dst_url = request.getfixturevalue("scratch_databases")
    key = base64.b64encode(os.urandom(32)).decode()
    return (Target(tmp_path / "source", src_url, key), Target(tmp_path / "restored", dst_url, key))


# --- what the source holds -------------------------------------------------------------------------------
def populate(admin: Api) -> dict[str, Any]:
    """Two builtin secrets behind two credentials, one shared with alice; a machine, a desktop flow, and three
    connections on the machine: one per credential and one with a typed username and password."""
    admin.store("vault")
    admin.secret("vault", "robot-password", ALPHA)
    admin.secret("vault", "service-password", BETA)
    admin.text_var("robot_user", "robot@corp.example")
    admin.secret_var("robot_pass", "vault", "robot-password")
    admin.text_var("service_user", "service@corp.example")
    admin.secret_var("service_pass", "vault", "service-password")
    robot = admin.credential("Robot login", "robot_user", "robot_pass")
    service = admin.credential("Service login", "service_user", "service_pass")
    alice = admin.user("alice", "environment_maker")
    admin.ok(admin.put(admin.e(f"/credentials/{robot['id']}/shares/{alice.info['id']}"), {"role": "user"}))
    machine_api, machine_id, machine_key = new_machine(admin, "pc-1")
    flow = admin.ok(admin.post(admin.e("/desktop-flows"), {"name": "login-check", "command": ["robot"]}), 201)
    target = {"machine": machine_id}
    connections = {
        "robot on pc-1": (admin.ok(admin.post(admin.e("/connections"), {"name": "robot on pc-1", "target": target,
                                                                        "credential": robot["id"]}), 201),
                          ("robot@corp.example", ALPHA)),
        "service on pc-1": (admin.ok(admin.post(admin.e("/connections"), {"name": "service on pc-1",
                                                                          "target": target,
                                                                          "credential": service["id"]}), 201),
                            ("service@corp.example", BETA)),
        "typed on pc-1": (admin.ok(admin.post(admin.e("/connections"), {"name": "typed on pc-1", "target": target,
                                                                        "username": TYPED_USER,
                                                                        "password": TYPED_PASSWORD}), 201),
                          (TYPED_USER, TYPED_PASSWORD)),
    }
    return {"robot": robot, "service": service, "alice": alice, "machine_token": machine_api.token,
            "machine_id": machine_id, "machine_key": machine_key, "flow": flow, "connections": connections}


@dataclass
class Load:
    """A thread that writes through the API until stopped: a new secret, then a new text variable, in turn.
    ``ops`` are (kind, name, value, when acknowledged), in the order they were written."""

    url: str
    env_id: str
    ops: list[tuple[str, str, str, float]] = field(default_factory=list)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=60) as http:
                api = Api(http, TOKEN, self.env_id)
                i = 0
                while not self.stop.is_set():
                    if i % 2 == 0:
                        name, value = f"load-{i}", f"Load-Secret-{i}-{secrets.token_hex(6)}"
                        api.secret("vault", name, value)
                        self.ops.append(("secret", name, value, time.monotonic()))
                    else:
                        name, value = f"load_var_{i}", f"load text {i}"
                        api.text_var(name, value)
                        self.ops.append(("variable", name, value, time.monotonic()))
                    i += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def finish(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=60)
        assert self.error is None, f"the writes failed: {self.error!r}"


def acked_between(ops: list[tuple[str, str, str, float]], start: float, end: float) -> int:
    return sum(1 for op in ops if start < op[3] < end)


# --- reading a backup file -------------------------------------------------------------------------------
def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:*") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def every_readable_form(path: Path, tmp: Path) -> list[bytes]:
    """The file's bytes, decompressed (gzip), each member, and a PostgreSQL dump as the SQL it restores."""
    raw = path.read_bytes()
    forms = [raw, gzip.decompress(raw)]
    for name, body in members(path).items():
        forms.append(body)
        if name.endswith(".pgdump"):
            dump = tmp / "dump.pgdump"
            dump.write_bytes(body)
            sql = subprocess.run(["/usr/bin/pg_restore", "-f", "-", str(dump)], capture_output=True, check=True)
            forms.append(sql.stdout)
    return forms


def with_manifest(source: Path, dest: Path, **changes: Any) -> None:
    """A copy of the backup ``source`` whose manifest has ``changes``."""
    parts = members(source)
    manifest = json.loads(parts["manifest.json"]) | changes
    parts["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(dest, "w:gz") as tar:
        for name, body in parts.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


def database_fingerprint(target: Target) -> str:
    """Something that changes when the target's database does."""
    if target.database_url is None:
        return hashlib.sha256((target.data_dir / "credflow.db").read_bytes()).hexdigest()
    engine = create_engine(target.database_url)
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT seq, hash FROM audit_records ORDER BY seq")).all()
        return hashlib.sha256(repr(rows).encode()).hexdigest()
    finally:
        engine.dispose()


# --- the test ----------------------------------------------------------------------------------------------
def test_backup_under_write_load_restores_everything_into_a_fresh_target(
        targets: tuple[Target, Target], tmp_path: Path) -> None:
    source, restored = targets
    backup_file = tmp_path / "credflow-backup.tar.gz"

    with running_server(source.data_dir, source.env(CREDFLOW_BOOTSTRAP_TOKEN=TOKEN), clean=True,
                        log=tmp_path / "source.log") as (url, _), httpx.Client(base_url=url, timeout=60) as http:
        admin = Api(http, TOKEN)
        admin.env = admin.ok(admin.get("/environments"))["items"][0]["id"]
        made = populate(admin)

        load = Load(url, admin.env)
        load.start()
        deadline = time.monotonic() + 30
        while len(load.ops) < 6 and time.monotonic() < deadline and load.error is None:
            time.sleep(0.05)
        acked_before = len(load.ops)
        started = time.monotonic()
        done = credflow("backup", str(backup_file), "--data-dir", str(source.data_dir), "--json", env=source.env())
        ended = time.monotonic()
        time.sleep(0.5)  # writes go on after the backup too: none of them is in it
        load.finish()
        assert done.returncode == 0, said(done)
        assert acked_between(load.ops, started, ended) > 0, "no write happened while the backup ran"
        written_before_end = sum(1 for op in load.ops if op[3] < ended) + 1  # +1: one write in flight at the end
        manifest = json.loads(done.stdout)
        source_keys = (json.loads((source.data_dir / "master.key").read_text())["keys"] if source.master_key is None
                       else {"env": source.master_key})

    # The file: one tar.gz, owner-only, with the manifest and the database; ciphertext only, no master key.
    assert oct(backup_file.stat().st_mode & 0o777) == "0o600"
    kind = "sqlite" if source.database_url is None else "postgresql"
    assert set(members(backup_file)) == {"manifest.json",
                                         "database.sqlite3" if kind == "sqlite" else "database.pgdump"}
    assert json.loads(members(backup_file)["manifest.json"]) == manifest
    assert manifest["database"] == kind and manifest["schema_version"] == NEWEST_MIGRATION
    assert manifest["format"] == "credflow-backup" and manifest["created_at"].endswith("Z")
    assert len(manifest["key_ids"]) == 1 and len(manifest["key_ids"][0]) == 12
    seq, _, digest = manifest["audit_head"].partition(":")
    assert seq.isdigit() and len(digest) == 64
    plaintexts = [ALPHA, BETA, TYPED_USER, TYPED_PASSWORD] + [op[2] for op in load.ops if op[0] == "secret"]
    key_material = [form for b64 in source_keys.values() for form in (b64.encode(), base64.b64decode(b64))]
    forms = every_readable_form(backup_file, tmp_path)
    assert any(b"robot@corp.example" in form for form in forms)  # a text value is readable, so a secret would be
    for form in forms:
        for needle in [p.encode() for p in plaintexts] + key_material:
            assert needle not in form, f"{needle[:12]!r} is in the backup"

    # Restore refuses, changing nothing: no master key, a wrong one, a newer schema.
    no_key = Target(restored.data_dir, restored.database_url)
    refused = credflow("restore", str(backup_file), "--data-dir", str(restored.data_dir), env=no_key.env())
    assert refused.returncode != 0 and manifest["key_ids"][0] in said(refused), said(refused)
    assert "Nothing was changed" in said(refused) and restored.is_empty()
    assert restored.database_url is not None or not restored.data_dir.exists()
    other_key = Target(restored.data_dir, restored.database_url, base64.b64encode(os.urandom(32)).decode())
    refused = credflow("restore", str(backup_file), "--data-dir", str(restored.data_dir), env=other_key.env())
    assert refused.returncode != 0 and manifest["key_ids"][0] in said(refused), said(refused)
    assert restored.is_empty()
    newer = tmp_path / "newer.tar.gz"
    with_manifest(backup_file, newer, schema_version="9999_from_the_future")
    refused = credflow("restore", str(newer), "--data-dir", str(restored.data_dir), env=restored.env())
    assert refused.returncode != 0 and "9999_from_the_future" in said(refused) and "newer" in said(refused)
    assert restored.is_empty()

    # The escrowed key comes back first (the key file of a SQLite set-up), then the restore succeeds.
    if restored.master_key is None:
        restored.data_dir.mkdir(mode=0o700)
        shutil.copy2(source.data_dir / "master.key", restored.data_dir / "master.key")
    done = credflow("restore", str(backup_file), "--data-dir", str(restored.data_dir), env=restored.env())
    assert done.returncode == 0, said(done)
    assert manifest["audit_head"] in said(done)

    # A second restore into the same target is refused unless --force.
    before = database_fingerprint(restored)
    refused = credflow("restore", str(backup_file), "--data-dir", str(restored.data_dir), env=restored.env())
    assert refused.returncode != 0 and "--force" in said(refused), said(refused)
    assert database_fingerprint(restored) == before
    forced = credflow("restore", str(backup_file), "--data-dir", str(restored.data_dir), "--force",
                      env=restored.env())
    assert forced.returncode == 0, said(forced)

    with running_server(restored.data_dir, restored.env(), clean=True, log=tmp_path / "restored.log") as (url, _), \
            httpx.Client(base_url=url, timeout=60) as http:
        admin = Api(http, TOKEN)
        admin.env = admin.ok(admin.get("/environments"))["items"][0]["id"]

        def names(path: str, key: str = "name") -> list[str]:
            return [item[key] for item in admin.ok(admin.get(admin.e(path), params={"limit": 500}))["items"]]

        # Everything made before the backup is there, and of the writes under load exactly a prefix: the copy
        # is one instant, with every write acknowledged before the backup started.
        assert sorted(names("/credentials")) == ["Robot login", "Service login"]
        assert sorted(names("/connections")) == sorted(made["connections"])
        assert names("/machines") == ["pc-1"]
        shares = admin.ok(admin.get(admin.e(f"/credentials/{made['robot']['id']}/shares")))["items"]
        assert ("alice@example.com", "user") in {(s.get("email"), s["role"]) for s in shares}
        alice = Api(http, made["alice"].token, admin.env)
        assert "Robot login" in [c["name"] for c in alice.ok(alice.get(alice.e("/credentials")))["items"]]
        secret_names = set(names("/secret-stores/vault/secrets"))
        variable_names = set(names("/environment-variables", "schema_name"))
        assert {"robot-password", "service-password"} <= secret_names
        kept = [(name in secret_names) if kind == "secret" else (name in variable_names)
                for kind, name, _, _ in load.ops]
        count = kept.count(True)
        assert kept == [True] * count + [False] * (len(kept) - count), "the copy is not one instant"
        assert acked_before <= count <= written_before_end

        # The values open: each connection's run delivers them, sealed to the machine's key.
        machine = Api(http, made["machine_token"], admin.env)
        for name, (conn, (username, password)) in made["connections"].items():
            queued = admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": made["flow"]["id"],
                                                            "connection": conn["id"]}), 201)
            job = machine.ok(machine.post("/machines/me/jobs/claim", params={"wait": 5}))
            assert job["run_id"] == queued["id"], name
            payload = json.loads(open_sealed(made["machine_key"], job["sealed_credential"]))
            assert (payload["username"], payload["password"]) == (username, password), name
            machine.ok(machine.post(f"/machines/me/jobs/{queued['id']}/result", {"exit_code": 0, "log": "ok\n"}))

        # The restored server takes new writes, and its audit trail holds and contains the manifest's head.
        admin.secret("vault", "after-restore", "Written-After-Restore-1")
        verified = credflow("audit", "verify", "--data-dir", str(restored.data_dir), "--head",
                            manifest["audit_head"], env=restored.env())
        assert verified.returncode == 0, said(verified)
        assert "every link intact" in said(verified)


def test_a_damaged_file_or_one_that_is_no_backup_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from credflow.cli.main import app
    from credflow.services.core import build_core
    from credflow.settings import Settings

    for name in [k for k in os.environ if k.startswith("CREDFLOW_")]:
        monkeypatch.delenv(name)
    source = tmp_path / "source"
    build_core(Settings(data_dir=source)).db.engine.dispose()
    backup_file = tmp_path / "backup.tar.gz"
    assert CliRunner().invoke(app, ["backup", str(backup_file), "--data-dir", str(source)]).exit_code == 0
    target = tmp_path / "target"
    target.mkdir()
    shutil.copy2(source / "master.key", target / "master.key")

    parts = members(backup_file)
    damaged = tmp_path / "damaged.tar.gz"
    body = bytearray(parts["database.sqlite3"])
    body[len(body) // 2] ^= 0xFF
    with tarfile.open(damaged, "w:gz") as tar:
        for name, content in (("manifest.json", parts["manifest.json"]), ("database.sqlite3", bytes(body))):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    for file, reason in ((damaged, "checksum"), (not_a_backup, "not a credflow backup"),
                         (tmp_path / "missing.tar.gz", "no file")):
        result = CliRunner().invoke(app, ["restore", str(file), "--data-dir", str(target)])
        assert result.exit_code == 1 and reason in " ".join(result.output.split()), result.output
        assert sorted(p.name for p in target.iterdir()) == ["master.key"]
    assert CliRunner().invoke(app, ["restore", str(backup_file), "--data-dir", str(target)]).exit_code == 0
