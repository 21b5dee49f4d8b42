"""A private PostgreSQL cluster for one test: ``initdb`` in a fresh directory, on a free loopback port, as the
``postgres`` OS user when the tests run as root (initdb refuses root). Restarted and stopped with ``pg_ctl``."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.server import free_port

BIN = Path("/usr/local/bin")


class Cluster:
    def __init__(self, root: Path, port: int, user: str | None) -> None:
        self.root, self.port, self.user = root, port, user
        self.data, self.log = root / "data", root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        cmd = ["runuser", "-u", self.user, "--", *argv] if self.user else list(argv)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}{done.stderr}"

    def initdb(self) -> None:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(BIN / "pg_ctl"), action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
                  "-o", options, *extra)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: sessions are ended, the server stops and starts again; returns once it
        accepts connections."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "immediate")


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    for tool in ("initdb", "pg_ctl"):
        if not (BIN / tool).exists():
            pytest.skip(f"{BIN / tool} is not installed")
    user = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run initdb as")
        user = owner.pw_name
    root = Path(tempfile.mkdtemp(prefix="credflow-pg-"))
    if user is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(root, free_port(), user)
    try:
        cluster.initdb()
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
