"""The audit trail: every change is a record, system administrators read it, and tampering is detected."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from credflow.cli.main import app as cli
from credflow.services.access import failed_auth
from credflow.services.core import Core
from credflow.settings import Settings
from tests.conftest import Api, problem


def _audit(api: Api, **params: Any) -> list[dict[str, Any]]:
    page = api.ok(api.get(api.e("/audit"), params={"limit": 500, **params}))
    assert page["next_cursor"] is None
    items: list[dict[str, Any]] = page["items"]
    return items


def test_every_change_to_a_credential_is_recorded(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    basic = admin.user("basic", "basic_user")
    admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/{basic.info['id']}"), {"role": "user"}))
    admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/{basic.info['id']}"), {"role": "co_owner"}))
    basic.ok(basic.patch(basic.e(f"/credentials/{cid}"), {"description": "changed"}))
    assert admin.delete(admin.e(f"/credentials/{cid}/shares/{basic.info['id']}")).status_code == 204
    assert admin.delete(admin.e(f"/credentials/{cid}")).status_code == 204
    records = _audit(admin, object=cid)
    assert [r["action"] for r in records] == ["credential.create", "credential.share", "credential.share",
                                             "credential.update", "credential.unshare", "credential.delete"]
    me = f"user:{admin.ok(admin.get('/me'))['id']}"
    assert [r["actor"] for r in records] == [me, me, me, f"user:{basic.info['id']}", me, me]
    assert records[2]["detail"]["role"] == "co_owner" and records[2]["detail"]["previous_role"] == "user"
    assert all(r["object_type"] == "credential" and r["environment"] == admin.env and r["at"] for r in records)


def test_the_trail_filters_by_actor_since_and_action(admin: Api, cred_setup: dict[str, Any]) -> None:
    basic = admin.user("basic", "environment_maker")
    basic.text_var("by_basic", "x")
    assert [r["action"] for r in _audit(admin, actor=basic.info["email"])] == ["variable.create"]
    assert [r["action"] for r in _audit(admin, actor=f"user:{basic.info['id']}")] == ["variable.create"]
    assert _audit(admin, since=(datetime.now(UTC) + timedelta(minutes=5)).isoformat()) == []
    assert len(_audit(admin, since="2000-01-01T00:00:00Z")) == len(_audit(admin))
    assert {r["action"] for r in _audit(admin, action="variable")} == {"variable.create"}
    problem(admin.get(admin.e("/audit"), params={"since": "yesterday"}), 422, "invalid_request")


def test_the_trail_is_listed_in_pages(admin: Api, cred_setup: dict[str, Any]) -> None:
    everything = _audit(admin)
    first = admin.ok(admin.get(admin.e("/audit"), params={"limit": 2}))
    second = admin.ok(admin.get(admin.e("/audit"), params={"limit": 2, "cursor": first["next_cursor"]}))
    assert [r["seq"] for r in first["items"] + second["items"]] == [r["seq"] for r in everything[:4]]
    problem(admin.get(admin.e("/audit"), params={"cursor": "abc"}), 400, "malformed_cursor")


def test_only_system_administrators_read_the_trail_of_their_environment(admin: Api) -> None:
    for role in ("environment_maker", "basic_user"):
        who = admin.user(role, role)
        problem(who.get(who.e("/audit")), 403)
    other = admin.ok(admin.post("/environments", {"name": "other"}), 201)
    there = Api(admin.http, admin.token, other["id"])
    there.store("vault-there")
    assert "secret_store.create" in {r["action"] for r in _audit(there)}
    assert "secret_store.create" not in {r["action"] for r in _audit(admin)}


def test_a_failed_sign_in_is_recorded_without_the_token(admin: Api, client: Any, core: Core) -> None:
    bad = "cfu_not-a-real-token-0000000000"
    resp = client.get(f"/api/v1/environments/{admin.env}/credentials", headers={"Authorization": f"Bearer {bad}"})
    problem(resp, 401, "unauthenticated")
    problem(client.get("/api/v1/me"), 401)  # no token at all is not a sign-in attempt
    failed_auth.flush(core, everything=True)  # written once its minute is over, or when the server stops
    failed = _audit(admin, action="auth.failed")
    assert len(failed) == 1
    assert failed[0]["actor"] == "anonymous" and failed[0]["detail"]["count"] == 1
    assert failed[0]["detail"]["paths"] == [f"/api/v1/environments/{admin.env}/credentials"]
    assert bad not in json.dumps(_audit(admin)) and "not-a-real-token" not in json.dumps(_audit(admin))


def test_no_record_holds_a_secret_value(admin: Api, cred_setup: dict[str, Any]) -> None:
    admin.secret("vault", "robot-password", "An0ther-S3cret-Value")
    maker = admin.user("maker")
    dumped = json.dumps(_audit(admin))
    for value in (cred_setup["password"], "An0ther-S3cret-Value", maker.token, "cfu_test-admin-token"):
        assert value not in dumped


# --- tampering --------------------------------------------------------------------------------------------------
@pytest.fixture
def verify(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``credflow audit verify`` against the test's database."""
    monkeypatch.setenv("CREDFLOW_DATABASE_URL", settings.resolved_database_url())

    def run(*extra: str) -> Result:
        return CliRunner().invoke(cli, ["audit", "verify", "--data-dir", str(settings.data_dir), *extra])

    return run


