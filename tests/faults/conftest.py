"""Fault drills: real credflow processes, and the things they depend on broken on purpose (PostgreSQL restarted,
the vault gone, the server killed, the disk full). Each drill says what credflow does and how fast it recovers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_TOKEN, Api
from tests.e2e.server import CREDFLOW, clean_env, free_port, running_server

# A desktop flow that notes each start of a run (its id) in a file, then sleeps for its second argument.
NOTE_START = ("import os, sys, time; open(sys.argv[1], 'a').write(os.environ['CREDFLOW_RUN_ID'] + '\\n'); "
              "time.sleep(float(sys.argv[2]))")


@contextmanager
def serve(data_dir: Path, log: Path, port: int | None = None, **env: str) -> Iterator[tuple[Api, Any]]:
    """``credflow serve`` (SQLite in ``data_dir`` unless ``CREDFLOW_DATABASE_URL`` is given) on ``port`` or a free
    one, its output in ``log``; yields the administrator's API, signed in, and the process."""
    settings = {"CREDFLOW_BOOTSTRAP_TOKEN": ADMIN_TOKEN, **env}
    with running_server(data_dir, settings, port or free_port(), clean=True, log=log) as (url, proc), \
            httpx.Client(base_url=url, timeout=15) as http:
        api = Api(http, ADMIN_TOKEN)
        api.env = api.ok(api.get("/environments"))["items"][0]["id"]
        yield api, proc


def machine_state(api: Api, name: str, root: Path) -> tuple[str, Path]:
    """``credflow agent register`` a machine ``name``; its id and state directory."""
    reg = api.ok(api.post(api.e("/machine-registrations"), {}), 201)
    state = root / name
    done = subprocess.run([CREDFLOW, "agent", "register", "--server", str(api.http.base_url), "--registration-token",
                           reg["registration_token"], "--name", name, "--state-dir", str(state)],
                          env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    ids = {m["name"]: m["id"] for m in api.ok(api.get(api.e("/machines")))["items"]}
    return ids[name], state


def flow_on(api: Api, machine_id: str, notes: Path, seconds: float = 0.0, password: str = "Dr1ll-Pa55word!"
            ) -> tuple[str, str]:
    """A builtin secret, a credential on it, a desktop flow that notes its starts in ``notes`` and a connection
    on the machine: (desktop flow id, connection id)."""
    api.store("vault")
    api.secret("vault", "robot", password)
    api.text_var("robot_user", "robot@corp.example")
    api.secret_var("robot_pass", "vault", "robot")
    cred = api.credential("Robot", "robot_user", "robot_pass")
    flow = api.ok(api.post(api.e("/desktop-flows"), {"name": "note", "command": [sys.executable, "-c", NOTE_START,
                                                                                 str(notes), str(seconds)]}), 201)
    conn = api.ok(api.post(api.e("/connections"), {"name": "robot", "target": {"machine": machine_id},
                                                   "credential": cred["id"]}), 201)
    return flow["id"], conn["id"]


def starts(notes: Path) -> list[str]:
    """The run ids the flow noted, one per start."""
    return notes.read_text().split() if notes.exists() else []


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {got!r})")
        time.sleep(interval)


def audit_holds(data_dir: Path, **env: str) -> str:
    """``credflow audit verify`` on the server's database (the server may still run): its output."""
    done = subprocess.run([CREDFLOW, "audit", "verify", "--data-dir", str(data_dir)], env=clean_env(**env),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
