"""The README's walkthrough, as a new user types it: a real server process and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.e2e.server import CREDFLOW, running_server


def test_the_readme_walkthrough_works_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_")}
    env["CREDFLOW_CONFIG_DIR"] = str(tmp_path / "config")
    with running_server(data, env=env) as (url, proc):
        assert proc.stdout is not None
        token = proc.stdout.readline().strip()  # the one-time admin token, printed once
        assert token.startswith("cfu_")

        def cf(*args: str, stdin: str | None = None) -> str:
            done = subprocess.run([CREDFLOW, *args], check=False, env=env, input=stdin, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, done.stderr + done.stdout
            return done.stdout

        cf("login", "--server", url, "--token", token)
        config = tmp_path / "config" / "config.json"
        assert oct(config.stat().st_mode & 0o777) == "0o600"
        cf("store", "create", "vault")
        cf("secret", "put", "vault", "robot-password", "--stdin", stdin="Walkthrough-Secret-42\n")
        cf("variable", "create", "robot_user", "--type", "text", "--value", "robot@corp.example")
        cf("variable", "create", "robot_pass", "--type", "secret", "--store", "vault", "--secret", "robot-password")
        cf("credential", "create", "Robot login", "--username", "robot_user", "--password", "robot_pass")
        listed = json.loads(cf("credential", "list", "--json"))
        assert [(c["name"], c["my_role"]) for c in listed] == [("Robot login", "owner")]
        table = cf("credential", "list")
        assert "Robot login" in table and "owner" in table
        made = json.loads(cf("user", "create", "alice", "alice@corp.example", "--role", "default=environment_maker",
                             "--json"))
        assert made["token"].startswith("cfu_")

        # Share it, and run a flow on a machine with it.
        cf("credential", "share", "Robot login", "--with", "alice@corp.example", "--role", "user")
        assert "alice" in cf("credential", "shares", "Robot login")
        reg = json.loads(cf("machine-registration", "create", "--json"))
        state = tmp_path / "pc-1"
        cf("agent", "register", "--server", url, "--registration-token", reg["registration_token"], "--name", "pc-1",
           "--state-dir", str(state))
        agent = subprocess.Popen([CREDFLOW, "agent", "run", "--state-dir", str(state)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            cf("desktop-flow", "create", "login-check", "--", "sh", "-c",
               'echo "signed in as $CREDFLOW_USERNAME with $CREDFLOW_PASSWORD"')
            cf("connection", "create", "robot on pc-1", "--machine", "pc-1", "--credential", "Robot login")
            log = cf("run", "start", "--flow", "login-check", "--connection", "robot on pc-1", "--wait")
            assert "signed in as *** with ***" in log and "Walkthrough-Secret-42" not in log  # both masked
            # Rotate the password: the next run gets the new one.
            cf("secret", "put", "vault", "robot-password", "--stdin", stdin="Walkthrough-Secret-43\n")
            cf("desktop-flow", "create", "which-password", "--", "sh", "-c",
               'test "$CREDFLOW_PASSWORD" = Walkthrough-Secret-43')
            cf("run", "start", "--flow", "which-password", "--connection", "robot on pc-1", "--wait")
        finally:
            agent.terminate()
            agent.wait(timeout=10)
        cf("credential", "delete", "Robot login", "--force", "--yes")
        assert json.loads(cf("credential", "list", "--json")) == []
        assert {v["schema_name"] for v in json.loads(cf("variable", "list", "--json"))} == {"robot_user",
                                                                                            "robot_pass"}
    # A second start on the same data directory prints no new token.
    with running_server(data, env=env) as (_, proc2):
        proc2.terminate()
        out, _ = proc2.communicate(timeout=10)
        assert "cfu_" not in out
    assert oct((data / "master.key").stat().st_mode & 0o777) == "0o600"
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    assert b"Walkthrough-Secret-42" not in b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
