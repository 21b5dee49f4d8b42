"""Shared fixtures: a fresh credflow per test on SQLite and on PostgreSQL, driven over its HTTP API."""

from __future__ import annotations

import atexit
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from nacl.public import PrivateKey
from sqlalchemy import create_engine, text

from credflow.api.app import create_app
from credflow.crypto.sealing import new_key_pair
from credflow.persistence.db import migrate
from credflow.services.access.users import bootstrap
from credflow.services.core import Core, build_core
from credflow.settings import Settings

PG_URL = os.environ.get("CREDFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "cfu_test-admin-token-0123456789abcdef"


def _pg_reachable() -> bool:
    try:
        with create_engine(PG_URL, connect_args={"connect_timeout": 2}).connect() as c:
            c.execute(text("select 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means: not reachable
        return False


_PG = _pg_reachable()


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _PG


# The files that take longest, longest first, then the folders whose files each run real processes or a browser:
# they start first, so that the test processes (each takes whole files: ``make test``) end together instead of
# one of them running a long file alone at the end.
LONGEST_FIRST = (
    "tests/api/test_openapi_conformance.py", "tests/machines/test_leases_processes.py",
    "tests/web/test_everyday_use.py", "tests/cli/test_everyday.py", "tests/machines/test_agent_e2e.py",
    "tests/web/test_pages.py", "tests/security/test_other_makers_objects.py", "tests/api/test_bad_input.py",
    "tests/identity/test_sso.py", "tests/operations/test_backup.py", "tests/machines/test_leases.py",
    "tests/machines/test_runs.py", "tests/rotation/test_processes.py", "tests/rotation/test_freshness.py",
    "tests/e2e/test_cli_walkthrough.py", "tests/rotation/test_event_versions.py", "tests/web/test_sessions.py",
    "tests/web/test_credentials_page.py", "tests/solutions/test_bad_packages.py", "tests/solutions/test_import.py",
    "tests/e2e/test_readme_walkthrough.py", "tests/replicas/test_wakeups.py", "tests/identity/test_replicas.py",
    "tests/faults/", "tests/web/",
)


def _rank(nodeid: str) -> int:
    path = nodeid.split("::", 1)[0]
    return next((i for i, first in enumerate(LONGEST_FIRST) if path.startswith(first)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: within a rank, the order of collection


def _backends() -> list[Any]:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database migrated to head once (per test process): each test starts from a copy, as a
    new server would after its first migration, without running every migration again."""
    path = tmp_path_factory.mktemp("schema") / "credflow.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        if request.node.get_closest_marker("empty_database") is None:
            shutil.copyfile(request.getfixturevalue("sqlite_at_head"), tmp_path / "credflow.db")
        yield f"sqlite:///{tmp_path / 'credflow.db'}"
        return
    if not _PG:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    if request.node.get_closest_marker("empty_database") is not None:
        yield from pg_schema_url()
        return
    yield _pg_emptied_schema_url()


_PG_SCHEMA: dict[str, Any] = {}


def _pg_emptied_schema_url() -> str:
    """A PostgreSQL schema migrated to head once per test process and emptied for each test (the tables truncated,
    as a new server would find them after its first migration); a new one when emptying it fails."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        if _PG_SCHEMA:
            try:
                with admin.connect() as c:  # DELETE: much cheaper than TRUNCATE for a few rows in many tables
                    c.execute(text("SET lock_timeout = '5s'; SET session_replication_role = replica; "
                                   + _PG_SCHEMA["empty"]))
                return str(_PG_SCHEMA["url"])
            except Exception:  # noqa: BLE001 - a server of an earlier test still holds a lock: start afresh
                _PG_SCHEMA.clear()
        schema = f"w_{uuid.uuid4().hex[:12]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
        engine = create_engine(url)
        migrate(engine)
        engine.dispose()
        with admin.connect() as c:
            names = c.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = :s "
                                   "AND tablename <> 'alembic_version'"), {"s": schema}).all()
            sequences = c.scalars(text("SELECT sequencename FROM pg_sequences WHERE schemaname = :s"),
                                  {"s": schema}).all()
        _PG_SCHEMA.update(url=url, empty=" ".join([f'DELETE FROM "{schema}"."{n}";' for n in names]
                                                   + [f'ALTER SEQUENCE "{schema}"."{n}" RESTART;' for n in sequences]))
        atexit.register(_drop_schema, schema)
        return url
    finally:
        admin.dispose()


def _drop_schema(schema: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(5):  # every test process ends at once: PostgreSQL may have no connection free
            try:
                with admin.connect() as c:
                    c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                return
            except Exception:  # tried again; the last failure is raised
                if attempt == 4:
                    raise
                time.sleep(1)
    finally:
        admin.dispose()


def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL schema of its own for one test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, bootstrap_token=ADMIN_TOKEN,
                    run_workers=True)


@pytest.fixture
def core(settings: Settings) -> Iterator[Core]:
    core = build_core(settings)
    bootstrap(core, ADMIN_TOKEN)
    yield core
    core.db.engine.dispose()


@dataclass
class Api:
    """A signed-in caller of the HTTP API."""

    http: TestClient | httpx.Client
    token: str
    env: str = "default"
    info: dict[str, Any] = field(default_factory=dict)

    def _h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(_url(path), headers=self._h(), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(_url(path), headers=self._h(), json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.http.put(_url(path), headers=self._h(), json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.http.patch(_url(path), headers=self._h(), json=json, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(_url(path), headers=self._h(), **kw)

    def e(self, path: str) -> str:
        """A path under this caller's environment."""
        return f"/environments/{self.env}{path}"

    def ok(self, resp: httpx.Response, status: int = 200) -> Any:
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else None

    # --- shortcuts for the common set-up ------------------------------------------------------------
    def store(self, name: str = "vault", kind: str = "builtin", **body: Any) -> dict[str, Any]:
        return self.ok(self.post(self.e("/secret-stores"), {"name": name, "kind": kind, **body}), 201)

    def secret(self, store: str, name: str, value: str) -> dict[str, Any]:
        return self.ok(self.put(self.e(f"/secret-stores/{store}/secrets/{name}"), {"value": value}))

    def text_var(self, schema_name: str, value: str) -> dict[str, Any]:
        return self.ok(self.post(self.e("/environment-variables"),
                                 {"schema_name": schema_name, "type": "text", "value": value}), 201)

    def secret_var(self, schema_name: str, store: str, name: str, **ref: Any) -> dict[str, Any]:
        body = {"schema_name": schema_name, "type": "secret",
                "secret_reference": {"store": store, "name": name, **ref}}
        return self.ok(self.post(self.e("/environment-variables"), body), 201)

    def credential(self, name: str, username_variable: str, password_variable: str, **body: Any
                   ) -> dict[str, Any]:
        return self.ok(self.post(self.e("/credentials"), {"name": name, "username_variable": username_variable,
                                                           "password_variable": password_variable, **body}), 201)

    def user(self, name: str, role: str = "environment_maker", env: str | None = None) -> Api:
        body = {"name": name, "email": f"{name}@example.com", "environment_roles": {env or self.env: role}}
        made = self.ok(self.post("/users", body), 201)
        return Api(self.http, made["token"], env or self.env, made)


def new_machine(api: Api, name: str) -> tuple[Api, str, PrivateKey]:
    """Register a machine with a fresh key pair: its API (signed in with its token), its id and its private key."""
    reg = api.ok(api.post(api.e("/machine-registrations"), {}), 201)
    key, public = new_key_pair()
    made = api.ok(api.post("/machines/register", {"registration_token": reg["registration_token"], "name": name,
                                                  "public_key": public}), 201)
    return Api(api.http, made["machine_token"], api.env), made["machine_id"], key


def problem(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """A problem+json answer with ``status`` and, when given, the error code ``code``: its body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def sign_in_cli(monkeypatch: pytest.MonkeyPatch, client: TestClient, api: Api) -> None:
    """Point the CLI's API client at the test server, signed in as ``api``, in its environment."""
    from credflow.cli import common
    from credflow.client.http import Client

    def make() -> Client:
        c = Client.__new__(Client)
        c.http = TestClient(client.app, headers={"Authorization": f"Bearer {api.token}"})
        return c

    monkeypatch.setattr(common, "client", make)
    monkeypatch.setenv("CREDFLOW_ENVIRONMENT", api.env)


def _url(path: str) -> str:
    return path if path.startswith(("/api/", "http", "/events", "/healthz", "/openapi")) else f"/api/v1{path}"


@pytest.fixture
def client(core: Core, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, core)) as c:
        yield c


@pytest.fixture
def admin(client: TestClient) -> Api:
    api = Api(client, ADMIN_TOKEN)
    api.env = api.ok(api.get("/environments"))["items"][0]["id"]
    return api


@pytest.fixture
def cred_setup(admin: Api) -> dict[str, Any]:
    """A builtin store with one secret, a text and a secret variable, and a credential on them."""
    admin.store("vault")
    admin.secret("vault", "robot-password", "S3cr3t-Pa55word!")
    user_var = admin.text_var("robot_user", "robot@corp.example")
    pass_var = admin.secret_var("robot_pass", "vault", "robot-password")
    cred = admin.credential("Robot login", "robot_user", "robot_pass", description="for the robot")
    return {"user_var": user_var, "pass_var": pass_var, "credential": cred, "password": "S3cr3t-Pa55word!"}
