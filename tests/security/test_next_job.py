"""Refusals of ``POST /machines/me/jobs/{run_id}/result?next=``: another machine's run, a user's token, no token,
and values of ``next`` that are not a number of seconds from 0 to 120. Each refusal stores no result and hands out
no job."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, new_machine, problem


def _world(admin: Api, cred_setup: dict[str, Any]) -> dict[str, Any]:
    victim, victim_id, _ = new_machine(admin, "victim-pc")
    attacker, attacker_id, _ = new_machine(admin, "attacker-pc")
    flow = admin.ok(admin.post(admin.e("/desktop-flows"), {"name": "f", "command": ["robot"]}), 201)
    conns = {name: admin.ok(admin.post(admin.e("/connections"), {
        "name": name, "target": {"machine": mid}, "credential": cred_setup["credential"]["id"]}), 201)
        for name, mid in (("victim", victim_id), ("attacker", attacker_id))}
    held = admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow["id"], "connection": conns["victim"]["id"]}),
                    201)
    assert victim.ok(victim.post("/machines/me/jobs/claim", params={"wait": 0}))["run_id"] == held["id"]
    waiting = admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow["id"],
                                                     "connection": conns["victim"]["id"]}), 201)
    return {"victim": victim, "attacker": attacker, "held": held["id"], "waiting": waiting["id"]}


def _unchanged(admin: Api, w: dict[str, Any]) -> None:
    held = admin.ok(admin.get(admin.e(f"/runs/{w['held']}")))
    assert held["status"] == "running" and held["exit_code"] is None
    assert admin.ok(admin.get(admin.e(f"/runs/{w['waiting']}")))["status"] == "queued"


def _result(api: Api, run_id: str, nxt: Any, token: str | None = None, anonymous: bool = False) -> Any:
    headers = {} if anonymous else {"Authorization": f"Bearer {token or api.token}"}
    return api.http.post(f"/api/v1/machines/me/jobs/{run_id}/result", params={"next": nxt},
                         json={"exit_code": 0, "log": "forged\n"}, headers=headers)


def test_another_machines_run_is_refused_and_hands_out_nothing(admin: Api, cred_setup: dict[str, Any]) -> None:
    w = _world(admin, cred_setup)
    problem(_result(w["attacker"], w["held"], 0), 404, "run_not_held")
    problem(_result(w["attacker"], w["waiting"], 0), 404, "run_not_held")
    _unchanged(admin, w)


def test_a_user_token_or_none_is_refused(admin: Api, cred_setup: dict[str, Any]) -> None:
    w = _world(admin, cred_setup)
    problem(_result(admin, w["held"], 0), 403, "user_token_not_allowed")
    maker = admin.user("mallory")
    problem(_result(maker, w["held"], 0), 403, "user_token_not_allowed")
    problem(_result(w["victim"], w["held"], 0, anonymous=True), 401)
    problem(_result(w["victim"], w["held"], 0, token="cfm_not-a-real-machine-token"), 401)
    _unchanged(admin, w)


@pytest.mark.parametrize("nxt", ["-1", "121", "abc", "nan", "inf", "1e9"])
def test_bad_values_of_next_are_422_and_change_nothing(admin: Api, cred_setup: dict[str, Any], nxt: str) -> None:
    w = _world(admin, cred_setup)
    problem(_result(w["victim"], w["held"], nxt), 422)
    _unchanged(admin, w)
