"""One real ``credflow serve`` per test module, and three ways to run the CLI against it: ``credflow`` as a
process (``run``), as a process on a terminal (``on_terminal``, a pseudo-terminal of a given width), and the
Typer app in this process (``cli``, quicker; its stdin and stdout are not terminals)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from typer.testing import CliRunner, Result

from credflow.cli.main import app
from tests.conftest import ADMIN_TOKEN, Api
from tests.e2e.server import CREDFLOW, clean_env, running_server

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Live:
    url: str
    admin: Api
    env: dict[str, str]  # the environment of a signed-in ``credflow`` process


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("cli")
    with running_server(root / "data", {"CREDFLOW_BOOTSTRAP_TOKEN": ADMIN_TOKEN}, clean=True,
                        log=root / "server.log") as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        admin = Api(http, ADMIN_TOKEN)
        admin.env = admin.ok(admin.get("/environments"))["items"][0]["id"]
        env = clean_env(CREDFLOW_SERVER=url, CREDFLOW_TOKEN=ADMIN_TOKEN, CREDFLOW_CONFIG_DIR=str(root / "config"))
        for size in ("COLUMNS", "LINES"):
            env.pop(size, None)
        yield Live(url, admin, env)


@pytest.fixture
def run(live: Live) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``credflow ARGS`` as a process, stdin a pipe (``input``, else empty); asserts the exit code."""

    def invoke(*args: str, input: str = "", code: int | None = 0, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([CREDFLOW, *args], check=False, input=input, capture_output=True, text=True,
                              env={**live.env, **env}, timeout=120)
        if code is not None:
            assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr or env.get("CREDFLOW_DEBUG"), done.stderr
        return done

    return invoke


@pytest.fixture
def cli(live: Live, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """The Typer app in this process against the live server; asserts the exit code and that nothing escaped."""
    for key, value in live.env.items():
        if key.startswith("CREDFLOW_"):
            monkeypatch.setenv(key, value)

    def invoke(*args: str, input: str | None = None, code: int | None = 0) -> Result:
        done = CliRunner().invoke(app, list(args), input=input)
        assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
        if code is not None:
            assert done.exit_code == code, f"exit {done.exit_code}\n{done.stdout}\n{done.stderr}"
        return done

    return invoke


@dataclass
class Screen:
    text: str  # what the terminal showed, without colours, lines ending in \n
    code: int


def _own_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is its stdin (getpass reads /dev/tty)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def on_terminal(live: Live, *args: str, columns: int = 120, answers: tuple[tuple[str, str], ...] = (),
                env: dict[str, str] | None = None, timeout: float = 60) -> Screen:
    """``credflow ARGS`` on a pseudo-terminal ``columns`` wide (stdin, stdout and stderr); each (PROMPT, TEXT) of
    ``answers`` types TEXT once PROMPT has been shown (a hidden prompt's PROMPT ends with the space getpass writes
    after it has turned echo off and flushed the input)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([CREDFLOW, *args], stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            env={**live.env, "TERM": "xterm", **(env or {})}, preexec_fn=_own_terminal)  # noqa: PLW1509 - no threads start it
    os.close(slave)
    shown, pending, deadline, answered_at = b"", list(answers), time.monotonic() + timeout, 0
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the other side is closed: the process is done
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and pending[0][0] in ANSI.sub("", shown[answered_at:].decode(errors="replace")):
                os.write(master, pending.pop(0)[1].encode())
                answered_at = len(shown)
            if not ready and proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return Screen(ANSI.sub("", shown.decode(errors="replace")).replace("\r\n", "\n"), code)


def one_line_error(stderr: str) -> str:
    """The error a command printed: exactly one line, beginning ``error:``."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]
