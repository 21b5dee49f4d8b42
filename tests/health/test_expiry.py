"""Expiry as users meet it: a builtin secret written with expires_at shows expires_soon, then expired once a
version past its expiry serves; bad input is refused and changes nothing; max_age_days on credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Api, problem
from tests.health.conftest import findings, iso, kinds, wait_for


def _credential(admin: Api, expires_at: str | None) -> dict[str, object]:
    admin.store("vault")
    body = {"value": "first-password"} | ({"expires_at": expires_at} if expires_at else {})
    admin.ok(admin.put(admin.e("/secret-stores/vault/secrets/robot-pw"), body))
    admin.text_var("robot_user", "robot")
    admin.secret_var("robot_pass", "vault", "robot-pw")
    return admin.credential("Robot login", "robot_user", "robot_pass")


def test_a_builtin_secret_expires_soon_then_expired(admin: Api) -> None:
    soon = datetime.now(UTC) + timedelta(days=3)
    cred = _credential(admin, iso(soon))
    found = findings(admin)
    assert [(f["kind"], f["severity"], f["credential"]) for f in found] == [("expires_soon", "warning", cred["id"])]
    assert found[0]["expires_at"] == iso(soon)
    assert found[0]["since"] == iso(soon - timedelta(days=14))
    assert "robot-pw" in found[0]["detail"] and "first-password" not in str(found)

    written = admin.ok(admin.put(admin.e("/secret-stores/vault/secrets/robot-pw"),
                                 {"value": "second-password", "expires_at": "2020-01-31T12:00:00+01:00"}))
    assert written["expires_at"] == "2020-01-31T11:00:00Z"
    wait_for(lambda: kinds(admin) == {("expired", cred["id"])})
    expired = findings(admin)[0]
    assert expired["severity"] == "critical" and expired["expires_at"] == "2020-01-31T11:00:00Z"
    assert admin.ok(admin.get(admin.e("/health")))["counts"] == {"critical": 1, "warning": 0, "info": 0}


def test_a_secret_without_expiry_and_a_far_one_raise_nothing(admin: Api) -> None:
    _credential(admin, iso(datetime.now(UTC) + timedelta(days=90)))
    assert findings(admin) == []


def test_a_bad_expires_at_is_422_and_writes_no_version(admin: Api) -> None:
    _credential(admin, None)
    for bad in ("tomorrow", "2027-01-31", "2027-01-31T00:00:00", "2027-13-01T00:00:00Z"):
        resp = admin.put(admin.e("/secret-stores/vault/secrets/robot-pw"), {"value": "x", "expires_at": bad})
        assert "RFC 3339" in problem(resp, 422, "invalid_expires_at")["detail"]
    problem(admin.put(admin.e("/secret-stores/vault/secrets/robot-pw"), {"value": "x", "expires_at": 5}), 422)
    listed = admin.ok(admin.get(admin.e("/secret-stores/vault/secrets")))["items"]
    assert listed == [{"name": "robot-pw", "version": "1"}]


def test_max_age_days_is_null_or_at_least_one(admin: Api) -> None:
    cred = _credential(admin, None)
    assert cred["max_age_days"] is None
    for bad in (0, -3, "ten", 1.5):
        problem(admin.patch(admin.e(f"/credentials/{cred['id']}"), {"max_age_days": bad}), 422)
    assert admin.ok(admin.patch(admin.e(f"/credentials/{cred['id']}"), {"max_age_days": 30}))["max_age_days"] == 30
    assert admin.ok(admin.get(admin.e(f"/credentials/{cred['id']}")))["max_age_days"] == 30
    assert admin.ok(admin.patch(admin.e(f"/credentials/{cred['id']}"), {"max_age_days": None}))["max_age_days"] is None
    problem(admin.post(admin.e("/credentials"), {"name": "Other", "username_variable": "robot_user",
                                                 "password_variable": "robot_pass", "max_age_days": 0}), 422)
    made = admin.credential("Other", "robot_user", "robot_pass", max_age_days=1)
    assert made["max_age_days"] == 1
