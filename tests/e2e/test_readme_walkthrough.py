"""The README, top to bottom, as a new user types it: its shell blocks run as they are written, with real
processes (the server started by the Makefile's ``make run`` command, the agent in the background), and every
``credflow ...`` the prose mentions is a command the CLI knows.

The test reads the README and the Makefile, not a copy of them: a command that stops working, a new command
that does not work, a traceback, or a one-time secret cut short (``…``) fails it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from credflow.cli.main import app
from tests.e2e.server import CREDFLOW, clean_env, free_port, stop

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
README_URL = "http://127.0.0.1:8080"
SECRET = "Walkthrough-Secret-42"

# What a user types at a prompt (the test's stdin is a pipe, which the CLI reads instead of asking).
TYPED = {("login",): "<admin token>\n", ("secret", "put"): SECRET + "\n"}
# What the README promises of a command: (stream, pattern) that must be found in its output.
PROMISED: dict[tuple[str, ...], list[tuple[str, str]]] = {
    ("login",): [("stderr", r"signed in as admin")],
    ("status",): [("stdout", r"reachable, credflow \d"), ("stdout", r"admin@localhost"),
                  ("stdout", r"environment\tdefault")],
    ("store", "create"): [("stdout", r"caller_may_use\tyes")],
    ("credential", "list"): [("stdout", r"Robot login")],
    ("user", "create"): [("stderr", r"shown only this once"), ("stdout", r"(?m)^cfu_[A-Za-z0-9_-]{30,}$")],
    ("machine-registration", "create"): [("stderr", r"shown only this once"),
                                         ("stdout", r"(?m)^cfr_[A-Za-z0-9_-]{30,}$")],
    ("run", "start"): [("stdout", r"signed in as \*\*\*"), ("stdout", r"status\tsucceeded")],
    ("rotation", "notify"): [("stderr", r"accepted: 1 connection ")],
}


@dataclass
class Step:
    line: str
    args: list[str]
    stdin: str | None = None
    background: bool = False
    last_line_into: str | None = None  # NAME=$(credflow ... | tail -1)


@dataclass
class Walk:
    cwd: Path
    env: dict[str, str]
    url: str = ""
    placeholders: dict[str, str] = field(default_factory=dict)
    background: list[subprocess.Popen[Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    promised: set[tuple[str, ...]] = field(default_factory=set)
    took: list[tuple[float, str]] = field(default_factory=list)


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.S)


def steps(block: str) -> Iterator[Step]:
    for raw in block.splitlines():
        captured = re.fullmatch(r"\s*([A-Z_]+)=\$\((credflow [^)]*?)\s*\|\s*tail -1\)\s*(#.*)?", raw)
        if captured:
            yield Step(raw.strip(), shlex.split(captured.group(2)), last_line_into=captured.group(1))
            continue
        words = shlex.split(raw, comments=True)
        if not words:
            continue
        background = words[-1] == "&"
        words = words[:-1] if background else words
        stdin = None
        if "|" in words:  # only `echo VALUE | credflow ...`
            bar = words.index("|")
            assert words[0] == "echo" and bar == 2, f"the walkthrough cannot run this pipe: {raw}"
            stdin, words = words[1] + "\n", words[bar + 1:]
        yield Step(raw.strip(), words, stdin, background)


def make_run_command(cwd: Path, port: int) -> list[str]:
    """``make run``'s recipe from the Makefile, on ``port``."""
    recipe = re.search(r"^run:.*\n\t(.+)$", MAKEFILE.read_text(), flags=re.M)
    assert recipe is not None, "the Makefile has no run target"
    line = recipe.group(1).replace("$(BIN)/credflow", CREDFLOW)
    line = re.sub(r"\$\$\{CREDFLOW_DATA_DIR:-([^}]*)\}", r"\1", line)
    words = shlex.split(line)
    assert words[:2] == [CREDFLOW, "serve"] and "8080" in words, line
    return [str(port) if w == "8080" else w for w in words]


