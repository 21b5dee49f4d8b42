"""Lists page in the database: every list walked page by page through its cursors gives each row it shows once,
in the order the rows were made; filters and the caller's visibility hold on every page; bad filters and cursors
are refused with problem+json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from credflow.persistence.tables import User
from credflow.services.automation import run_state, runs
from credflow.services.core import Actor, Core
from tests.conftest import Api, new_machine, problem
from tests.machines.conftest import Machine, connection, desktop_flow, queue


def walk(api: Api, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every row of a list, one page of ``limit`` rows at a time, following ``next_cursor`` to its end."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = api.ok(api.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})}))
        assert set(page) >= {"items", "next_cursor"} and len(page["items"]) <= limit
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows
        assert page["items"], "a page that promises more is not empty"


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


@dataclass
class Maker:
    api: Api
    machine: Machine
    conn: dict[str, Any]
    runs: list[dict[str, Any]]


@pytest.fixture
def makers(admin: Api) -> dict[str, Any]:
    """Two makers, each with a machine, a connection of their own and runs of two desktop flows on it."""
    flows = [desktop_flow(admin, "flow-a"), desktop_flow(admin, "flow-b")]
    out: dict[str, Any] = {}
    for name, count in (("alice", 7), ("bob", 4)):
        api = admin.user(name)
        machine = Machine(*new_machine(admin, f"{name}-pc"))
        conn = connection(api, f"{name} on pc", {"machine": machine.id}, username=f"{name}-robot",
                          password="Pa55-word")
        made = [queue(api, flows[i % 2]["id"], conn["id"]) for i in range(count)]
        out[name] = Maker(api, machine, conn, made)
    out["flows"] = flows
    return out


def test_runs_page_by_page_with_filters_and_only_the_callers_rows(admin: Api, makers: dict[str, Any]) -> None:
    alice, bob = makers["alice"], makers["bob"]
    flow_a = makers["flows"][0]["id"]
    alice.api.ok(alice.api.post(alice.api.e(f"/runs/{alice.runs[1]['id']}/cancel")))
    alice.api.ok(alice.api.post(alice.api.e(f"/runs/{alice.runs[4]['id']}/cancel")))
    job = alice.machine.job()
    assert job is not None and job["run_id"] == alice.runs[0]["id"]

    everyone = ids(alice.runs) + ids(bob.runs)
    for limit in (1, 2, 3, 50):
        assert ids(walk(admin, admin.e("/runs"), limit)) == everyone
        assert ids(walk(alice.api, alice.api.e("/runs"), limit)) == ids(alice.runs)
        assert ids(walk(bob.api, bob.api.e("/runs"), limit)) == ids(bob.runs)

    cancelled = walk(alice.api, alice.api.e("/runs"), 1, status="cancelled")
    assert ids(cancelled) == [alice.runs[1]["id"], alice.runs[4]["id"]]
    assert all(r["status"] == "cancelled" for r in cancelled)
    assert walk(bob.api, bob.api.e("/runs"), 1, status="cancelled") == []
    assert ids(walk(admin, admin.e("/runs"), 2, status="queued")) == [
        r["id"] for r in alice.runs if r["id"] not in {alice.runs[0]["id"], alice.runs[1]["id"], alice.runs[4]["id"]}
    ] + ids(bob.runs)
    running = walk(admin, admin.e("/runs"), 2, machine=alice.machine.id)
    assert ids(running) == [alice.runs[0]["id"]] and running[0]["status"] == "running"

    assert ids(walk(alice.api, alice.api.e("/runs"), 2, desktop_flow=flow_a)) == ids(alice.runs[0::2])
    assert ids(walk(admin, admin.e("/runs"), 2, connection=bob.conn["id"])) == ids(bob.runs)
    # Another maker's connection, machine or desktop flow as a filter finds none of her runs on any page.
    assert walk(alice.api, alice.api.e("/runs"), 1, connection=bob.conn["id"]) == []
    assert walk(bob.api, bob.api.e("/runs"), 1, machine=alice.machine.id) == []

    third, sixth = alice.runs[2]["queued_at"], alice.runs[5]["queued_at"]
    assert ids(walk(alice.api, alice.api.e("/runs"), 2, since=third)) == ids(alice.runs[2:])
    assert ids(walk(alice.api, alice.api.e("/runs"), 2, until=sixth)) == ids(alice.runs[:5])
    assert ids(walk(alice.api, alice.api.e("/runs"), 1, since=third, until=sixth)) == ids(alice.runs[2:5])
    assert ids(walk(admin, admin.e("/runs"), 3, since=bob.runs[0]["queued_at"])) == ids(bob.runs)
    assert walk(admin, admin.e("/runs"), 3, since="2999-01-01T00:00:00Z") == []
    assert walk(admin, admin.e("/runs"), 3, since="9999-12-31T23:59:59Z") == []
    assert ids(walk(admin, admin.e("/runs"), 5, until="9999-12-31T23:59:59Z")) == everyone
    assert ids(walk(admin, admin.e("/runs"), 5, since="0001-01-01T00:00:00Z", until="2600-01-01T00:00:00Z")) == everyone


def test_a_makers_runs_are_the_ones_she_started_and_the_ones_on_her_connections_in_order(
        admin: Api, makers: dict[str, Any]) -> None:
    alice, bob = makers["alice"], makers["bob"]
    flow = makers["flows"][0]["id"]
    # Runs the administrator starts on her connection, between hers and bob's; then more connections of hers than
    # are read apart (run_state.OWN_CONNECTIONS_APART), one with a run on it.
    on_hers = [queue(admin, flow, alice.conn["id"]) for _ in range(3)]
    mine = queue(alice.api, flow, alice.conn["id"])
    bobs = queue(bob.api, flow, bob.conn["id"])
    expected = ids(alice.runs) + ids(on_hers) + [mine["id"]]
    for limit in (1, 2, 5):
        assert ids(walk(alice.api, alice.api.e("/runs"), limit)) == expected
        assert ids(walk(alice.api, alice.api.e("/runs"), limit, since=on_hers[0]["queued_at"])) == expected[-4:]
    for i in range(run_state.OWN_CONNECTIONS_APART):
        connection(alice.api, f"alice {i}", {"machine": alice.machine.id}, username="a", password="Pa55-word")
    last = queue(admin, flow, connection(alice.api, "alice last", {"machine": alice.machine.id}, username="a",
                                         password="Pa55-word")["id"])
    for limit in (1, 3):
        assert ids(walk(alice.api, alice.api.e("/runs"), limit)) == [*expected, last["id"]]
    assert bobs["id"] not in ids(walk(alice.api, alice.api.e("/runs"), 50))


def test_the_run_pages_of_a_maker_walk_her_runs_both_ways(admin: Api, makers: dict[str, Any], core: Core) -> None:
    """The web pages' pager (newest first, next and previous) over a maker's runs: hers and those on her
    connection, never bob's."""
    alice, bob = makers["alice"], makers["bob"]
    flow = makers["flows"][0]["id"]
    on_hers = [queue(admin, flow, alice.conn["id"]) for _ in range(2)]
    queue(bob.api, flow, bob.conn["id"])
    newest_first = list(reversed(ids(alice.runs) + ids(on_hers)))
    me = alice.api.ok(alice.api.get("/me"))
    with core.db.read() as s:
        who = Actor(kind="user", id=me["id"], org_id=s.get(User, me["id"]).org_id)
    seen, after = [], None
    while True:
        page = runs.page_runs(core, who, admin.env, limit=2, after=after)
        seen += [r["id"] for r in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == newest_first
    back = runs.page_runs(core, who, admin.env, limit=2, before=newest_first[-1])
    assert [r["id"] for r in back["items"]] == newest_first[-3:-1]


def test_connections_page_by_page_by_status_and_credential(admin: Api, makers: dict[str, Any],
                                                           cred_setup: dict[str, Any]) -> None:
    alice, bob = makers["alice"], makers["bob"]
    cred = cred_setup["credential"]["id"]
    on_cred = [connection(admin, f"admin conn {i}", {"machine": alice.machine.id}, credential=cred)
               for i in range(3)]
    extra = connection(alice.api, "alice second", {"machine": alice.machine.id}, username="u", password="p")

    everyone = [alice.conn["id"], bob.conn["id"], *ids(on_cred), extra["id"]]
    assert ids(walk(admin, admin.e("/connections"), 1)) == everyone
    assert ids(walk(alice.api, alice.api.e("/connections"), 1)) == [alice.conn["id"], extra["id"]]
    assert ids(walk(bob.api, bob.api.e("/connections"), 1)) == [bob.conn["id"]]
    assert ids(walk(admin, admin.e("/connections"), 2, credential=cred)) == ids(on_cred)
    assert walk(alice.api, alice.api.e("/connections"), 1, credential=cred) == []
    assert ids(walk(admin, admin.e("/connections"), 2, status="connected")) == everyone
    assert walk(admin, admin.e("/connections"), 2, status="access_revoked") == []
    assert ids(walk(admin, admin.e("/connections"), 2, status="Connected", credential=cred)) == ids(on_cred)


def test_audit_pages_by_action_actor_and_time(admin: Api, makers: dict[str, Any]) -> None:
    alice = makers["alice"]
    mine = walk(admin, admin.e("/audit"), 2, actor=alice.api.info["id"])
    assert mine and all(r["actor"] == f"user:{alice.api.info['id']}" for r in mine)
    every = walk(admin, admin.e("/audit"), 500)
    assert walk(admin, admin.e("/audit"), 3) == every
    created = walk(admin, admin.e("/audit"), 2, action="run.queue", actor=alice.api.info["id"])
    assert len(created) == len(alice.runs)
    middle = created[3]["at"]
    assert walk(admin, admin.e("/audit"), 1, action="run.queue", actor=alice.api.info["id"],
                since=middle) == [r for r in created if r["at"] >= middle]
    assert walk(admin, admin.e("/audit"), 1, action="run.queue", actor=alice.api.info["id"],
                until=middle) == [r for r in created if r["at"] < middle]


LISTS = ["/desktop-flows", "/machines", "/machine-groups", "/teams", "/secret-stores", "/environment-variables",
         "/credentials", "/connection-references", "/event-keys", "/connections", "/runs"]


def test_every_list_walked_one_row_at_a_time_is_the_whole_list(admin: Api, makers: dict[str, Any],
                                                               cred_setup: dict[str, Any]) -> None:
    for i in range(3):
        admin.ok(admin.post(admin.e("/teams"), {"name": f"team-{i}"}), 201)
        admin.ok(admin.post(admin.e("/machine-groups"), {"name": f"group-{i}", "machines": []}), 201)
        admin.ok(admin.post(admin.e("/connection-references"), {"name": f"ref-{i}"}), 201)
        admin.ok(admin.post(admin.e("/event-keys")), 201)
        admin.store(f"store-{i}")
        admin.secret("vault", f"secret-{i}", "value")
    admin.credential("second login", "robot_user", "robot_pass")
    for path in LISTS:
        whole = admin.ok(admin.get(admin.e(path), params={"limit": 500}))
        assert whole["next_cursor"] is None and len(whole["items"]) >= 2, path
        assert walk(admin, admin.e(path), 1) == whole["items"], path
        assert ids(whole["items"]) == sorted(ids(whole["items"])), path
    cred = cred_setup["credential"]["id"]
    for who in (makers["alice"].api.info["id"], makers["bob"].api.info["id"], "team-1"):
        admin.ok(admin.put(admin.e(f"/credentials/{cred}/shares/{who}"), {"role": "user"}))
    shares = admin.ok(admin.get(admin.e(f"/credentials/{cred}/shares"), params={"limit": 500}))["items"]
    assert len(shares) == 4 and shares[0]["role"] == "owner"
    assert walk(admin, admin.e(f"/credentials/{cred}/shares"), 1) == shares
    assert walk(admin, admin.e(f"/credentials/{cred}/shares"), 3) == shares
    secrets = walk(admin, admin.e("/secret-stores/vault/secrets"), 1)
    assert [s["name"] for s in secrets] == sorted(s["name"] for s in secrets) and len(secrets) >= 3
    assert walk(admin, "/users", 1) == admin.ok(admin.get("/users", params={"limit": 500}))["items"]
    assert ids(walk(makers["alice"].api, "/users", 1)) == ids(walk(makers["alice"].api, "/users", 500))
    assert walk(admin, "/environments", 1) == admin.ok(admin.get("/environments"))["items"]


BAD_FILTERS = [
    ("/runs", {"status": "done"}, 422, "unknown_status"),
    ("/runs", {"connection": "not-an-id"}, 422, "malformed_filter"),
    ("/runs", {"desktop_flow": "x' OR 1=1 --"}, 422, "malformed_filter"),
    ("/runs", {"machine": "ABCDEF"}, 422, "malformed_filter"),
    ("/runs", {"since": "yesterday"}, 422, None),
    ("/runs", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, 422, "malformed_filter"),
    ("/runs", {"cursor": "zzz"}, 400, "malformed_cursor"),
    ("/runs", {"limit": 0}, 422, None),
    ("/runs", {"limit": 501}, 422, None),
    ("/connections", {"status": "broken"}, 422, "unknown_status"),
    ("/connections", {"credential": "robot login"}, 422, "malformed_filter"),
    ("/connections", {"cursor": "1"}, 400, "malformed_cursor"),
    ("/audit", {"until": "not a time"}, 422, None),
    ("/audit", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-02T00:00:00Z"}, 422, "malformed_filter"),
    ("/audit", {"cursor": "99999999999999999999999"}, 400, "malformed_cursor"),
    *((path, {"cursor": "../../etc"}, 400, "malformed_cursor") for path in LISTS),
]


def test_bad_filters_and_cursors_are_refused(admin: Api, makers: dict[str, Any]) -> None:
    for path, params, status, code in BAD_FILTERS:
        body = problem(admin.get(admin.e(path), params=params), status, code)
        assert "../" not in body["detail"] and "OR 1=1" not in body["detail"], body
    assert admin.ok(admin.get(admin.e("/runs")))["items"]  # the lists are there; only the asks were refused
