"""Runs: queued per target, claimed by one machine at a time, the credential sealed to the claiming machine."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from nacl.exceptions import CryptoError
from sqlalchemy import update

from credflow.api import wakeup
from credflow.crypto.sealing import open_sealed
from credflow.persistence.tables import SecretHead, utcnow
from credflow.services.automation import runs as runs_service
from tests.conftest import Api, problem
from tests.machines.conftest import Machine, connection, queue, register, run


def test_the_claiming_machine_receives_the_credential_sealed_to_its_key(admin: Api, setup: dict[str, Any]) -> None:
    machine: Machine = setup["machine"]
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert queued["status"] == "queued" and "S3cr3t" not in str(queued)
    job = machine.job()
    assert job is not None and job["run_id"] == queued["id"] and job["command"] == ["robot", "--login"]
    assert "S3cr3t" not in str(job)
    assert machine.open(job) == {"username": "robot@corp.example", "password": "S3cr3t-Pa55word!", "version": "1"}
    got = run(admin, queued["id"])
    assert got["status"] == "running" and got["machine"] == machine.id and got["secret_version"] == "1"


def test_another_machine_cannot_open_the_payload(admin: Api, setup: dict[str, Any]) -> None:
    other = register(admin, "robot-pc-2")
    queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert other.job() is None  # the connection targets the first machine only
    job = setup["machine"].job()
    assert job is not None
    with pytest.raises(CryptoError):
        open_sealed(other.key, job["sealed_credential"])


def test_every_delivery_is_audited_without_the_value(admin: Api, setup: dict[str, Any]) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert setup["machine"].job() is not None
    records = admin.ok(admin.get(admin.e("/audit"), params={"object": queued["id"]}))["items"]
    delivered = [r for r in records if r["action"] == "credential.deliver"]
    assert len(delivered) == 1
    assert delivered[0]["detail"] == {"machine": setup["machine"].id, "run": queued["id"],
                                      "connection": setup["connection"]["id"],
                                      "credential": setup["credential"]["id"], "version": "1"}
    assert "S3cr3t" not in str(records) and "robot@corp" not in str(records)


def test_a_machine_runs_one_job_at_a_time_in_queue_order(admin: Api, setup: dict[str, Any]) -> None:
    machine: Machine = setup["machine"]
    ids = [queue(admin, setup["flow"]["id"], setup["connection"]["id"])["id"] for _ in range(3)]
    first = machine.job()
    assert first is not None and first["run_id"] == ids[0]
    assert machine.claim(wait=0.5).status_code == 204  # it holds a running job
    machine.api.ok(machine.finish(ids[0]))
    order = [ids[0]]
    for _ in range(2):
        job = machine.job()
        assert job is not None
        order.append(job["run_id"])
        machine.api.ok(machine.finish(job["run_id"], exit_code=3, log="bad\n"))
    assert order == ids
    assert [run(admin, i)["status"] for i in ids] == ["succeeded", "failed", "failed"]
    assert run(admin, ids[1])["exit_code"] == 3 and run(admin, ids[1])["log"] == "bad\n"


def test_a_group_hands_the_next_job_to_a_free_member(admin: Api, cred_setup: dict[str, Any],
                                                    setup: dict[str, Any]) -> None:
    members = [setup["machine"], register(admin, "robot-pc-2"), register(admin, "robot-pc-3")]
    outsider = register(admin, "robot-pc-4")
    group = admin.ok(admin.post(admin.e("/machine-groups"), {"name": "pool", "machines": [m.id for m in members]}),
                     201)
    conn = connection(admin, "pool", {"machine_group": group["id"]}, credential=cred_setup["credential"]["id"])
    ids = [queue(admin, setup["flow"]["id"], conn["id"])["id"] for _ in range(4)]
    assert outsider.job() is None
    jobs = [m.job() for m in members]
    assert [j["run_id"] for j in jobs if j] == ids[:3]
    assert all(m.claim().status_code == 204 for m in members)  # every member is busy
    members[1].api.ok(members[1].finish(ids[1]))
    nxt = members[1].job()
    assert nxt is not None and nxt["run_id"] == ids[3]
    assert members[1].open(nxt)["password"] == "S3cr3t-Pa55word!"


def test_a_long_poll_claim_wakes_up_when_a_run_is_queued(admin: Api, setup: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wakeup, "SWEEP_SECONDS", 30.0)  # only the in-process wake-up can be this fast
    got: dict[str, Any] = {}

    def claim() -> None:
        started = time.monotonic()
        got["resp"] = setup["machine"].claim(wait=20)
        got["took"] = time.monotonic() - started

    waiter = threading.Thread(target=claim)
    waiter.start()
    time.sleep(0.5)
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    waiter.join(15)
    assert got["resp"].status_code == 200 and got["resp"].json()["run_id"] == queued["id"]
    assert got["took"] < 3


def test_a_long_poll_claim_without_work_answers_204_after_the_wait(setup: dict[str, Any]) -> None:
    started = time.monotonic()
    assert setup["machine"].claim(wait=1.2).status_code == 204
    assert 1.0 <= time.monotonic() - started < 5


def test_a_result_for_a_run_the_machine_does_not_hold_changes_nothing(admin: Api, setup: dict[str, Any]) -> None:
    other = register(admin, "robot-pc-2")
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    problem(setup["machine"].finish(queued["id"]), 404, "run_not_held")  # queued, not held by anyone
    assert setup["machine"].job() is not None
    problem(other.finish(queued["id"]), 404, "run_not_held")
    problem(other.finish("no-such-run"), 404, "run_not_held")
    assert run(admin, queued["id"])["status"] == "running"
    setup["machine"].api.ok(setup["machine"].finish(queued["id"]))
    problem(setup["machine"].finish(queued["id"], exit_code=1), 409, "run_not_running")
    assert run(admin, queued["id"])["status"] == "succeeded"


def test_an_oversize_log_is_refused_and_changes_nothing(admin: Api, setup: dict[str, Any], core: Any) -> None:
    core.settings.max_log_bytes = 1000
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert setup["machine"].job() is not None
    body = problem(setup["machine"].finish(queued["id"], log="x" * 1001), 413, "log_too_large")
    assert body["max_log_bytes"] == 1000
    assert run(admin, queued["id"])["status"] == "running"
    setup["machine"].api.ok(setup["machine"].finish(queued["id"], log="x" * 1000))


def test_the_stored_log_never_holds_the_credentials_values(admin: Api, setup: dict[str, Any]) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert setup["machine"].job() is not None
    leaked = "login robot@corp.example pw=S3cr3t-Pa55word!!\nS3cr3t-\nPa55word!\n"
    setup["machine"].api.ok(setup["machine"].finish(queued["id"], log=leaked))
    assert run(admin, queued["id"])["log"] == "login *** pw=***!\n***\n***\n"


def test_a_queued_run_can_be_cancelled_and_is_never_delivered(admin: Api, setup: dict[str, Any]) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    cancelled = admin.ok(admin.post(admin.e(f"/runs/{queued['id']}/cancel")))
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "cancelled")
    assert cancelled["reason_detail"] == f"cancelled by user:{admin.ok(admin.get('/me'))['id']}"
    assert "cancelled" in cancelled["log"] and cancelled["finished_at"]
    assert setup["machine"].job() is None
    problem(admin.post(admin.e(f"/runs/{queued['id']}/cancel")), 409, "run_finished")


def test_cancelling_a_running_run_tells_its_machine_to_stop(admin: Api, setup: dict[str, Any]) -> None:
    machine: Machine = setup["machine"]
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert machine.job() is not None
    assert machine.api.ok(machine.api.post("/machines/me/heartbeat", {"running": [queued["id"]]}))["cancel"] == []
    admin.ok(admin.post(admin.e(f"/runs/{queued['id']}/cancel")))
    beat = machine.api.ok(machine.api.post("/machines/me/heartbeat", {"running": [queued["id"]]}))
    assert beat["cancel"] == [queued["id"]]


def test_a_cancelled_run_keeps_what_its_machine_reports_once_and_stays_cancelled(admin: Api,
                                                                                 setup: dict[str, Any]) -> None:
    machine: Machine = setup["machine"]
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert machine.job() is not None
    admin.ok(admin.post(admin.e(f"/runs/{queued['id']}/cancel")))
    told = machine.api.ok(machine.finish(queued["id"], exit_code=-15, log="step 1 done\nstopped\n"))
    assert (told["status"], told["reason"], told["exit_code"]) == ("cancelled", "cancelled", -15)
    got = run(admin, queued["id"])
    assert got["status"] == "cancelled" and got["log"].startswith("step 1 done\nstopped\n[credflow] the run was "
                                                                  "cancelled by user:")
    problem(machine.finish(queued["id"]), 409, "run_not_running")  # a second report changes nothing
    assert run(admin, queued["id"]) == got


def test_a_run_list_says_why_each_run_ended(admin: Api, setup: dict[str, Any]) -> None:
    machine: Machine = setup["machine"]
    ok, bad, stopped = (queue(admin, setup["flow"]["id"], setup["connection"]["id"])["id"] for _ in range(3))
    for run_id, code in ((ok, 0), (bad, 3)):
        job = machine.job()
        assert job is not None and job["run_id"] == run_id
        machine.api.ok(machine.finish(run_id, exit_code=code))
    admin.ok(admin.post(admin.e(f"/runs/{stopped}/cancel")))
    listed = {r["id"]: r for r in admin.ok(admin.get(admin.e("/runs")))["items"]}
    assert "log" not in listed[ok]
    assert [(listed[i]["status"], listed[i]["reason"]) for i in (ok, bad, stopped)] == [
        ("succeeded", None), ("failed", "exit_code"), ("cancelled", "cancelled")]
    assert listed[bad]["reason_detail"] == "the flow exited with code 3"


def test_runs_filter_by_status_and_an_unknown_status_lists_the_statuses(admin: Api, setup: dict[str, Any]) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    admin.ok(admin.post(admin.e(f"/runs/{queued['id']}/cancel")))
    assert [r["id"] for r in admin.ok(admin.get(admin.e("/runs"), params={"status": "cancelled"}))["items"]] == [
        queued["id"]]
    assert admin.ok(admin.get(admin.e("/runs"), params={"status": "failed"}))["items"] == []
    body = problem(admin.get(admin.e("/runs"), params={"status": "canceled"}), 422, "unknown_status")
    assert body["allowed"] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert "queued, running, succeeded, failed, cancelled" in body["detail"]


def test_a_machine_that_restarts_gives_up_the_run_it_held(admin: Api, setup: dict[str, Any]) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert setup["machine"].job() is not None
    setup["machine"].api.ok(setup["machine"].api.post("/machines/me/heartbeat", {"running": []}))
    got = run(admin, queued["id"])
    assert got["status"] == "failed" and "machine_lost" in got["log"]


def test_runs_past_their_timeout_fail(admin: Api, setup: dict[str, Any], core: Any) -> None:
    flow, conn = setup["flow"]["id"], setup["connection"]["id"]
    for bad in (0, 24 * 3600 + 1):
        problem(admin.post(admin.e("/runs"), {"desktop_flow": flow, "connection": conn, "timeout_seconds": bad}),
                422, "invalid_timeout")
    held = queue(admin, flow, conn)
    assert held["timeout_seconds"] == 3 * 3600
    assert setup["machine"].job() is not None  # the machine now runs it; the next two wait
    first, second = queue(admin, flow, conn, timeout_seconds=60), queue(admin, flow, conn, timeout_seconds=60)
    runs_service.expire_overdue(core, now=utcnow() + timedelta(seconds=30))
    assert [run(admin, r["id"])["status"] for r in (held, first, second)] == ["running", "queued", "queued"]
    runs_service.expire_overdue(core, now=utcnow() + timedelta(seconds=61))
    assert [run(admin, r["id"])["status"] for r in (held, first, second)] == ["running", "failed", "failed"]
    assert "timed_out" in run(admin, second["id"])["log"]


def test_a_running_run_past_its_timeout_fails(admin: Api, setup: dict[str, Any], core: Any) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"], timeout_seconds=5)
    assert setup["machine"].job() is not None
    runs_service.expire_overdue(core, now=utcnow() + timedelta(seconds=6))
    got = run(admin, queued["id"])
    assert got["status"] == "failed" and "timed_out" in got["log"]
    assert (got["reason"], got["reason_detail"]) == ("timed_out", "it ran longer than its timeout")
    problem(setup["machine"].finish(queued["id"]), 409, "run_not_running")


def test_a_machine_unseen_for_long_loses_its_run_but_not_for_time_the_server_was_down(
        admin: Api, setup: dict[str, Any], core: Any) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert setup["machine"].job() is not None  # seen now, and then no more
    lost_after = 3 * core.settings.machine_offline_after_seconds
    restarted = utcnow() + timedelta(seconds=lost_after + 60)  # the server was down all that time
    core.started_at = restarted
    runs_service.expire_overdue(core, now=restarted + timedelta(seconds=lost_after - 1))
    assert run(admin, queued["id"])["status"] == "running"  # the machine has the whole delay to get in touch
    runs_service.expire_overdue(core, now=restarted + timedelta(seconds=lost_after + 1))
    got = run(admin, queued["id"])
    assert got["status"] == "failed" and "machine_lost (the machine stopped sending heartbeats)" in got["log"]
    assert got["reason"] == "machine_lost"


def test_a_run_of_a_deleted_credential_fails_at_claim_and_gets_nothing(admin: Api, setup: dict[str, Any]) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert admin.delete(admin.e(f"/credentials/{setup['credential']['id']}"), params={"force": True}
                        ).status_code == 204
    assert setup["machine"].job() is None
    got = run(admin, queued["id"])
    assert got["status"] == "failed" and "credential_deleted" in got["log"] and got["secret_version"] is None


def test_a_run_whose_owner_lost_access_fails_at_claim(admin: Api, setup: dict[str, Any]) -> None:
    cid = setup["credential"]["id"]
    mia = admin.user("mia", "environment_maker")
    admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/{mia.info['id']}"), {"role": "user"}))
    conn = connection(mia, "mia's", {"machine": setup["machine"].id}, credential=cid)
    queued = queue(mia, setup["flow"]["id"], conn["id"])
    assert admin.delete(admin.e(f"/credentials/{cid}/shares/{mia.info['id']}")).status_code == 204
    assert setup["machine"].job() is None
    got = run(mia, queued["id"])
    assert got["status"] == "failed" and "access_revoked" in got["log"] and got["reason"] == "access_revoked"


def test_a_run_whose_secret_cannot_be_read_fails_with_secret_unreadable(admin: Api, setup: dict[str, Any],
                                                                        core: Any) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    with core.db.transaction() as s:  # what the vault answered on its last read: the secret is gone
        s.execute(update(SecretHead).values(error_code="secret_not_found", error_since=utcnow()))
    assert setup["machine"].job() is None
    got = run(admin, queued["id"])
    assert got["status"] == "failed" and "secret_unreadable" in got["log"]


def test_a_connection_with_typed_values_delivers_them(admin: Api, setup: dict[str, Any]) -> None:
    conn = connection(admin, "typed", {"machine": setup["machine"].id}, username="svc", password="Typed-Pa55!")
    queue(admin, setup["flow"]["id"], conn["id"])
    job = setup["machine"].job()
    assert job is not None
    assert setup["machine"].open(job) == {"username": "svc", "password": "Typed-Pa55!", "version": None}


def test_unknown_flows_and_connections_are_refused(admin: Api, setup: dict[str, Any]) -> None:
    problem(admin.post(admin.e("/runs"), {"desktop_flow": "nope", "connection": setup["connection"]["id"]}),
            404, "desktop_flow_not_found")
    problem(admin.post(admin.e("/runs"), {"desktop_flow": setup["flow"]["id"], "connection": "nope"}),
            404, "connection_not_found")
    problem(admin.get(admin.e("/runs/nope")), 404, "run_not_found")
    assert admin.ok(admin.get(admin.e("/runs")))["items"] == []


def test_a_log_with_nul_bytes_or_broken_unicode_is_kept_readable(admin: Api, setup: dict[str, Any]) -> None:
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert setup["machine"].job() is not None
    machine: Machine = setup["machine"]
    body = '{"exit_code": 0, "log": "a\\u0000b \\ud800 c\\n"}'  # JSON may carry both
    machine.api.ok(machine.api.http.post(f"/api/v1/machines/me/jobs/{queued['id']}/result", content=body,
                                         headers={**machine.api._h(), "content-type": "application/json"}))
    assert run(admin, queued["id"])["log"] == "ab \ufffd\ufffd\ufffd c\n"
