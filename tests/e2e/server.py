"""Real credflow processes for end-to-end tests: ``credflow serve`` on a free loopback port, stopped afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CREDFLOW = str(Path(sys.executable).parent / "credflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without its ``CREDFLOW_*`` settings, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_")}
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_server(data_dir: Path, env: dict[str, str] | None = None, port: int | None = None, *,
                   clean: bool = False, log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``credflow serve`` with ``env`` over this process's environment (``clean``: without its ``CREDFLOW_*``
    settings), its output in ``log`` or else in pipes; yields its URL, once it is healthy, and the process."""
    port = port or free_port()
    full_env = {**(clean_env() if clean else os.environ), **(env or {})}
    cmd = [CREDFLOW, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    if log is None:
        proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    else:
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a loaded machine (a whole suite beside it) starts slowly
        while not _healthy(url):
            if proc.poll() is not None:
                output = log.read_text() if log is not None else proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"the server exited: {output}")
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
