"""``credflow agent run --run-as USER``: the flows a machine runs cannot read the machine's token and key.

A real ``credflow serve`` and a real ``credflow agent run`` (as root, as in CI) run desktop flows; the flows try
to read the agent's state directory, its environment and its working directory.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nacl.public import PrivateKey

from credflow.agent.state import AgentState, save, save_key
from tests.e2e.server import CREDFLOW, clean_env, stop
from tests.machines.procs import register_agents, server

TOKEN = "cfu_run-as-admin-token-0123456789"
WARNING = "use --run-as USER to run them as an unprivileged user"
AGENT_SECRET = "agent-only-S3cret-value-42"
AGENT_GROUP = 4242  # a supplementary group of the agent's, which the flow must not get


def _nobody() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def _need_root_and_nobody() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("switching flows to another user needs the agent (and so these tests) to run as root")
    nobody = _nobody()
    if nobody is None:
        pytest.skip("there is no user 'nobody' on this computer")
    return nobody


# The flow: who it is, where it is, what it was given, then it tries to read the agent's secrets.
PROBE = r"""
echo "whoami: $(whoami)"
echo "groups: $(id -G)"
echo "pwd: $(pwd)"
echo "home: $HOME"
echo "dir: $(stat -c '%U %a' .)"
[ -n "$CREDFLOW_PASSWORD" ] && echo "credential: received"
echo "names: $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo "lang: $LANG"
mkdir left-behind && touch left-behind/file && chmod 000 left-behind
ls -la "$1" 2>&1 || echo "ls: refused"
cat "$1/machine.json" "$1/private.key" 2>&1 || echo "cat: refused"
tr '\0' '\n' < "/proc/$PPID/environ" 2>&1 || echo "agent environment: refused"
echo "end of flow"
"""


@dataclass
class Live:
    url: str
    root: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("run-as")
    with server(root / "data", root / "server.log", TOKEN) as url:
        yield Live(url, root)


@pytest.fixture
def open_base() -> Iterator[Path]:
    """A directory anyone may enter (unlike pytest's own temporary directories), so only the state directory's
    own permissions stand between a flow and the machine's files."""
    base = Path(tempfile.mkdtemp(prefix="credflow-run-as-test-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


class Admin:
    def __init__(self, live: Live, env_name: str) -> None:
        self.live = live
        self.http = httpx.Client(base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"},
                                 timeout=30)
        self.env = self.call("POST", "/environments", {"name": env_name})["id"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(method, path.replace("ENV", f"environments/{getattr(self, 'env', '')}"), json=body)
        assert resp.status_code < 400, resp.text
        return resp.json() if resp.content else None

    def machine(self, name: str, state_dir: Path) -> str:
        token = self.call("POST", "/ENV/machine-registrations", {})["registration_token"]
        register_agents(self.live.url, [(token, name, state_dir)])
        return str({m["name"]: m["id"] for m in self.call("GET", "/ENV/machines")["items"]}[name])

    def connection(self, machine: str, username: str, password: str) -> str:
        self.call("POST", "/ENV/secret-stores", {"name": "vault", "kind": "builtin"})
        self.call("PUT", "/ENV/secret-stores/vault/secrets/robot", {"value": password})
        self.call("POST", "/ENV/environment-variables", {"schema_name": "robot_user", "type": "text",
                                                         "value": username})
        self.call("POST", "/ENV/environment-variables", {"schema_name": "robot_pass", "type": "secret",
                                                         "secret_reference": {"store": "vault", "name": "robot"}})
        cred = self.call("POST", "/ENV/credentials", {"name": "Robot", "username_variable": "robot_user",
                                                      "password_variable": "robot_pass"})["id"]
        return str(self.call("POST", "/ENV/connections", {"name": "robot", "target": {"machine": machine},
                                                          "credential": cred})["id"])

    def flow(self, command: list[str]) -> str:
        return str(self.call("POST", "/ENV/desktop-flows", {"name": "probe", "command": command})["id"])

    def runs(self, flow: str, connection: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        ids = [self.call("POST", "/ENV/runs", {"desktop_flow": flow, "connection": connection})["id"]
               for _ in range(count)]
        deadline = time.monotonic() + timeout
        while True:
            got = [self.call("GET", f"/ENV/runs/{r}") for r in ids]
            if all(r["status"] in ("succeeded", "failed") for r in got) or time.monotonic() > deadline:
                return got
            time.sleep(0.2)


@contextmanager
def agent(state_dir: Path, log_file: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
          groups: list[int] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``credflow agent run`` with ``env`` over this process's environment and, as root, supplementary ``groups``."""
    with log_file.open("wb") as out:
        proc = subprocess.Popen([CREDFLOW, "agent", "run", "--state-dir", str(state_dir), "--heartbeat-seconds",
                                 "1", "--wait", "5", *args], env=clean_env(**(env or {})), cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, extra_groups=groups)
    try:
        yield proc
    finally:
        stop(proc)


def agent_run(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``PREFIX credflow agent run ARGS``, which is expected to stop at once (wide, so messages keep one line)."""
    return subprocess.run([*prefix, CREDFLOW, "agent", "run", *args], check=False, env=clean_env(COLUMNS="200"),
                          capture_output=True, text=True, timeout=60)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def _line(log: str, label: str) -> str:
    [value] = [line[len(label) + 2:] for line in log.splitlines() if line.startswith(f"{label}: ")]
    return value


def test_a_flow_run_as_nobody_cannot_read_the_machines_token_or_key(live: Live, open_base: Path,
                                                                    tmp_path: Path) -> None:
    nobody = _need_root_and_nobody()
    admin = Admin(live, "run-as-isolated")
    state = open_base / "pc-isolated"
    machine = admin.machine("pc-isolated", state)
    token = json.loads((state / "machine.json").read_text())["machine_token"]
    key = (state / "private.key").read_text().strip()
    assert token and base64.b64decode(key)
    # Loosened by hand (a careless copy, a restored backup): the agent makes them private again when it starts.
    state.chmod(0o755)
    for f in state.iterdir():
        f.chmod(0o644)
    conn = admin.connection(machine, "robot.isolated@corp.example", "Is0lated-Pa55word!")
    flow = admin.flow(["/bin/sh", "-c", PROBE, "probe", str(state)])
    agent_cwd = tmp_path / "agent-cwd"
    agent_cwd.mkdir()
    with agent(state, tmp_path / "agent.log", "--run-as", "nobody", cwd=agent_cwd,
               env={"SOME_AGENT_SECRET": AGENT_SECRET, "LANG": "C.UTF-8"}, groups=[AGENT_GROUP]):
        [got] = admin.runs(flow, conn, 1)
    log = got["log"]
    agent_log = (tmp_path / "agent.log").read_text()

    # The flow ran, as nobody without the agent's groups, and received its credential.
    assert got["status"] == "succeeded" and got["exit_code"] == 0, got
    assert "end of flow" in log
    assert _line(log, "whoami") == "nobody"
    assert _line(log, "groups") == str(nobody.pw_gid)  # not the agent's group 4242
    assert "credential: received" in log
    assert "Is0lated-Pa55word!" not in log and "robot.isolated@corp.example" not in log

    # It could not read the machine's token or key, nor list the state directory.
    assert token not in log and key not in log and key[:16] not in log
    assert f"ls: cannot open directory '{state}': Permission denied" in log
    assert f"cat: {state}/machine.json: Permission denied" in log
    assert f"cat: {state}/private.key: Permission denied" in log
    assert stat_mode(state) == 0o700 and all(stat_mode(f) == 0o600 for f in state.iterdir())
    assert "was open to others (mode 755); made it 700" in agent_log

    # Its own fresh directory, nobody's and private, was its home and is gone now.
    workdir = _line(log, "pwd")
    assert workdir != str(agent_cwd) and not workdir.startswith(str(state))
    assert _line(log, "home") == workdir and _line(log, "dir") == "nobody 700"
    assert not Path(workdir).exists()

    # A clean environment: none of the agent's variables, not even through /proc.
    assert AGENT_SECRET not in log and "SOME_AGENT_SECRET" not in log
    assert "agent environment: refused" in log
    assert set(_line(log, "names").split()) - {"PWD"} == {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "CREDFLOW_USERNAME", "CREDFLOW_PASSWORD", "CREDFLOW_RUN_ID",
        "CREDFLOW_MACHINE_ID"}
    assert _line(log, "lang") == "C.UTF-8"
    assert WARNING not in agent_log and "flows run as user nobody" in agent_log


def test_without_run_as_the_agent_warns_once_that_flows_can_read_its_secrets(live: Live, tmp_path: Path) -> None:
    admin = Admin(live, "run-as-warning")
    state = tmp_path / "pc-warning"
    machine = admin.machine("pc-warning", state)
    conn = admin.connection(machine, "warned-user", "Warned-Pa55!")
    flow = admin.flow(["/bin/sh", "-c", "echo flow ran"])
    with agent(state, tmp_path / "agent.log"):
        done = admin.runs(flow, conn, 2)
    assert [r["status"] for r in done] == ["succeeded", "succeeded"]
    assert all("flow ran" in r["log"] for r in done)
    agent_log = (tmp_path / "agent.log").read_text()
    assert agent_log.count(WARNING) == 1, agent_log
    [line] = [line for line in agent_log.splitlines() if WARNING in line]
    assert " WARNING " in line
    assert f"flows run as this agent's own user and can read the machine's key and token in {state}" in line


@pytest.mark.parametrize(("user", "says"), [
    ("no-such-user-4711", "--run-as 'no-such-user-4711': there is no such user on this computer"),
    ("root", "--run-as 'root': that is root (uid 0); flows must run as an unprivileged user"),
    ("0", "--run-as '0': that is root (uid 0); flows must run as an unprivileged user"),
])
def test_run_as_an_unknown_user_or_root_is_refused(user: str, says: str, tmp_path: Path) -> None:
    got = agent_run("--state-dir", str(tmp_path / "state"), "--run-as", user)
    assert got.returncode == 1
    assert f"error: {says}" in got.stderr
    assert "Traceback" not in got.stderr + got.stdout


def test_run_as_needs_an_agent_that_can_switch_users(tmp_path: Path) -> None:
    _need_root_and_nobody()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to start the agent as root without CAP_SETUID")
    got = agent_run("--state-dir", str(tmp_path / "state"), "--run-as", "nobody",
                    prefix=(setpriv, "--bounding-set=-setuid,-setgid"))
    assert got.returncode == 1
    assert ("error: --run-as needs an agent that can switch to another user, but this one runs as root without "
            "CAP_SETGID, CAP_SETUID") in got.stderr
    assert "Traceback" not in got.stderr + got.stdout


def test_a_state_directory_that_belongs_to_the_run_as_user_is_refused(tmp_path: Path) -> None:
    nobody = _need_root_and_nobody()
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    save_key(state, PrivateKey.generate())
    save(state, AgentState("http://127.0.0.1:9", "m-1", "cfm_not-a-real-token", "pc", "env", PrivateKey.generate()))
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    got = agent_run("--state-dir", str(state), "--run-as", "nobody")
    assert got.returncode == 1
    assert (f"error: {state} belongs to nobody, the user flows run as, who could read the machine's key and token "
            "whatever its mode") in got.stderr
    assert "Traceback" not in got.stderr + got.stdout
