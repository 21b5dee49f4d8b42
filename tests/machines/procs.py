"""Real processes for end-to-end tests: ``credflow serve`` on a free loopback port and ``credflow agent run``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CREDFLOW = str(Path(sys.executable).parent / "credflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_")}
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def server(data_dir: Path, log_file: Path, token: str, database_url: str | None = None) -> Iterator[str]:
    port = free_port()
    env = _clean_env(CREDFLOW_BOOTSTRAP_TOKEN=token)
    if database_url:
        env["CREDFLOW_DATABASE_URL"] = database_url
    with log_file.open("wb") as log:
        proc = subprocess.Popen([CREDFLOW, "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--data-dir", str(data_dir)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_file.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url
    finally:
        stop(proc)


def register_agents(url: str, machines: list[tuple[str, str, Path]]) -> None:
    """``credflow agent register`` for each (registration token, name, state dir), all at once."""
    procs = [subprocess.Popen([CREDFLOW, "agent", "register", "--server", url, "--registration-token", token,
                               "--name", name, "--state-dir", str(state_dir)],
                              env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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
                                              env=_clean_env(), stdout=log, stderr=subprocess.STDOUT))
        yield procs
    finally:
        for proc in procs:
            stop(proc)


def files_holding(roots: list[Path], needle: bytes) -> list[Path]:
    """Every file under ``roots`` whose bytes contain ``needle``."""
    return [f for root in roots for f in sorted(root.rglob("*")) if f.is_file() and needle in f.read_bytes()]
