"""One request per job: ``POST /machines/me/jobs/{run_id}/result?next=SECONDS`` stores the result, then answers
like a claim. A result sent again because its answer was lost is stored once and brings the same job again,
never a second one."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Api, problem
from tests.machines.conftest import Machine, queue, run


def finish_next(machine: Machine, run_id: str, wait: float = 0, exit_code: int = 0, log: str = "done\n"
                ) -> httpx.Response:
    return machine.api.post(f"/machines/me/jobs/{run_id}/result", {"exit_code": exit_code, "log": log},
                            params={"next": wait})


def finishes(admin: Api, run_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = admin.ok(admin.get(admin.e("/audit"), params={"object": run_id}))["items"]
    return [r for r in items if r["action"] == "run.finish"]


def deliveries(admin: Api, run_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = admin.ok(admin.get(admin.e("/audit"), params={"object": run_id}))["items"]
    return [r for r in items if r["action"] == "credential.deliver"]


def test_a_result_with_next_stores_it_and_hands_out_the_next_job(admin: Api, setup: dict[str, Any]) -> None:
    m: Machine = setup["machine"]
    first, second = (queue(admin, setup["flow"]["id"], setup["connection"]["id"]) for _ in range(2))
    job = m.job()
    assert job is not None and job["run_id"] == first["id"]
    nxt = m.api.ok(finish_next(m, first["id"], log="first ok\n"))
    assert nxt["run_id"] == second["id"] and m.open(nxt)["password"] == setup["password"]
    done = run(admin, first["id"])
    assert done["status"] == "succeeded" and done["exit_code"] == 0 and done["log"] == "first ok\n"
    assert run(admin, second["id"])["status"] == "running"
    assert len(finishes(admin, first["id"])) == 1

    resp = finish_next(m, second["id"], wait=0.3, exit_code=3, log="second failed\n")
    assert resp.status_code == 204 and not resp.content  # stored, and no job came
    assert run(admin, second["id"])["status"] == "failed" and run(admin, second["id"])["exit_code"] == 3


def test_a_result_sent_again_after_a_lost_answer_is_stored_once_and_brings_the_same_job(
        admin: Api, setup: dict[str, Any]) -> None:
    m: Machine = setup["machine"]
    runs = [queue(admin, setup["flow"]["id"], setup["connection"]["id"]) for _ in range(3)]
    assert m.job()["run_id"] == runs[0]["id"]  # type: ignore[index]
    lost = m.api.ok(finish_next(m, runs[0]["id"], log="one\n"))  # its answer never reaches the agent
    again = m.api.ok(finish_next(m, runs[0]["id"], log="one\n"))  # so the agent sends the same result again
    assert lost["run_id"] == again["run_id"] == runs[1]["id"]  # the same job, not a second one
    assert m.open(again)["password"] == setup["password"]
    assert len(finishes(admin, runs[0]["id"])) == 1 and run(admin, runs[0]["id"])["log"] == "one\n"
    assert len(deliveries(admin, runs[1]["id"])) == 2  # delivered again, and audited again
    assert run(admin, runs[2]["id"])["status"] == "queued"

    # A different result for a run that has one is refused, and hands out nothing.
    problem(finish_next(m, runs[0]["id"], exit_code=1, log="one\n"), 409, "run_not_running")
    problem(finish_next(m, runs[0]["id"], log="other\n"), 409, "run_not_running")
    assert run(admin, runs[2]["id"])["status"] == "queued"

    assert m.api.ok(finish_next(m, runs[1]["id"]))["run_id"] == runs[2]["id"]
    assert finish_next(m, runs[2]["id"]).status_code == 204
    assert finish_next(m, runs[2]["id"]).status_code == 204  # sent again: stored once, still no job
    assert [len(finishes(admin, r["id"])) for r in runs] == [1, 1, 1]
    assert all(run(admin, r["id"])["status"] == "succeeded" for r in runs)


def test_a_result_sent_again_once_the_next_job_ended_is_refused(admin: Api, setup: dict[str, Any]) -> None:
    m: Machine = setup["machine"]
    runs = [queue(admin, setup["flow"]["id"], setup["connection"]["id"]) for _ in range(3)]
    m.job()
    assert m.api.ok(finish_next(m, runs[0]["id"]))["run_id"] == runs[1]["id"]
    assert m.api.ok(m.finish(runs[1]["id"]))["status"] == "succeeded"
    # The same result again: stored once; the machine holds nothing handed out with it, so it claims anew.
    assert m.api.ok(finish_next(m, runs[0]["id"]))["run_id"] == runs[2]["id"]
    assert [len(finishes(admin, r["id"])) for r in runs[:2]] == [1, 1]


def test_the_two_request_form_keeps_working(admin: Api, setup: dict[str, Any]) -> None:
    m: Machine = setup["machine"]
    queued = queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    m.job()
    summary = m.api.ok(m.finish(queued["id"]))
    assert summary["id"] == queued["id"] and summary["status"] == "succeeded"
    problem(m.finish(queued["id"]), 409, "run_not_running")  # without next a repeat is refused, as before
    assert m.job() is None