def start_server(walk: Walk) -> None:
    port = free_port()
    proc = subprocess.Popen(make_run_command(walk.cwd, port), cwd=walk.cwd, env=walk.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    walk.background.append(proc)
    assert proc.stdout is not None
    token = proc.stdout.readline().strip()  # printed once, on its own line
    assert re.fullmatch(r"cfu_[A-Za-z0-9_-]{30,}", token), f"make run printed {token!r} for the admin token"
    walk.placeholders["admin token"] = token
    walk.url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{walk.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def fill(walk: Walk, text: str) -> str:
    """``text`` with each ``<placeholder>`` replaced by what earlier output gave for it; the same for a word that
    is a shell variable (``"$TOKEN"``), which a line before set."""
    if re.fullmatch(r"\$[A-Z_]+", text):
        assert text[1:] in walk.placeholders, f"no line before sets {text}"
        return walk.placeholders[text[1:]]
    for name, value in walk.placeholders.items():
        text = text.replace(f"<{name}>", value)
    left = re.findall(r"<[a-z][a-z ]*>", text)
    assert not left, f"no earlier output gave {left} (in {text!r})"
    return text


def run_credflow(walk: Walk, step: Step) -> None:
    args = [fill(walk, walk.url if a == README_URL else a) for a in step.args[1:]]
    words = tuple(a for a in args[:2] if not a.startswith("-"))
    if step.background:
        log = (walk.cwd / f"background-{len(walk.background)}.log").open("w")
        walk.background.append(subprocess.Popen([CREDFLOW, *args], cwd=walk.cwd, env=walk.env,
                                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))
        return
    typed = step.stdin
    for prefix, text in TYPED.items():
        if typed is None and words[:len(prefix)] == prefix:
            typed = fill(walk, text)
    began = time.monotonic()
    done = subprocess.run([CREDFLOW, *args], check=False, cwd=walk.cwd, env=walk.env, input=typed or "",
                          capture_output=True, text=True, timeout=90)
    walk.took.append((time.monotonic() - began, step.line))
    said = done.stdout + done.stderr
    walk.outputs.append(said)
    assert done.returncode == 0, f"{step.line}\nexit {done.returncode}\n{said}"
    assert "Traceback" not in said, f"{step.line}\n{said}"
    assert "…" not in said, f"{step.line} cut something short:\n{said}"
    for prefix, promises in PROMISED.items():
        if words[:len(prefix)] == prefix:
            walk.promised.add(prefix)
            for stream, pattern in promises:
                assert re.search(pattern, getattr(done, stream)), f"{step.line}: no {pattern!r} on {stream}:\n{said}"
    if step.last_line_into:
        walk.placeholders[step.last_line_into] = done.stdout.strip().splitlines()[-1]


def test_the_readme_walks_through_as_written(tmp_path: Path) -> None:
    started = time.monotonic()
    walk = Walk(cwd=tmp_path, env=clean_env(CREDFLOW_CONFIG_DIR=str(tmp_path / "config"), HOME=str(tmp_path)))
    blocks = shell_blocks(README.read_text())
    assert len(blocks) >= 3, "the README's shell blocks are gone"
    try:
        for block in blocks:
            block_steps = list(steps(block))
            if all(step.args[0] == "make" for step in block_steps):  # the overview: `make run`, `make test`
                for step in block_steps:
                    assert re.search(rf"^{step.args[1]}:", MAKEFILE.read_text(), flags=re.M), step.line
                continue
            for step in block_steps:
                if step.args[:2] == ["make", "run"]:
                    assert step.background, "make run runs in the background in the README"
                    start_server(walk)
                elif step.args[:2] == ["make", "test"]:
                    continue  # the suite this test is part of
                elif step.args[0] == "export":
                    assert step.args[1].startswith("PATH="), step.line  # the test calls the venv's credflow
                elif step.args[0] == "credflow":
                    assert walk.url, f"{step.line} comes before make run"
                    run_credflow(walk, step)
                else:
                    pytest.fail(f"the README runs {step.line!r}, which the walkthrough does not know")
    finally:
        for proc in reversed(walk.background):
            stop(proc)
    assert walk.promised == set(PROMISED), f"the README no longer runs {set(PROMISED) - walk.promised}"
    everything = "".join(walk.outputs)
    assert SECRET not in everything and "N3w-Pa55word!" not in everything  # values in, never out
    slowest = "\n".join(f"{s:5.1f}s {line}" for s, line in sorted(walk.took, reverse=True)[:5])
    assert time.monotonic() - started < 90, f"the walkthrough is slow; the slowest commands:\n{slowest}"


@pytest.mark.parametrize("mention", sorted(set(re.findall(r"`(credflow [^`]+)`", re.sub(
    r"```.*?```", "", README.read_text(), flags=re.S)))))
def test_every_command_the_readme_mentions_exists(mention: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands in the README's prose: the command and its options exist (``--help`` parses them)."""
    for key in [k for k in os.environ if k.startswith("CREDFLOW_")]:
        monkeypatch.delenv(key)
    args = shlex.split(" ".join(mention.split()))[1:]
    done = CliRunner().invoke(app, [*args, "--help"])
    assert done.exit_code == 0, f"{mention}: {done.output}"
    assert "Usage: " in done.output