def _tamper(core: Core, sql: str, **params: Any) -> None:
    with core.db.transaction() as s:
        s.execute(text(sql), params)


def _seqs(admin: Api) -> list[int]:
    return [r["seq"] for r in _audit(admin)]


def test_verify_passes_on_an_untouched_trail(admin: Api, cred_setup: dict[str, Any],
                                             verify: Callable[..., Result]) -> None:
    result = verify()
    assert result.exit_code == 0, result.output
    assert "the audit trail holds" in result.output


def test_verify_names_a_changed_record(admin: Api, cred_setup: dict[str, Any], core: Core,
                                       verify: Callable[..., Result]) -> None:
    target = _seqs(admin)[2]
    _tamper(core, "UPDATE audit_records SET actor = 'user:mallory' WHERE seq = :seq", seq=target)
    result = verify()
    assert result.exit_code == 1
    assert f"changed record {target} was changed" in " ".join(result.output.split())
    assert "inserted" not in result.output and "deleted" not in result.output


def test_verify_names_a_deleted_record(admin: Api, cred_setup: dict[str, Any], core: Core,
                                       verify: Callable[..., Result]) -> None:
    target = _seqs(admin)[3]
    _tamper(core, "DELETE FROM audit_records WHERE seq = :seq", seq=target)
    result = verify()
    assert result.exit_code == 1
    assert f"deleted record {target} was deleted" in " ".join(result.output.split())
    assert "changed" not in result.output and "inserted" not in result.output


def test_verify_names_inserted_records(admin: Api, cred_setup: dict[str, Any], core: Core,
                                       verify: Callable[..., Result]) -> None:
    last = _seqs(admin)[-1]
    forged = ("INSERT INTO audit_records (seq, env_id, at, actor, action, object_type, object_id, detail, "
              "prev_hash, hash) VALUES (:seq, NULL, :at, 'user:mallory', 'credential.share', NULL, NULL, '{}', "
              ":h, :h)")
    _tamper(core, forged, seq=0, at=datetime.now(UTC), h="f" * 64)  # before the first record
    _tamper(core, forged, seq=last + 1, at=datetime.now(UTC), h="e" * 64)  # after the last one
    result = verify()
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "inserted record 0 was inserted" in said and f"inserted record {last + 1} was inserted" in said
    assert "deleted" not in said and "changed" not in said


def test_a_kept_head_finds_records_cut_off_the_end(admin: Api, cred_setup: dict[str, Any], core: Core,
                                                   verify: Callable[..., Result]) -> None:
    first = verify()
    head = next(line.split()[1] for line in first.output.splitlines() if line.startswith("head:"))
    assert verify("--head", head).exit_code == 0
    _tamper(core, "DELETE FROM audit_records WHERE seq >= :seq", seq=_seqs(admin)[-3])
    assert verify().exit_code == 0  # a chain alone cannot see its own end cut off
    result = verify("--head", head)
    assert result.exit_code == 1
    assert f"truncated record {head.split(':')[0]}, the head you kept, is gone" in " ".join(result.output.split())
