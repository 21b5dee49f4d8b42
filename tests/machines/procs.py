"""Real processes for end-to-end tests: ``credflow serve`` on a free loopback port and ``credflow agent run``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.server import CREDFLOW, clean_env, running_server, stop


@contextmanager
def server(data_dir: Path, log_file: Path, token: str, database_url: str | None = None) -> Iterator[str]:
    env = {"CREDFLOW_BOOTSTRAP_TOKEN": token}
    if database_url:
        env["CREDFLOW_DATABASE_URL"] = database_url
    with running_server(data_dir, env, clean=True, log=log_file) as (url, _):
        yield url


def register_agents(url: str, machines: list[tuple[str, str, Path]]) -> None:
    """``credflow agent register`` for each (registration token, name, state dir), all at once."""
    procs = [subprocess.Popen([CREDFLOW, "agent", "register", "--server", url, "--registration-token", token,
                               "--name", name, "--state-dir", str(state_dir)],
                              env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for token, name, state_dir in machines]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()


@contextmanager
def agents(state_dirs: list[Path], log_dir: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, state_dir in enumerate(state_dirs):
            with (log_dir / f"agent-{i}.log").open("wb") as log:
                procs.append(subprocess.Popen([CREDFLOW, "agent", "run", "--state-dir", str(state_dir),
                                               "--heartbeat-seconds", "1", "--wait", "10"],
                                              env=clean_env(), stdout=log, stderr=subprocess.STDOUT))
        yield procs
    finally:
        for proc in procs:
            stop(proc)


def files_holding(roots: list[Path], needle: bytes) -> list[Path]:
    """Every file under ``roots`` whose bytes contain ``needle``."""
    return [f for root in roots for f in sorted(root.rglob("*")) if f.is_file() and needle in f.read_bytes()]
