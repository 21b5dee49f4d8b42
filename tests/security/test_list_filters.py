"""Lists' filters and cursors, tried by a hostile colleague: naming the victim's connection, machine, desktop flow
or credential as a filter, or one of the victim's ids as a cursor, finds none of the victim's rows on any page;
a machine's token and no token get no list at all."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_lists import walk
from tests.conftest import Api, problem
from tests.security.conftest import Scene


def _queue(api: Api, flow: str, conn: str) -> dict[str, Any]:
    return api.ok(api.post(api.e("/runs"), {"desktop_flow": flow, "connection": conn}), 201)  # type: ignore[no-any-return]


def test_filters_and_cursors_never_show_another_makers_rows(scene: Scene) -> None:
    alice, mallory = scene.alice, scene.mallory
    hers = [_queue(alice, scene.flow["id"], scene.conn["id"]) for _ in range(3)]
    own = mallory.ok(mallory.post(mallory.e("/connections"), {
        "name": "mine", "target": {"machine": scene.mallory_pc.id}, "username": "m", "password": "p"}), 201)
    mine = _queue(mallory, scene.flow["id"], own["id"])
    victim_ids = {r["id"] for r in hers} | {scene.conn["id"], scene.group_conn["id"]}

    for params in ({}, {"connection": scene.conn["id"]}, {"machine": scene.alice_pc.id},
                   {"desktop_flow": scene.flow["id"]}, {"status": "queued"}, {"cursor": "0" * 32},
                   {"since": hers[0]["queued_at"]}, {"cursor": hers[0]["id"]}):
        seen = walk(mallory, mallory.e("/runs"), 1, **params)
        assert not {r["id"] for r in seen} & victim_ids, params
    assert [r["id"] for r in walk(mallory, mallory.e("/runs"), 1, desktop_flow=scene.flow["id"])] == [mine["id"]]
    for params in ({}, {"credential": scene.cred["id"]}, {"status": "connected"}, {"cursor": scene.conn["id"]}):
        seen = walk(mallory, mallory.e("/connections"), 1, **params)
        assert not {c["id"] for c in seen} & victim_ids, params
    assert [c["id"] for c in walk(mallory, mallory.e("/connections"), 1)] == [own["id"]]
    assert [r["id"] for r in walk(alice, alice.e("/runs"), 1)] == [r["id"] for r in hers]  # hers, unchanged


@pytest.mark.parametrize("path", ["/runs", "/connections", "/credentials", "/environment-variables", "/audit"])
def test_no_token_and_a_machine_token_get_no_list(scene: Scene, path: str) -> None:
    anonymous = Api(scene.admin.http, "not-a-token", scene.admin.env)
    problem(anonymous.get(anonymous.e(path), params={"status": "queued"}), 401)
    assert scene.alice_pc.api.get(scene.alice_pc.api.e(path)).status_code in (401, 403, 404)
