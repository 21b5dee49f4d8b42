"""What the benchmarks share: a scratch database, a real ``credflow serve`` process on a free loopback port, and
the memory a process holds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("CREDFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CREDFLOW = str(Path(sys.executable).parent / "credflow")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without its ``CREDFLOW_*`` settings, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_")}
    return {**env, **extra}


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """The URL of an empty database: SQLite in ``workdir``, or a PostgreSQL schema of its own (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def server(data_dir: Path, env: dict[str, str], log_file: Path | None = None, start_seconds: float = 60
           ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``credflow serve`` with the environment ``env`` (all of it), its output in ``log_file`` or discarded.
    Yields its URL, once it answers /healthz (within ``start_seconds``), and the process; stops it afterwards."""
    cmd = [CREDFLOW] if Path(CREDFLOW).exists() else [sys.executable, "-c", "from credflow.cli.main import app; app()"]
    port = free_port()
    with open(log_file or os.devnull, "wb") as out:
        proc = subprocess.Popen([*cmd, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                                 str(data_dir)], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_seconds
        while not _healthy(url):
            if proc.poll() is not None:
                raise RuntimeError("the server exited" + (f": see {log_file}" if log_file is not None else ""))
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield url, proc
    finally:
        stop(proc)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The resident memory of a process (``VmHWM``: its peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")
