"""What a new user of the CLI runs into, each through ``credflow`` itself against a real server process: one-time
secrets printed whole, ``--json`` with nothing else on stdout, names instead of ids, one line instead of a
traceback, a wait that says what it waits for, the prerequisite check after ``store create``, refusals of
options that contradict each other, values piped in, and what users of gh and vault expect (``--version``, a
hidden token prompt, ``--yes``, ``credflow status``, id prefixes)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import typer
from typer.core import TyperGroup
from typer.testing import Result

from credflow import __version__
from credflow.cli.main import app
from tests.cli.conftest import Live, on_terminal, one_line_error
from tests.conftest import ADMIN_TOKEN, new_machine
from tests.e2e.server import free_port

Cli = Callable[..., Result]
Run = Callable[..., Any]
TOKEN = r"cf{kind}_[A-Za-z0-9_-]{{43}}"  # every token credflow makes: a prefix and 32 random bytes, base64url


@pytest.fixture(scope="module")
def scene(live: Live) -> dict[str, Any]:
    """A credential on a builtin secret, a machine whose agent never runs (in a group), a flow and a connection."""
    a = live.admin
    a.store("vault")
    a.secret("vault", "robot-password", "S3cr3t-Pa55word!")
    a.secret("vault", "unused-password", "Other-Pa55word!")
    a.text_var("robot_user", "robot@corp.example")
    a.secret_var("robot_pass", "vault", "robot-password")
    cred = a.credential("Robot login", "robot_user", "robot_pass")
    _, machine_id, _ = new_machine(a, "robot-pc")
    group = a.ok(a.post(a.e("/machine-groups"), {"name": "pool", "machines": [machine_id]}), 201)
    flow = a.ok(a.post(a.e("/desktop-flows"), {"name": "hello", "command": ["sh", "-c", "echo hi"]}), 201)
    conn = a.ok(a.post(a.e("/connections"), {"name": "robot on pc", "target": {"machine": machine_id},
                                             "credential": cred["id"]}), 201)
    return {"credential": cred, "machine": machine_id, "group": group, "flow": flow, "connection": conn}


def _tokens(kind: str, text: str) -> list[str]:
    return re.findall(rf"(?m)^({TOKEN.format(kind=kind)})$", text)


# --- 1. one-time secrets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("columns", [120, 60])
def test_a_new_users_token_is_printed_whole_on_a_terminal_of_any_width(live: Live, columns: int) -> None:
    screen = on_terminal(live, "user", "create", f"ann{columns}", f"ann{columns}@corp.example", "--role",
                         "default=environment_maker", columns=columns)
    assert screen.code == 0, screen.text
    assert "shown only this once" in screen.text and "…" not in screen.text
    [token] = _tokens("u", screen.text)
    me = httpx.get(f"{live.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == f"ann{columns}@corp.example"  # the whole token


def test_registration_tokens_and_event_keys_are_printed_whole_on_the_last_line(live: Live, run: Run) -> None:
    reg = run("machine-registration", "create")
    assert "shown only this once" in reg.stderr
    assert _tokens("r", reg.stdout) == [reg.stdout.strip().splitlines()[-1]]
    key = on_terminal(live, "event-key", "create", columns=80)
    assert key.code == 0 and "…" not in key.text and len(_tokens("e", key.text)) == 1, key.text


# --- 2. --json: only JSON on stdout ------------------------------------------------------------------------------
def test_every_command_that_prints_data_takes_json() -> None:
    prints_nothing = {"serve", "keys rotate", "login", "agent run", "password set", "password change",
                      "solution export", "token revoke", "credential unshare", "team member remove",
                      "agent rotate-token"}
    missing = []

    def walk(ctx: typer.Context) -> None:
        command = ctx.command
        if isinstance(command, TyperGroup):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(typer.Context(sub, info_name=name, parent=ctx))
            return
        path = ctx.command_path.removeprefix("credflow ")
        opts = {o for p in command.params for o in getattr(p, "opts", [])}
        if "--json" not in opts and path not in prints_nothing and not path.endswith(" delete"):
            missing.append(path)

    walk(typer.Context(typer.main.get_command(app), info_name="credflow"))
    assert missing == []


def test_json_output_is_json_alone(cli: Cli, scene: dict[str, Any]) -> None:
    for args in (("credential", "list"), ("credential", "show", "Robot login"), ("connection", "list"),
                 ("connection", "show", "robot on pc"), ("machine", "show", "robot-pc"), ("user", "list"),
                 ("run", "list"), ("status",), ("store", "check", "vault"), ("rotation", "status"),
                 ("variable", "list"), ("machine-group", "list")):
        done = cli(*args, "--json")
        json.loads(done.stdout)  # the whole of stdout


def test_run_start_wait_json_prints_the_run_alone_and_says_on_stderr_what_it_waits_for(
        run: Run, scene: dict[str, Any]) -> None:
    done = run("run", "start", "--flow", "hello", "--connection", "robot on pc", "--wait", "--timeout", "2",
               "--json", code=1)
    got = json.loads(done.stdout)  # the run, and nothing after it
    assert got["status"] == "failed" and "timed_out" in got["log"]
    assert "queued: " in done.stderr and "robot-pc" in done.stderr, done.stderr


# --- 3. names, key/value lists, tab-separated lines ------------------------------------------------------------
def test_lists_and_show_name_what_the_api_gives_ids_for(cli: Cli, live: Live, scene: dict[str, Any]) -> None:
    conns = cli("connection", "list").stdout
    row = next(line.split("\t") for line in conns.splitlines() if line.startswith(scene["connection"]["id"]))
    assert row[1:4] == ["robot on pc", "machine robot-pc", "Robot login"] and row[-1] == "admin@localhost"
    assert "default=system_administrator" in cli("user", "list").stdout
    shown = dict(line.split("\t", 1) for line in cli("credential", "show", "Robot login").stdout.splitlines())
    assert shown["owner"] == "admin@localhost" and shown["username_variable"] == "robot_user"
    assert shown["password_variable"] == "robot_pass" and shown["environment"] == "default"
    machine = dict(line.split("\t", 1) for line in cli("machine", "show", "robot-pc").stdout.splitlines()
                   if "\t" in line)
    assert machine["groups"] == "pool" and machine["owner"] == "admin@localhost"
    live.admin.ok(live.admin.post(live.admin.e("/runs"), {"desktop_flow": "hello", "connection": "robot on pc"}),
                  201)
    runs = cli("run", "list").stdout
    assert "\thello\trobot on pc\t" in runs
    assert "\thello\trobot on pc\t" in cli("run", "list", "--flow", "hello", "--connection", "robot on pc",
                                              "--status", "queued", "--since", "2020-01-01T00:00:00Z").stdout
    assert cli("run", "list", "--status", "succeeded").stdout == ""
    assert cli("run", "list", "--until", "2020-01-01T00:00:00Z").stdout == ""


def test_a_terminal_gets_a_table_and_a_key_value_list_with_nothing_cut_off(live: Live,
                                                                          scene: dict[str, Any]) -> None:
    table = on_terminal(live, "connection", "list", columns=60)
    assert table.code == 0 and "┃" in table.text and "…" not in table.text, table.text
    record = on_terminal(live, "credential", "show", "Robot login", columns=100)
    assert record.code == 0 and "┃" not in record.text and "…" not in record.text
    assert re.search(r"(?m)^owner +admin@localhost", record.text), record.text
    assert scene["credential"]["id"] in record.text


# --- 4. one line, never a traceback ------------------------------------------------------------------------------
def test_a_server_that_is_down_is_one_line_and_exit_1(run: Run) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    login = run("login", "--server", down, input=ADMIN_TOKEN + "\n", code=1, CREDFLOW_SERVER="")
    assert "cannot reach the credflow server at " + down in one_line_error(login.stderr)
    listed = run("credential", "list", code=1, CREDFLOW_SERVER=down)
    assert "is it running" in one_line_error(listed.stderr)
    debug = run("credential", "list", code=1, CREDFLOW_SERVER=down, CREDFLOW_DEBUG="1")
    assert "Traceback" in debug.stderr  # for whoever debugs credflow


def test_malformed_json_and_problems_are_one_line(run: Run, cli: Cli) -> None:
    bad = run("store", "create", "broken", "--config", "{not json", code=2)
    assert "--config is not valid JSON" in one_line_error(bad.stderr)
    missing = cli("credential", "show", "no such credential", code=1)
    assert "(404 " in one_line_error(missing.stderr)
    invalid = cli("store", "create", "hv", "--kind", "hashicorp-vault", "--config", '{"url": "x"}', code=1)
    assert "invalid_store_config" in one_line_error(invalid.stderr)


# --- 5. (with 2) run start --wait says what it waits for --------------------------------------------------------
def test_wait_on_a_group_without_an_online_machine_says_so(cli: Cli, live: Live, scene: dict[str, Any]) -> None:
    a = live.admin
    a.ok(a.post(a.e("/connections"), {"name": "robot on pool", "target": {"machine_group": "pool"},
                                      "credential": scene["credential"]["id"]}), 201)
    done = cli("run", "start", "--flow", "hello", "--connection", "robot on pool", "--wait", "--timeout", "1",
               code=1)
    assert "queued: no machine of group pool is online (robot-pc " in done.stderr, done.stderr
    assert "status\tfailed" in done.stdout


# --- 6. rotation notify says how many connections -----------------------------------------------------------------
def test_notify_says_how_many_connections_it_refreshes(cli: Cli, scene: dict[str, Any]) -> None:
    used = cli("rotation", "notify", "builtin://default/vault", "robot-password")
    assert re.search(r"accepted: \d+ connections? will get", used.stderr), used.stderr
    unused = cli("rotation", "notify", "builtin://default/vault", "unused-password")
    assert "no connection follows that secret" in unused.stderr
    assert json.loads(cli("rotation", "notify", "builtin://default/vault", "unused-password", "--json").stdout)[
        "connections"] == 0


# --- 7. store create checks the store ------------------------------------------------------------------------------
def test_store_create_runs_the_prerequisite_check(cli: Cli) -> None:
    made = cli("store", "create", "second")
    assert "caller_may_use\tyes" in made.stdout and "prerequisite check" in made.stderr
    quiet = cli("store", "create", "third", "--no-check")
    assert "caller_may_use" not in quiet.stdout
    failing = cli("store", "create", "far", "--kind", "hashicorp-vault", "--vault-url", "http://127.0.0.1:9",
                  "--config", '{"address": "http://127.0.0.1:9", "token": "t"}')
    assert "reachable\tno" in failing.stdout
    assert "was created, but its check fails" in failing.stderr and "credflow store check far" in failing.stderr
    assert "credflow store update far" in failing.stderr and "credflow store delete far" in failing.stderr
    moved = cli("store", "update", "far", "--config", '{"address": "http://127.0.0.1:8", "token": "t"}')
    assert "was changed, but its check fails" in moved.stderr
    cli("store", "delete", "far", "--yes")
    assert "far" not in cli("store", "list").stdout
    as_json = json.loads(cli("store", "create", "fourth", "--json").stdout)
    assert as_json["name"] == "fourth" and as_json["check"]["ok"] is True


# --- 8. contradicting options ----------------------------------------------------------------------------------------
def test_a_connection_with_a_credential_and_a_username_is_refused(cli: Cli, live: Live) -> None:
    done = cli("connection", "create", "both", "--machine", "robot-pc", "--credential", "Robot login",
               "--username", "someone", code=2)
    assert "not both" in done.stderr
    conns = live.admin.ok(live.admin.get(live.admin.e("/connections")))["items"]
    assert "both" not in [c["name"] for c in conns]


# --- 9. values piped in ---------------------------------------------------------------------------------------------
def test_a_piped_secret_is_read_without_a_prompt(run: Run, cli: Cli, scene: dict[str, Any]) -> None:
    run("secret", "put", "vault", "piped", input="Piped-Pa55word!\n")
    run("secret", "put", "vault", "piped", input="Piped-Pa55word-2!\n")
    listed = dict(line.split("\t")[:2] for line in cli("secret", "list", "vault").stdout.splitlines())
    assert listed["piped"] == "2"
    typed = run("connection", "create", "typed", "--machine", "robot-pc", "--username", "svc", "--json",
                input="Typed-Pa55!\n")
    assert json.loads(typed.stdout)["auth"] == "username_password"
    empty = run("secret", "put", "vault", "nothing", code=2)
    assert "no value on standard input" in empty.stderr


# --- 10. what users of gh and vault expect ---------------------------------------------------------------------------
def test_version(run: Run) -> None:
    assert run("--version").stdout == f"credflow {__version__}\n"


def test_login_asks_for_the_token_without_showing_it(live: Live, tmp_path: Any) -> None:
    config = {"CREDFLOW_CONFIG_DIR": str(tmp_path), "CREDFLOW_SERVER": "", "CREDFLOW_TOKEN": ""}
    screen = on_terminal(live, "login", "--server", live.url, answers=(("token: ", ADMIN_TOKEN + "\n"),), env=config)
    assert screen.code == 0, screen.text
    assert "signed in as admin" in screen.text and ADMIN_TOKEN not in screen.text  # not echoed
    assert json.loads((tmp_path / "config.json").read_text())["token"] == ADMIN_TOKEN


def test_status_says_where_who_and_which_environment(cli: Cli, run: Run) -> None:
    said = dict(line.split("\t", 1) for line in cli("status").stdout.splitlines())
    assert said["server"].endswith(f"(reachable, credflow {__version__})")
    assert said["signed in as"] == "admin (admin@localhost)"
    assert said["environment"] == "default (your role: system_administrator)"
    refused = run("status", code=1, CREDFLOW_TOKEN="cfu_not-a-token")
    assert "the token is not accepted" in refused.stderr


def test_deletes_ask_on_a_terminal_and_need_yes_elsewhere(live: Live, cli: Cli) -> None:
    a = live.admin
    for name in ("doomed-1", "doomed-2"):
        a.ok(a.post(a.e("/desktop-flows"), {"name": name, "command": ["true"]}), 201)

    def flows() -> set[str]:
        return {f["name"] for f in a.ok(a.get(a.e("/desktop-flows")))["items"]}

    refused = cli("desktop-flow", "delete", "doomed-1", code=2)
    assert "--yes" in refused.stderr and "doomed-1" in flows()
    kept = on_terminal(live, "desktop-flow", "delete", "doomed-1", answers=(("[y/N]", "n\n"),))
    assert kept.code == 1 and "nothing changed" in kept.text and "doomed-1" in flows()
    gone = on_terminal(live, "desktop-flow", "delete", "doomed-1", answers=(("[y/N]", "y\n"),))
    assert gone.code == 0 and "doomed-1" not in flows(), gone.text
    cli("desktop-flow", "delete", "doomed-2", "--yes")
    assert "doomed-2" not in flows()


def test_an_id_prefix_names_what_it_is_the_start_of(cli: Cli, live: Live, scene: dict[str, Any]) -> None:
    a = live.admin
    runs = [a.ok(a.post(a.e("/runs"), {"desktop_flow": "hello", "connection": "robot on pc"}), 201)["id"]
            for _ in range(2)]
    shown = json.loads(cli("run", "show", runs[0][:20], "--json").stdout)
    assert shown["id"] == runs[0]
    common = runs[0][:next(i for i, (x, y) in enumerate(zip(*runs, strict=True)) if x != y)]
    assert len(common) >= 4
    ambiguous = cli("run", "show", common[:12], code=1)
    assert "give more of the id" in one_line_error(ambiguous.stderr)
    machine = json.loads(cli("machine", "show", scene["machine"][:24], "--json").stdout)
    assert machine["name"] == "robot-pc"
    cli("run", "cancel", runs[1][:24], "--json")
    assert a.ok(a.get(a.e(f"/runs/{runs[1]}")))["status"] != "queued"
