"""Credential leases through the API: a credential with ``max_concurrent_runs`` is used by at most that many runs at
once; the others stay queued, shown waiting for a lease, and take one oldest first."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from credflow.services.core import Core
from credflow.settings import Settings
from tests.conftest import ADMIN_TOKEN, Api, problem
from tests.machines.conftest import Machine, connection, desktop_flow, queue, register, run


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # A lease is given up once its machine is unseen for 2 s (the default is 120 s).
    return Settings(data_dir=tmp_path / "data", database_url=database_url, bootstrap_token=ADMIN_TOKEN,
                    run_workers=True, lease_grace_seconds=2)


@pytest.fixture
def one_at_a_time(admin: Api, cred_setup: dict[str, Any]) -> dict[str, Any]:
    """The credential limited to one run at once, two machines each with a connection on it, and a flow."""
    cred = cred_setup["credential"]
    admin.ok(admin.patch(admin.e(f"/credentials/{cred['id']}"), {"max_concurrent_runs": 1}))
    a, b = register(admin, "pc-a"), register(admin, "pc-b")
    flow = desktop_flow(admin)
    conns = {m.id: connection(admin, f"on {m.id}", {"machine": m.id}, credential=cred["id"])["id"] for m in (a, b)}
    return {"credential": cred["id"], "a": a, "b": b, "flow": flow["id"], "conns": conns}


def _queue(admin: Api, s: dict[str, Any], machine: Machine, **body: Any) -> str:
    return str(queue(admin, s["flow"], s["conns"][machine.id], **body)["id"])


def _leases(admin: Api, cred: str) -> dict[str, Any]:
    return admin.ok(admin.get(admin.e(f"/credentials/{cred}/leases")))  # type: ignore[no-any-return]


def _wait_for(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return got


def test_max_concurrent_runs_is_set_on_create_and_change_and_refused_out_of_range(
        admin: Api, cred_setup: dict[str, Any]) -> None:
    made = admin.credential("Mainframe", "robot_user", "robot_pass", max_concurrent_runs=2)
    assert made["max_concurrent_runs"] == 2
    assert cred_setup["credential"]["max_concurrent_runs"] is None  # no limit unless asked
    path = admin.e(f"/credentials/{made['id']}")
    for bad in (0, -1, 10_001, "1", True, 1.5):
        problem(admin.patch(path, {"max_concurrent_runs": bad}), 422)
        assert admin.ok(admin.get(path))["max_concurrent_runs"] == 2  # a refused change changes nothing
    body = problem(admin.patch(path, {"max_concurrent_runs": 0}), 422, "invalid_max_concurrent_runs")
    assert "null" in body["detail"]
    problem(admin.post(admin.e("/credentials"), {"name": "Zero", "username_variable": "robot_user",
                                                 "password_variable": "robot_pass", "max_concurrent_runs": 0}),
            422, "invalid_max_concurrent_runs")
    assert [c["name"] for c in admin.ok(admin.get(admin.e("/credentials")))["items"]] == ["Robot login", "Mainframe"]
    assert admin.ok(admin.patch(path, {"max_concurrent_runs": None}))["max_concurrent_runs"] is None
    assert admin.ok(admin.patch(path, {"max_concurrent_runs": 1}))["max_concurrent_runs"] == 1


def test_a_run_without_a_free_lease_waits_shown_waiting_and_goes_when_the_lease_ends(
        admin: Api, one_at_a_time: dict[str, Any]) -> None:
    s = one_at_a_time
    a, b = s["a"], s["b"]
    first, second = _queue(admin, s, a), _queue(admin, s, b)
    assert run(admin, second)["waiting_for"] is None  # nobody held it back yet
    job = a.job()
    assert job is not None and job["run_id"] == first
    assert b.job() is None  # b is free, but the credential's one lease is taken
    waiting = run(admin, second)
    assert waiting["status"] == "queued" and waiting["waiting_for"] == "credential_lease"
    assert waiting["lease_waited_since"] is not None
    listed = {r["id"]: r for r in admin.ok(admin.get(admin.e("/runs"), params={"status": "queued"}))["items"]}
    assert listed[second]["waiting_for"] == "credential_lease"
    leases = _leases(admin, s["credential"])
    assert leases["max_concurrent_runs"] == 1 and leases["waiting"] == 1
    assert [(x["run"], x["machine"], x["machine_name"]) for x in leases["leases"]] == [(first, a.id, "pc-a")]
    assert leases["leases"][0]["since"] == run(admin, first)["started_at"]

    a.finish(first)
    job = b.job()
    assert job is not None and job["run_id"] == second
    started = run(admin, second)
    assert started["status"] == "running" and started["waiting_for"] is None
    assert started["lease_waited_since"] == waiting["lease_waited_since"]  # kept: it did wait
    leases = _leases(admin, s["credential"])
    assert [x["run"] for x in leases["leases"]] == [second] and leases["waiting"] == 0


def test_a_run_queued_while_every_lease_is_held_waits_from_the_start(admin: Api, one_at_a_time: dict[str, Any]
                                                                     ) -> None:
    s = one_at_a_time
    a, b = s["a"], s["b"]
    first = _queue(admin, s, a)
    assert (a.job() or {}).get("run_id") == first
    queued = queue(admin, s["flow"], s["conns"][b.id])
    assert queued["waiting_for"] == "credential_lease" and queued["lease_waited_since"] == queued["queued_at"]
    assert _leases(admin, s["credential"])["waiting"] == 1
    assert run(admin, first)["waiting_for"] is None and run(admin, first)["lease_waited_since"] is None


def test_the_oldest_waiting_run_takes_the_next_lease_whichever_machine_asks_first(
        admin: Api, one_at_a_time: dict[str, Any]) -> None:
    s = one_at_a_time
    a, b = s["a"], s["b"]
    holding = _queue(admin, s, b)
    assert (b.job() or {}).get("run_id") == holding
    older_on_a, younger_on_b = _queue(admin, s, a), _queue(admin, s, b)
    assert a.job() is None
    b.finish(holding)
    # b is free and the lease too, but the run on a is older: b does not take its younger run.
    assert b.job() is None
    assert run(admin, younger_on_b)["waiting_for"] == "credential_lease"
    assert (a.job() or {}).get("run_id") == older_on_a
    a.finish(older_on_a)
    assert (b.job() or {}).get("run_id") == younger_on_b


def test_runs_no_machine_can_take_hold_no_lease_back(admin: Api, one_at_a_time: dict[str, Any]) -> None:
    s = one_at_a_time
    a, b = s["a"], s["b"]
    stuck_on_a, on_b = _queue(admin, s, a), _queue(admin, s, b)
    admin.ok(admin.patch(admin.e(f"/machines/{a.id}"), {"disabled": True}))
    assert (b.job() or {}).get("run_id") == on_b  # a is disabled: its older run does not keep b waiting
    assert run(admin, stuck_on_a)["status"] == "queued"


def test_a_limit_of_two_lets_two_runs_of_a_group_go_at_once(admin: Api, one_at_a_time: dict[str, Any]) -> None:
    s = one_at_a_time
    c = register(admin, "pc-c")
    admin.ok(admin.patch(admin.e(f"/credentials/{s['credential']}"), {"max_concurrent_runs": 2}))
    group = admin.ok(admin.post(admin.e("/machine-groups"), {"name": "pool", "machines": [s["a"].id, s["b"].id,
                                                                                          c.id]}), 201)
    conn = connection(admin, "pool", {"machine_group": group["id"]}, credential=s["credential"])["id"]
    ids = [queue(admin, s["flow"], conn)["id"] for _ in range(3)]
    jobs = [m.job() for m in (s["a"], s["b"], c)]
    assert [j["run_id"] if j else None for j in jobs] == [ids[0], ids[1], None]
    assert run(admin, ids[2])["waiting_for"] == "credential_lease"
    # Lowering the limit below the leases held takes none away; raising it lets the waiting run go.
    admin.ok(admin.patch(admin.e(f"/credentials/{s['credential']}"), {"max_concurrent_runs": 1}))
    assert sorted(x["run"] for x in _leases(admin, s["credential"])["leases"]) == ids[:2]
    assert c.job() is None
    admin.ok(admin.patch(admin.e(f"/credentials/{s['credential']}"), {"max_concurrent_runs": 3}))
    assert (c.job() or {}).get("run_id") == ids[2]


def test_raising_the_limit_hands_a_waiting_run_to_a_waiting_claim(admin: Api, one_at_a_time: dict[str, Any],
                                                                     core: Core) -> None:
    if core.channel is not None:  # PostgreSQL: the server hears the others, so its claims' sweep is 30 s apart
        _wait_for(core.listening.is_set, "listening")
    s = one_at_a_time
    a, b = s["a"], s["b"]
    first, second = _queue(admin, s, a), _queue(admin, s, b)
    assert (a.job() or {}).get("run_id") == first
    done = threading.Event()

    def a_runs_on() -> None:  # a keeps its lease: seen, running the first run (the grace here is 2 s)
        while not done.wait(0.3):
            a.api.ok(a.api.post("/machines/me/heartbeat", {"running": [first]}))

    with ThreadPoolExecutor(2) as pool:
        alive = pool.submit(a_runs_on)
        # b waits for a job for 20 s (it looked once: the only lease is taken); no sweep comes meanwhile on
        # PostgreSQL (30 s), so only the change itself can wake it.
        waiting = pool.submit(b.job, 20)
        time.sleep(0.5)
        admin.ok(admin.patch(admin.e(f"/credentials/{s['credential']}"), {"max_concurrent_runs": 2}))
        try:
            job = waiting.result(timeout=30)
        finally:
            done.set()
        alive.result()
    assert job is not None and job["run_id"] == second
    assert run(admin, first)["status"] == "running"


def test_a_cancelled_run_gives_up_its_lease(admin: Api, one_at_a_time: dict[str, Any]) -> None:
    s = one_at_a_time
    a, b = s["a"], s["b"]
    first, second = _queue(admin, s, a), _queue(admin, s, b)
    assert (a.job() or {}).get("run_id") == first
    assert b.job() is None
    assert admin.ok(admin.post(admin.e(f"/runs/{first}/cancel")))["status"] == "cancelled"
    assert (b.job() or {}).get("run_id") == second
    assert a.finish(first).status_code == 200  # what the stopped flow reports is kept; the lease stays with b
    assert [x["run"] for x in _leases(admin, s["credential"])["leases"]] == [second]


def test_a_timed_out_run_gives_up_its_lease(admin: Api, one_at_a_time: dict[str, Any]) -> None:
    s = one_at_a_time
    a, b = s["a"], s["b"]
    first, second = _queue(admin, s, a, timeout_seconds=1), _queue(admin, s, b)
    assert (a.job() or {}).get("run_id") == first
    assert b.job() is None
    _wait_for(lambda: run(admin, first)["status"] == "failed", "the run times out")
    assert run(admin, first)["reason"] == "timed_out"
    assert (b.job(wait=5) or {}).get("run_id") == second


def test_a_lease_whose_machine_is_unseen_past_the_grace_goes_to_the_next_run(
        admin: Api, one_at_a_time: dict[str, Any]) -> None:
    s = one_at_a_time
    a, b = s["a"], s["b"]
    first, second = _queue(admin, s, a), _queue(admin, s, b)
    assert (a.job() or {}).get("run_id") == first
    # a says nothing more; b keeps asking (and so stays seen) until the lease comes to it.
    job = _wait_for(lambda: b.job(wait=1), "b gets the lease")
    assert job["run_id"] == second
    lost = run(admin, first)
    assert lost["status"] == "failed" and lost["reason"] == "machine_lost"
    assert "grace" in lost["reason_detail"]
    # a comes back: it is told to stop the run it no longer holds.
    answer = a.api.ok(a.api.post("/machines/me/heartbeat", {"running": [first]}))
    assert answer["cancel"] == [first]


def test_a_credential_without_a_limit_lets_every_machine_run_it(admin: Api, cred_setup: dict[str, Any]) -> None:
    a, b = register(admin, "pc-a"), register(admin, "pc-b")
    flow = desktop_flow(admin)
    ids = [queue(admin, flow["id"], connection(admin, f"on {m.id}", {"machine": m.id},
                                               credential=cred_setup["credential"]["id"])["id"])["id"]
           for m in (a, b)]
    assert [(m.job() or {}).get("run_id") for m in (a, b)] == ids
    assert all(run(admin, i)["waiting_for"] is None for i in ids)
    leases = _leases(admin, cred_setup["credential"]["id"])
    assert leases["max_concurrent_runs"] is None and sorted(x["run"] for x in leases["leases"]) == sorted(ids)


def test_the_cli_sets_the_limit_and_shows_who_holds_the_leases(cli: Any, admin: Api, cred_setup: dict[str, Any]
                                                                 ) -> None:
    from typer.testing import CliRunner

    from credflow.cli.main import app

    made = cli("credential", "create", "Mainframe", "--username", "robot_user", "--password", "robot_pass",
               "--max-concurrent-runs", "1", "--json")
    assert made["max_concurrent_runs"] == 1
    assert cli("credential", "update", "Mainframe", "--max-concurrent-runs", "none", "--json")[
        "max_concurrent_runs"] is None
    assert cli("credential", "update", "Mainframe", "--max-concurrent-runs", "2", "--json")["max_concurrent_runs"] == 2
    wrong = CliRunner().invoke(app, ["credential", "update", "Mainframe", "--max-concurrent-runs", "many"])
    assert wrong.exit_code == 2 and "a whole number of at least 1, or none" in wrong.output
    zero = CliRunner().invoke(app, ["credential", "update", "Mainframe", "--max-concurrent-runs", "0"])
    assert zero.exit_code != 0 and "max_concurrent_runs" in zero.output
    assert cli("credential", "show", "Mainframe", "--json")["max_concurrent_runs"] == 2

    machine = register(admin, "pc-a")
    conn = connection(admin, "mainframe", {"machine": machine.id}, credential=made["id"])
    started = queue(admin, desktop_flow(admin)["id"], conn["id"])
    assert (machine.job() or {}).get("run_id") == started["id"]
    leases = cli("credential", "leases", "Mainframe", "--json")
    assert [x["run"] for x in leases["leases"]] == [started["id"]] and leases["max_concurrent_runs"] == 2
    table = CliRunner().invoke(app, ["credential", "leases", "Mainframe"])
    assert table.exit_code == 0 and started["id"] in table.stdout and "pc-a" in table.stdout
    assert "1 lease(s) held of 2; 0 run(s) waiting" in table.output
