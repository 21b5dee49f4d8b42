"""Passwords over the HTTP API: a system administrator sets a first password, the user changes it."""

from __future__ import annotations

from sqlalchemy import select

from credflow.persistence.tables import AuditRecord
from credflow.services.core import Core
from tests.conftest import Api, problem


def test_an_administrator_sets_a_first_password_the_user_must_change(admin: Api) -> None:
    maker = admin.user("maria")
    got = admin.ok(admin.post(f"/users/{maker.info['id']}/password", {"password": "first-password-1"}))
    assert got == {"id": maker.info["id"], "email": "maria@example.com", "must_change_password": True}
    assert maker.post("/me/password", {"current": "first-password-1", "new": "maria-own-password"}).status_code == 204
    problem(maker.post("/me/password", {"current": "first-password-1", "new": "another-password-2"}), 403,
            "wrong_password")


def test_an_administrator_may_set_their_own_password_without_having_to_change_it(admin: Api) -> None:
    me = admin.ok(admin.get("/me"))
    got = admin.ok(admin.post(f"/users/{me['id']}/password", {"password": "admin-password-12"}))
    assert got["must_change_password"] is False


def test_only_system_administrators_set_passwords(admin: Api) -> None:
    maker = admin.user("maria")
    other = admin.user("otto", "basic_user")
    problem(maker.post(f"/users/{other.info['id']}/password", {"password": "first-password-1"}), 403, "forbidden")
    problem(admin.post("/users/nobody-at-all/password", {"password": "first-password-1"}), 404, "user_not_found")


def test_weak_passwords_are_refused(admin: Api) -> None:
    maker = admin.user("maria")
    for weak in ("short", "maria@example.com"):
        problem(admin.post(f"/users/{maker.info['id']}/password", {"password": weak}), 422, "weak_password")
    admin.ok(admin.post(f"/users/{maker.info['id']}/password", {"password": "first-password-1"}))
    problem(maker.post("/me/password", {"current": "first-password-1", "new": "first-password-1"}), 422,
            "password_unchanged")
    problem(maker.post("/me/password", {"current": "first-password-1", "extra": 1, "new": "x" * 20}), 422,
            "unknown_field")


def test_password_changes_are_audited_without_the_passwords(admin: Api, core: Core) -> None:
    maker = admin.user("maria")
    admin.ok(admin.post(f"/users/{maker.info['id']}/password", {"password": "first-password-1"}))
    maker.post("/me/password", {"current": "wrong-password-1", "new": "maria-own-password"})
    maker.post("/me/password", {"current": "first-password-1", "new": "maria-own-password"})
    with core.db.read() as s:
        rows = s.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
        actions = [r.action for r in rows]
        text = repr([(r.actor, r.action, r.object_id, r.detail) for r in rows]) + str(admin.ok(admin.get("/users")))
    assert {"user.password_set", "auth.password_change_failed", "user.password_change"} <= set(actions)
    assert "first-password-1" not in text and "maria-own-password" not in text and "wrong-password-1" not in text
